/**
 * The embedded text server: c2s and component listeners around one Router and one Store.
 */
import { mkdirSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import type { SecureContext } from 'node:tls';
import pino, { type Logger } from 'pino';
import { C2sConnection } from './c2s.ts';
import { ComponentConnection } from './component.ts';
import { Router } from './router.ts';
import { SqliteStore, type Store } from './store.ts';
import { ensureSelfSignedCertificate, loadSecureContext } from './tls.ts';

export interface XmppServerConfig {
  domain: string;
  /** Listen address for both ports. */
  host: string;
  /** 0 picks a free port (tests). */
  c2sPort: number;
  componentPort: number;
  /** Component domain -> secret. */
  components: ReadonlyMap<string, string>;
  allowPlainLoopback: boolean;
  tlsCert?: string | undefined;
  tlsKey?: string | undefined;
  dataDir: string;
  offlineLimit?: number;
}

export const STORE_FILE = 'accounts.sqlite';

/** Opens the account store of a data directory (shared with `switchboard user`). */
export function openStore(dataDir: string): SqliteStore {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  return new SqliteStore(join(dataDir, STORE_FILE));
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

  constructor(config: XmppServerConfig, options: { store?: Store; log?: Logger } = {}) {
    this.config = config;
    this.log = options.log ?? pino({ level: process.env.LOG_LEVEL ?? 'silent' });
    this.ownsStore = options.store === undefined;
    this.store = options.store ?? openStore(config.dataDir);
    this.router = new Router({
      domain: config.domain,
      store: this.store,
      log: this.log,
      componentDomains: config.components.keys(),
      offlineLimit: config.offlineLimit ?? 100,
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
      server.once('error', reject);
      server.listen({ port, host: this.config.host, backlog: 1024 }, () => {
        server.off('error', reject);
        server.on('error', (err) => this.log.error({ err }, 'listener error'));
        resolve(server);
      });
    });
  }

  private acceptClient(socket: Socket): void {
    const connection = new C2sConnection(socket, {
      domain: this.config.domain,
      router: this.router,
      store: this.store,
      log: this.log,
      secureContext: this.secureContext,
      allowPlainLoopback: this.config.allowPlainLoopback,
      onClose: (c) => this.c2s.delete(c),
    });
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
    // Give peers a moment to read the stream error, then cut what is left.
    await new Promise((r) => setTimeout(r, 50));
    for (const socket of this.sockets) socket.destroy();
    await Promise.all(closing);
    if (this.ownsStore) this.store.close();
  }
}
