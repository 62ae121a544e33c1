/**
 * The SIP stack: transports below, transactions in the middle, one transaction user (the PBX) above.
 * It does the RFC 3261 work every UA and B2BUA needs: Via received/rport (§18.2.1, RFC 3581),
 * response routing (§18.2.2), transaction matching (§17.1.3, §17.2.3), CANCEL (§9.2), OPTIONS (§11),
 * unknown methods, schemes and extensions (§8.2.1-§8.2.2), and 400s for unparseable requests.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { createResponse, type SipMessage, type SipRequest, SipResponse } from './message.ts';
import type { SipMessageError } from './parser.ts';
import { randomHex } from './random.ts';
import {
  type ClientTransaction,
  type ClientTransactionUser,
  clientTransactionKey,
  DEFAULT_TIMERS,
  InviteClientTransaction,
  InviteServerTransaction,
  MAGIC_COOKIE,
  NonInviteClientTransaction,
  NonInviteServerTransaction,
  type ServerTransaction,
  type ServerTransactionUser,
  serverTransactionKey,
  type TimerValues,
} from './transaction.ts';
import type { Endpoint, SipTransport, TransportProtocol } from './transport.ts';
import { bareHost, isSipUri, parseNameAddr, type Uri, uriHost } from './uri.ts';

export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const SILENT_LOGGER: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** §17.2.1: an INVITE the TU has not answered within this time gets a 100 (Trying) from the stack. */
export const TRYING_DELAY_MS = 200;

/** Methods this stack knows. Known but not allowed -> 405; unknown -> 501 (§8.2.1). */
const KNOWN_METHODS = new Set([
  'INVITE',
  'ACK',
  'CANCEL',
  'BYE',
  'OPTIONS',
  'REGISTER',
  'SUBSCRIBE',
  'NOTIFY',
  'PUBLISH',
  'MESSAGE',
  'REFER',
  'INFO',
  'UPDATE',
  'PRACK',
]);

export interface StackOptions {
  transports: SipTransport[];
  /** Host written into Via and Contact headers: an address peers can reach. */
  advertisedHost?: string;
  timers?: TimerValues;
  logger?: Logger;
  /** Methods the TU handles (Allow header); the rest of KNOWN_METHODS get 405. */
  allow?: string[];
  /** Option tags we support (Require with anything else gets 420). */
  supported?: string[];
  userAgent?: string;
}

export interface StackHandlers {
  /** A new request (not ACK, not CANCEL) with its server transaction. */
  onRequest?(request: SipRequest, tx: ServerTransaction, source: Endpoint): void;
  /** An ACK that matched no transaction: the ACK for a 2xx, for the dialog layer. */
  onAck?(ack: SipRequest, source: Endpoint): void;
  /** A CANCEL matched a pending INVITE; the stack has answered the CANCEL with 200. */
  onCancel?(invite: InviteServerTransaction, cancel: SipRequest): void;
  /** A response no client transaction matched (e.g. a 2xx retransmitted after Timer M). */
  onStrayResponse?(response: SipResponse, source: Endpoint): void;
}

export function newBranch(): string {
  return `${MAGIC_COOKIE}${randomHex(8)}`;
}

export class SipStack {
  readonly transports: SipTransport[];
  readonly timers: TimerValues;
  readonly logger: Logger;
  readonly allow: string[];
  readonly supported: string[];
  readonly advertisedHost: string;
  handlers: StackHandlers = {};
  private readonly serverTransactions = new Map<string, ServerTransaction>();
  private readonly clientTransactions = new Map<string, ClientTransaction>();
  private readonly userAgent: string;
  private closed = false;

  constructor(options: StackOptions) {
    this.transports = options.transports;
    this.timers = options.timers ?? DEFAULT_TIMERS;
    this.logger = options.logger ?? SILENT_LOGGER;
    this.allow = options.allow ?? ['INVITE', 'ACK', 'CANCEL', 'BYE', 'OPTIONS'];
    this.supported = options.supported ?? [];
    this.userAgent = options.userAgent ?? 'Switchboard';
    const first = this.transports[0];
    this.advertisedHost = options.advertisedHost ?? first?.local.address ?? '127.0.0.1';
    for (const t of this.transports) {
      t.on('message', (m, source) => this.safely(() => this.receive(m, source, t)));
      t.on('parseError', (e, source) => this.safely(() => this.receiveParseError(e, source, t)));
      t.on('error', (e) => this.logger.error({ err: e.message, protocol: t.protocol }, 'transport error'));
    }
  }

