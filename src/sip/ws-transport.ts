/**
 * SIP over WebSocket (RFC 7118) for the web softphone: subprotocol "sip", one SIP message per
 * WebSocket message (text or binary), Content-Length optional. Like TCP it is reliable and answers
 * go back on the connection the request came in on; requests to a WebSocket phone must use the
 * connection it registered over (there is no way to connect to a browser).
 */
import { isUtf8 } from 'node:buffer';
import { EventEmitter, once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { type WebSocket, WebSocketServer } from 'ws';
import { DEFAULT_SIP_LIMITS, type SipLimits, SipParseError } from './errors.ts';
import type { SipMessage } from './message.ts';
import { parseMessage, SipMessageError } from './parser.ts';
import type { Endpoint, SipTransport, TransportEvents } from './transport.ts';

export interface WsOptions {
  limits?: SipLimits;
  /** HTTP path of the endpoint (SPEC: /sip). */
  path?: string;
  maxConnections?: number;
  /** A client that does not read is disconnected when this many bytes wait to be sent. */
  maxWriteBufferBytes?: number;
}

export class WsTransport extends EventEmitter<TransportEvents> implements SipTransport {
  readonly protocol = 'WS' as const;
  readonly reliable = true;
  local = { address: '', port: 0 };
  private http: Server | undefined;
  private wss: WebSocketServer | undefined;
  private readonly sockets = new Map<string, { ws: WebSocket; remote: Endpoint }>();
  private readonly options: Required<WsOptions>;
  private nextId = 1;

  constructor(options: WsOptions = {}) {
    super();
    this.options = {
      limits: options.limits ?? DEFAULT_SIP_LIMITS,
      path: options.path ?? '/sip',
      maxConnections: options.maxConnections ?? 10_000,
      maxWriteBufferBytes: options.maxWriteBufferBytes ?? 1024 * 1024,
    };
  }

  /** Listens on its own HTTP server. (`attach` puts it on a shared one.) */
  async listen(port: number, host: string): Promise<void> {
    const http = createServer((_req, res) => {
      res.writeHead(426, { 'content-type': 'text/plain' }).end('WebSocket (subprotocol sip) only\n');
    });
    this.attach(http);
    http.listen(port, host);
    await once(http, 'listening');
    http.on('error', (e) => this.emit('error', e));
    this.http = http;
    const a = http.address();
    if (a === null || typeof a === 'string') throw new Error('no WebSocket address');
    this.local = { address: a.address, port: a.port };
  }

  /** Serves the SIP WebSocket endpoint on an existing HTTP server at `path`. */
  attach(server: Server): void {
    const wss = new WebSocketServer({
      server,
      path: this.options.path,
      maxPayload: this.options.limits.maxMessageBytes,
      // RFC 7118 §4: the "sip" subprotocol is required
      handleProtocols: (protocols) => (protocols.has('sip') ? 'sip' : false),
      verifyClient: (info: { req: IncomingMessage }) =>
        this.sockets.size < this.options.maxConnections &&
        (info.req.headers['sec-websocket-protocol'] ?? '').split(',').some((p) => p.trim() === 'sip'),
    });
    wss.on('connection', (ws, req) => this.adopt(ws, req));
    wss.on('error', (e) => this.emit('error', e));
    this.wss = wss;
    if (this.local.port === 0) {
      const a = server.address();
      if (a !== null && typeof a !== 'string') this.local = { address: a.address, port: a.port };
    }
  }

  get connectionCount(): number {
    return this.sockets.size;
  }

  private adopt(ws: WebSocket, req: IncomingMessage): void {
    const id = `ws-${this.nextId++}`;
    const remote: Endpoint = {
      protocol: 'WS',
      address: req.socket.remoteAddress ?? '',
      port: req.socket.remotePort ?? 0,
      connectionId: id,
    };
    this.sockets.set(id, { ws, remote });
    ws.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => {
      const buf = Buffer.isBuffer(data)
        ? data
        : Array.isArray(data)
          ? Buffer.concat(data)
          : Buffer.from(data);
      // RFC 5626 keep-alive over WebSocket: a bare CRLF CRLF
      if (buf.length <= 4 && buf.toString('latin1').trim() === '') return;
      let message: SipMessage;
      try {
        message = parseMessage(buf, { limits: this.options.limits });
      } catch (e) {
        const err =
          e instanceof SipMessageError ? e : new SipMessageError(new SipParseError(String(e)), undefined);
        this.emit('parseError', err, remote);
        return;
      }
      this.emit('message', message, remote);
    });
    ws.on('error', () => ws.terminate());
    ws.on('close', () => this.sockets.delete(id));
  }

  async send(data: Buffer, destination: Endpoint): Promise<void> {
    const entry =
      destination.connectionId !== undefined ? this.sockets.get(destination.connectionId) : undefined;
    if (entry === undefined) throw new Error('WebSocket connection is gone');
    if (entry.ws.bufferedAmount > this.options.maxWriteBufferBytes) {
      entry.ws.terminate();
      throw new Error('WebSocket peer is not reading; connection closed');
    }
    // text frames for UTF-8 messages, binary frames for anything else (RFC 7118 §5.1 allows both)
    entry.ws.send(data, { binary: !isUtf8(data) });
  }

  async close(): Promise<void> {
    for (const { ws } of this.sockets.values()) ws.terminate();
    this.sockets.clear();
    const wss = this.wss;
    this.wss = undefined;
    if (wss !== undefined) await new Promise<void>((resolve) => wss.close(() => resolve()));
    const http = this.http;
    this.http = undefined;
    if (http !== undefined) await new Promise<void>((resolve) => http.close(() => resolve()));
  }
}
