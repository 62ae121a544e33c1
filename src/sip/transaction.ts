/**
 * The four transaction state machines of RFC 3261 §17, with the RFC 6026 "Accepted" state for INVITE
 * (a 2xx ends neither side's transaction at once: retransmitted INVITEs are absorbed and retransmitted
 * 2xx responses still reach the TU). Timers carry the RFC letters. Timers run on setTimeout, so tests
 * drive them with node:test mock timers.
 */
import { createResponse, SipRequest, type SipResponse } from './message.ts';

export interface TimerValues {
  /** RTT estimate (500 ms). */
  T1: number;
  /** Maximum retransmit interval for non-INVITE requests and INVITE responses (4 s). */
  T2: number;
  /** Maximum time a message stays in the network (5 s). */
  T4: number;
  /** Timer D: wait for response retransmissions over UDP (RFC 3261: at least 32 s; not derived from T1). */
  D?: number;
}

export const DEFAULT_TIMERS: Readonly<TimerValues> = Object.freeze({ T1: 500, T2: 4000, T4: 5000 });

export type TransactionState =
  | 'calling'
  | 'trying'
  | 'proceeding'
  | 'completed'
  | 'confirmed'
  | 'accepted'
  | 'terminated';

/** Sends bytes of a message towards the peer; failures are reported through the promise. */
export type Sender = (message: SipRequest | SipResponse) => Promise<void>;

export interface ClientTransactionUser {
  onResponse(response: SipResponse, tx: ClientTransaction): void;
  /** Timer B or F fired: the TU treats this as a 408 (§8.1.3.1). */
  onTimeout(tx: ClientTransaction): void;
  onTransportError(tx: ClientTransaction, error: Error): void;
}

export interface ServerTransactionUser {
  /** Timer H fired: no ACK came for a final non-2xx response. */
  onTimeout?(tx: ServerTransaction): void;
  onTransportError?(tx: ServerTransaction, error: Error): void;
}

type Timer = ReturnType<typeof setTimeout>;

abstract class Transaction {
  state: TransactionState;
  readonly request: SipRequest;
  readonly id: string;
  protected readonly reliable: boolean;
  protected readonly send: Sender;
  protected readonly timers: TimerValues;
  private readonly handles = new Map<string, Timer>();
  /** Called once when the transaction reaches Terminated (the stack removes it from its table). */
  onTerminated: (() => void) | undefined;

  constructor(
    id: string,
    request: SipRequest,
    send: Sender,
    reliable: boolean,
    timers: TimerValues,
    initial: TransactionState,
  ) {
    this.id = id;
    this.request = request;
    this.send = send;
    this.reliable = reliable;
    this.timers = timers;
    this.state = initial;
  }

  protected startTimer(name: string, ms: number, fire: () => void): void {
    this.stopTimer(name);
    this.handles.set(
      name,
      setTimeout(() => {
        this.handles.delete(name);
        if (this.state !== 'terminated') fire();
      }, ms),
    );
  }

  protected stopTimer(name: string): void {
    const h = this.handles.get(name);
    if (h !== undefined) clearTimeout(h);
    this.handles.delete(name);
  }

  /** Names of running timers (for tests and diagnostics). */
  get runningTimers(): string[] {
    return [...this.handles.keys()].sort();
  }

  protected transmit(message: SipRequest | SipResponse): void {
    this.send(message).catch((e: unknown) =>
      this.transportError(e instanceof Error ? e : new Error(String(e))),
    );
  }

  protected abstract transportError(error: Error): void;

  terminate(): void {
    if (this.state === 'terminated') return;
    this.state = 'terminated';
    for (const h of this.handles.values()) clearTimeout(h);
    this.handles.clear();
    this.onTerminated?.();
  }
}

export abstract class ClientTransaction extends Transaction {
  protected readonly tu: ClientTransactionUser;

  constructor(
    id: string,
    request: SipRequest,
    send: Sender,
    reliable: boolean,
    timers: TimerValues,
    initial: TransactionState,
    tu: ClientTransactionUser,
  ) {
    super(id, request, send, reliable, timers, initial);
    this.tu = tu;
  }

  abstract start(): void;
  abstract receiveResponse(response: SipResponse): void;

  protected transportError(error: Error): void {
    if (this.state === 'terminated') return;
    this.terminate();
    this.tu.onTransportError(this, error);
  }
}

/** §17.1.1 INVITE client transaction (with RFC 6026 Accepted state and Timer M). */
export class InviteClientTransaction extends ClientTransaction {
  constructor(
    id: string,
    request: SipRequest,
    send: Sender,
    reliable: boolean,
    timers: TimerValues,
    tu: ClientTransactionUser,
  ) {
    super(id, request, send, reliable, timers, 'calling', tu);
  }

  start(): void {
    this.transmit(this.request);
    if (!this.reliable) this.scheduleA(this.timers.T1);
    this.startTimer('B', 64 * this.timers.T1, () => {
      this.terminate();
      this.tu.onTimeout(this);
    });
  }

