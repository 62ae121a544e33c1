/**
 * The TCP side of a client connection (RFC 6120 framing): the socket with its STARTTLS upgrade and
 * write corking, the XML stream reader, and the `<stream:stream>` header, errors and closing tag.
 * `C2sConnection` speaks XMPP through the ClientTransport interface, so a WebSocket transport
 * (RFC 7395 framing: `<open/>`, one element per message, `<close/>`) can reuse the negotiation.
 */
import type { Socket } from 'node:net';
import { type SecureContext, TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { XmlError } from '../xml/index.ts';
import { type Element, escapeAttr, serialize, type XmlLimits, XmlStreamReader } from '../xml/index.ts';
import { NS } from '../xmpp/ns.ts';
import { type StreamErrorCondition, streamErrorXml } from '../xmpp/stanza.ts';

/** What the connection hears from its transport. */
export interface TransportEvents {
  onStreamStart(root: Element): void;
  onStanza(el: Element): void;
  onStreamEnd(): void;
  onError(error: XmlError): void;
  /** The connection is gone (called once). */
  onClose(): void;
  /** Bytes arrived (whitespace keep-alives included): the peer is alive. */
  onInput?(): void;
  /** The peer has not read its output for too long (write back-pressure): drop it. */
  onStalled?(): void;
}

/** Write back-pressure: how much unsent output a peer may have, and for how long. */
export interface OutputLimits {
  /** Bytes of unsent output above which the stall clock runs. */
  bufferLimit: number;
  /** How long the output may stay above the limit before the peer is dropped. */
  stallTimeoutMs: number;
}

export const DEFAULT_OUTPUT_LIMITS: OutputLimits = { bufferLimit: 1024 * 1024, stallTimeoutMs: 10_000 };

/** Unsent output this many times over the limit drops the peer at once (bounds memory). */
const HARD_LIMIT_FACTOR = 8;

export interface StreamOpen {
  id: string;
  from: string;
  to: string | undefined;
  lang: string;
}

/** What differs between TCP and WebSocket client connections. */
export interface ClientTransport {
  readonly remoteAddress: string | undefined;
  readonly secure: boolean;
  /** STARTTLS can be offered now. */
  readonly canStartTls: boolean;
  /** A stanza in jabber:client. */
  sendStanza(el: Element): void;
  /** Negotiation elements (TLS, SASL) that declare their own namespace. */
  sendRaw(xml: string): void;
  sendFeatures(inner: string): void;
  openStream(open: StreamOpen): void;
  sendStreamError(condition: StreamErrorCondition, text?: string): void;
  /** Our closing tag; the connection ends when the peer closes or after a grace period. */
  closeStream(): void;
  /** A new stream follows (after STARTTLS or SASL): input already received is discarded. */
  restart(limits?: Partial<XmlLimits>): void;
  /** Switches to TLS; call right after writing `<proceed/>`. */
  startTls(): void;
  pause(): void;
  resume(): void;
  /** Drops the connection without a closing handshake (dead or stalled peer). */
  destroy(): void;
}

/** How long we wait for the peer's closing tag after sending ours (RFC 6120 §4.4). */
const CLOSE_GRACE_MS = 2000;

export class TcpTransport implements ClientTransport {
  private readonly raw: Socket;
  private socket: Socket;
  private readonly reader: XmlStreamReader;
  private readonly secureContext: SecureContext | undefined;
  private readonly log: Logger;
  private isSecure = false;
  private corked = false;
  private closeTimer: NodeJS.Timeout | undefined;
  private closing = false;
  private readonly events: TransportEvents;
  private readonly output: OutputLimits;
  private stallTimer: NodeJS.Timeout | undefined;

  constructor(
    socket: Socket,
    events: TransportEvents,
    secureContext: SecureContext | undefined,
    log: Logger,
    output: OutputLimits = DEFAULT_OUTPUT_LIMITS,
  ) {
    this.events = events;
    this.output = output;
    this.raw = socket;
    this.socket = socket;
    this.secureContext = secureContext;
    this.log = log;
    this.reader = new XmlStreamReader(
      {
        onStreamStart: (root) => events.onStreamStart(root),
        onStanza: (el) => events.onStanza(el),
        onStreamEnd: () => events.onStreamEnd(),
        onError: (err) => events.onError(err),
      },
      { root: { name: 'stream', ns: NS.stream } },
    );
    socket.setNoDelay(true);
    socket.on('error', (err) => this.log.debug({ err }, 'socket error'));
    socket.on('close', () => {
      if (this.closeTimer !== undefined) clearTimeout(this.closeTimer);
      if (this.stallTimer !== undefined) clearTimeout(this.stallTimer);
      events.onClose();
    });
    socket.on('data', (chunk: Buffer) => this.input(chunk));
  }

  private input(chunk: Buffer): void {
    this.events.onInput?.();
    this.reader.feed(chunk);
  }

  get remoteAddress(): string | undefined {
    return this.raw.remoteAddress;
  }

  get secure(): boolean {
    return this.isSecure;
  }

  get canStartTls(): boolean {
    return !this.isSecure && this.secureContext !== undefined;
  }

  /**
   * Writes are corked until the end of the current tick, so everything one input chunk produces for
   * this client leaves in one syscall (and one TLS record) instead of one per stanza.
   */
  private write(data: string): void {
    const socket = this.socket;
    if (socket.destroyed || !socket.writable) return;
    if (!this.corked) {
      this.corked = true;
      socket.cork();
      process.nextTick(() => this.flush(socket));
    }
    socket.write(data);
  }

  private flush(socket: Socket): void {
    if (!this.corked || socket !== this.socket) return;
    this.corked = false;
    socket.uncork();
    this.checkBackPressure(socket);
  }

  /**
   * A peer that stops reading makes our output pile up. Over the limit a clock starts; if the output
   * has not drained below the limit when it runs out (or grows far past it), the peer is dropped.
   */
  private checkBackPressure(socket: Socket): void {
    const pending = socket.writableLength;
    if (pending <= this.output.bufferLimit || socket.destroyed) return;
    if (pending > this.output.bufferLimit * HARD_LIMIT_FACTOR) {
      this.log.info({ pending }, 'output far over the limit: dropping the peer');
      this.stalled();
      return;
    }
    if (this.stallTimer !== undefined) return;
    this.stallTimer = setTimeout(() => {
      this.stallTimer = undefined;
      if (socket.destroyed) return;
      if (socket.writableLength > this.output.bufferLimit) {
        this.log.info({ pending: socket.writableLength }, 'peer stopped reading: dropping it');
        this.stalled();
      }
    }, this.output.stallTimeoutMs);
    this.stallTimer.unref();
    // Everything written meanwhile: the peer reads again, the clock stops.
    socket.once('drain', () => {
      if (this.stallTimer !== undefined) clearTimeout(this.stallTimer);
      this.stallTimer = undefined;
    });
  }

  private stalled(): void {
    if (this.stallTimer !== undefined) clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
    this.events.onStalled?.();
    this.destroy();
  }

  destroy(): void {
    this.socket.destroy();
    this.raw.destroy();
  }

  sendStanza(el: Element): void {
    this.write(serialize(el, NS.client));
  }

  sendRaw(xml: string): void {
    this.write(xml);
  }

  sendFeatures(inner: string): void {
    this.write(`<stream:features>${inner}</stream:features>`);
  }

  openStream(open: StreamOpen): void {
    this.write(
      `<?xml version='1.0'?><stream:stream xmlns='${NS.client}' xmlns:stream='${NS.stream}' id='${escapeAttr(open.id)}'` +
        ` from='${escapeAttr(open.from)}'${open.to === undefined ? '' : ` to='${escapeAttr(open.to)}'`}` +
        ` version='1.0' xml:lang='${escapeAttr(open.lang)}'>`,
    );
  }

  sendStreamError(condition: StreamErrorCondition, text?: string): void {
    this.write(streamErrorXml(condition, text));
  }

  closeStream(): void {
    if (!this.closing) {
      this.closing = true;
      this.write('</stream:stream>');
    }
    this.socket.end();
    if (this.closeTimer === undefined) {
      this.closeTimer = setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS);
      this.closeTimer.unref();
    }
  }

  restart(limits?: Partial<XmlLimits>): void {
    this.reader.reset();
    if (limits !== undefined) this.reader.setLimits(limits);
  }

  startTls(): void {
    if (this.secureContext === undefined || this.isSecure) throw new Error('STARTTLS not possible');
    // <proceed/> must reach the wire in clear before the TLS layer takes over the socket.
    if (this.corked) {
      this.corked = false;
      this.socket.uncork();
    }
    // Anything the client sent after <starttls/> in the clear is discarded here (STARTTLS injection).
    this.reader.reset();
    const raw = this.socket;
    raw.removeAllListeners('data');
    const tlsSocket = new TLSSocket(raw, { isServer: true, secureContext: this.secureContext });
    tlsSocket.on('error', (err) => {
      this.log.debug({ err }, 'TLS error');
      tlsSocket.destroy();
      raw.destroy();
    });
    tlsSocket.on('data', (chunk: Buffer) => this.input(chunk));
    this.socket = tlsSocket;
    this.isSecure = true;
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }
}
