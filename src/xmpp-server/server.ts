/**
 * The embedded text server: c2s and component listeners around one Router and one Store.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import type { SecureContext } from 'node:tls';
import pino, { type Logger } from 'pino';
import { streamErrorXml } from '../xmpp/stanza.ts';
import { C2sConnection, type C2sContext } from './c2s.ts';
import { ComponentConnection } from './component.ts';
import { AddressRateLimiter } from './limits.ts';
import type { PrivilegeGrant } from './privilege.ts';
import { Router } from './router.ts';
import { SqliteStore, type Store } from './store.ts';
import { ensureSelfSignedCertificate, loadSecureContext } from './tls.ts';
import { WebSocketEndpoint } from './websocket.ts';

export interface XmppServerConfig {
  domain: string;
  /** Listen address for both ports. */
  host: string;
  /** 0 picks a free port (tests). */
  c2sPort: number;
  componentPort: number;
  /** Component domain -> secret. */
  components: ReadonlyMap<string, string>;
  /** XEP-0356 permissions per component domain (components not listed have none). */
  privileges?: ReadonlyMap<string, PrivilegeGrant>;
  /** How long a privileged iq waits for the answer to its encapsulated iq (default 30 s). */
  privilegedIqTimeoutMs?: number;
  allowPlainLoopback: boolean;
  tlsCert?: string | undefined;
  tlsKey?: string | undefined;
  dataDir: string;
  offlineLimit?: number;
  /** XEP-0199 liveness: seconds of silence before a ping, seconds to wait for any answer. */
  pingIntervalS?: number;
  pingTimeoutS?: number;
  /** Seconds a client has from connecting to a bound resource (stream header, TLS, SASL, bind). */
  negotiationTimeoutS?: number;
  /** Bytes of unsent output a client may have for longer than `pingTimeoutS` before it is dropped. */
  outputBufferLimit?: number;
  /** Bound resources per account; 0 means no limit. */
  maxSessionsPerAccount?: number;
  /** New c2s connections per address per minute; 0 means no limit. */
  connectionsPerMinute?: number;
  /** Failed logins per address per minute before further attempts are refused; 0 means no limit. */
  authFailuresPerMinute?: number;
  /** Addresses the two rate limits do not apply to. */
  rateLimitExempt?: readonly string[];
  /** XEP-0198: seconds a session whose connection dropped waits for resumption. */
  resumeTimeoutS?: number;
  /** XEP-0198: iq get/set to a session waiting for resumption: `error` at once (default) or `queue`. */
  iqDuringResumption?: 'error' | 'queue';
  /** Runs an HTTP listener of its own for WebSocket (RFC 7395) on this port (0: any); off when absent. */
  websocketPort?: number | undefined;
}

export const SERVER_DEFAULTS = {
  pingIntervalS: 60,
  pingTimeoutS: 10,
  negotiationTimeoutS: 30,
  outputBufferLimit: 1024 * 1024,
  maxSessionsPerAccount: 10,
  connectionsPerMinute: 60,
  authFailuresPerMinute: 10,
  rateLimitExempt: ['127.0.0.1', '::1'] as readonly string[],
  resumeTimeoutS: 300,
  iqDuringResumption: 'error' as 'error' | 'queue',
};

export const STORE_FILE = 'accounts.sqlite';

/** Opens the account store of a data directory (shared with `switchboard user`). */
export function openStore(dataDir: string): SqliteStore {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  return new SqliteStore(join(dataDir, STORE_FILE));
}

/** Descriptors kept free for everything that is not a connection (store, logs, listeners, peers). */
const DESCRIPTOR_RESERVE = 64;

/**
 * Connections each listener accepts, from the soft limit on open files (Linux /proc), so the process
 * never runs out of descriptors for its store and logs; undefined when unknown or unlimited.
 */
export function connectionBudget(): number | undefined {
  try {
    const m = readFileSync('/proc/self/limits', 'utf8').match(/^Max open files\s+(\d+)/m);
    if (m === null) return undefined;
    return Math.max(16, Number(m[1]) - DESCRIPTOR_RESERVE);
  } catch {
    return undefined;
  }
}

