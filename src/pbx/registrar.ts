/**
 * Registrar (RFC 3261 §10.3). Bindings live in memory per extension. Registration and expiry raise
 * events the CSTA layer turns into device in-service / out-of-service.
 */
import { EventEmitter } from 'node:events';
import { monotonicNow } from '../sip/digest.ts';
import { createResponse, type SipRequest } from '../sip/message.ts';
import type { ServerTransaction } from '../sip/transaction.ts';
import type { Endpoint } from '../sip/transport.ts';
import { formatUri, isSipUri, type SipUri } from '../sip/uri.ts';
import type { DigestAuthenticator } from './auth.ts';
import type { UserDirectory } from './users.ts';

export interface Binding {
  extension: string;
  /** Contact URI as registered. */
  uri: SipUri;
  /** Absolute expiry (ms on a monotonic clock: wall-clock jumps do not expire or revive bindings). */
  expiresAt: number;
  callId: string;
  cseq: number;
  /** Where the REGISTER came from: the flow to reach the phone over (TCP) or NAT. */
  source: Endpoint;
  q: number;
  userAgent?: string;
}

export interface RegistrarOptions {
  minExpires?: number;
  maxExpires?: number;
  defaultExpires?: number;
  maxContactsPerExtension?: number;
  /** True when a host (and optional port) names this server: the SIP domain or a listening address. */
  isLocal: (host: string, port?: number) => boolean;
  now?: () => number;
}

export interface RegistrarEvents {
  /** A binding was added or refreshed. */
  registered: [binding: Binding, refreshed: boolean];
  /** A binding was removed: by the phone (expires=0) or by expiry. */
  unregistered: [binding: Binding, reason: 'removed' | 'expired'];
  /** First binding of an extension appeared (CSTA: device in service). */
  'device-in-service': [extension: string];
  /** Last binding of an extension went away (CSTA: device out of service). */
  'device-out-of-service': [extension: string, reason: 'removed' | 'expired'];
}

export class Registrar extends EventEmitter<RegistrarEvents> {
  private readonly bindings = new Map<string, Map<string, Binding>>();
  private readonly timers = new Map<Binding, ReturnType<typeof setTimeout>>();
  private readonly options: Required<Omit<RegistrarOptions, 'isLocal' | 'now'>>;
  private readonly isLocal: RegistrarOptions['isLocal'];
  private readonly now: () => number;
  private readonly users: UserDirectory;
  private readonly auth: DigestAuthenticator;

  constructor(users: UserDirectory, auth: DigestAuthenticator, options: RegistrarOptions) {
    super();
    this.users = users;
    this.auth = auth;
    this.isLocal = options.isLocal;
    this.now = options.now ?? monotonicNow;
    this.options = {
      minExpires: options.minExpires ?? 60,
      maxExpires: options.maxExpires ?? 3600,
      defaultExpires: options.defaultExpires ?? 3600,
      maxContactsPerExtension: options.maxContactsPerExtension ?? 10,
    };
  }

  /** Current bindings of an extension, best q first. */
  lookup(extension: string): Binding[] {
    const now = this.now();
    return [...(this.bindings.get(extension)?.values() ?? [])]
      .filter((b) => b.expiresAt > now)
      .sort((a, b) => b.q - a.q);
  }

  get registeredExtensions(): string[] {
    return [...this.bindings.keys()];
  }

  get bindingCount(): number {
    let n = 0;
    for (const m of this.bindings.values()) n += m.size;
    return n;
  }

