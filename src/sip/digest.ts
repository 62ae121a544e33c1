/**
 * HTTP Digest for SIP (RFC 3261 §22.4, RFC 7616 algorithms MD5 and SHA-256, RFC 8760 for SIP).
 * Nonces are stateless (timestamp + random + HMAC), so expiry and `stale` need no table; the `nc`
 * of each nonce is tracked in a bounded map to refuse replays.
 */
import { createHmac, createSecretKey, hash as oneShotHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readQuoted } from './grammar.ts';
import { randomBase64url } from './random.ts';

export type DigestAlgorithm = 'MD5' | 'SHA-256';

/** Milliseconds on a monotonic clock (performance.now from the process start, offset to epoch). */
export function monotonicNow(): number {
  return performance.timeOrigin + performance.now();
}

export interface AuthHeader {
  scheme: string;
  params: Map<string, string>;
}

/** Parses `Digest name=value, name="quoted"` (credentials or challenge). Returns undefined if malformed. */
export function parseAuthHeader(value: string): AuthHeader | undefined {
  if (value.length > 4096) return undefined;
  const m = /^([A-Za-z0-9\-._]+)\s+/.exec(value);
  if (!m) return undefined;
  const params = new Map<string, string>();
  let i = m[0].length;
  const s = value;
  while (i < s.length) {
    while (s[i] === ' ' || s[i] === '\t' || s[i] === ',') i++;
    if (i >= s.length) break;
    const nm = /^([A-Za-z0-9\-._]+)\s*=\s*/.exec(s.slice(i));
    if (!nm) return undefined;
    const name = nm[1]!.toLowerCase();
    i += nm[0].length;
    let v: string;
    if (s[i] === '"') {
      try {
        const q = readQuoted(s, i);
        v = q.text;
        i = q.end;
      } catch {
        return undefined;
      }
    } else {
      let j = i;
      while (j < s.length && s[j] !== ',' && s[j] !== ' ' && s[j] !== '\t') j++;
      v = s.slice(i, j);
      i = j;
    }
    if (params.has(name)) return undefined;
    params.set(name, v);
  }
  return { scheme: m[1]!, params };
}

function hash(algorithm: DigestAlgorithm, data: string): string {
  // one-shot hashing: no Hash object per call (three hashes per verified request)
  return oneShotHash(algorithm === 'MD5' ? 'md5' : 'sha256', data, 'hex');
}

export interface DigestInput {
  algorithm: DigestAlgorithm;
  username: string;
  realm: string;
  password: string;
  method: string;
  uri: string;
  nonce: string;
  qop?: string;
  nc?: string;
  cnonce?: string;
}

/** request-digest of RFC 7616 §3.4.1 (qop=auth) or RFC 2069 form (no qop). */
export function digestResponse(input: DigestInput): string {
  const ha1 = hash(input.algorithm, `${input.username}:${input.realm}:${input.password}`);
  const ha2 = hash(input.algorithm, `${input.method}:${input.uri}`);
  if (input.qop === undefined) return hash(input.algorithm, `${ha1}:${input.nonce}:${ha2}`);
  return hash(input.algorithm, `${ha1}:${input.nonce}:${input.nc}:${input.cnonce}:${input.qop}:${ha2}`);
}

/** Builds an Authorization header value for a challenge (used by tests and by outgoing requests). */
export function authorize(
  challenge: AuthHeader,
  creds: { username: string; password: string },
  method: string,
  uri: string,
): string {
  const realm = challenge.params.get('realm') ?? '';
  const nonce = challenge.params.get('nonce') ?? '';
  const algorithm = (challenge.params.get('algorithm') ?? 'MD5').toUpperCase() as DigestAlgorithm;
  const qop = challenge.params.get('qop') !== undefined ? 'auth' : undefined;
  const cnonce = randomBytes(8).toString('hex');
  const nc = '00000001';
  const input: DigestInput = {
    algorithm,
    username: creds.username,
    realm,
    password: creds.password,
    method,
    uri,
    nonce,
  };
  if (qop !== undefined) Object.assign(input, { qop, nc, cnonce });
  const response = digestResponse(input);
  let header = `Digest username="${creds.username}", realm="${realm}", nonce="${nonce}", uri="${uri}", response="${response}", algorithm=${algorithm}`;
  if (qop !== undefined) header += `, qop=${qop}, nc=${nc}, cnonce="${cnonce}"`;
  const opaque = challenge.params.get('opaque');
  if (opaque !== undefined) header += `, opaque="${opaque}"`;
  return header;
}

export interface NonceOptions {
  /** A nonce older than this is `stale` (the client retries with the new nonce without asking the user). */
  lifetimeMs?: number;
  /** Nonces whose `nc` is tracked at once (oldest forgotten first; a forgotten nonce is then stale). */
  maxTracked?: number;
  now?: () => number;
}

export type NonceCheck = 'ok' | 'stale' | 'invalid' | 'replay';

export class NonceManager {
  /** imported once: createHmac with raw bytes imports the key on every call */
  private readonly secret = createSecretKey(randomBytes(32));
  private readonly lifetimeMs: number;
  private readonly maxTracked: number;
  private readonly now: () => number;
  private readonly lastNc = new Map<string, number>();

  constructor(options: NonceOptions = {}) {
    this.lifetimeMs = options.lifetimeMs ?? 5 * 60_000;
    this.maxTracked = options.maxTracked ?? 100_000;
    this.now = options.now ?? monotonicNow;
  }

  create(): string {
    const body = `${Math.floor(this.now()).toString(36)}.${randomBase64url(9)}`;
    return `${body}.${this.mac(body)}`;
  }

  private mac(body: string): string {
    return createHmac('sha256', this.secret).update(body).digest('base64url').slice(0, 22);
  }

  /** Checks a nonce and, with qop, that `nc` grows (RFC 7616 §3.4.5). */
  check(nonce: string, nc: string | undefined): NonceCheck {
    const parts = nonce.split('.');
    if (parts.length !== 3) return 'invalid';
    const body = `${parts[0]}.${parts[1]}`;
    const expected = Buffer.from(this.mac(body));
    const given = Buffer.from(parts[2]!);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return 'invalid';
    const issued = Number.parseInt(parts[0]!, 36);
    if (!Number.isFinite(issued) || this.now() - issued > this.lifetimeMs) return 'stale';
    if (nc !== undefined) {
      if (!/^[0-9a-fA-F]{8}$/.test(nc)) return 'invalid';
      const n = Number.parseInt(nc, 16);
      const last = this.lastNc.get(nonce) ?? 0;
      if (n <= last) return 'replay';
      this.lastNc.delete(nonce);
      this.lastNc.set(nonce, n);
      if (this.lastNc.size > this.maxTracked) {
        const oldest = this.lastNc.keys().next().value;
        if (oldest !== undefined) this.lastNc.delete(oldest);
      }
    }
    return 'ok';
  }
}