export class XmppServer {
  readonly config: XmppServerConfig;
  readonly store: Store;
  readonly router: Router;
  readonly log: Logger;
  private readonly ownsStore: boolean;
  private secureContext: SecureContext | undefined;
  private c2sListener: Server | undefined;
  private componentListener: Server | undefined;
  private readonly c2s = new Set<C2sConnection>();
  private readonly componentConnections = new Set<ComponentConnection>();
  private readonly sockets = new Set<Socket>();
  c2sPort = 0;
  componentPort = 0;
  /** The port of the server's own WebSocket listener (when `websocketPort` is set). */
  websocketPort = 0;
  /** XMPP over WebSocket; `handleUpgrade` can be mounted on a shared HTTP server. */
  readonly websocket: WebSocketEndpoint;
  readonly connectionLimiter: AddressRateLimiter;
  readonly authFailureLimiter: AddressRateLimiter;
  private readonly settings: typeof SERVER_DEFAULTS;
  /** XEP-0198 sessions that can be resumed, by stream-management id. */
  private readonly resumable = new Map<string, C2sConnection>();

  constructor(config: XmppServerConfig, options: { store?: Store; log?: Logger } = {}) {
    this.config = config;
    this.log = options.log ?? pino({ level: process.env.LOG_LEVEL ?? 'silent' });
    this.ownsStore = options.store === undefined;
    this.store = options.store ?? openStore(config.dataDir);
    const defined = Object.fromEntries(
      Object.entries(config).filter(([k, v]) => v !== undefined && k in SERVER_DEFAULTS),
    );
    this.settings = { ...SERVER_DEFAULTS, ...defined };
    this.connectionLimiter = new AddressRateLimiter({
      max: this.settings.connectionsPerMinute,
      windowMs: 60_000,
      exempt: this.settings.rateLimitExempt,
    });
    this.authFailureLimiter = new AddressRateLimiter({
      max: this.settings.authFailuresPerMinute,
      windowMs: 60_000,
      exempt: this.settings.rateLimitExempt,
    });
    this.websocket = new WebSocketEndpoint({
      context: () => this.c2sContext(),
      admit: (address) => this.admitClient(address),
      track: (connection) => this.trackClient(connection),
      log: this.log,
    });
    this.router = new Router({
      domain: config.domain,
      store: this.store,
      log: this.log,
      componentDomains: config.components.keys(),
      offlineLimit: config.offlineLimit ?? 100,
      privileges: config.privileges ?? new Map(),
      ...(config.privilegedIqTimeoutMs === undefined
        ? {}
        : { privilegedIqTimeoutMs: config.privilegedIqTimeoutMs }),
    });
  }

  async start(): Promise<void> {
    let certPath = this.config.tlsCert;
    let keyPath = this.config.tlsKey;
    if (certPath === undefined || keyPath === undefined) {
      const files = ensureSelfSignedCertificate(this.config.dataDir, this.config.domain);
      if (files.created) this.log.info({ cert: files.certPath }, 'created a self-signed certificate');
      certPath = files.certPath;
      keyPath = files.keyPath;
    }
    this.secureContext = loadSecureContext(certPath, keyPath);
    this.c2sListener = await this.listen(this.config.c2sPort, (socket) => this.acceptClient(socket));
    this.c2sPort = (this.c2sListener.address() as { port: number }).port;
    this.componentListener = await this.listen(this.config.componentPort, (socket) =>
      this.acceptComponent(socket),
    );
    this.componentPort = (this.componentListener.address() as { port: number }).port;
    if (this.config.websocketPort !== undefined)
      this.websocketPort = await this.websocket.listen(this.config.websocketPort, this.config.host);
    this.log.info(
      {
        domain: this.config.domain,
        c2s: this.c2sPort,
        component: this.componentPort,
        host: this.config.host,
      },
      'text server listening',
    );
  }

  private listen(port: number, onSocket: (socket: Socket) => void): Promise<Server> {
    return new Promise((resolve, reject) => {
      const server = createServer({ noDelay: true }, (socket) => {
        this.sockets.add(socket);
        socket.once('close', () => this.sockets.delete(socket));
        onSocket(socket);
      });
      const budget = connectionBudget();
      if (budget !== undefined) {
        // Connections beyond the budget are closed at accept; descriptors stay free for the rest.
        server.maxConnections = budget;
        server.on('drop', () => this.refused('connection over the file-descriptor budget'));
      }
      server.once('error', reject);
      server.listen({ port, host: this.config.host, backlog: 1024 }, () => {
        server.off('error', reject);
        server.on('error', (err) => this.listenerError(err));
        resolve(server);
      });
    });
  }

