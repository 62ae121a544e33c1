/**
 * One client-to-server connection (RFC 6120): stream negotiation (§4), STARTTLS (§5), SASL (§6),
 * resource binding (§7), the optional session element (RFC 3921 leftover, still sent by old clients),
 * stream errors and the closing handshake (§4.4, §4.9). Once bound, stanzas go to the Router.
 * Framing and I/O belong to a ClientTransport (TCP today: tcp-transport.ts).
 *
 * Nothing thrown by protocol handling leaves this class: errors become stream errors or stanza errors.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import type { SecureContext } from 'node:tls';
import type { Logger } from 'pino';
import { Element, escapeText, POST_AUTH_LIMITS, type XmlError } from '../xml/index.ts';
import { Jid, prepDomainpart, prepLocalpart, prepResourcepart, tryParseJid } from '../xmpp/jid.ts';
import { NS } from '../xmpp/ns.ts';
import {
  decodeBase64Strict,
  parsePlain,
  type SaslFailure,
  type SaslStep,
  SCRAM_MECHANISMS,
  ScramServer,
  verifyPassword,
} from '../xmpp/sasl.ts';
import { errorReply, iqResult, type StreamErrorCondition } from '../xmpp/stanza.ts';
import type { AddressRateLimiter } from './limits.ts';
import type { ClientSession, Router } from './router.ts';
import type { Store } from './store.ts';
import {
  type ClientTransport,
  type OutputLimits,
  TcpTransport,
  type TransportEvents,
} from './tcp-transport.ts';
export interface C2sContext {
  domain: string;
  router: Router;
  store: Store;
  log: Logger;
  secureContext: SecureContext | undefined;
  /** Authentication without TLS from a loopback address (config `allow_plain_loopback`). */
  allowPlainLoopback: boolean;
  /** Called once when the connection is gone (for connection bookkeeping). */
  onClose?: (connection: C2sConnection) => void;
  /** XEP-0199 liveness of bound sessions: ping after `intervalMs` of silence, drop after `timeoutMs` more. */
  liveness?: { intervalMs: number; timeoutMs: number };
  /** The stream header, authentication and binding must be done this long after connecting. */
  negotiationTimeoutMs?: number;
  /** Write back-pressure limits (TCP). */
  output?: OutputLimits;
  /** Most bound sessions (resources) of one account; 0 means no limit. */
  maxSessionsPerAccount?: number;
  /** Failed authentications per address; over the limit the address may not try for a while. */
  authFailures?: AddressRateLimiter;
  /** XEP-0198 resumable sessions by stream id (shared by all connections of a server). */
  resumable?: Map<string, C2sConnection>;
  /** How long a session whose connection dropped waits for resumption (XEP-0198 `max`). */
  resumeTimeoutMs?: number;
  /** While a session waits for resumption: iq get/set to it answered at once (`error`) or kept (`queue`). */
  iqDuringResumption?: 'error' | 'queue';
}

/** Most unacknowledged stanzas kept for a stream-management session. */
const MAX_UNACKED = 1000;
/** The server asks for an ack after this many unacknowledged stanzas. */
const ACK_REQUEST_EVERY = 5;
const U32 = 2 ** 32;

/** XEP-0198 state of a session that enabled stream management. */
interface SmState {
  id: string;
  resume: boolean;
  /** Stanzas handled from the client (mod 2^32). */
  inbound: number;
  /** Stanzas the client acknowledged (mod 2^32). */
  acked: number;
  /** Stanzas sent and not yet acknowledged, oldest first. */
  unacked: Element[];
  /** iq requests in `unacked` already answered with an error for the client. */
  bounced: Set<Element>;
}

const DEFAULT_NEGOTIATION_TIMEOUT_MS = 30_000;

const MECHANISMS = ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN'];
const MAX_SASL_FAILURES = 3;

export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

export class C2sConnection implements ClientSession {
  available = false;
  priority = 0;
  presence: Element | undefined;
  rosterRequested = false;
  carbons = false;
  readonly directed = new Set<string>();

