/**
 * Digest authentication of phones (RFC 3261 §22): REGISTER is challenged with 401/WWW-Authenticate,
 * INVITE with 407/Proxy-Authenticate. Realm = the SIP domain. Answers with MD5 and SHA-256 are both
 * verified; which challenges are sent is configurable (RFC 8760: one per algorithm, preferred first).
 * The default offers MD5 only, because baresip 1.0 fails the whole authentication ("Function not
 * implemented") when any challenge names an algorithm it lacks.
 */
import {
  type AuthHeader,
  type DigestAlgorithm,
  digestResponse,
  monotonicNow,
  NonceManager,
  parseAuthHeader,
} from '../sip/digest.ts';
import { createResponse, type SipRequest, type SipResponse } from '../sip/message.ts';
import type { PbxUser, UserDirectory } from './users.ts';

export interface AuthOptions {
  realm: string;
  algorithms?: DigestAlgorithm[];
  nonceLifetimeMs?: number;
  now?: () => number;
  /** Wrong answers from one address allowed per window before it is refused outright (brute force). */
  maxFailures?: number;
  failureWindowMs?: number;
}

/** Counts failed digest answers per source address in a fixed window, with a bounded table. */
class FailureLimiter {
  private readonly counts = new Map<string, { count: number; since: number }>();
  private readonly max: number;
  private readonly windowMs: number;
  private readonly now: () => number;

  constructor(max: number, windowMs: number, now: () => number) {
    this.max = max;
    this.windowMs = windowMs;
    this.now = now;
  }

  blocked(key: string): boolean {
    const e = this.counts.get(key);
    if (e === undefined) return false;
    if (this.now() - e.since > this.windowMs) {
      this.counts.delete(key);
      return false;
    }
    return e.count >= this.max;
  }

  fail(key: string): void {
    const now = this.now();
    const e = this.counts.get(key);
    if (e === undefined || now - e.since > this.windowMs) {
      this.counts.delete(key);
      this.counts.set(key, { count: 1, since: now });
      if (this.counts.size > 10_000) {
        const oldest = this.counts.keys().next().value;
        if (oldest !== undefined) this.counts.delete(oldest);
      }
    } else e.count++;
  }
}

export type AuthResult = { ok: true; user: PbxUser } | { ok: false; response: SipResponse; reason: string };

export class DigestAuthenticator {
  readonly realm: string;
  readonly algorithms: DigestAlgorithm[];
  private readonly nonces: NonceManager;
  private readonly users: UserDirectory;
  private readonly limiter: FailureLimiter;

  constructor(users: UserDirectory, options: AuthOptions) {
    this.users = users;
    this.realm = options.realm;
    this.algorithms = options.algorithms ?? ['MD5'];
    const nonceOptions: { lifetimeMs?: number; now?: () => number } = {};
    if (options.nonceLifetimeMs !== undefined) nonceOptions.lifetimeMs = options.nonceLifetimeMs;
    if (options.now !== undefined) nonceOptions.now = options.now;
    this.nonces = new NonceManager(nonceOptions);
    this.limiter = new FailureLimiter(
      options.maxFailures ?? 10,
      options.failureWindowMs ?? 60_000,
      options.now ?? monotonicNow,
    );
  }

  /** The 401 (REGISTER) or 407 (other requests) challenge, with `stale` when asked. */
  challenge(request: SipRequest, toTag: string | undefined, stale = false): SipResponse {
    const proxy = request.method !== 'REGISTER';
    const response = createResponse(request, proxy ? 407 : 401, undefined, toTag);
    const header = proxy ? 'Proxy-Authenticate' : 'WWW-Authenticate';
    for (const algorithm of this.algorithms) {
      const nonce = this.nonces.create();
      response.append(
        header,
        `Digest realm="${this.realm}", nonce="${nonce}", algorithm=${algorithm}, qop="auth"${stale ? ', stale=true' : ''}`,
      );
    }
    return response;
  }