  private scheduleA(interval: number): void {
    this.startTimer('A', interval, () => {
      if (this.state !== 'calling') return;
      this.transmit(this.request);
      this.scheduleA(interval * 2);
    });
  }

  receiveResponse(response: SipResponse): void {
    const code = response.status;
    switch (this.state) {
      case 'calling':
      case 'proceeding':
        if (code < 200) {
          this.state = 'proceeding';
          this.stopTimer('A');
          this.tu.onResponse(response, this);
        } else if (code < 300) {
          this.state = 'accepted';
          this.stopTimer('A');
          this.stopTimer('B');
          this.startTimer('M', 64 * this.timers.T1, () => this.terminate());
          this.tu.onResponse(response, this);
        } else {
          this.state = 'completed';
          this.stopTimer('A');
          this.stopTimer('B');
          this.transmit(this.ackFor(response));
          this.startTimer('D', this.reliable ? 0 : (this.timers.D ?? 32_000), () => this.terminate());
          this.tu.onResponse(response, this);
        }
        return;
      case 'accepted':
        // retransmitted or forked 2xx: the TU (dialog layer) ACKs it
        if (code >= 200 && code < 300) this.tu.onResponse(response, this);
        return;
      case 'completed':
        if (code >= 300) this.transmit(this.ackFor(response));
        return;
      default:
        return;
    }
  }

  /** §17.1.1.3: the ACK for a non-2xx final response belongs to the transaction. */
  ackFor(response: SipResponse): SipRequest {
    const r = this.request;
    const ack = new SipRequest('ACK', r.uri);
    ack.append('Via', r.getAll('Via')[0]!);
    for (const name of ['Route']) for (const v of r.getAll(name)) ack.append(name, v);
    ack.append('From', r.get('From')!);
    ack.append('To', response.get('To')!);
    ack.append('Call-ID', r.get('Call-ID')!);
    ack.append('CSeq', `${r.cseq.seq} ACK`);
    ack.append('Max-Forwards', '70');
    return ack;
  }

  /** CANCEL for this INVITE (§9.1): same Request-URI, top Via, Call-ID, From, To, CSeq number, Route. */
  cancelRequest(): SipRequest {
    const r = this.request;
    const cancel = new SipRequest('CANCEL', r.uri);
    cancel.append('Via', r.getAll('Via')[0]!);
    for (const v of r.getAll('Route')) cancel.append('Route', v);
    cancel.append('From', r.get('From')!);
    cancel.append('To', r.get('To')!);
    cancel.append('Call-ID', r.get('Call-ID')!);
    cancel.append('CSeq', `${r.cseq.seq} CANCEL`);
    cancel.append('Max-Forwards', '70');
    return cancel;
  }
}

/** §17.1.2 non-INVITE client transaction. */
export class NonInviteClientTransaction extends ClientTransaction {
  constructor(
    id: string,
    request: SipRequest,
    send: Sender,
    reliable: boolean,
    timers: TimerValues,
    tu: ClientTransactionUser,
  ) {
    super(id, request, send, reliable, timers, 'trying', tu);
  }

  start(): void {
    this.transmit(this.request);
    if (!this.reliable) this.scheduleE(this.timers.T1);
    this.startTimer('F', 64 * this.timers.T1, () => {
      this.terminate();
      this.tu.onTimeout(this);
    });
  }

  private scheduleE(interval: number): void {
    this.startTimer('E', interval, () => {
      if (this.state !== 'trying' && this.state !== 'proceeding') return;
      this.transmit(this.request);
      const next = this.state === 'proceeding' ? this.timers.T2 : Math.min(interval * 2, this.timers.T2);
      this.scheduleE(next);
    });
  }

  receiveResponse(response: SipResponse): void {
    if (this.state !== 'trying' && this.state !== 'proceeding') return;
    if (response.status < 200) {
      this.state = 'proceeding';
      this.tu.onResponse(response, this);
      return;
    }
    this.state = 'completed';
    this.stopTimer('E');
    this.stopTimer('F');
    this.startTimer('K', this.reliable ? 0 : this.timers.T4, () => this.terminate());
    this.tu.onResponse(response, this);
  }
}

export abstract class ServerTransaction extends Transaction {
  protected lastResponse: SipResponse | undefined;
  protected readonly tu: ServerTransactionUser;

  constructor(
    id: string,
    request: SipRequest,
    send: Sender,
    reliable: boolean,
    timers: TimerValues,
    initial: TransactionState,
    tu: ServerTransactionUser,
  ) {
    super(id, request, send, reliable, timers, initial);
    this.tu = tu;
  }

  /** The final response sent, if any. */
  get finalResponse(): SipResponse | undefined {
    return this.lastResponse !== undefined && this.lastResponse.status >= 200 ? this.lastResponse : undefined;
  }

  /** Sends a response built from the request (convenience for `respond(createResponse(...))`). */
  reply(status: number, reason?: string, toTag?: string): SipResponse {
    const response = createResponse(this.request, status, reason, toTag);
    this.respond(response);
    return response;
  }

