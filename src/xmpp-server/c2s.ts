/**
 * One client-to-server connection over TCP (RFC 6120): stream negotiation (§4), STARTTLS (§5), SASL
 * (§6), resource binding (§7), the optional session element (RFC 3921 leftover, still sent by old
 * clients), stream errors and the closing handshake (§4.4, §4.9). Once bound, stanzas go to the Router.
 *
 * Nothing thrown by protocol handling leaves this class: errors become stream errors or stanza errors.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { type SecureContext, TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import {
  type Element,
  escapeAttr,
  POST_AUTH_LIMITS,
  serialize,
  type XmlError,
  XmlStreamReader,
} from '../xml/index.ts';
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
import { errorReply, iqResult, type StreamErrorCondition, streamErrorXml } from '../xmpp/stanza.ts';
import type { ClientSession, Router } from './router.ts';
import type { Store } from './store.ts';

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
}

const MECHANISMS = ['SCRAM-SHA-256', 'SCRAM-SHA-1', 'PLAIN'];
const MAX_SASL_FAILURES = 3;
/** How long we wait for the peer's closing tag after sending ours (RFC 6120 §4.4). */
const CLOSE_GRACE_MS = 2000;

export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

export class C2sConnection implements ClientSession {
  available = false;
  priority = 0;
  presence: Element | undefined;
  rosterRequested = false;
  readonly directed = new Set<string>();

  private readonly ctx: C2sContext;
  private readonly raw: Socket;
  private socket: Socket;
  private readonly reader: XmlStreamReader;
  private readonly log: Logger;
  private secure = false;
  private headerSent = false;
  private closed = false;
  private closeTimer: NodeJS.Timeout | undefined;
  private username: string | undefined;
  private boundJid: Jid | undefined;
  private mechanism: { name: string; scram: ScramServer | undefined } | undefined;
  private saslFailures = 0;
  private lang = 'en';

  constructor(socket: Socket, ctx: C2sContext) {
    this.ctx = ctx;
    this.raw = socket;
    this.socket = socket;
    this.log = ctx.log.child({ remote: `${socket.remoteAddress}:${socket.remotePort}` });
    this.reader = new XmlStreamReader(
      {
        onStreamStart: (root) => this.guard(() => this.onStreamStart(root)),
        onStanza: (el) => this.guard(() => this.onStanza(el)),
        onStreamEnd: () => this.guard(() => this.onStreamEnd()),
        onError: (err) => this.onXmlError(err),
      },
      { root: { name: 'stream', ns: NS.stream } },
    );
    socket.setNoDelay(true);
    socket.on('error', (err) => this.log.debug({ err }, 'socket error'));
    socket.on('close', () => this.onSocketClose());
    socket.on('data', (chunk: Buffer) => this.reader.feed(chunk));
  }

  get jid(): Jid {
    if (this.boundJid === undefined) throw new Error('session not bound');
    return this.boundJid;
  }

  get isBound(): boolean {
    return this.boundJid !== undefined;
  }

  get isSecure(): boolean {
    return this.secure;
  }

  // ---- output --------------------------------------------------------------------------------------

  private write(data: string): void {
    if (this.socket.destroyed || !this.socket.writable) return;
    this.socket.write(data);
  }

  deliver(stanza: Element): void {
    if (this.closed) return;
    this.write(serialize(stanza, NS.client));
  }

  private sendHeader(to: string | undefined): void {
    const id = randomUUID();
    this.write(
      `<?xml version='1.0'?><stream:stream xmlns='${NS.client}' xmlns:stream='${NS.stream}' id='${id}'` +
        ` from='${escapeAttr(this.ctx.domain)}'${to === undefined ? '' : ` to='${escapeAttr(to)}'`}` +
        ` version='1.0' xml:lang='${escapeAttr(this.lang)}'>`,
    );
    this.headerSent = true;
  }

  /** Ends the stream with a stream error (RFC 6120 §4.9) or, without a condition, cleanly. */
  close(condition?: StreamErrorCondition, text?: string): void {
    if (this.closed) return;
    this.closed = true;
    if (!this.headerSent) this.sendHeader(undefined);
    if (condition !== undefined) {
      this.log.info({ condition, text, jid: this.boundJid?.toString() }, 'stream error');
      this.write(streamErrorXml(condition, text));
    }
    this.write('</stream:stream>');
    this.endSession();
    this.socket.end();
    this.closeTimer = setTimeout(() => this.socket.destroy(), CLOSE_GRACE_MS);
    this.closeTimer.unref();
  }