  /**
   * Verifies the request's credentials; on failure returns the response to send. `source` (the
   * sender's address) is used to refuse an address after too many wrong answers.
   */
  verify(request: SipRequest, toTag?: string, source?: string): AuthResult {
    if (source !== undefined && this.limiter.blocked(source)) {
      return {
        ok: false,
        response: createResponse(request, 403, 'Forbidden (too many failed attempts)', toTag),
        reason: 'rate limited',
      };
    }
    const result = this.check(request, toTag);
    if (
      !result.ok &&
      source !== undefined &&
      (result.reason === 'wrong password' || result.reason === 'unknown user')
    ) {
      this.limiter.fail(source);
    }
    return result;
  }

  private check(request: SipRequest, toTag?: string): AuthResult {
    const proxy = request.method !== 'REGISTER';
    const values = request.getAll(proxy ? 'Proxy-Authorization' : 'Authorization');
    let credentials: AuthHeader | undefined;
    for (const v of values) {
      const parsed = parseAuthHeader(v);
      if (parsed?.scheme.toLowerCase() === 'digest' && parsed.params.get('realm') === this.realm) {
        credentials = parsed;
        break;
      }
    }
    if (credentials === undefined) {
      return {
        ok: false,
        response: this.challenge(request, toTag),
        reason: values.length > 0 ? 'no usable credentials' : 'no credentials',
      };
    }
    const p = credentials.params;
    const username = p.get('username');
    const nonce = p.get('nonce');
    const uri = p.get('uri');
    const given = p.get('response');
    const algorithm = (p.get('algorithm') ?? 'MD5').toUpperCase();
    const qop = p.get('qop');
    if (username === undefined || nonce === undefined || uri === undefined || given === undefined) {
      return {
        ok: false,
        response: createResponse(request, 400, 'Bad Request (incomplete credentials)', toTag),
        reason: 'incomplete credentials',
      };
    }
    if (algorithm !== 'MD5' && algorithm !== 'SHA-256') {
      return {
        ok: false,
        response: this.challenge(request, toTag),
        reason: `unsupported algorithm ${algorithm}`,
      };
    }
    if (!this.algorithms.includes(algorithm)) {
      return {
        ok: false,
        response: this.challenge(request, toTag),
        reason: `algorithm ${algorithm} not offered`,
      };
    }
    if (qop !== undefined && qop !== 'auth') {
      return { ok: false, response: this.challenge(request, toTag), reason: `unsupported qop ${qop}` };
    }
    const user = this.users.findUser(username);
    const check = this.nonces.check(nonce, qop !== undefined ? p.get('nc') : undefined);
    if (check === 'invalid')
      return { ok: false, response: this.challenge(request, toTag), reason: 'unknown nonce' };
    if (user === undefined)
      return { ok: false, response: createResponse(request, 403, undefined, toTag), reason: 'unknown user' };
    const input = {
      algorithm: algorithm as DigestAlgorithm,
      username,
      realm: this.realm,
      password: user.sipPassword,
      method: request.method,
      uri,
      nonce,
    };
    if (qop !== undefined)
      Object.assign(input, { qop, nc: p.get('nc') ?? '', cnonce: p.get('cnonce') ?? '' });
    const expected = digestResponse(input);
    if (expected !== given.toLowerCase()) {
      return {
        ok: false,
        response: createResponse(request, 403, 'Forbidden (wrong credentials)', toTag),
        reason: 'wrong password',
      };
    }
    // a correct answer to an expired nonce: ask again without bothering the user (RFC 7616 stale)
    if (check === 'stale')
      return { ok: false, response: this.challenge(request, toTag, true), reason: 'stale nonce' };
    if (check === 'replay')
      return { ok: false, response: this.challenge(request, toTag, true), reason: 'replayed nonce count' };
    return { ok: true, user };
  }
}