  private readonly ctx: C2sContext;
  private readonly transport: ClientTransport;
  private readonly log: Logger;
  private headerSent = false;
  private closed = false;
  private username: string | undefined;
  private boundJid: Jid | undefined;
  private mechanism: { name: string; scram: ScramServer | undefined } | undefined;
  private saslFailures = 0;
  private lang = 'en';
  /** When input last arrived (ms since epoch). */
  private lastInput = Date.now();
  private livenessTimer: NodeJS.Timeout | undefined;
  private negotiationTimer: NodeJS.Timeout | undefined;
  /** The id of our outstanding XEP-0199 ping, and when it went out. */
  private pingId: string | undefined;
  private pingSentAt = 0;
  private sm: SmState | undefined;
  /** Connection lost, session kept bound for XEP-0198 resumption. */
  private hibernating = false;
  /** Taken over by a resuming connection: this object no longer stands for the session. */
  private retired = false;
  private resumeTimer: NodeJS.Timeout | undefined;

  /** A connection over `socket` (TCP), or over the transport `makeTransport` builds (WebSocket). */
  constructor(
    socket: Socket | undefined,
    ctx: C2sContext,
    makeTransport?: (events: TransportEvents, log: Logger) => ClientTransport,
  ) {
    this.ctx = ctx;
    this.log = ctx.log.child(
      socket === undefined ? {} : { remote: `${socket.remoteAddress}:${socket.remotePort}` },
    );
    const events: TransportEvents = {
      onStreamStart: (root) => this.guard(() => this.onStreamStart(root)),
      onStanza: (el) => this.guard(() => this.onStanza(el)),
      onStreamEnd: () => this.guard(() => this.onStreamEnd()),
      onError: (err) => this.onXmlError(err),
      onClose: () => this.onTransportClose(),
      onInput: () => {
        this.lastInput = Date.now();
      },
      onStalled: () => this.abort('peer stopped reading'),
    };
    if (makeTransport !== undefined) this.transport = makeTransport(events, this.log);
    else if (socket !== undefined)
      this.transport = new TcpTransport(socket, events, ctx.secureContext, this.log, ctx.output);
    else throw new Error('a socket or a transport is required');
    this.negotiationTimer = setTimeout(() => {
      this.negotiationTimer = undefined;
      this.log.info('negotiation not done in time');
      this.close('connection-timeout', 'Too slow to log in');
    }, ctx.negotiationTimeoutMs ?? DEFAULT_NEGOTIATION_TIMEOUT_MS);
    this.negotiationTimer.unref();
  }

  // ---- liveness (XEP-0199 pings from the server) ------------------------------------------------------

  private armLiveness(delayMs: number): void {
    if (this.livenessTimer !== undefined) clearTimeout(this.livenessTimer);
    this.livenessTimer = setTimeout(() => this.livenessTick(), Math.max(0, delayMs));
    this.livenessTimer.unref();
  }

  /**
   * Any input proves the client alive. After `intervalMs` of silence it gets a ping; if nothing at all
   * arrives within `timeoutMs` after that, the session ends as if the connection had dropped.
   */
  private livenessTick(): void {
    this.livenessTimer = undefined;
    const liveness = this.ctx.liveness;
    if (this.closed || liveness === undefined) return;
    const now = Date.now();
    if (this.pingId !== undefined) {
      if (this.lastInput < this.pingSentAt) {
        this.log.info(
          { jid: this.boundJid?.toString(), silentMs: now - this.lastInput },
          'no answer to ping: ending the session',
        );
        this.connectionLost('connection-timeout', 'No answer to ping');
        return;
      }
      this.pingId = undefined;
    }
    const idle = now - this.lastInput;
    if (idle < liveness.intervalMs) {
      this.armLiveness(liveness.intervalMs - idle);
      return;
    }
    this.pingId = `ping-${randomBytes(4).toString('hex')}`;
    this.pingSentAt = now;
    if (this.sm !== undefined) {
      // XEP-0198: an ack request does the same job; any input counts as the answer.
      this.transport.sendRaw(`<r xmlns='${NS.sm}'/>`);
      this.armLiveness(liveness.timeoutMs);
      return;
    }
    this.deliver(
      new Element(
        'iq',
        NS.client,
        { type: 'get', id: this.pingId, from: this.ctx.domain, to: this.jid.toString() },
        [new Element('ping', NS.ping)],
      ),
    );
    this.armLiveness(liveness.timeoutMs);
  }