  private safely(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.logger.error(
        { err: e instanceof Error ? (e.stack ?? e.message) : String(e) },
        'error handling a SIP message',
      );
    }
  }

  get transactionCount(): { server: number; client: number } {
    return { server: this.serverTransactions.size, client: this.clientTransactions.size };
  }

  transport(protocol: TransportProtocol): SipTransport | undefined {
    return this.transports.find((t) => t.protocol === protocol);
  }

  /** Contact header value for this stack on a transport. */
  contact(user: string, protocol: TransportProtocol = 'UDP'): string {
    const t = this.transport(protocol) ?? this.transports[0]!;
    const transportParam = protocol === 'UDP' ? '' : `;transport=${protocol.toLowerCase()}`;
    const userPart = user === '' ? '' : `${user}@`;
    return `<sip:${userPart}${uriHost(this.advertisedHost)}:${t.local.port}${transportParam}>`;
  }

  /** Own addresses (for recognising requests addressed to this server). */
  get localAddresses(): Array<{ host: string; port: number }> {
    return this.transports.map((t) => ({ host: bareHost(this.advertisedHost), port: t.local.port }));
  }

  // ---- incoming -------------------------------------------------------------------------------

  private receive(message: SipMessage, source: Endpoint, transport: SipTransport): void {
    if (this.closed) return;
    if (message instanceof SipResponse) {
      this.receiveResponse(message, source);
      return;
    }
    this.receiveRequest(message, source, transport);
  }

  private receiveParseError(error: SipMessageError, source: Endpoint, transport: SipTransport): void {
    const partial = error.partial;
    if (partial === undefined || !partial.isRequest || partial.method === 'ACK') {
      this.logger.warn(
        { err: error.message, from: `${source.address}:${source.port}` },
        'unparseable SIP message dropped',
      );
      return;
    }
    // answer with the headers that identify the request; it goes straight back to the source
    const response = new SipResponse(error.status, reasonFor(error.status, error.message));
    for (const h of partial.headers) {
      if (['Via', 'From', 'To', 'Call-ID', 'CSeq'].includes(h.name)) response.headers.push({ ...h });
    }
    if (!response.has('Via')) {
      this.logger.warn(
        { err: error.message, from: `${source.address}:${source.port}` },
        'bad request without Via dropped',
      );
      return;
    }
    this.logger.info(
      { err: error.message, status: error.status, from: `${source.address}:${source.port}` },
      'bad SIP request',
    );
    transport
      .send(response.serialize(), source)
      .catch((e: unknown) => this.logger.warn({ err: String(e) }, 'send failed'));
  }

  private receiveRequest(request: SipRequest, source: Endpoint, transport: SipTransport): void {
    // §18.2.1 and RFC 3581: record where the request really came from
    const via = request.via;
    if (via.params.has('rport')) {
      via.params.set('rport', String(source.port));
      via.params.set('received', source.address);
      request.setTopVia(via);
    } else if (bareHost(via.host) !== source.address) {
      via.params.set('received', source.address);
      request.setTopVia(via);
    }

    const key = serverTransactionKey(request);
    const existing = this.serverTransactions.get(key);
    if (existing !== undefined) {
      existing.receiveRequest(request);
      return;
    }
    if (request.method === 'ACK') {
      this.handlers.onAck?.(request, source);
      return;
    }
    const tx = this.createServerTransaction(request, source, transport, {});
    if (request.method === 'CANCEL') {
      this.receiveCancel(request, tx);
      return;
    }
    try {
      this.dispatchRequest(request, tx, source);
    } finally {
      // §17.2.1: the 100 is for an INVITE whose answer takes time. One answered at once (a 407 digest
      // challenge, a 404) needs none, and one whose callee rings within 200 ms gets its 180 instead:
      // the 100 goes out when the TU has sent nothing for 200 ms (one datagram less per call)
      if (request.method === 'INVITE' && tx instanceof InviteServerTransaction)
        tx.tryingAfter(TRYING_DELAY_MS);
    }
  }

  private dispatchRequest(request: SipRequest, tx: ServerTransaction, source: Endpoint): void {
    if (!isSipUri(request.uri)) {
      tx.respond(this.withAllow(createResponse(request, 416)));
      return;
    }
    const unsupported = request
      .getAll('Require')
      .map((o) => o.trim())
      .filter((o) => o !== '' && !this.supported.includes(o));
    if (unsupported.length > 0 && request.method !== 'CANCEL') {
      const r = createResponse(request, 420);
      r.append('Unsupported', unsupported.join(', '));
      tx.respond(r);
      return;
    }
    if (!this.allow.includes(request.method)) {
      const status = KNOWN_METHODS.has(request.method) ? 405 : 501;
      tx.respond(this.withAllow(createResponse(request, status)));
      return;
    }
    if (request.method === 'OPTIONS' && this.handlers.onRequest === undefined) {
      tx.respond(this.optionsResponse(request));
      return;
    }
    if (this.handlers.onRequest === undefined) {
      tx.reply(503);
      return;
    }
    this.handlers.onRequest(request, tx, source);
  }

  /** 200 to OPTIONS with our capabilities (§11.2). */
  optionsResponse(request: SipRequest, toTag?: string): SipResponse {
    const r = this.withAllow(createResponse(request, 200, undefined, toTag));
    r.append('Accept', 'application/sdp');
    if (this.supported.length > 0) r.append('Supported', this.supported.join(', '));
    return r;
  }

  withAllow(response: SipResponse): SipResponse {
    response.append('Allow', this.allow.join(', '));
    response.append('Server', this.userAgent);
    return response;
  }

  private receiveCancel(cancel: SipRequest, tx: ServerTransaction): void {
    // §9.2: the CANCEL matches the INVITE with the same branch and sent-by
    const inviteKey = serverTransactionKey(cancel, 'INVITE');
    const invite = this.serverTransactions.get(inviteKey);
    if (!(invite instanceof InviteServerTransaction)) {
      tx.reply(481);
      return;
    }
    tx.reply(200);
    if (invite.state === 'proceeding') this.handlers.onCancel?.(invite, cancel);
  }

  private receiveResponse(response: SipResponse, source: Endpoint): void {
    let key: string;
    try {
      key = clientTransactionKey(response);
    } catch {
      this.logger.warn({ from: `${source.address}:${source.port}` }, 'response without usable Via dropped');
      return;
    }
    const tx = this.clientTransactions.get(key);
    if (tx !== undefined) {
      tx.receiveResponse(response);
      return;
    }
    if (this.handlers.onStrayResponse !== undefined) this.handlers.onStrayResponse(response, source);
    else
      this.logger.debug(
        { status: response.status, callId: response.get('Call-ID') },
        'stray response dropped',
      );
  }

  private createServerTransaction(
    request: SipRequest,
    source: Endpoint,
    transport: SipTransport,
    tu: ServerTransactionUser,
  ): ServerTransaction {
    const key = serverTransactionKey(request);
    const send = (m: SipRequest | SipResponse) => this.sendResponse(m as SipResponse, source, transport);
    const tx =
      request.method === 'INVITE'
        ? new InviteServerTransaction(key, request, send, transport.reliable, this.timers, tu)
        : new NonInviteServerTransaction(key, request, send, transport.reliable, this.timers, tu);
    this.serverTransactions.set(key, tx);
    tx.onTerminated = () => {
      if (this.serverTransactions.get(key) === tx) this.serverTransactions.delete(key);
    };
    return tx;
  }

  /** §18.2.2: back on the connection while it is open; over UDP to received/rport or sent-by. */
  private async sendResponse(
    response: SipResponse,
    source: Endpoint,
    transport: SipTransport,
  ): Promise<void> {
    if (!response.has('Server')) response.append('Server', this.userAgent);
    if (transport.reliable) {
      await transport.send(response.serialize(), source);
      return;
    }
    const via = response.via;
    const received = via.params.get('received');
    const rport = via.params.get('rport');
    const address = typeof received === 'string' ? received.replace(/^\[|\]$/g, '') : bareHost(via.host);
    const port = typeof rport === 'string' ? Number(rport) : (via.port ?? 5060);
    await transport.send(response.serialize(), { protocol: transport.protocol, address, port });
  }

  // ---- outgoing -------------------------------------------------------------------------------

  /** Where a request goes (§8.1.2, RFC 3263 without SRV/NAPTR): first loose Route, else Request-URI. */
  async resolve(request: SipRequest): Promise<Endpoint> {
    let target: Uri = request.uri;
    const route = request.getAll('Route')[0];
    if (route !== undefined) {
      const r = parseNameAddr(route).uri;
      if (isSipUri(r) && r.params.has('lr')) target = r;
    }
    if (!isSipUri(target)) throw new Error(`cannot route to ${target.scheme} URI`);
    const transportParam = target.params.get('transport');
    const protocol: TransportProtocol =
      typeof transportParam === 'string' && transportParam.toLowerCase() === 'tcp' ? 'TCP' : 'UDP';
    const maddr = target.params.get('maddr');
    let host = bareHost(typeof maddr === 'string' ? maddr : target.host);
    if (isIP(host) === 0) host = (await lookup(host, { family: 4 })).address;
    return { protocol, address: host, port: target.port ?? (target.scheme === 'sips' ? 5061 : 5060) };
  }

  /**
   * Sends a request through a new client transaction. A top Via with a fresh branch and rport is
   * added. `destination` overrides resolution (e.g. the flow a phone registered over).
   */
  sendRequest(request: SipRequest, tu: ClientTransactionUser, destination?: Endpoint): ClientTransaction {
    const dest = destination !== undefined ? Promise.resolve(destination) : this.resolve(request);
    dest.catch(() => undefined);
    const protocolHint = destination?.protocol ?? this.protocolOf(request);
    const transport = this.transport(protocolHint) ?? this.transports[0]!;
    if (request.method !== 'CANCEL' || !request.has('Via')) this.addVia(request, transport);
    if (!request.has('Max-Forwards')) request.append('Max-Forwards', '70');
    if (!request.has('User-Agent')) request.append('User-Agent', this.userAgent);
    const key = clientTransactionKey(request);
    const send = async (m: SipRequest | SipResponse) => {
      const d = await dest;
      const t = this.transport(d.protocol) ?? transport;
      await t.send(m.serialize(), d);
    };
    const tx =
      request.method === 'INVITE'
        ? new InviteClientTransaction(key, request, send, transport.reliable, this.timers, tu)
        : new NonInviteClientTransaction(key, request, send, transport.reliable, this.timers, tu);
    this.clientTransactions.set(key, tx);
    tx.onTerminated = () => {
      if (this.clientTransactions.get(key) === tx) this.clientTransactions.delete(key);
    };
    tx.start();
    return tx;
  }

  /** Sends a CANCEL for a pending INVITE client transaction (§9.1) in its own transaction. */
  cancel(
    invite: InviteClientTransaction,
    tu: ClientTransactionUser,
    destination?: Endpoint,
  ): ClientTransaction | undefined {
    if (invite.state !== 'proceeding' && invite.state !== 'calling') return undefined;
    return this.sendRequest(invite.cancelRequest(), tu, destination);
  }

  /** Sends a request outside any transaction (the ACK for a 2xx, §13.2.2.4), with a new branch. */
  async sendStateless(request: SipRequest, destination?: Endpoint): Promise<void> {
    const d = destination ?? (await this.resolve(request));
    const transport = this.transport(d.protocol) ?? this.transports[0]!;
    if (!request.has('Via')) this.addVia(request, transport);
    await transport.send(request.serialize(), d);
  }

  /** Retransmits a 2xx to INVITE over UDP until stopped (ACK) or 64*T1 (§13.3.1.4). */
  retransmit2xx(tx: ServerTransaction, response: SipResponse, onNoAck: () => void): { stop(): void } {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let stopped = false;
    const transport = this.transports.find((t) => !t.reliable);
    const started = this.timers.T1 * 64;
    let elapsed = 0;
    if (this.isReliable(tx)) {
      timer = setTimeout(() => {
        if (!stopped) onNoAck();
      }, started);
    } else {
      const step = (interval: number) => {
        timer = setTimeout(() => {
          if (stopped) return;
          elapsed += interval;
          if (elapsed >= started) {
            stopped = true;
            onNoAck();
            return;
          }
          if (transport !== undefined) {
            const via = response.via;
            const received = via.params.get('received');
            const rport = via.params.get('rport');
            const address = typeof received === 'string' ? received : bareHost(via.host);
            const port = typeof rport === 'string' ? Number(rport) : (via.port ?? 5060);
            transport.send(response.serialize(), { protocol: 'UDP', address, port }).catch(() => undefined);
          }
          step(Math.min(interval * 2, this.timers.T2));
        }, interval);
      };
      step(this.timers.T1);
    }
    return {
      stop() {
        stopped = true;
        if (timer !== undefined) clearTimeout(timer);
      },
    };
  }

  private isReliable(tx: ServerTransaction): boolean {
    return tx.request.via.transport !== 'UDP';
  }

  private protocolOf(request: SipRequest): TransportProtocol {
    const uri = request.uri;
    if (isSipUri(uri)) {
      const t = uri.params.get('transport');
      if (typeof t === 'string' && t.toLowerCase() === 'tcp') return 'TCP';
    }
    return 'UDP';
  }

  private addVia(request: SipRequest, transport: SipTransport): void {
    request.prepend(
      'Via',
      `SIP/2.0/${transport.protocol} ${uriHost(this.advertisedHost)}:${transport.local.port};branch=${newBranch()};rport`,
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const tx of [...this.serverTransactions.values(), ...this.clientTransactions.values()])
      tx.terminate();
    await Promise.all(this.transports.map((t) => t.close()));
  }
}

function reasonFor(status: number, detail: string): string {
  const base: Record<number, string> = {
    400: 'Bad Request',
    413: 'Request Entity Too Large',
    414: 'Request-URI Too Long',
    505: 'Version Not Supported',
    513: 'Message Too Large',
  };
  // the reason phrase carries the parser's finding, limited to safe characters
  const safe = detail.replace(/[^\x20-\x7e]/g, '').slice(0, 80);
  return `${base[status] ?? 'Bad Request'} (${safe})`;
}