  private endSession(): void {
    if (this.boundJid !== undefined) this.ctx.router.unbind(this);
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

  private onSocketClose(): void {
    if (this.closeTimer !== undefined) clearTimeout(this.closeTimer);
    this.closed = true;
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
    this.write(this.features());
  }

  private canAuthenticate(): boolean {
    return this.secure || (this.ctx.allowPlainLoopback && isLoopback(this.raw.remoteAddress));
  }

  private features(): string {
    let out = '<stream:features>';
    if (this.username === undefined) {
      if (!this.secure && this.ctx.secureContext !== undefined) {
        out += `<starttls xmlns='${NS.tls}'>${this.canAuthenticate() ? '' : '<required/>'}</starttls>`;
      }
      if (this.canAuthenticate()) {
        out += `<mechanisms xmlns='${NS.sasl}'>`;
        for (const m of MECHANISMS) out += `<mechanism>${m}</mechanism>`;
        out += '</mechanisms>';
      }
    } else {
      out += `<bind xmlns='${NS.bind}'/><session xmlns='${NS.session}'><optional/></session>`;
    }
    return `${out}</stream:features>`;
  }

  private onStanza(el: Element): void {
    if (this.closed) return;
    if (this.username === undefined) this.beforeAuth(el);
    else if (this.boundJid === undefined) this.beforeBind(el);
    else this.afterBind(el);
  }

  private onStreamEnd(): void {
    if (this.closed) {
      this.socket.end();
      return;
    }
    this.close();
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
    if (this.secure || this.ctx.secureContext === undefined) {
      this.write(`<failure xmlns='${NS.tls}'/>`);
      this.close();
      return;
    }
    this.write(`<proceed xmlns='${NS.tls}'/>`);
    // Anything the client sent after <starttls/> in the clear is discarded here (STARTTLS injection).
    this.reader.reset();
    this.headerSent = false;
    const raw = this.socket;
    raw.removeAllListeners('data');
    const tlsSocket = new TLSSocket(raw, { isServer: true, secureContext: this.ctx.secureContext });
    tlsSocket.on('error', (err) => {
      this.log.debug({ err }, 'TLS error');
      tlsSocket.destroy();
      raw.destroy();
    });
    tlsSocket.on('data', (chunk: Buffer) => this.reader.feed(chunk));
    this.socket = tlsSocket;
    this.secure = true;
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
      this.write(`<challenge xmlns='${NS.sasl}'/>`);
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
    this.socket.pause();
    const check =
      account === undefined
        ? Promise.resolve(false)
        : verifyPassword('SHA-256', account.scram['SHA-256'], plain.password);
    check
      .then((ok) => {
        if (this.closed) return;
        this.socket.resume();
        this.saslStep(
          ok
            ? { kind: 'success', data: undefined, username: local, authzid: plain.authzid }
            : { kind: 'failure', condition: 'not-authorized' },
        );
      })
      .catch((e: unknown) => {
        this.log.error({ err: e }, 'PLAIN verification failed');
        this.socket.resume();
        this.saslFail('temporary-auth-failure');
      });
  }

  private saslStep(step: SaslStep): void {
    if (step.kind === 'challenge') {
      this.write(`<challenge xmlns='${NS.sasl}'>${step.data.toString('base64')}</challenge>`);
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
    this.write(`<success xmlns='${NS.sasl}'>${data}</success>`);
    this.log.debug({ user: local }, 'authenticated');
    // RFC 6120 §6.4.6: a new stream follows; input sent before our <success/> is discarded.
    this.reader.reset();
    this.reader.setLimits(POST_AUTH_LIMITS);
    this.headerSent = false;
  }

  private saslFail(condition: SaslFailure, text?: string): void {
    this.mechanism = undefined;
    this.saslFailures++;
    const textXml = text === undefined ? '' : `<text xml:lang='en'>${escapeAttr(text)}</text>`;
    this.write(`<failure xmlns='${NS.sasl}'><${condition}/>${textXml}</failure>`);
    if (this.saslFailures >= MAX_SASL_FAILURES)
      this.close('policy-violation', 'Too many failed authentication attempts');
  }

  // ---- binding and stanzas ---------------------------------------------------------------------------

  private beforeBind(el: Element): void {
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
        this.write(serialize(errorReply(iq, 'modify', 'bad-request', 'Invalid resource'), NS.client));
        return;
      }
    }
    this.boundJid = new Jid(this.username!, this.ctx.domain, resource);
    this.ctx.router.bind(this);
    const reply = iqResult(iq, NS.client);
    reply.setAttr('from', undefined);
    reply.c('bind', {}, NS.bind).c('jid').append(this.boundJid.toString());
    this.deliver(reply);
    this.log.debug({ jid: this.boundJid.toString() }, 'bound');
  }

  private afterBind(el: Element): void {
    if (el.name !== 'message' && el.name !== 'presence' && el.name !== 'iq') {
      this.close('unsupported-stanza-type', `<${el.name}/> is not supported here`);
      return;
    }
    if (el.ns !== NS.client) {
      this.close('invalid-namespace', 'Stanzas must be in jabber:client');
      return;
    }
    this.ctx.router.fromClient(this, el);
  }
}
