/**
 * The gateway's XEP-0114 connection to a text server (ours, Prosody, ejabberd): stream open,
 * SHA-1 handshake, stanza exchange, keep-alive pings, and reconnection with jittered exponential
 * backoff. Protocol: https://xmpp.org/extensions/xep-0114.html
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import {
  Element,
  escapeAttr,
  POST_AUTH_LIMITS,
  PRE_AUTH_LIMITS,
  serialize,
  type XmlError,
  XmlStreamReader,
} from '../xml/index.ts';

export const COMPONENT_NS = 'jabber:component:accept';
const STREAMS_NS = 'http://etherx.jabber.org/streams';
const STREAM_ERRORS_NS = 'urn:ietf:params:xml:ns:xmpp-streams';
const PING_NS = 'urn:xmpp:ping';

export interface ComponentOptions {
  host: string;
  port: number;
  /** The component's domain, e.g. cti.localhost. */
  domain: string;
  secret: string;
  /** The server's own domain, pinged for keep-alive; default: the domain without its first label. */
  serverDomain?: string;
  /** Seconds between keep-alive pings; 0 disables. */
  keepAliveS?: number;
  /** Seconds to wait for a keep-alive answer, the handshake, or a connect, before reconnecting. */
  timeoutS?: number;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
}

export type ComponentState = 'offline' | 'connecting' | 'online' | 'stopped';

export interface ComponentEvents {
  online: [];
  /** The link went down; `reason` says why. The connection reconnects by itself unless stopped. */
  offline: [reason: string];
  stanza: [stanza: Element];
}

/** Creates a stanza in the component stream's namespace; children inherit it. */
export function stanza(
  name: 'iq' | 'message' | 'presence',
  attrs: Record<string, string | undefined>,
): Element {
  return new Element(name, COMPONENT_NS, attrs);
}

/** The handshake value of XEP-0114 §3: lower-case hex SHA-1 of stream id + secret. */
export function handshakeDigest(streamId: string, secret: string): string {
  return createHash('sha1')
    .update(streamId + secret, 'utf8')
    .digest('hex');
}

export class ComponentConnection extends EventEmitter<ComponentEvents> {
  readonly options: Required<ComponentOptions>;
  private socket: Socket | undefined;
  private reader: XmlStreamReader | undefined;
  private stateValue: ComponentState = 'offline';
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private keepAliveTimer: NodeJS.Timeout | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private pingCounter = 0;
  private awaitingPing: string | undefined;

  constructor(options: ComponentOptions) {
    super();
    const dot = options.domain.indexOf('.');
    this.options = {
      serverDomain: dot > 0 ? options.domain.slice(dot + 1) : options.domain,
      keepAliveS: 30,
      timeoutS: 10,
      backoffInitialMs: 500,
      backoffMaxMs: 30_000,
      ...options,
    };
  }

  get state(): ComponentState {
    return this.stateValue;
  }

  start(): void {
    if (this.stateValue !== 'offline' && this.stateValue !== 'stopped') return;
    this.stateValue = 'offline';
    this.connectNow();
  }

  /** Closes the stream cleanly and stops reconnecting. */
  async stop(): Promise<void> {
    const wasOnline = this.stateValue === 'online';
    this.stateValue = 'stopped';
    clearTimeout(this.reconnectTimer);
    this.clearLinkTimers();
    const socket = this.socket;
    this.socket = undefined;
    if (socket === undefined || socket.destroyed) return;
    await new Promise<void>((resolve) => {
      socket.once('close', () => resolve());
      if (wasOnline) socket.end('</stream:stream>');
      else socket.end();
      setTimeout(() => socket.destroy(), 1000).unref();
    });
  }

  /** Sends a stanza; returns false (and sends nothing) while the link is down. */
  send(element: Element): boolean {
    if (this.stateValue !== 'online' || this.socket === undefined) return false;
    if (element.ns !== COMPONENT_NS) {
      throw new Error(`stanza <${element.name}> must be in ${COMPONENT_NS}; build it with stanza()`);
    }
    this.socket.write(serialize(element, COMPONENT_NS));
    return true;
  }

