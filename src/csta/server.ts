/**
 * Server side of CSTA XML over TCP, for a switching function (the voice server): it greets with
 * SystemStatus like OpenScape Voice, answers the system and ECMA-354 session requests itself, hands
 * every other request to the application, and sends events with invokeID 9999.
 */
import { EventEmitter } from 'node:events';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { editionOf } from './codec.ts';
import type { CstaErrorCode, CstaMessage, MessageOf, SystemStatusValue } from './messages.ts';
import type { Edition } from './schema.ts';
import {
  type CstaLogger,
  type CstaSession,
  type IncomingRequest,
  type RequestName,
  type ResponseName,
  silentLogger,
} from './session.ts';
import { attachSession } from './socket.ts';

/** Requests the connection answers by itself unless told otherwise. */
export type AutoAnswered =
  | 'SystemStatus'
  | 'RequestSystemStatus'
  | 'SystemRegister'
  | 'StartApplicationSession'
  | 'ResetApplicationSessionTimer'
  | 'StopApplicationSession';

const ALL_AUTO: readonly AutoAnswered[] = [
  'SystemStatus',
  'RequestSystemStatus',
  'SystemRegister',
  'StartApplicationSession',
  'ResetApplicationSessionTimer',
  'StopApplicationSession',
];

export interface CstaServerConnectionOptions {
  edition?: Edition;
  requestTimeoutMs?: number;
  log?: CstaLogger;
  /** Send `SystemStatus normal` on connect, as OpenScape Voice does (default true). */
  greet?: boolean;
  /** Answered by the connection itself; others go to the 'request' event. Default: all. */
  autoAnswer?: readonly AutoAnswered[];
  /** Reported in RequestSystemStatusResponse (default normal). */
  systemStatus?: SystemStatusValue;
  /** Longest ECMA-354 session duration granted, seconds (default 600). */
  maxSessionDurationS?: number;
  maxFrameBytes?: number;
}

export interface CstaServerConnectionEvents {
  /** A request for the application; answer it with reply() or fail(). */
  request: [request: IncomingRequest];
  event: [message: CstaMessage];
  close: [reason: string];
}

let registerCounter = 0;
let sessionCounter = 0;

export class CstaServerConnection extends EventEmitter<CstaServerConnectionEvents> {
  readonly socket: Socket;
  readonly session: CstaSession;
  readonly closed: Promise<string>;
  /** Set by SystemRegister. */
  sysStatRegisterID: string | undefined;
  /** Set by StartApplicationSession. */
  applicationSessionID: string | undefined;
  private readonly auto: ReadonlySet<string>;
  private readonly systemStatus: SystemStatusValue;
  private readonly maxSessionDurationS: number;
  private readonly log: CstaLogger;

