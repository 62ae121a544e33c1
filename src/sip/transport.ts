/**
 * SIP transports (RFC 3261 §18): UDP and TCP, behind one small interface so WebSocket (RFC 7118) can be
 * added as another stream transport. A transport only moves bytes and parses them into messages; what
 * to answer is the stack's business. Parse errors are reported with enough context to send a 400.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { EventEmitter, once } from 'node:events';
import { createConnection, createServer, isIPv6, type Server, type Socket } from 'node:net';
import { DEFAULT_SIP_LIMITS, type SipLimits } from './errors.ts';
import { SipStreamFramer } from './framing.ts';
import type { SipMessage } from './message.ts';
import { parseMessage, SipMessageError } from './parser.ts';

export type TransportProtocol = 'UDP' | 'TCP' | 'WS' | 'WSS' | 'TLS';

/** Where a message came from or goes to. Stream transports name the connection it belongs to. */
export interface Endpoint {
  protocol: TransportProtocol;
  address: string;
  port: number;
  /** Stream connection id; a response must go back on it while it is open (§18.2.2). */
  connectionId?: string;
}

export interface TransportEvents {
  message: [message: SipMessage, source: Endpoint];
  /** A message that failed to parse; `fatal` means the stream was closed after it. */
  parseError: [error: SipMessageError, source: Endpoint];
  error: [error: Error];
}

export interface SipTransport extends EventEmitter<TransportEvents> {
  readonly protocol: TransportProtocol;
  /** True for stream transports: no retransmissions (§17.1.1.2) and Content-Length framing. */
  readonly reliable: boolean;
  /** Bound address and port. */
  readonly local: { address: string; port: number };
  send(data: Buffer, destination: Endpoint): Promise<void>;
  close(): Promise<void>;
}

/**
 * Receive buffer asked for on the UDP socket. The kernel's default (about 200 KB) overflows in bursts
 * of a few hundred calls per second while the event loop is busy, and each dropped datagram then costs
 * a retransmission timer. Linux caps the request at net.core.rmem_max (see `receiveBufferSize`).
 */
export const DEFAULT_UDP_RECEIVE_BUFFER = 4 * 1024 * 1024;

export class UdpTransport extends EventEmitter<TransportEvents> implements SipTransport {
  readonly protocol = 'UDP' as const;
  readonly reliable = false;
  private socket: UdpSocket | undefined;
  private readonly limits: SipLimits;
  private readonly receiveBufferRequest: number;
  local = { address: '', port: 0 };

  constructor(limits: SipLimits = DEFAULT_SIP_LIMITS, receiveBufferBytes = DEFAULT_UDP_RECEIVE_BUFFER) {
    super();
    this.limits = limits;
    this.receiveBufferRequest = receiveBufferBytes;
  }

  /** The socket's effective receive buffer in bytes (as the kernel reports it), 0 when closed. */
  get receiveBufferSize(): number {
    try {
      return this.socket?.getRecvBufferSize() ?? 0;
    } catch {
      return 0;
    }
  }

  async listen(port: number, host: string): Promise<void> {
    const socket = createSocket({
      type: isIPv6(host) ? 'udp6' : 'udp4',
      reuseAddr: false,
      recvBufferSize: this.receiveBufferRequest,
    });
    this.socket = socket;
    socket.on('message', (data, rinfo) =>
      this.receive(data, { protocol: 'UDP', address: rinfo.address, port: rinfo.port }),
    );
    socket.bind(port, host);
    await once(socket, 'listening');
    socket.on('error', (e) => this.emit('error', e));
    const a = socket.address();
    this.local = { address: a.address, port: a.port };
  }

  private receive(data: Buffer, source: Endpoint): void {
    // keep-alives (RFC 5626 §4.4.1 uses STUN; many phones send CRLF datagrams): nothing to parse
    if (data.length <= 4 && data.toString('latin1').trim() === '') return;
    let message: SipMessage;
    try {
      message = parseMessage(data, { limits: this.limits });
    } catch (e) {
      const err = e instanceof SipMessageError ? e : new SipMessageError(e as SipMessageError, undefined);
      this.emit('parseError', err, source);
      return;
    }
    this.emit('message', message, source);
  }

  send(data: Buffer, destination: Endpoint): Promise<void> {
    const socket = this.socket;
    if (socket === undefined) return Promise.reject(new Error('UDP transport is closed'));
    return new Promise((resolve, reject) => {
      socket.send(data, destination.port, destination.address, (err) => (err ? reject(err) : resolve()));
    });
  }