  /** Ends the session without a closing handshake: the peer is gone or will not read. */
  private abort(reason: string): void {
    if (this.closed) return;
    this.log.info({ jid: this.boundJid?.toString(), reason }, 'dropping connection');
    this.closed = true;
    this.stopTimers();
    this.endSession();
    this.transport.destroy();
  }

  /**
   * The peer is unreachable (no answer to ping, or the connection dropped). A session with resumable
   * stream management hibernates; any other ends now.
   */
  private connectionLost(condition: StreamErrorCondition | undefined, text?: string): void {
    if (this.closed) return;
    if (this.sm?.resume === true && this.boundJid !== undefined) {
      // No stream error: the peer is presumed gone, and a resuming client must not see the stream end.
      this.hibernate();
      this.transport.destroy();
      return;
    }
    if (condition !== undefined) this.close(condition, text);
    else {
      this.closed = true;
      this.stopTimers();
      this.endSession();
    }
    // A frozen peer will not read our closing tag; it need not hold the socket for the grace period.
    this.transport.destroy();
  }

  private hibernate(): void {
    this.closed = true;
    this.hibernating = true;
    this.stopTimers();
    this.log.info({ jid: this.boundJid?.toString() }, 'connection lost: session waits for resumption');
    const sm = this.sm!;
    if ((this.ctx.iqDuringResumption ?? 'error') === 'error') {
      // iq requests sent to the dead connection and never acknowledged fail now, like new ones. They
      // stay in the queue, so counts match on resumption (an answer then reaches a requester that gave up).
      for (const stanza of sm.unacked) {
        const type = stanza.attr('type');
        if (stanza.name === 'iq' && (type === 'get' || type === 'set') && !sm.bounced.has(stanza)) {
          sm.bounced.add(stanza);
          this.ctx.router.bounce(stanza, 'cancel', 'service-unavailable', 'The client is not connected');
        }
      }
    }
    this.resumeTimer = setTimeout(() => {
      this.resumeTimer = undefined;
      if (!this.hibernating) return;
      this.hibernating = false;
      this.log.info({ jid: this.boundJid?.toString() }, 'not resumed in time: session ends');
      this.endSession();
    }, this.ctx.resumeTimeoutMs ?? 300_000);
    this.resumeTimer.unref();
  }

  private stopTimers(): void {
    if (this.livenessTimer !== undefined) clearTimeout(this.livenessTimer);
    if (this.negotiationTimer !== undefined) clearTimeout(this.negotiationTimer);
    this.livenessTimer = undefined;
    this.negotiationTimer = undefined;
  }

  get jid(): Jid {
    if (this.boundJid === undefined) throw new Error('session not bound');
    return this.boundJid;
  }

  get isBound(): boolean {
    return this.boundJid !== undefined;
  }

  get isSecure(): boolean {
    return this.transport.secure;
  }

  // ---- output --------------------------------------------------------------------------------------

  deliver(stanza: Element): void {
    if (this.hibernating) {
      this.deliverHibernating(stanza);
      return;
    }
    if (this.closed) {
      this.log.debug(
        { stanza: stanza.name, id: stanza.attr('id'), from: stanza.attr('from') },
        'stanza for a closed session dropped',
      );
      return;
    }
    this.transport.sendStanza(stanza);
    const sm = this.sm;
    if (sm !== undefined) {
      sm.unacked.push(stanza);
      if (sm.unacked.length > MAX_UNACKED) {
        this.close('resource-constraint', 'Too many unacknowledged stanzas');
        return;
      }
      if (sm.unacked.length % ACK_REQUEST_EVERY === 0) this.transport.sendRaw(`<r xmlns='${NS.sm}'/>`);
    }
  }