  constructor(socket: Socket, options: CstaServerConnectionOptions = {}) {
    super();
    this.socket = socket;
    this.log = options.log ?? silentLogger;
    this.auto = new Set(options.autoAnswer ?? ALL_AUTO);
    this.systemStatus = options.systemStatus ?? 'normal';
    this.maxSessionDurationS = options.maxSessionDurationS ?? 600;
    const { session, closed } = attachSession(
      socket,
      {
        edition: options.edition ?? 'ed4',
        // The server speaks its configured edition; clients accept every edition.
        adoptPeerNamespace: false,
        ...(options.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: options.requestTimeoutMs }),
        ...(options.maxFrameBytes === undefined ? {} : { maxFrameBytes: options.maxFrameBytes }),
        onRequest: (request) => this.handle(request),
      },
      this.log,
    );
    this.session = session;
    session.on('event', (message) => this.emit('event', message));
    this.closed = closed.then((reason) => {
      this.emit('close', reason);
      return reason;
    });
    if (options.greet ?? true) {
      // The greeting is a request; a client that never answers it is still served.
      session.request({ name: 'SystemStatus', systemStatus: 'normal' }).catch((e: Error) => {
        this.log.debug(`csta: SystemStatus greeting not answered: ${e.message}`);
      });
    }
  }

  /** Sends an event (invokeID 9999). */
  sendEvent(message: CstaMessage): void {
    this.session.sendEvent(message);
  }

  /** Sends a request to the client (MonitorStop, SystemStatus, …). */
  request<K extends RequestName>(message: MessageOf<K>): Promise<MessageOf<ResponseName<K>>> {
    return this.session.request(message);
  }

  close(): void {
    this.socket.end();
    this.socket.destroy();
  }

  private handle(request: IncomingRequest): void {
    const message = request.message!;
    if (!this.auto.has(message.name)) {
      if (this.listenerCount('request') === 0) request.fail({ operation: 'serviceNotSupported' });
      else this.emit('request', request);
      return;
    }
    switch (message.name) {
      case 'SystemStatus':
        request.reply({ name: 'SystemStatusResponse' });
        return;
      case 'RequestSystemStatus':
        request.reply({ name: 'RequestSystemStatusResponse', systemStatus: this.systemStatus });
        return;
      case 'SystemRegister':
        this.sysStatRegisterID = `reg${++registerCounter}`;
        request.reply({ name: 'SystemRegisterResponse', sysStatRegisterID: this.sysStatRegisterID });
        return;
      case 'StartApplicationSession': {
        const offered = message.requestedProtocolVersions.protocolVersion ?? [];
        const mine = this.session.ns;
        const version =
          offered.find((v) => v === mine) ?? offered.find((v) => editionOf(v) === this.session.edition);
        if (version === undefined) {
          request.reply({
            name: 'StartApplicationSessionNegResponse',
            errorCode: { definedError: 'requestedProtocolVersionNotSupported' },
          });
          return;
        }
        this.applicationSessionID = `s${Date.now().toString(36)}${++sessionCounter}`;
        request.reply({
          name: 'StartApplicationSessionPosResponse',
          sessionID: this.applicationSessionID,
          actualProtocolVersion: version,
          actualSessionDuration: Math.min(message.requestedSessionDuration ?? 180, this.maxSessionDurationS),
        });
        return;
      }
      case 'ResetApplicationSessionTimer':
        if (message.sessionID !== this.applicationSessionID) {
          request.reply({
            name: 'ResetApplicationSessionTimerNegResponse',
            errorCode: { definedError: 'invalidSessionID' },
          });
        } else {
          request.reply({
            name: 'ResetApplicationSessionTimerPosResponse',
            actualSessionDuration: Math.min(message.requestedSessionDuration, this.maxSessionDurationS),
          });
        }
        return;
      case 'StopApplicationSession':
        if (message.sessionID !== this.applicationSessionID) {
          request.reply({
            name: 'StopApplicationSessionNegResponse',
            errorCode: { definedError: 'invalidSessionID' },
          });
        } else {
          request.reply({ name: 'StopApplicationSessionPosResponse' });
          this.applicationSessionID = undefined;
        }
        return;
      default:
        request.fail({ operation: 'serviceNotSupported' } satisfies CstaErrorCode);
    }
  }
}

export interface CstaServerOptions extends CstaServerConnectionOptions {
  host?: string;
  port?: number;
}

export interface CstaServerEvents {
  connection: [connection: CstaServerConnection];
}

/** A TCP listener that wraps every accepted socket in a CstaServerConnection. */
export class CstaServer extends EventEmitter<CstaServerEvents> {
  readonly connections = new Set<CstaServerConnection>();
  private readonly server: Server;
  private readonly options: CstaServerOptions;

  constructor(options: CstaServerOptions = {}) {
    super();
    this.options = options;
    this.server = createServer((socket) => {
      socket.setNoDelay(true);
      const connection = new CstaServerConnection(socket, options);
      this.connections.add(connection);
      void connection.closed.then(() => this.connections.delete(connection));
      this.emit('connection', connection);
    });
  }

  async listen(): Promise<AddressInfo> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port ?? 0, this.options.host ?? '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    return this.server.address() as AddressInfo;
  }

  async close(): Promise<void> {
    for (const c of this.connections) c.close();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