  /** Handles a REGISTER in its server transaction. */
  handle(request: SipRequest, tx: ServerTransaction, source: Endpoint): void {
    const reply = (status: number, reason?: string) =>
      tx.respond(createResponse(request, status, reason, 'reg'));
    const ruri = request.uri;
    if (!isSipUri(ruri) || ruri.user !== undefined || !this.isLocal(ruri.host, ruri.port)) {
      reply(404, 'Not Found (not a registrar for this domain)');
      return;
    }
    const to = request.to.uri;
    if (!isSipUri(to)) {
      tx.respond(createResponse(request, 416, undefined, 'reg'));
      return;
    }
    if (to.user === undefined || !this.isLocal(to.host, to.port)) {
      reply(404, 'Not Found (unknown domain)');
      return;
    }
    const auth = this.auth.verify(request, 'reg', source.address);
    if (!auth.ok) {
      tx.respond(auth.response);
      return;
    }
    const user = this.users.findUser(to.user);
    if (user === undefined) {
      reply(404);
      return;
    }
    if (user.extension !== auth.user.extension) {
      reply(403, 'Forbidden (credentials do not match the address of record)');
      return;
    }
    const extension = user.extension;
    const contacts = request.contacts;
    const expiresHeader = request.get('Expires');
    if (expiresHeader !== undefined && !/^\d{1,10}$/.test(expiresHeader)) {
      reply(400, 'Bad Request (Expires)');
      return;
    }
    const callId = request.callId;
    const cseq = request.cseq.seq;
    const current = this.bindings.get(extension) ?? new Map<string, Binding>();

    if (contacts.includes('*')) {
      // §10.3 step 6: "*" only alone and with Expires: 0
      if (contacts.length !== 1 || expiresHeader !== '0') {
        reply(400, 'Bad Request (Contact: * needs Expires: 0)');
        return;
      }
      for (const b of [...current.values()]) {
        if (b.callId === callId && cseq <= b.cseq) continue;
        this.removeBinding(b, 'removed');
      }
      this.respondOk(request, tx, extension);
      return;
    }

    const changes: Array<{ key: string; uri: SipUri; expires: number; q: number }> = [];
    for (const c of contacts) {
      if (c === '*') continue;
      if (!isSipUri(c.uri)) {
        tx.respond(createResponse(request, 416, undefined, 'reg'));
        return;
      }
      const param = c.params.get('expires');
      let expires: number;
      if (typeof param === 'string') {
        if (!/^\d{1,10}$/.test(param)) {
          reply(400, 'Bad Request (expires parameter)');
          return;
        }
        expires = Number(param);
      } else expires = expiresHeader !== undefined ? Number(expiresHeader) : this.options.defaultExpires;
      if (expires > 0 && expires < this.options.minExpires) {
        const r = createResponse(request, 423, undefined, 'reg');
        r.append('Min-Expires', String(this.options.minExpires));
        tx.respond(r);
        return;
      }
      const qParam = c.params.get('q');
      const q =
        typeof qParam === 'string' && /^(0(\.\d{0,3})?|1(\.0{0,3})?)$/.test(qParam) ? Number(qParam) : 1;
      changes.push({
        key: contactKey(c.uri),
        uri: c.uri,
        expires: Math.min(expires, this.options.maxExpires),
        q,
      });
    }
    // §10.3 step 7: a binding from the same Call-ID with a CSeq not higher is out of order
    for (const ch of changes) {
      const b = current.get(ch.key);
      if (b !== undefined && b.callId === callId && cseq <= b.cseq) {
        reply(500, 'Server Internal Error (out-of-order REGISTER)');
        return;
      }
    }
    const added = changes.filter((ch) => ch.expires > 0 && !current.has(ch.key)).length;
    if (current.size + added > this.options.maxContactsPerExtension) {
      reply(403, 'Forbidden (too many contacts)');
      return;
    }
    const now = this.now();
    const userAgent = request.get('User-Agent');
    for (const ch of changes) {
      const existing = current.get(ch.key);
      if (ch.expires === 0) {
        if (existing !== undefined) this.removeBinding(existing, 'removed');
        continue;
      }
      const binding: Binding = {
        extension,
        uri: ch.uri,
        expiresAt: now + ch.expires * 1000,
        callId,
        cseq,
        source,
        q: ch.q,
      };
      if (userAgent !== undefined) binding.userAgent = userAgent;
      this.addBinding(binding, ch.key, existing);
    }
    this.respondOk(request, tx, extension);
  }

  private respondOk(request: SipRequest, tx: ServerTransaction, extension: string): void {
    const r = createResponse(request, 200, undefined, 'reg');
    const now = this.now();
    for (const b of this.lookup(extension)) {
      r.append(
        'Contact',
        `<${formatUri(b.uri)}>;expires=${Math.max(0, Math.round((b.expiresAt - now) / 1000))}`,
      );
    }
    r.append('Date', new Date().toUTCString());
    tx.respond(r);
  }

  private addBinding(binding: Binding, key: string, existing: Binding | undefined): void {
    let map = this.bindings.get(binding.extension);
    const first = map === undefined || map.size === 0;
    if (map === undefined) {
      map = new Map();
      this.bindings.set(binding.extension, map);
    }
    if (existing !== undefined) this.clearTimer(existing);
    map.set(key, binding);
    const timer = setTimeout(
      () => this.removeBinding(binding, 'expired'),
      Math.max(0, binding.expiresAt - this.now()),
    );
    timer.unref?.();
    this.timers.set(binding, timer);
    this.emit('registered', binding, existing !== undefined);
    if (first) this.emit('device-in-service', binding.extension);
  }

  private clearTimer(binding: Binding): void {
    const t = this.timers.get(binding);
    if (t !== undefined) clearTimeout(t);
    this.timers.delete(binding);
  }

  private removeBinding(binding: Binding, reason: 'removed' | 'expired'): void {
    const map = this.bindings.get(binding.extension);
    if (map === undefined) return;
    const key = contactKey(binding.uri);
    if (map.get(key) !== binding) return;
    this.clearTimer(binding);
    map.delete(key);
    this.emit('unregistered', binding, reason);
    if (map.size === 0) {
      this.bindings.delete(binding.extension);
      this.emit('device-out-of-service', binding.extension, reason);
    }
  }

  /** Drops every binding (shutdown); no events. */
  clear(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.bindings.clear();
  }
}

/** Contact URIs compare by scheme, user, host, port and transport (enough for bindings). */
function contactKey(uri: SipUri): string {
  const transport = uri.params.get('transport');
  return `${uri.scheme}:${uri.user ?? ''}@${uri.host.toLowerCase()}:${uri.port ?? ''};${typeof transport === 'string' ? transport.toLowerCase() : ''}`;
}
