/**
 * XMPP over WebSocket (RFC 7395) at `/xmpp-websocket`: subprotocol `xmpp`, one complete element per
 * message, `<open/>` and `<close/>` in urn:ietf:params:xml:ns:xmpp-framing instead of the stream tags.
 * The negotiation (SASL, bind) and everything after it is C2sConnection's, through the ClientTransport
 * interface; this file only frames.
 *
 * `WebSocketEndpoint.handleUpgrade` can be hung on any `node:http` server's 'upgrade' event; `listen`
 * runs an HTTP listener of its own (for `switchboard xmpp`).
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Logger } from 'pino';
import { type RawData, type WebSocket, WebSocketServer } from 'ws';
import {
  type Element,
  escapeAttr,
  PRE_AUTH_LIMITS,
  parseDocument,
  serialize,
  XmlError,
  type XmlErrorCondition,
  type XmlLimits,
} from '../xml/index.ts';
import { NS } from '../xmpp/ns.ts';
import { type StreamErrorCondition, streamErrorXml } from '../xmpp/stanza.ts';
import type { C2sContext } from './c2s.ts';
import { C2sConnection } from './c2s.ts';
import {
  type ClientTransport,
  DEFAULT_OUTPUT_LIMITS,
  type OutputLimits,
  type StreamOpen,
  type TransportEvents,
} from './tcp-transport.ts';

export const WEBSOCKET_PATH = '/xmpp-websocket';
/** The largest message we accept: the post-authentication stanza limit (ws refuses bigger frames). */
const MAX_MESSAGE_BYTES = 256 * 1024;
const CLOSE_GRACE_MS = 2000;

export class WebSocketTransport implements ClientTransport {
  readonly remoteAddress: string | undefined;
  readonly secure: boolean;
  readonly canStartTls = false;
  private readonly ws: WebSocket;
  private readonly events: TransportEvents;
  private readonly log: Logger;
  private readonly output: OutputLimits;
  private limits: XmlLimits = { ...PRE_AUTH_LIMITS };
  private opened = false;
  private closing = false;
  private ended = false;
  private paused: RawData[] | undefined;
  private closeTimer: NodeJS.Timeout | undefined;
  private stallTimer: NodeJS.Timeout | undefined;

  constructor(
    ws: WebSocket,
    req: IncomingMessage,
    events: TransportEvents,
    log: Logger,
    output: OutputLimits = DEFAULT_OUTPUT_LIMITS,
  ) {
    this.ws = ws;
    this.events = events;
    this.log = log;
    this.output = output;
    this.remoteAddress = req.socket.remoteAddress;
    this.secure = (req.socket as { encrypted?: boolean }).encrypted === true;
    ws.on('message', (data, isBinary) => {
      events.onInput?.();
      if (isBinary) {
        this.fail('bad-format', 'Text messages only');
        return;
      }
      if (this.paused !== undefined) this.paused.push(data);
      else this.message(data);
    });
    ws.on('ping', () => events.onInput?.());
    ws.on('pong', () => events.onInput?.());
    ws.on('error', (err) => this.log.debug({ err }, 'websocket error'));
    ws.on('close', () => {
      clearTimeout(this.closeTimer);
      clearTimeout(this.stallTimer);
      events.onClose();
    });
  }

  /** One message, one element (RFC 7395 §3.3.3). */
  private message(data: RawData): void {
    if (this.ended) return;
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
    let el: Element;
    try {
      el = parseDocument(bytes, { limits: this.limits });
    } catch (e) {
      if (e instanceof XmlError) this.events.onError(e);
      else this.fail('not-well-formed');
      return;
    }
    if (el.ns === NS.framing && el.name === 'open') {
      this.opened = true;
      this.events.onStreamStart(el);
      return;
    }
    if (el.ns === NS.framing && el.name === 'close') {
      this.ended = true;
      this.events.onStreamEnd();
      return;
    }
    if (!this.opened) {
      this.fail('invalid-namespace', 'Open the stream first');
      return;
    }
    this.events.onStanza(el);
  }

  private fail(condition: XmlErrorCondition, text?: string): void {
    this.events.onError(new XmlError(condition, text ?? condition));
  }