  /** A stanza for a session waiting for resumption: kept, except iq requests when so configured. */
  private deliverHibernating(stanza: Element): void {
    const type = stanza.attr('type');
    if (
      stanza.name === 'iq' &&
      (type === 'get' || type === 'set') &&
      (this.ctx.iqDuringResumption ?? 'error') === 'error'
    ) {
      // The sender (the gateway, say) learns now that nobody will answer, not minutes later.
      this.ctx.router.bounce(stanza, 'cancel', 'service-unavailable', 'The client is not connected');
      return;
    }
    const sm = this.sm!;
    sm.unacked.push(stanza);
    if (sm.unacked.length > MAX_UNACKED) {
      this.log.info({ jid: this.boundJid?.toString() }, 'too much kept for a hibernating session: ending it');
      this.hibernating = false;
      if (this.resumeTimer !== undefined) clearTimeout(this.resumeTimer);
      this.endSession();
    }
  }

  private sendHeader(to: string | undefined): void {
    this.transport.openStream({ id: randomUUID(), from: this.ctx.domain, to, lang: this.lang });
    this.headerSent = true;
  }

  /** Ends the stream with a stream error (RFC 6120 §4.9) or, without a condition, cleanly. */
  close(condition?: StreamErrorCondition, text?: string): void {
    if (this.closed) return;
    this.closed = true;
    if (!this.headerSent) this.sendHeader(undefined);
    if (condition !== undefined) {
      this.log.info({ condition, text, jid: this.boundJid?.toString() }, 'stream error');
      this.transport.sendStreamError(condition, text);
    }
    this.transport.closeStream();
    this.stopTimers();
    this.endSession();
  }

  /** The session is over for good: unbound, and what the client never acknowledged is handled. */
  private endSession(): void {
    if (this.hibernating || this.retired) return;
    if (this.resumeTimer !== undefined) clearTimeout(this.resumeTimer);
    if (this.boundJid !== undefined) this.ctx.router.unbind(this);
    const sm = this.sm;
    if (sm === undefined) return;
    this.sm = undefined;
    if (this.ctx.resumable?.get(sm.id) === this) this.ctx.resumable.delete(sm.id);
    // XEP-0198 §5: unacknowledged stanzas are not lost. Messages go to the bare JID (other resources or
    // offline storage); iq requests get service-unavailable; the rest (presence, results) is dropped.
    for (const stanza of sm.unacked) {
      const type = stanza.attr('type');
      if (stanza.name === 'message' && (type === undefined || type === 'normal' || type === 'chat')) {
        if (stanza.getChild('body') === undefined || this.boundJid === undefined) continue;
        const copy = new Element('message', stanza.ns, { ...stanza.attrs }, stanza.children);
        copy.setAttr('to', this.boundJid.bare().toString());
        this.ctx.router.route(copy);
      } else if (stanza.name === 'iq' && (type === 'get' || type === 'set') && !sm.bounced.has(stanza)) {
        this.ctx.router.bounce(stanza, 'cancel', 'service-unavailable');
      }
    }
  }

  // ---- input ---------------------------------------------------------------------------------------