  abstract respond(response: SipResponse): void;
  /** A retransmission of the request (or, for INVITE, an ACK) matched this transaction. */
  abstract receiveRequest(request: SipRequest): void;

  protected transportError(error: Error): void {
    if (this.state === 'terminated') return;
    this.terminate();
    this.tu.onTransportError?.(this, error);
  }
}

/** §17.2.1 INVITE server transaction (with RFC 6026 Accepted state and Timer L). */
export class InviteServerTransaction extends ServerTransaction {
  /** Called when the ACK for a non-2xx final response arrives. */
  onAck: ((ack: SipRequest) => void) | undefined;

  constructor(
    id: string,
    request: SipRequest,
    send: Sender,
    reliable: boolean,
    timers: TimerValues,
    tu: ServerTransactionUser,
  ) {
    super(id, request, send, reliable, timers, 'proceeding', tu);
  }

  /** Sends a 100 after `ms` unless the TU has responded by then (§17.2.1). */
  tryingAfter(ms: number): void {
    if (this.state !== 'proceeding' || this.lastResponse !== undefined) return;
    this.startTimer('Trying', ms, () => {
      if (this.state === 'proceeding' && this.lastResponse === undefined) this.reply(100);
    });
  }

  respond(response: SipResponse): void {
    if (this.state !== 'proceeding') return;
    if (this.lastResponse === undefined) this.stopTimer('Trying');
    this.lastResponse = response;
    this.transmit(response);
    const code = response.status;
    if (code < 200) return;
    if (code < 300) {
      this.state = 'accepted';
      this.startTimer('L', 64 * this.timers.T1, () => this.terminate());
      return;
    }
    this.state = 'completed';
    if (!this.reliable) this.scheduleG(this.timers.T1);
    this.startTimer('H', 64 * this.timers.T1, () => {
      this.terminate();
      this.tu.onTimeout?.(this);
    });
  }

  private scheduleG(interval: number): void {
    this.startTimer('G', interval, () => {
      if (this.state !== 'completed' || this.lastResponse === undefined) return;
      this.transmit(this.lastResponse);
      this.scheduleG(Math.min(interval * 2, this.timers.T2));
    });
  }

  receiveRequest(request: SipRequest): void {
    if (request.method === 'ACK') {
      if (this.state === 'completed') {
        this.state = 'confirmed';
        this.stopTimer('G');
        this.stopTimer('H');
        this.startTimer('I', this.reliable ? 0 : this.timers.T4, () => this.terminate());
        this.onAck?.(request);
      }
      return;
    }
    // a retransmitted INVITE: resend the last response (proceeding, completed); absorb in accepted
    if ((this.state === 'proceeding' || this.state === 'completed') && this.lastResponse !== undefined) {
      this.transmit(this.lastResponse);
    }
  }
}

/** §17.2.2 non-INVITE server transaction. */
export class NonInviteServerTransaction extends ServerTransaction {
  constructor(
    id: string,
    request: SipRequest,
    send: Sender,
    reliable: boolean,
    timers: TimerValues,
    tu: ServerTransactionUser,
  ) {
    super(id, request, send, reliable, timers, 'trying', tu);
  }

  respond(response: SipResponse): void {
    if (this.state !== 'trying' && this.state !== 'proceeding') return;
    this.lastResponse = response;
    this.transmit(response);
    if (response.status < 200) {
      this.state = 'proceeding';
      return;
    }
    this.state = 'completed';
    this.startTimer('J', this.reliable ? 0 : 64 * this.timers.T1, () => this.terminate());
  }

  receiveRequest(_request: SipRequest): void {
    if ((this.state === 'proceeding' || this.state === 'completed') && this.lastResponse !== undefined) {
      this.transmit(this.lastResponse);
    }
  }
}

/** RFC 3261 branches start with this cookie; without it, RFC 2543 matching applies (§17.2.3). */
export const MAGIC_COOKIE = 'z9hG4bK';

/** Key of the server transaction a request belongs to (§17.2.3); ACK maps to its INVITE. */
export function serverTransactionKey(request: SipRequest, asMethod: string = request.method): string {
  const via = request.via;
  const method = asMethod === 'ACK' ? 'INVITE' : asMethod;
  const branch = via.params.get('branch');
  const sentBy = `${via.host.toLowerCase()}:${via.port ?? ''}`;
  if (typeof branch === 'string' && branch.startsWith(MAGIC_COOKIE) && branch.length > MAGIC_COOKIE.length) {
    return `${branch}|${sentBy}|${method}`;
  }
  // RFC 2543 fallback: Request-URI, To tag, From tag, Call-ID, CSeq number, top Via
  const toTag =
    request.method === 'ACK' || request.method === 'CANCEL' ? '' : (request.to.params.get('tag') ?? '');
  return `2543|${request.callId}|${request.from.params.get('tag') ?? ''}|${toTag}|${request.cseq.seq}|${sentBy}|${method}`;
}

/** Key of the client transaction a response belongs to (§17.1.3). */
export function clientTransactionKey(message: SipRequest | SipResponse): string {
  return `${message.via.params.get('branch') ?? ''}|${message.cseq.method}`;
}