  private connectNow(): void {
    if (this.stateValue === 'stopped') return;
    this.stateValue = 'connecting';
    const socket = connect({ host: this.options.host, port: this.options.port });
    socket.setNoDelay(true);
    this.socket = socket;
    let streamId: string | undefined;
    const reader = new XmlStreamReader(
      {
        onStreamStart: (root) => {
          streamId = root.attr('id');
          if (streamId === undefined) {
            this.linkDown(socket, 'server stream header has no id');
            return;
          }
          socket.write(`<handshake>${handshakeDigest(streamId, this.options.secret)}</handshake>`);
        },
        onStanza: (el) => this.onElement(socket, el),
        onStreamEnd: () => this.linkDown(socket, 'server closed the stream'),
        onError: (error: XmlError) => {
          socket.write(
            `<stream:error><${error.condition} xmlns='${STREAM_ERRORS_NS}'/></stream:error></stream:stream>`,
          );
          this.linkDown(socket, `bad XML from server: ${error.condition}: ${error.message}`);
        },
      },
      { root: { name: 'stream', ns: STREAMS_NS }, limits: PRE_AUTH_LIMITS },
    );
    this.reader = reader;
    this.armDeadline(socket, 'connect and handshake');
    socket.on('connect', () => {
      socket.write(
        `<?xml version='1.0'?><stream:stream xmlns='${COMPONENT_NS}' xmlns:stream='${STREAMS_NS}' to='${escapeAttr(this.options.domain)}'>`,
      );
    });
    socket.on('data', (chunk) => {
      if (this.socket === socket) reader.feed(chunk);
    });
    socket.on('error', (err) => this.linkDown(socket, err.message));
    socket.on('close', () => this.linkDown(socket, 'connection closed'));
  }

  private onElement(socket: Socket, el: Element): void {
    if (el.name === 'handshake' && this.stateValue === 'connecting') {
      this.stateValue = 'online';
      this.attempt = 0;
      this.reader?.setLimits(POST_AUTH_LIMITS);
      clearTimeout(this.deadlineTimer);
      this.scheduleKeepAlive(socket);
      this.emit('online');
      return;
    }
    if (el.name === 'error' && el.ns === STREAMS_NS) {
      const condition = el.elements().find((c) => c.ns === STREAM_ERRORS_NS && c.name !== 'text');
      const text = el.getChildText('text', STREAM_ERRORS_NS);
      this.linkDown(socket, `stream error ${condition?.name ?? 'unknown'}${text ? `: ${text}` : ''}`);
      return;
    }
    if (this.stateValue !== 'online') return;
    // Any traffic proves the link alive; the answer to our own ping is not passed on.
    const isPingAnswer =
      el.name === 'iq' && this.awaitingPing !== undefined && el.attr('id') === this.awaitingPing;
    this.scheduleKeepAlive(socket);
    if (!isPingAnswer) this.emit('stanza', el);
  }

  private scheduleKeepAlive(socket: Socket): void {
    clearTimeout(this.keepAliveTimer);
    clearTimeout(this.deadlineTimer);
    this.awaitingPing = undefined;
    if (this.options.keepAliveS <= 0) return;
    this.keepAliveTimer = setTimeout(() => {
      const id = `ka${++this.pingCounter}`;
      this.awaitingPing = id;
      const ping = stanza('iq', {
        type: 'get',
        id,
        from: this.options.domain,
        to: this.options.serverDomain,
      });
      ping.c('ping', {}, PING_NS);
      this.send(ping);
      this.armDeadline(socket, 'keep-alive answer');
    }, this.options.keepAliveS * 1000);
  }

  private armDeadline(socket: Socket, what: string): void {
    clearTimeout(this.deadlineTimer);
    this.deadlineTimer = setTimeout(
      () => this.linkDown(socket, `no ${what} within ${this.options.timeoutS} s`),
      this.options.timeoutS * 1000,
    );
  }

  private clearLinkTimers(): void {
    clearTimeout(this.keepAliveTimer);
    clearTimeout(this.deadlineTimer);
    this.awaitingPing = undefined;
  }

  /** Tears the current link down (once) and schedules a reconnect. */
  private linkDown(socket: Socket, reason: string): void {
    if (this.socket !== socket) return;
    this.socket = undefined;
    this.reader = undefined;
    this.clearLinkTimers();
    socket.destroy();
    if (this.stateValue === 'stopped') return;
    this.stateValue = 'offline';
    this.emit('offline', reason);
    // Full jitter (AWS architecture blog): spreads a reconnect storm after a server restart.
    const ceiling = Math.min(this.options.backoffMaxMs, this.options.backoffInitialMs * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    const delay = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
    this.reconnectTimer = setTimeout(() => this.connectNow(), delay);
  }
}