  /** What every client connection shares, whatever its transport. */
  c2sContext(): C2sContext {
    const s = this.settings;
    return {
      domain: this.config.domain,
      router: this.router,
      store: this.store,
      log: this.log,
      secureContext: this.secureContext,
      allowPlainLoopback: this.config.allowPlainLoopback,
      onClose: (c) => this.c2s.delete(c),
      liveness: { intervalMs: s.pingIntervalS * 1000, timeoutMs: s.pingTimeoutS * 1000 },
      negotiationTimeoutMs: s.negotiationTimeoutS * 1000,
      output: { bufferLimit: s.outputBufferLimit, stallTimeoutMs: s.pingTimeoutS * 1000 },
      maxSessionsPerAccount: s.maxSessionsPerAccount,
      authFailures: this.authFailureLimiter,
      resumable: this.resumable,
      resumeTimeoutMs: s.resumeTimeoutS * 1000,
      iqDuringResumption: s.iqDuringResumption,
    };
  }

  /** Counts a new client connection from an address; false when the address is over its rate. */
  admitClient(address: string | undefined): boolean {
    if (this.connectionLimiter.hit(address)) return true;
    this.log.info({ address }, 'connection refused: rate limit');
    return false;
  }

  private lastAcceptWarning = 0;
  private acceptFailures = 0;

  /**
   * Accept errors do not stop the listener. Out of file descriptors (EMFILE/ENFILE), libuv accepts
   * the waiting connections on a reserved descriptor and closes them at once, so the listener neither
   * spins nor dies, and accepts again as soon as descriptors are free; we only log, at most once a second.
   */
  private listenerError(err: NodeJS.ErrnoException): void {
    if (err.code === 'EMFILE' || err.code === 'ENFILE') {
      this.refused(err.code);
      return;
    }
    this.log.error({ err }, 'listener error');
  }

  private refused(reason: string): void {
    this.acceptFailures++;
    const now = Date.now();
    if (now - this.lastAcceptWarning >= 1000) {
      this.lastAcceptWarning = now;
      this.log.warn(
        { reason, refused: this.acceptFailures, open: this.sockets.size },
        'out of file descriptors: refusing connections',
      );
    }
  }

  private acceptClient(socket: Socket): void {
    if (!this.admitClient(socket.remoteAddress)) {
      socket.on('error', () => {});
      socket.end(
        `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='${this.config.domain}' version='1.0'>` +
          `${streamErrorXml('policy-violation', 'Too many connections from your address')}</stream:stream>`,
      );
      setTimeout(() => socket.destroy(), 1000).unref();
      return;
    }
    const connection = new C2sConnection(socket, this.c2sContext());
    this.c2s.add(connection);
  }

  /** Adds a connection made by another transport (WebSocket) to the server's bookkeeping. */
  trackClient(connection: C2sConnection): void {
    this.c2s.add(connection);
  }

  private acceptComponent(socket: Socket): void {
    const connection = new ComponentConnection(socket, {
      router: this.router,
      log: this.log,
      secrets: this.config.components,
      onClose: (c) => this.componentConnections.delete(c),
    });
    this.componentConnections.add(connection);
  }

  /** The gauges of SPEC.md §5 that belong to the text server. */
  gauges(): { switchboard_xmpp_sessions: number; switchboard_xmpp_components: number } {
    return {
      switchboard_xmpp_sessions: this.router.sessionTotal,
      switchboard_xmpp_components: this.router.componentTotal,
    };
  }

  /** Stops listening, ends every stream with system-shutdown, closes the store. */
  async stop(): Promise<void> {
    const closing = [this.c2sListener, this.componentListener]
      .filter((s): s is Server => s !== undefined)
      .map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    for (const c of this.c2s) c.close('system-shutdown');
    for (const c of this.componentConnections) c.close('system-shutdown');
    // Peers get up to a second to read the stream error and close; then what is left is cut.
    const open = [...this.sockets].map(
      (s) => new Promise<void>((resolve) => s.once('close', () => resolve())),
    );
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(open),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, 1000))),
    ]);
    clearTimeout(timer);
    for (const socket of this.sockets) socket.destroy();
    await this.websocket.close();
    await Promise.all(closing);
    this.router.close();
    if (this.ownsStore) this.store.close();
  }
}
