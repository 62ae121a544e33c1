/**
 * Client side of CSTA XML over TCP (the gateway's link to a PBX), csta.md §2.3–§2.4:
 * connect → [ECMA-354 StartApplicationSession] → wait briefly for the server's SystemStatus (OpenScape
 * Voice speaks first) → SystemRegister → up. Server SystemStatus is answered at any time. While up, a
 * RequestSystemStatus every N seconds is the heartbeat; when it goes unanswered the link is declared
 * down, the socket dropped, and reconnection follows with exponential backoff and jitter.
 *
 * Monitors do not survive a reconnect: listen for 'up' and start them again.
 */
import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import type { Element } from '../xml/index.ts';
import { EDITION_NAMESPACES, editionOf } from './codec.ts';
import type { CstaMessage, MessageOf, SystemStatusValue } from './messages.ts';
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

export interface BackoffOptions {
  initialDelayMs: number;
  maxDelayMs: number;
  factor: number;
  /** Fraction of the delay added or removed at random (0.2 = ±20 %). */
  jitter: number;
}

export const DEFAULT_BACKOFF: Readonly<BackoffOptions> = Object.freeze({
  initialDelayMs: 1000,
  maxDelayMs: 60_000,
  factor: 2,
  jitter: 0.2,
});

/** Delay before reconnection attempt `attempt` (0 for the first retry). */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions,
  random: () => number = Math.random,
): number {
  const base = Math.min(options.maxDelayMs, options.initialDelayMs * options.factor ** attempt);
  const spread = base * options.jitter;
  return Math.max(0, Math.round(base - spread + 2 * spread * random()));
}

export interface ApplicationSessionOptions {
  applicationID: string;
  /** Vendor login data (e.g. Avaya SessionLoginInfo), sent as applicationSpecificInfo. */
  applicationSpecificInfo?: Element;
  /** Offered protocol versions; default: the configured edition's namespace. */
  protocolVersions?: string[];
  requestedSessionDurationS?: number;
}

export interface CstaLinkOptions {
  host: string;
  port: number;
  edition?: Edition;
  /** Answer in the namespace the PBX uses (default true). */
  adoptPeerNamespace?: boolean;
  requestTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** Heartbeat period (RequestSystemStatus); default 30 s. 0 disables it. */
  keepAliveIntervalMs?: number;
  /** How long a heartbeat may stay unanswered; default 10 s. */
  keepAliveTimeoutMs?: number;
  /** Consecutive unanswered heartbeats before the link is down; default 1. */
  maxMissedKeepAlives?: number;
  /** Send SystemRegister during the handshake (default true). */
  systemRegister?: boolean;
  /** Wait this long after connecting for the server's SystemStatus before registering (default 1 s). */
  awaitSystemStatusMs?: number;
  /** Start an ECMA-354 application session first (Avaya AES/DMCC and others that require it). */
  applicationSession?: ApplicationSessionOptions;
  /** false: one attempt, no reconnection. */
  reconnect?: Partial<BackoffOptions> | false;
  maxFrameBytes?: number;
  log?: CstaLogger;
  random?: () => number;
}

export interface LinkUpInfo {
  /** Status from the server's SystemStatus, if it sent one. */
  systemStatus: SystemStatusValue | undefined;
  sysStatRegisterID: string | undefined;
  sessionID: string | undefined;
  /** Namespace used on the link. */
  ns: string;
}

export interface LinkDownInfo {
  reason: string;
  /** False when the attempt failed before the link came up. */
  wasUp: boolean;
  /** Delay before the next attempt; undefined when the link will not reconnect. */
  retryInMs: number | undefined;
}

export interface CstaLinkEvents {
  up: [info: LinkUpInfo];
  down: [info: LinkDownInfo];
  event: [message: CstaMessage, invokeId: string];
  /** Requests from the PBX other than SystemStatus (MonitorStop, …); unanswered ones get serviceNotSupported. */
  request: [request: IncomingRequest];
  sent: [invokeId: string, message: CstaMessage];
  received: [invokeId: string, root: string, message: CstaMessage | undefined];
}

export type LinkState = 'idle' | 'connecting' | 'handshake' | 'up' | 'waiting' | 'stopped';

export class LinkDownError extends Error {
  constructor(state: LinkState) {
    super(`CSTA link is not up (${state})`);
    this.name = 'LinkDownError';
  }
}

export class CstaLink extends EventEmitter<CstaLinkEvents> {
  private readonly options: CstaLinkOptions;
  private readonly log: CstaLogger;
  private readonly backoff: BackoffOptions | undefined;
  private stateValue: LinkState = 'idle';
  private attempt = 0;
  private socket: Socket | undefined;
  private current: CstaSession | undefined;
  private timers = new Set<NodeJS.Timeout>();
  private generation = 0;
  private systemStatusSeen: (() => void) | undefined;
  private lastSystemStatus: SystemStatusValue | undefined;
  private gotSystemStatus = false;
  private sessionID: string | undefined;