  private send(text: string): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    this.ws.send(text);
    this.checkBackPressure();
  }

  /** As for TCP: output over the limit for longer than the stall timeout (or far over it) drops the peer. */
  private checkBackPressure(): void {
    const pending = this.ws.bufferedAmount;
    if (pending <= this.output.bufferLimit) return;
    if (pending > this.output.bufferLimit * 8) {
      this.events.onStalled?.();
      this.destroy();
      return;
    }
    if (this.stallTimer !== undefined) return;
    this.stallTimer = setTimeout(() => {
      this.stallTimer = undefined;
      if (this.ws.bufferedAmount > this.output.bufferLimit) {
        this.log.info({ pending: this.ws.bufferedAmount }, 'websocket peer stopped reading: dropping it');
        this.events.onStalled?.();
        this.destroy();
      }
    }, this.output.stallTimeoutMs);
    this.stallTimer.unref();
  }

  sendStanza(el: Element): void {
    // Every message is a complete document: the namespace is declared on each stanza.
    this.send(serialize(el, ''));
  }

  sendRaw(xml: string): void {
    this.send(xml);
  }

  sendFeatures(inner: string): void {
    this.send(`<stream:features xmlns:stream='${NS.stream}'>${inner}</stream:features>`);
  }

  openStream(open: StreamOpen): void {
    this.send(
      `<open xmlns='${NS.framing}' id='${escapeAttr(open.id)}' from='${escapeAttr(open.from)}'` +
        `${open.to === undefined ? '' : ` to='${escapeAttr(open.to)}'`} version='1.0' xml:lang='${escapeAttr(open.lang)}'/>`,
    );
  }

  sendStreamError(condition: StreamErrorCondition, text?: string): void {
    this.send(
      streamErrorXml(condition, text).replace('<stream:error>', `<stream:error xmlns:stream='${NS.stream}'>`),
    );
  }

  /** Our `<close/>`; the WebSocket closes when the peer answers with its own or after a grace period. */
  closeStream(): void {
    if (!this.closing) {
      this.closing = true;
      this.send(`<close xmlns='${NS.framing}'/>`);
      if (!this.ended) {
        this.closeTimer = setTimeout(() => this.ws.terminate(), CLOSE_GRACE_MS);
        this.closeTimer.unref();
        return;
      }
    }
    this.ws.close(1000);
  }

  restart(limits?: Partial<XmlLimits>): void {
    if (limits !== undefined) this.limits = { ...this.limits, ...limits };
    // The peer sends a new <open/>; messages are whole elements, so nothing half-read is left over.
  }

  startTls(): void {
    throw new Error('STARTTLS is not available over WebSocket');
  }

  pause(): void {
    this.paused ??= [];
  }

  resume(): void {
    const queued = this.paused ?? [];
    this.paused = undefined;
    // A message may pause again (PLAIN verification): the rest waits, in order, for the next resume.
    while (queued.length > 0 && !this.isPaused()) this.message(queued.shift()!);
    if (queued.length > 0) this.paused = [...queued, ...(this.paused ?? [])];
  }

  private isPaused(): boolean {
    return this.paused !== undefined;
  }

  destroy(): void {
    this.ws.terminate();
  }
}

export interface WebSocketEndpointOptions {
  context: () => C2sContext;
  /** False when the peer's address is over its connection rate. */
  admit: (address: string | undefined) => boolean;
  track: (connection: C2sConnection) => void;
  log: Logger;
}

export class WebSocketEndpoint {
  private readonly options: WebSocketEndpointOptions;
  private readonly wss: WebSocketServer;
  private http: Server | undefined;

  constructor(options: WebSocketEndpointOptions) {
    this.options = options;
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: MAX_MESSAGE_BYTES,
      // RFC 7395 §3.1: the subprotocol is `xmpp`; a handshake without it is refused below.
      handleProtocols: (protocols) => (protocols.has('xmpp') ? 'xmpp' : false),
    });
  }

  /**
   * For a `node:http` server's 'upgrade' event: takes WebSocket requests for /xmpp-websocket and
   * returns true; returns false for any other path (the caller answers those).
   */
  handleUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): boolean {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== WEBSOCKET_PATH) return false;
    socket.on('error', () => {});
    const protocols = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    if (!protocols.includes('xmpp')) {
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return true;
    }
    if (!this.options.admit(req.socket.remoteAddress)) {
      socket.end('HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return true;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, req));
    return true;
  }

  private accept(ws: WebSocket, req: IncomingMessage): void {
    const ctx = this.options.context();
    const log = this.options.log.child({
      remote: `${req.socket.remoteAddress}:${req.socket.remotePort}`,
      ws: true,
    });
    const connection = new C2sConnection(
      undefined,
      { ...ctx, log },
      (events, l) => new WebSocketTransport(ws, req, events, l, ctx.output),
    );
    this.options.track(connection);
  }

  /** An HTTP listener of its own, serving only the WebSocket endpoint. */
  async listen(port: number, host: string): Promise<number> {
    const http = createServer((_req, res) => {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('not found\n');
    });
    http.headersTimeout = 10_000;
    http.requestTimeout = 30_000;
    http.on('upgrade', (req, socket, head) => {
      if (!this.handleUpgrade(req, socket as Socket, head)) socket.destroy();
    });
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(port, host, () => {
        http.off('error', reject);
        resolve();
      });
    });
    this.http = http;
    return (http.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    for (const ws of this.wss.clients) ws.terminate();
    const http = this.http;
    this.http = undefined;
    if (http !== undefined)
      await new Promise<void>((resolve) => {
        http.close(() => resolve());
        http.closeAllConnections();
      });
  }
}