  async close(): Promise<void> {
    const socket = this.socket;
    this.socket = undefined;
    if (socket === undefined) return;
    await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
}

export interface TcpOptions {
  limits?: SipLimits;
  /** Idle connections are closed after this time (ms). */
  idleTimeoutMs?: number;
  /** Connections (inbound plus outbound) held at most. */
  maxConnections?: number;
  /** A peer that does not read is disconnected when this many bytes wait to be written. */
  maxWriteBufferBytes?: number;
}

interface Connection {
  id: string;
  socket: Socket;
  framer: SipStreamFramer;
  remote: Endpoint;
}

export class TcpTransport extends EventEmitter<TransportEvents> implements SipTransport {
  readonly protocol = 'TCP' as const;
  readonly reliable = true;
  private server: Server | undefined;
  private readonly connections = new Map<string, Connection>();
  /** "address|port" -> connection id, for reusing a connection to a peer (§18.1.1, §18.2.2). */
  private readonly byPeer = new Map<string, string>();
  private readonly options: Required<TcpOptions>;
  private nextId = 1;
  local = { address: '', port: 0 };

  constructor(options: TcpOptions = {}) {
    super();
    this.options = {
      limits: options.limits ?? DEFAULT_SIP_LIMITS,
      idleTimeoutMs: options.idleTimeoutMs ?? 10 * 60_000,
      maxConnections: options.maxConnections ?? 10_000,
      maxWriteBufferBytes: options.maxWriteBufferBytes ?? 1024 * 1024,
    };
  }

  async listen(port: number, host: string): Promise<void> {
    const server = createServer((socket) => this.adopt(socket));
    this.server = server;
    server.listen(port, host);
    await once(server, 'listening');
    server.on('error', (e) => this.emit('error', e));
    const a = server.address();
    if (a === null || typeof a === 'string') throw new Error('no TCP address');
    this.local = { address: a.address, port: a.port };
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  private adopt(socket: Socket): Connection | undefined {
    if (this.connections.size >= this.options.maxConnections) {
      socket.destroy();
      return undefined;
    }
    const id = `tcp-${this.nextId++}`;
    const remote: Endpoint = {
      protocol: 'TCP',
      address: socket.remoteAddress ?? '',
      port: socket.remotePort ?? 0,
      connectionId: id,
    };
    const conn: Connection = { id, socket, framer: new SipStreamFramer(this.options.limits), remote };
    this.connections.set(id, conn);
    this.byPeer.set(`${remote.address}|${remote.port}`, id);
    socket.setNoDelay(true);
    socket.setTimeout(this.options.idleTimeoutMs, () => socket.destroy());
    socket.on('data', (chunk: Buffer) => this.receive(conn, chunk));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.connections.delete(id);
      if (this.byPeer.get(`${remote.address}|${remote.port}`) === id)
        this.byPeer.delete(`${remote.address}|${remote.port}`);
    });
    return conn;
  }

  private receive(conn: Connection, chunk: Buffer): void {
    for (const item of conn.framer.push(chunk)) {
      if (item.kind === 'ping') {
        conn.socket.write('\r\n');
      } else if (item.kind === 'message') {
        this.emit('message', item.message, conn.remote);
      } else {
        this.emit('parseError', item.error, conn.remote);
        if (item.error.fatal) conn.socket.end();
      }
    }
  }

  async send(data: Buffer, destination: Endpoint): Promise<void> {
    let conn =
      destination.connectionId !== undefined ? this.connections.get(destination.connectionId) : undefined;
    if (conn === undefined) {
      const id = this.byPeer.get(`${destination.address}|${destination.port}`);
      if (id !== undefined) conn = this.connections.get(id);
    }
    if (conn === undefined) {
      if (this.server === undefined) throw new Error('TCP transport is closed');
      const socket = createConnection({ host: destination.address, port: destination.port });
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('error', reject);
      });
      conn = this.adopt(socket);
      if (conn === undefined) throw new Error('too many TCP connections');
      conn.remote.address = destination.address;
      conn.remote.port = destination.port;
      this.byPeer.set(`${destination.address}|${destination.port}`, conn.id);
    }
    if (conn.socket.writableLength > this.options.maxWriteBufferBytes) {
      conn.socket.destroy();
      throw new Error('peer is not reading; connection closed');
    }
    conn.socket.write(data);
  }

  async close(): Promise<void> {
    for (const conn of this.connections.values()) conn.socket.destroy();
    this.connections.clear();
    const server = this.server;
    this.server = undefined;
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