  constructor(options: CstaLinkOptions) {
    super();
    this.options = options;
    this.log = options.log ?? silentLogger;
    this.backoff = options.reconnect === false ? undefined : { ...DEFAULT_BACKOFF, ...options.reconnect };
  }

  get state(): LinkState {
    return this.stateValue;
  }

  get isUp(): boolean {
    return this.stateValue === 'up';
  }

  /** The session of the current connection (undefined between connections). */
  get session(): CstaSession | undefined {
    return this.current;
  }

  start(): void {
    if (this.stateValue !== 'idle') return;
    this.connectOnce();
  }

  /** Sends a request on the link; rejects with LinkDownError unless the link is up. */
  request<K extends RequestName>(
    message: MessageOf<K>,
    options: { timeoutMs?: number } = {},
  ): Promise<MessageOf<ResponseName<K>>> {
    if (this.stateValue !== 'up' || this.current === undefined) {
      return Promise.reject(new LinkDownError(this.stateValue));
    }
    return this.current.request(message, options);
  }

  /** Ends the link for good (stopping an ECMA-354 session politely when there is one). */
  async stop(): Promise<void> {
    if (this.stateValue === 'stopped') return;
    const session = this.current;
    const wasUp = this.stateValue === 'up';
    this.stateValue = 'stopped';
    this.clearTimers();
    if (wasUp && session !== undefined && this.sessionID !== undefined) {
      try {
        await session.request(
          {
            name: 'StopApplicationSession',
            sessionID: this.sessionID,
            sessionEndReason: { definedEndReason: 'normal' },
          },
          { timeoutMs: 2000 },
        );
      } catch (e) {
        this.log.debug(`csta: StopApplicationSession: ${(e as Error).message}`);
      }
    }
    this.generation++;
    this.dropSocket('link stopped');
    if (wasUp) this.emit('down', { reason: 'link stopped', wasUp: true, retryInMs: undefined });
  }

  private connectOnce(): void {
    const generation = ++this.generation;
    this.stateValue = 'connecting';
    this.gotSystemStatus = false;
    this.lastSystemStatus = undefined;
    this.sessionID = undefined;
    const { host, port } = this.options;
    const socket = connect({ host, port });
    socket.setNoDelay(true);
    this.socket = socket;
    const connectTimer = this.timer(this.options.connectTimeoutMs ?? 10_000, () =>
      this.fail(
        generation,
        `no TCP connection to ${host}:${port} within ${this.options.connectTimeoutMs ?? 10_000} ms`,
      ),
    );
    const { session, closed } = attachSession(
      socket,
      {
        edition: this.options.edition ?? 'ed4',
        adoptPeerNamespace: this.options.adoptPeerNamespace ?? true,
        ...(this.options.requestTimeoutMs === undefined
          ? {}
          : { requestTimeoutMs: this.options.requestTimeoutMs }),
        ...(this.options.maxFrameBytes === undefined ? {} : { maxFrameBytes: this.options.maxFrameBytes }),
        onRequest: (request) => this.onPeerRequest(request),
      },
      this.log,
    );
    this.current = session;
    session.on('event', (message, invokeId) => {
      if (message.name === 'ApplicationSessionTerminated') {
        this.fail(
          generation,
          `application session terminated by the server: ${JSON.stringify(message.sessionTermReason)}`,
        );
        return;
      }
      this.emit('event', message, invokeId);
    });
    session.on('sent', (invokeId, message) => this.emit('sent', invokeId, message));
    session.on('received', (invokeId, root, message) => this.emit('received', invokeId, root, message));
    void closed.then((reason) => this.fail(generation, reason));
    socket.once('connect', () => {
      this.clearTimer(connectTimer);
      if (generation !== this.generation) return;
      this.stateValue = 'handshake';
      this.handshake(generation, session).catch((e: Error) =>
        this.fail(generation, `handshake failed: ${e.message}`),
      );
    });
  }

