/**
 * The voice server (SCS): SIP transports, the stack, registrar and B2BUA wired together. One process
 * can run it alone (`switchboard pbx`) or beside the other parts (`switchboard up`).
 */
import { EventEmitter } from 'node:events';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { DigestAlgorithm } from '../sip/digest.ts';
import { SipParseError } from '../sip/errors.ts';
import type { SipRequest } from '../sip/message.ts';
import { type Logger, SILENT_LOGGER, SipStack } from '../sip/stack.ts';
import type { InviteServerTransaction, ServerTransaction, TimerValues } from '../sip/transaction.ts';
import { type Endpoint, type SipTransport, TcpTransport, UdpTransport } from '../sip/transport.ts';
import { bareHost } from '../sip/uri.ts';
import { WsTransport } from '../sip/ws-transport.ts';
import { DigestAuthenticator } from './auth.ts';
import { B2bua } from './b2bua.ts';
import type { Call } from './call.ts';
import { Registrar, type RegistrarOptions } from './registrar.ts';
import type { UserDirectory } from './users.ts';

export interface VoiceServerOptions {
  users: UserDirectory;
  /** SIP domain = the XMPP domain (realm of digest challenges). */
  domain?: string;
  /** Address to listen on (UDP and TCP). */
  host?: string;
  /** Port for UDP and TCP; 0 picks a free port shared by both. */
  sipPort?: number;
  /** Address written into Via/Contact; defaults to the listen address (or a local one for 0.0.0.0). */
  advertisedHost?: string;
  tcp?: boolean;
  /** Port for SIP over WebSocket (RFC 7118, path /sip); undefined = no WebSocket transport. */
  wsPort?: number;
  ringTimeoutMs?: number;
  registrar?: Omit<RegistrarOptions, 'isLocal' | 'now'>;
  authAlgorithms?: DigestAlgorithm[];
  nonceLifetimeMs?: number;
  /** Wall clock for nonce ages (tests move it forward). */
  clock?: () => number;
  timers?: TimerValues;
  logger?: Logger;
}

export interface VoiceServerEvents {
  call: [call: Call];
  'device-in-service': [extension: string];
  'device-out-of-service': [extension: string, reason: 'removed' | 'expired'];
}

export class VoiceServer extends EventEmitter<VoiceServerEvents> {
  readonly domain: string;
  readonly options: VoiceServerOptions;
  private stackInstance: SipStack | undefined;
  private registrarInstance: Registrar | undefined;
  private b2buaInstance: B2bua | undefined;
  private port = 0;
  private readonly logger: Logger;

  constructor(options: VoiceServerOptions) {
    super();
    this.options = options;
    this.domain = (options.domain ?? 'localhost').toLowerCase();
    this.logger = options.logger ?? SILENT_LOGGER;
  }

  get sipPort(): number {
    return this.port;
  }

  /** For the `switchboard_pbx_registered_devices` gauge: extensions with at least one binding. */
  get registeredDeviceCount(): number {
    return this.registrarInstance?.registeredExtensions.length ?? 0;
  }

  /** For the `switchboard_pbx_active_calls` gauge: bridged calls not yet released. */
  get activeCallCount(): number {
    return this.b2buaInstance?.activeCalls.length ?? 0;
  }

  /** Port of the WebSocket transport, if any. */
  get wsPort(): number | undefined {
    return this.stackInstance?.transport('WS')?.local.port;
  }

  get stack(): SipStack {
    if (this.stackInstance === undefined) throw new Error('voice server not started');
    return this.stackInstance;
  }

  get registrar(): Registrar {
    if (this.registrarInstance === undefined) throw new Error('voice server not started');
    return this.registrarInstance;
  }

  get b2bua(): B2bua {
    if (this.b2buaInstance === undefined) throw new Error('voice server not started');
    return this.b2buaInstance;
  }