  /** Runs a handler; anything it throws becomes an internal-server-error stream error, never a crash. */
  private guard(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.log.error({ err: e }, 'unexpected error handling input');
      this.close('internal-server-error');
    }
  }

  private onXmlError(err: XmlError): void {
    this.close(err.condition, err.message);
  }

  private onTransportClose(): void {
    if (!this.closed && !this.retired) this.connectionLost(undefined);
    this.closed = true;
    this.stopTimers();
    this.endSession();
    this.ctx.onClose?.(this);
  }

  private onStreamStart(root: Element): void {
    if (this.closed) return;
    const lang = root.attr('xml:lang');
    if (lang !== undefined && /^[A-Za-z0-9-]{1,35}$/.test(lang)) this.lang = lang;
    const from = root.attr('from');
    const fromJid = tryParseJid(from);
    this.sendHeader(fromJid?.toString());
    const version = root.attr('version');
    if (version === undefined || !/^1\.\d+$/.test(version)) {
      this.close('unsupported-version', 'XMPP 1.0 streams only');
      return;
    }
    const to = root.attr('to');
    let domain: string | undefined;
    try {
      domain = to === undefined ? this.ctx.domain : prepDomainpart(to);
    } catch {
      domain = undefined;
    }
    if (domain !== this.ctx.domain) {
      this.close('host-unknown', `This server serves ${this.ctx.domain}`);
      return;
    }
    this.transport.sendFeatures(this.features());
  }

  private canAuthenticate(): boolean {
    return this.transport.secure || (this.ctx.allowPlainLoopback && isLoopback(this.transport.remoteAddress));
  }

  private features(): string {
    let out = '';
    if (this.username === undefined) {
      if (this.transport.canStartTls) {
        out += `<starttls xmlns='${NS.tls}'>${this.canAuthenticate() ? '' : '<required/>'}</starttls>`;
      }
      if (this.canAuthenticate()) {
        out += `<mechanisms xmlns='${NS.sasl}'>`;
        for (const m of MECHANISMS) out += `<mechanism>${m}</mechanism>`;
        out += '</mechanisms>';
      }
    } else {
      out +=
        `<bind xmlns='${NS.bind}'/><session xmlns='${NS.session}'><optional/></session>` +
        `<ver xmlns='urn:xmpp:features:rosterver'/><sm xmlns='${NS.sm}'/>`;
    }
    return out;
  }

  private onStanza(el: Element): void {
    if (this.closed) return;
    if (this.username === undefined) this.beforeAuth(el);
    else if (this.boundJid === undefined) this.beforeBind(el);
    else this.afterBind(el);
  }

  private onStreamEnd(): void {
    // Our closing tag already went out (we closed first) or goes out now; either way the stream is done.
    if (this.closed) this.transport.closeStream();
    else this.close();
  }

  // ---- STARTTLS and SASL -----------------------------------------------------------------------------

  private beforeAuth(el: Element): void {
    if (el.ns === NS.tls && el.name === 'starttls') {
      this.startTls();
      return;
    }
    if (el.ns === NS.sasl) {
      if (el.name === 'auth') this.saslAuth(el);
      else if (el.name === 'response') this.saslResponse(el);
      else if (el.name === 'abort') this.saslFail('aborted');
      else this.close('unsupported-stanza-type');
      return;
    }
    this.close('not-authorized', 'Authenticate first');
  }

  private startTls(): void {
    if (!this.transport.canStartTls) {
      this.transport.sendRaw(`<failure xmlns='${NS.tls}'/>`);
      this.close();
      return;
    }
    this.transport.sendRaw(`<proceed xmlns='${NS.tls}'/>`);
    this.transport.startTls();
    this.headerSent = false;
  }

  private saslAuth(el: Element): void {
    if (this.mechanism !== undefined) {
      this.saslFail('aborted');
      return;
    }
    if (!this.canAuthenticate()) {
      this.saslFail('encryption-required');
      return;
    }
    if (this.ctx.authFailures?.blocked(this.transport.remoteAddress) === true) {
      this.log.info({ address: this.transport.remoteAddress }, 'authentication refused: too many failures');
      this.close('policy-violation', 'Too many failed authentication attempts from your address');
      return;
    }
    const name = el.attr('mechanism') ?? '';
    if (!MECHANISMS.includes(name)) {
      this.saslFail('invalid-mechanism');
      return;
    }
    const hash = SCRAM_MECHANISMS[name];
    this.mechanism = {
      name,
      scram:
        hash === undefined
          ? undefined
          : new ScramServer(hash, (user, h) => {
              let local: string;
              try {
                local = prepLocalpart(user);
              } catch {
                return undefined;
              }
              return this.ctx.store.getAccount(local)?.scram[h];
            }),
    };
    const text = el.text().trim();
    if (text === '') {
      // No initial response: an empty challenge asks for it (RFC 6120 §6.4.2).
      this.transport.sendRaw(`<challenge xmlns='${NS.sasl}'/>`);
      return;
    }
    this.saslData(text === '=' ? '' : text);
  }

  private saslResponse(el: Element): void {
    if (this.mechanism === undefined) {
      this.saslFail('malformed-request', 'No exchange in progress');
      return;
    }
    this.saslData(el.text().trim());
  }

  private saslData(text: string): void {
    const data = decodeBase64Strict(text);
    if (data === undefined) {
      this.saslFail('incorrect-encoding');
      return;
    }
    const mechanism = this.mechanism!;
    if (mechanism.scram !== undefined) {
      this.saslStep(mechanism.scram.step(data));
      return;
    }
    const plain = parsePlain(data);
    if (plain === undefined) {
      this.saslFail('malformed-request');
      return;
    }
    let local: string;
    try {
      local = prepLocalpart(plain.username);
    } catch {
      this.saslFail('not-authorized');
      return;
    }
    const account = this.ctx.store.getAccount(local);
    // Verification runs PBKDF2 off the event loop; input waits meanwhile.
    this.transport.pause();
    const check =
      account === undefined
        ? Promise.resolve(false)
        : verifyPassword('SHA-256', account.scram['SHA-256'], plain.password);
    check
      .then((ok) => {
        if (this.closed) return;
        this.transport.resume();
        // The exchange was aborted meanwhile (a pipelined <abort/> or second <auth/>): its result is void.
        if (this.mechanism !== mechanism) return;
        this.saslStep(
          ok
            ? { kind: 'success', data: undefined, username: local, authzid: plain.authzid }
            : { kind: 'failure', condition: 'not-authorized' },
        );
      })
      .catch((e: unknown) => {
        this.log.error({ err: e }, 'PLAIN verification failed');
        this.transport.resume();
        if (this.closed || this.mechanism !== mechanism) return;
        this.saslFail('temporary-auth-failure');
      });
  }

  private saslStep(step: SaslStep): void {
    if (step.kind === 'challenge') {
      this.transport.sendRaw(`<challenge xmlns='${NS.sasl}'>${step.data.toString('base64')}</challenge>`);
      return;
    }
    if (step.kind === 'failure') {
      this.saslFail(step.condition, step.text);
      return;
    }
    let local: string;
    try {
      local = prepLocalpart(step.username);
    } catch {
      this.saslFail('not-authorized');
      return;
    }
    if (step.authzid !== undefined) {
      const authz = tryParseJid(step.authzid);
      if (authz === undefined || !authz.isBare || authz.local !== local || authz.domain !== this.ctx.domain) {
        this.saslFail('invalid-authzid');
        return;
      }
    }
    this.mechanism = undefined;
    this.username = local;
    const data = step.data === undefined ? '' : step.data.toString('base64');
    this.transport.sendRaw(`<success xmlns='${NS.sasl}'>${data}</success>`);
    this.log.debug({ user: local }, 'authenticated');
    // RFC 6120 §6.4.6: a new stream follows; input sent before our <success/> is discarded.
    this.transport.restart(POST_AUTH_LIMITS);
    this.headerSent = false;
  }

  private saslFail(condition: SaslFailure, text?: string): void {
    this.mechanism = undefined;
    this.saslFailures++;
    if (condition === 'not-authorized') this.ctx.authFailures?.hit(this.transport.remoteAddress);
    const textXml = text === undefined ? '' : `<text xml:lang='en'>${escapeText(text)}</text>`;
    this.transport.sendRaw(`<failure xmlns='${NS.sasl}'><${condition}/>${textXml}</failure>`);
    if (this.saslFailures >= MAX_SASL_FAILURES)
      this.close('policy-violation', 'Too many failed authentication attempts');
  }

  // ---- XEP-0198 stream management ----------------------------------------------------------------------

  private smFailed(condition: string, text?: string): void {
    const textXml =
      text === undefined ? '' : `<text xmlns='${NS.stanzas}' xml:lang='en'>${escapeText(text)}</text>`;
    this.transport.sendRaw(
      `<failed xmlns='${NS.sm}'><${condition} xmlns='${NS.stanzas}'/>${textXml}</failed>`,
    );
  }

  private smElement(el: Element): void {
    switch (el.name) {
      case 'enable': {
        if (this.sm !== undefined) {
          this.smFailed('unexpected-request', 'Already enabled');
          return;
        }
        const resume = el.attr('resume') === 'true' || el.attr('resume') === '1';
        const id = randomBytes(12).toString('base64url');
        this.sm = {
          id,
          resume: resume && this.ctx.resumable !== undefined,
          inbound: 0,
          acked: 0,
          unacked: [],
          bounced: new Set(),
        };
        let attrs = '';
        if (this.sm.resume) {
          this.ctx.resumable!.set(id, this);
          attrs = ` id='${id}' resume='true' max='${Math.ceil((this.ctx.resumeTimeoutMs ?? 300_000) / 1000)}'`;
        }
        this.transport.sendRaw(`<enabled xmlns='${NS.sm}'${attrs}/>`);
        return;
      }
      case 'r':
        if (this.sm !== undefined) this.transport.sendRaw(`<a xmlns='${NS.sm}' h='${this.sm.inbound}'/>`);
        return;
      case 'a':
        if (this.sm !== undefined) this.acknowledge(el.attr('h'));
        return;
      default:
        this.close('unsupported-stanza-type', `<${el.name}/> is not supported here`);
    }
  }

  /** The client handled stanzas up to `h`: they leave the unacknowledged queue. */
  private acknowledge(hAttr: string | undefined): boolean {
    const sm = this.sm!;
    const h = hAttr !== undefined && /^\d{1,10}$/.test(hAttr) ? Number(hAttr) : Number.NaN;
    if (!Number.isFinite(h) || h >= U32) {
      this.close('invalid-xml', 'Bad h');
      return false;
    }
    const count = (h - sm.acked + U32) % U32;
    if (count > sm.unacked.length) {
      this.log.info({ h, acked: sm.acked, unacked: sm.unacked.length }, 'handled count too high');
      this.close('undefined-condition', 'handled-count-too-high');
      return false;
    }
    for (const stanza of sm.unacked.splice(0, count)) sm.bounced.delete(stanza);
    sm.acked = h;
    return true;
  }

  /** `<resume previd h/>` after authentication: this connection takes over a kept session. */
  private resume(el: Element): void {
    const previd = el.attr('previd') ?? '';
    const old = this.ctx.resumable?.get(previd);
    if (
      old === undefined ||
      old.username !== this.username ||
      old.sm === undefined ||
      old.retired ||
      old.boundJid === undefined ||
      this.ctx.router.session(old.boundJid) !== old
    ) {
      this.smFailed('item-not-found', 'No such session to resume');
      return;
    }
    // The old connection may not know yet that it is dead: it stops now, without ending the session.
    old.retire();
    const sm = old.sm!;
    this.sm = sm;
    this.boundJid = old.boundJid;
    this.available = old.available;
    this.priority = old.priority;
    this.presence = old.presence;
    this.rosterRequested = old.rosterRequested;
    this.carbons = old.carbons;
    for (const d of old.directed) this.directed.add(d);
    this.ctx.router.replace(old, this);
    this.ctx.resumable!.set(sm.id, this);
    if (this.negotiationTimer !== undefined) clearTimeout(this.negotiationTimer);
    this.negotiationTimer = undefined;
    if (!this.acknowledge(el.attr('h'))) return;
    this.transport.sendRaw(`<resumed xmlns='${NS.sm}' previd='${sm.id}' h='${sm.inbound}'/>`);
    this.log.info({ jid: this.boundJid?.toString(), resent: sm.unacked.length }, 'session resumed');
    // What the client did not acknowledge is sent again, in order (it stays unacknowledged until acked).
    for (const stanza of sm.unacked) this.transport.sendStanza(stanza);
    if (this.ctx.liveness !== undefined) this.armLiveness(this.ctx.liveness.intervalMs);
  }

  /** Hands the session over to a resuming connection: no more output, no session end from here. */
  private retire(): void {
    this.retired = true;
    this.hibernating = false;
    if (this.resumeTimer !== undefined) clearTimeout(this.resumeTimer);
    this.resumeTimer = undefined;
    this.stopTimers();
    if (!this.closed) {
      this.closed = true;
      this.transport.destroy();
    }
  }

  // ---- binding and stanzas ---------------------------------------------------------------------------

  private beforeBind(el: Element): void {
    if (el.ns === NS.sm) {
      if (el.name === 'resume') this.resume(el);
      else if (el.name === 'enable') this.smFailed('unexpected-request', 'Bind a resource first');
      else this.close('unsupported-stanza-type');
      return;
    }
    if (el.name === 'iq' && el.ns === NS.client && el.attr('type') === 'set') {
      const bind = el.getChild('bind', NS.bind);
      if (bind !== undefined) {
        this.bind(el, bind);
        return;
      }
    }
    this.close('not-authorized', 'Bind a resource first');
  }

  private bind(iq: Element, bind: Element): void {
    const requested = bind.getChildText('resource', NS.bind)?.trim();
    let resource: string;
    if (requested === undefined || requested === '') {
      resource = randomBytes(6).toString('hex');
    } else {
      try {
        resource = prepResourcepart(requested);
      } catch {
        this.transport.sendStanza(errorReply(iq, 'modify', 'bad-request', 'Invalid resource'));
        return;
      }
    }
    const max = this.ctx.maxSessionsPerAccount ?? 0;
    if (max > 0) {
      const others = this.ctx.router.sessionsOf(this.username!).filter((s) => s.jid.resource !== resource);
      if (others.length >= max) {
        // RFC 6120 §7.6.2.1: the account has reached its number of connected resources.
        this.transport.sendStanza(
          errorReply(iq, 'wait', 'resource-constraint', `At most ${max} sessions per account`),
        );
        return;
      }
    }
    this.boundJid = new Jid(this.username!, this.ctx.domain, resource);
    this.ctx.router.bind(this);
    if (this.negotiationTimer !== undefined) clearTimeout(this.negotiationTimer);
    this.negotiationTimer = undefined;
    if (this.ctx.liveness !== undefined) this.armLiveness(this.ctx.liveness.intervalMs);
    const reply = iqResult(iq, NS.client);
    reply.setAttr('from', undefined);
    reply.c('bind', {}, NS.bind).c('jid').append(this.boundJid.toString());
    this.deliver(reply);
    this.log.debug({ jid: this.boundJid.toString() }, 'bound');
  }

  private afterBind(el: Element): void {
    if (el.ns === NS.sm) {
      this.smElement(el);
      return;
    }
    if (el.name !== 'message' && el.name !== 'presence' && el.name !== 'iq') {
      this.close('unsupported-stanza-type', `<${el.name}/> is not supported here`);
      return;
    }
    if (el.ns !== NS.client) {
      this.close('invalid-namespace', 'Stanzas must be in jabber:client');
      return;
    }
    if (this.sm !== undefined) this.sm.inbound = (this.sm.inbound + 1) % U32;
    if (this.pingId !== undefined && el.name === 'iq' && el.attr('id') === this.pingId) {
      // The answer to our liveness ping (result, or an error from a client without XEP-0199): consumed.
      const type = el.attr('type');
      if (type === 'result' || type === 'error') {
        this.pingId = undefined;
        return;
      }
    }
    this.ctx.router.fromClient(this, el);
  }
}