  private async handshake(generation: number, session: CstaSession): Promise<void> {
    const o = this.options;
    if (o.applicationSession !== undefined) {
      const edition = o.edition ?? 'ed4';
      const app = o.applicationSession;
      const pos = await session.request({
        name: 'StartApplicationSession',
        applicationInfo: {
          applicationID: app.applicationID,
          ...(app.applicationSpecificInfo === undefined
            ? {}
            : { applicationSpecificInfo: app.applicationSpecificInfo }),
        },
        requestedProtocolVersions: { protocolVersion: app.protocolVersions ?? [EDITION_NAMESPACES[edition]] },
        requestedSessionDuration: app.requestedSessionDurationS ?? 180,
      });
      if (generation !== this.generation) return;
      this.sessionID = pos.sessionID;
      const agreed = editionOf(pos.actualProtocolVersion);
      if (agreed !== undefined) {
        session.ns = pos.actualProtocolVersion;
        session.edition = agreed;
      }
      const durationS = pos.actualSessionDuration ?? app.requestedSessionDurationS ?? 180;
      this.scheduleSessionReset(generation, session, pos.sessionID, durationS);
    }
    const waitMs = o.awaitSystemStatusMs ?? 1000;
    if (!this.gotSystemStatus && waitMs > 0) {
      await new Promise<void>((resolve) => {
        const t = this.timer(waitMs, () => {
          this.systemStatusSeen = undefined;
          resolve();
        });
        this.systemStatusSeen = () => {
          this.clearTimer(t);
          this.systemStatusSeen = undefined;
          resolve();
        };
      });
      if (generation !== this.generation) return;
    }
    let sysStatRegisterID: string | undefined;
    if (o.systemRegister ?? true) {
      const reg = await session.request({
        name: 'SystemRegister',
        requestTypes: { systemStatus: true, requestSystemStatus: false },
      });
      if (generation !== this.generation) return;
      sysStatRegisterID = reg.sysStatRegisterID;
    }
    this.stateValue = 'up';
    this.attempt = 0;
    this.scheduleKeepAlive(generation, session, 0);
    this.emit('up', {
      systemStatus: this.lastSystemStatus,
      sysStatRegisterID,
      sessionID: this.sessionID,
      ns: session.ns,
    });
  }

  private scheduleKeepAlive(generation: number, session: CstaSession, missed: number): void {
    const interval = this.options.keepAliveIntervalMs ?? 30_000;
    if (interval <= 0) return;
    this.timer(interval, () => {
      if (generation !== this.generation) return;
      const timeoutMs = this.options.keepAliveTimeoutMs ?? 10_000;
      session.request({ name: 'RequestSystemStatus' }, { timeoutMs }).then(
        (response) => {
          if (response.systemStatus !== 'normal')
            this.log.info(`csta: PBX system status ${response.systemStatus}`);
          this.scheduleKeepAlive(generation, session, 0);
        },
        (e: Error) => {
          if (generation !== this.generation) return;
          const max = this.options.maxMissedKeepAlives ?? 1;
          this.log.warn(`csta: keep-alive ${missed + 1}/${max} failed: ${e.message}`);
          if (missed + 1 >= max) this.fail(generation, `keep-alive failed: ${e.message}`);
          else this.scheduleKeepAlive(generation, session, missed + 1);
        },
      );
    });
  }

  private scheduleSessionReset(
    generation: number,
    session: CstaSession,
    sessionID: string,
    durationS: number,
  ): void {
    // Renew at half the granted duration, well before the server lets it expire.
    this.timer(Math.max(1000, (durationS * 1000) / 2), () => {
      if (generation !== this.generation) return;
      const requested = this.options.applicationSession?.requestedSessionDurationS ?? durationS;
      session
        .request({ name: 'ResetApplicationSessionTimer', sessionID, requestedSessionDuration: requested })
        .then(
          (r) => this.scheduleSessionReset(generation, session, sessionID, r.actualSessionDuration),
          (e: Error) => this.fail(generation, `application session reset failed: ${e.message}`),
        );
    });
  }

  private onPeerRequest(request: IncomingRequest): void {
    const message = request.message!;
    if (message.name === 'SystemStatus') {
      request.reply({ name: 'SystemStatusResponse' });
      this.lastSystemStatus = message.systemStatus ?? this.lastSystemStatus;
      this.gotSystemStatus = true;
      this.systemStatusSeen?.();
      return;
    }
    if (this.listenerCount('request') === 0) {
      request.fail({ operation: 'serviceNotSupported' });
      return;
    }
    this.emit('request', request);
  }

  private fail(generation: number, reason: string): void {
    if (generation !== this.generation || this.stateValue === 'stopped') return;
    const wasUp = this.stateValue === 'up';
    this.generation++;
    this.clearTimers();
    this.dropSocket(reason);
    let retryInMs: number | undefined;
    if (this.backoff === undefined) {
      this.stateValue = 'stopped';
    } else {
      retryInMs = backoffDelay(this.attempt++, this.backoff, this.options.random);
      this.stateValue = 'waiting';
      this.timer(retryInMs, () => this.connectOnce());
    }
    this.log.warn(
      `csta: link to ${this.options.host}:${this.options.port} ${wasUp ? 'down' : 'attempt failed'}: ${reason}${retryInMs === undefined ? '' : `; retry in ${retryInMs} ms`}`,
    );
    this.emit('down', { reason, wasUp, retryInMs });
  }

  private dropSocket(reason: string): void {
    this.current?.close(reason);
    this.current = undefined;
    this.socket?.destroy();
    this.socket = undefined;
    this.systemStatusSeen = undefined;
  }

  private timer(ms: number, fn: () => void): NodeJS.Timeout {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
    return t;
  }

  private clearTimer(t: NodeJS.Timeout): void {
    clearTimeout(t);
    this.timers.delete(t);
  }

  private clearTimers(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}