  async start(): Promise<void> {
    const host = this.options.host ?? '127.0.0.1';
    const transports = await this.listen(host, this.options.sipPort ?? 5060);
    if (this.options.wsPort !== undefined) {
      const ws = new WsTransport();
      await ws.listen(this.options.wsPort, host);
      transports.push(ws);
    }
    const advertisedHost =
      this.options.advertisedHost ?? (host === '0.0.0.0' || host === '::' ? firstLocalAddress() : host);
    const allow = ['INVITE', 'ACK', 'CANCEL', 'BYE', 'OPTIONS', 'REGISTER', 'INFO', 'UPDATE'];
    const stackOptions: ConstructorParameters<typeof SipStack>[0] = {
      transports,
      advertisedHost,
      allow,
      logger: this.logger,
    };
    if (this.options.timers !== undefined) stackOptions.timers = this.options.timers;
    const stack = new SipStack(stackOptions);
    const authOptions: ConstructorParameters<typeof DigestAuthenticator>[1] = { realm: this.domain };
    if (this.options.authAlgorithms !== undefined) authOptions.algorithms = this.options.authAlgorithms;
    if (this.options.nonceLifetimeMs !== undefined)
      authOptions.nonceLifetimeMs = this.options.nonceLifetimeMs;
    if (this.options.clock !== undefined) authOptions.now = this.options.clock;
    const auth = new DigestAuthenticator(this.options.users, authOptions);
    const isLocal = (h: string, p?: number) => this.isLocal(h, p, host, advertisedHost);
    const registrar = new Registrar(this.options.users, auth, { ...this.options.registrar, isLocal });
    const b2buaOptions: ConstructorParameters<typeof B2bua>[4] = { domain: this.domain, isLocal };
    if (this.options.ringTimeoutMs !== undefined) b2buaOptions.ringTimeoutMs = this.options.ringTimeoutMs;
    const b2bua = new B2bua(stack, this.options.users, registrar, auth, b2buaOptions);
    registrar.on('device-in-service', (ext) => {
      this.logger.info({ extension: ext }, 'device in service');
      this.emit('device-in-service', ext);
    });
    registrar.on('device-out-of-service', (ext, reason) => {
      this.logger.info({ extension: ext, reason }, 'device out of service');
      this.emit('device-out-of-service', ext, reason);
    });
    b2bua.on('call', (call) => {
      this.logger.info({ call: call.id, from: call.callerExtension, to: call.calleeExtension }, 'call');
      call.on('released', (cause, status) =>
        this.logger.info({ call: call.id, cause, status }, 'call released'),
      );
      this.emit('call', call);
    });
    stack.handlers = {
      onRequest: (request, tx, source) => this.dispatch(request, tx, source),
      onAck: (ack) => b2bua.handleAck(ack),
      onCancel: (invite) => b2bua.handleCancel(invite),
      onStrayResponse: (response) => b2bua.handleStrayResponse(response),
    };
    this.stackInstance = stack;
    this.registrarInstance = registrar;
    this.b2buaInstance = b2bua;
    const udp = transports.find((t) => t instanceof UdpTransport);
    this.logger.info(
      {
        host,
        port: this.port,
        domain: this.domain,
        advertisedHost,
        udpReceiveBuffer: udp instanceof UdpTransport ? udp.receiveBufferSize : undefined,
      },
      'voice server listening',
    );
  }

  private async listen(host: string, port: number): Promise<SipTransport[]> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const udp = new UdpTransport();
      try {
        await udp.listen(port, host);
      } catch (e) {
        if (port !== 0) throw e;
        continue;
      }
      if (this.options.tcp === false) {
        this.port = udp.local.port;
        return [udp];
      }
      const tcp = new TcpTransport();
      try {
        await tcp.listen(udp.local.port, host);
        this.port = udp.local.port;
        return [udp, tcp];
      } catch (e) {
        await udp.close();
        await tcp.close();
        if (port !== 0) throw e;
      }
    }
    throw new Error('no port free for both UDP and TCP');
  }

  /** Every request gets an answer: a header that fails to parse late gives 400, a bug gives 500. */
  private dispatch(request: SipRequest, tx: ServerTransaction, source: Endpoint): void {
    try {
      this.route(request, tx, source);
    } catch (e) {
      const status = e instanceof SipParseError ? e.status : 500;
      if (!(e instanceof SipParseError))
        this.logger.error({ err: e instanceof Error ? e.stack : String(e) }, 'error handling a request');
      if (tx.finalResponse === undefined)
        tx.reply(status, status === 400 ? `Bad Request (${(e as Error).message.slice(0, 60)})` : undefined);
    }
  }

  private route(request: SipRequest, tx: ServerTransaction, source: Endpoint): void {
    const b2bua = this.b2bua;
    if (request.method === 'REGISTER') {
      this.registrar.handle(request, tx, source);
      return;
    }
    if (request.to.params.has('tag')) {
      b2bua.handleInDialog(request, tx, source);
      return;
    }
    switch (request.method) {
      case 'INVITE':
        b2bua.handleInvite(request, tx as InviteServerTransaction, source);
        return;
      case 'OPTIONS':
        tx.respond(this.stack.optionsResponse(request, 'opt'));
        return;
      default:
        tx.reply(481);
    }
  }

  /** The SIP domain, or one of our own addresses (with our port or none) in a URI. */
  private isLocal(
    host: string,
    port: number | undefined,
    listenHost: string,
    advertisedHost: string,
  ): boolean {
    const h = bareHost(host);
    if (h === this.domain) return true;
    if (port !== undefined && port !== this.port) return false;
    const own = new Set([bareHost(advertisedHost), bareHost(listenHost)]);
    if (listenHost === '0.0.0.0' || listenHost === '::') {
      for (const list of Object.values(networkInterfaces()))
        for (const i of list ?? []) own.add(i.address.toLowerCase());
    }
    return own.has(h);
  }

  async stop(): Promise<void> {
    const hadCalls = (this.b2buaInstance?.activeCalls.length ?? 0) > 0;
    this.b2buaInstance?.close();
    // let the BYEs, CANCELs and 503s leave before the sockets close (resolution and send are async)
    if (hadCalls) await new Promise((resolve) => setTimeout(resolve, 100));
    this.registrarInstance?.clear();
    await this.stackInstance?.close();
  }
}

function firstLocalAddress(): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const i of list ?? [])
      if (!i.internal && i.family === 'IPv4' && isIP(i.address) === 4) return i.address;
  }
  return '127.0.0.1';
}
