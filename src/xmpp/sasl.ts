/**
 * SASL mechanisms for XMPP: SCRAM-SHA-1 (RFC 5802), SCRAM-SHA-256 (RFC 7677) and PLAIN (RFC 4616),
 * server side (against stored SCRAM keys, never plaintext) and client side (for our tests, benchmarks
 * and the gateway). No channel binding: the -PLUS variants are not offered, and a client that asks for
 * binding ('p=') is refused.
 */
import { createHash, createHmac, pbkdf2, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { saslprep } from './saslprep.ts';

export type ScramHash = 'SHA-1' | 'SHA-256';
export const SCRAM_MECHANISMS: Record<string, ScramHash> = {
  'SCRAM-SHA-256': 'SHA-256',
  'SCRAM-SHA-1': 'SHA-1',
};

/** What the account store keeps per hash: RFC 5802 §3 StoredKey and ServerKey, salt and iteration count. */
export interface ScramCredentials {
  salt: Buffer;
  iterations: number;
  storedKey: Buffer;
  serverKey: Buffer;
}

export type SaslFailure =
  | 'aborted'
  | 'account-disabled'
  | 'credentials-expired'
  | 'encryption-required'
  | 'incorrect-encoding'
  | 'invalid-authzid'
  | 'invalid-mechanism'
  | 'malformed-request'
  | 'mechanism-too-weak'
  | 'not-authorized'
  | 'temporary-auth-failure';

export type SaslStep =
  | { kind: 'challenge'; data: Buffer }
  | { kind: 'success'; data: Buffer | undefined; username: string; authzid: string | undefined }
  | { kind: 'failure'; condition: SaslFailure; text?: string };

export const DEFAULT_ITERATIONS = 4096;

function algo(hash: ScramHash): string {
  return hash === 'SHA-1' ? 'sha1' : 'sha256';
}

function hashLen(hash: ScramHash): number {
  return hash === 'SHA-1' ? 20 : 32;
}

function hmac(hash: ScramHash, key: Buffer, data: string | Buffer): Buffer {
  return createHmac(algo(hash), key).update(data).digest();
}

function h(hash: ScramHash, data: Buffer): Buffer {
  return createHash(algo(hash)).update(data).digest();
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.allocUnsafe(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

function keysFromSalted(hash: ScramHash, salted: Buffer): { storedKey: Buffer; serverKey: Buffer } {
  return {
    storedKey: h(hash, hmac(hash, salted, 'Client Key')),
    serverKey: hmac(hash, salted, 'Server Key'),
  };
}

/** Derives the stored keys from a password (synchronously: for tests and the CLI). */
export function deriveScramCredentials(
  hash: ScramHash,
  password: string,
  salt: Buffer = randomBytes(16),
  iterations = DEFAULT_ITERATIONS,
): ScramCredentials {
  const salted = pbkdf2Sync(saslprep(password), salt, iterations, hashLen(hash), algo(hash));
  return { salt, iterations, ...keysFromSalted(hash, salted) };
}

/** Same as deriveScramCredentials, without blocking the event loop. */
export async function deriveScramCredentialsAsync(
  hash: ScramHash,
  password: string,
  salt: Buffer = randomBytes(16),
  iterations = DEFAULT_ITERATIONS,
): Promise<ScramCredentials> {
  const prepared = saslprep(password);
  const salted = await new Promise<Buffer>((resolve, reject) =>
    pbkdf2(prepared, salt, iterations, hashLen(hash), algo(hash), (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  );
  return { salt, iterations, ...keysFromSalted(hash, salted) };
}

/** Checks a plaintext password against stored keys (for PLAIN). */
export async function verifyPassword(
  hash: ScramHash,
  credentials: ScramCredentials,
  password: string,
): Promise<boolean> {
  let derived: ScramCredentials;
  try {
    derived = await deriveScramCredentialsAsync(hash, password, credentials.salt, credentials.iterations);
  } catch {
    return false;
  }
  return (
    derived.storedKey.length === credentials.storedKey.length &&
    timingSafeEqual(derived.storedKey, credentials.storedKey)
  );
}

/** RFC 5802 §5.1 saslname: ',' and '=' are sent as =2C and =3D; any other '=' is malformed. */
function decodeSaslname(value: string): string | undefined {
  if (/=(?!2C|3D)/.test(value)) return undefined;
  return value.replace(/=2C/g, ',').replace(/=3D/g, '=');
}

function encodeSaslname(value: string): string {
  return value.replace(/=/g, '=3D').replace(/,/g, '=2C');
}

function attributes(message: string): Map<string, string> | undefined {
  const out = new Map<string, string>();
  for (const part of message.split(',')) {
    if (part.length < 2 || part[1] !== '=') return undefined;
    const key = part[0]!;
    if (out.has(key)) return undefined;
    out.set(key, part.slice(2));
  }
  return out;
}

const PRINTABLE_NONCE = /^[\x21-\x2b\x2d-\x7e]+$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Strict base64 decoding (RFC 6120 §6.4.2 wants incorrect-encoding for bad input). */
export function decodeBase64Strict(text: string): Buffer | undefined {
  const clean = text.replace(/\s+/g, '');
  if (!BASE64.test(clean)) return undefined;
  return Buffer.from(clean, 'base64');
}

export function randomNonce(): string {
  return randomBytes(18).toString('base64');
}

/** Looks up credentials for a (saslprepped) user name; undefined when unknown. */
export type CredentialLookup = (username: string, hash: ScramHash) => ScramCredentials | undefined;

const fakeSecret = randomBytes(32);

/**
 * One SCRAM exchange, server side. Unknown users go through the whole exchange with made-up
 * credentials and fail at the end, so the exchange does not reveal which accounts exist.
 */
export class ScramServer {
  readonly mechanism: string;
  private readonly hash: ScramHash;
  private readonly lookup: CredentialLookup;
  private readonly serverNonce: string;
  private state: 'first' | 'final' | 'done' = 'first';
  private username = '';
  private authzid: string | undefined;
  private gs2Header = '';
  private nonce = '';
  private clientFirstBare = '';
  private serverFirst = '';
  private credentials: ScramCredentials | undefined;
  private known = false;

  constructor(hash: ScramHash, lookup: CredentialLookup, serverNonce: string = randomNonce()) {
    this.hash = hash;
    this.mechanism = hash === 'SHA-1' ? 'SCRAM-SHA-1' : 'SCRAM-SHA-256';
    this.lookup = lookup;
    this.serverNonce = serverNonce;
  }

  step(input: Buffer): SaslStep {
    if (this.state === 'first') return this.first(input);
    if (this.state === 'final') return this.final(input);
    return { kind: 'failure', condition: 'malformed-request', text: 'exchange already finished' };
  }

  private first(input: Buffer): SaslStep {
    this.state = 'done';
    const message = input.toString('utf8');
    // gs2-header = gs2-cbind-flag "," [authzid] ","
    const firstComma = message.indexOf(',');
    const secondComma = message.indexOf(',', firstComma + 1);
    if (firstComma === -1 || secondComma === -1) return malformed('no GS2 header');
    const flag = message.slice(0, firstComma);
    if (flag.startsWith('p='))
      return { kind: 'failure', condition: 'not-authorized', text: 'channel binding not supported' };
    if (flag !== 'n' && flag !== 'y') return malformed('bad channel binding flag');
    const authz = message.slice(firstComma + 1, secondComma);
    if (authz !== '') {
      if (!authz.startsWith('a=')) return malformed('bad authzid');
      const decoded = decodeSaslname(authz.slice(2));
      if (decoded === undefined || decoded === '') return malformed('bad authzid');
      this.authzid = decoded;
    }
    this.gs2Header = message.slice(0, secondComma + 1);
    this.clientFirstBare = message.slice(secondComma + 1);
    if (this.clientFirstBare.startsWith('m=')) return malformed('mandatory extension not supported');
    const attrs = attributes(this.clientFirstBare);
    const rawUser = attrs?.get('n');
    const clientNonce = attrs?.get('r');
    if (rawUser === undefined || clientNonce === undefined) return malformed('missing n or r');
    if (!PRINTABLE_NONCE.test(clientNonce)) return malformed('bad nonce');
    const decodedUser = decodeSaslname(rawUser);
    if (decodedUser === undefined || decodedUser === '') return malformed('bad user name');
    try {
      this.username = saslprep(decodedUser, { allowUnassigned: true });
    } catch {
      return { kind: 'failure', condition: 'not-authorized' };
    }
    let credentials: ScramCredentials | undefined;
    try {
      credentials = this.lookup(this.username, this.hash);
    } catch {
      return { kind: 'failure', condition: 'temporary-auth-failure' };
    }
    this.known = credentials !== undefined;
    this.credentials = credentials ?? this.fakeCredentials();
    this.nonce = clientNonce + this.serverNonce;
    this.serverFirst = `r=${this.nonce},s=${this.credentials.salt.toString('base64')},i=${this.credentials.iterations}`;
    this.state = 'final';
    return { kind: 'challenge', data: Buffer.from(this.serverFirst, 'utf8') };
  }

  private final(input: Buffer): SaslStep {
    this.state = 'done';
    const message = input.toString('utf8');
    const proofAt = message.lastIndexOf(',p=');
    if (proofAt === -1) return malformed('missing proof');
    const withoutProof = message.slice(0, proofAt);
    const attrs = attributes(withoutProof);
    if (attrs === undefined) return malformed('bad client-final-message');
    const cbind = attrs.get('c');
    const nonce = attrs.get('r');
    if (cbind === undefined || nonce === undefined) return malformed('missing c or r');
    if (cbind !== Buffer.from(this.gs2Header, 'utf8').toString('base64'))
      return { kind: 'failure', condition: 'not-authorized', text: 'channel binding mismatch' };
    if (nonce !== this.nonce) return { kind: 'failure', condition: 'not-authorized', text: 'nonce mismatch' };
    const proof = decodeBase64Strict(message.slice(proofAt + 3));
    if (proof === undefined) return { kind: 'failure', condition: 'incorrect-encoding' };
    const credentials = this.credentials!;
    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
    const clientSignature = hmac(this.hash, credentials.storedKey, authMessage);
    if (proof.length !== clientSignature.length) return { kind: 'failure', condition: 'not-authorized' };
    const clientKey = xor(proof, clientSignature);
    const ok = timingSafeEqual(h(this.hash, clientKey), credentials.storedKey);
    if (!ok || !this.known) return { kind: 'failure', condition: 'not-authorized' };
    const serverSignature = hmac(this.hash, credentials.serverKey, authMessage);
    return {
      kind: 'success',
      data: Buffer.from(`v=${serverSignature.toString('base64')}`, 'utf8'),
      username: this.username,
      authzid: this.authzid,
    };
  }

  private fakeCredentials(): ScramCredentials {
    const seed = createHmac('sha256', fakeSecret).update(this.username).digest();
    return {
      salt: seed.subarray(0, 16),
      iterations: DEFAULT_ITERATIONS,
      storedKey: randomBytes(hashLen(this.hash)),
      serverKey: randomBytes(hashLen(this.hash)),
    };
  }
}

function malformed(text: string): SaslStep {
  return { kind: 'failure', condition: 'malformed-request', text };
}

/** PLAIN (RFC 4616): [authzid] NUL authcid NUL passwd. */
export function parsePlain(
  input: Buffer,
): { authzid: string | undefined; username: string; password: string } | undefined {
  const parts = input.toString('utf8').split('\0');
  if (parts.length !== 3) return undefined;
  const [authzid, authcid, passwd] = parts as [string, string, string];
  if (authcid === '' || passwd === '' || authcid.length > 1023 || passwd.length > 1023) return undefined;
  try {
    return {
      authzid: authzid === '' ? undefined : authzid,
      username: saslprep(authcid, { allowUnassigned: true }),
      password: passwd,
    };
  } catch {
    return undefined;
  }
}

/** SCRAM client side, for tests, benchmarks and components that log in as users. */
export class ScramClient {
  readonly mechanism: string;
  private readonly hash: ScramHash;
  private readonly password: string;
  private readonly clientNonce: string;
  private readonly clientFirstBare: string;
  private readonly gs2Header: string;
  private serverSignature: Buffer | undefined;

  constructor(hash: ScramHash, username: string, password: string, clientNonce: string = randomNonce()) {
    this.hash = hash;
    this.mechanism = hash === 'SHA-1' ? 'SCRAM-SHA-1' : 'SCRAM-SHA-256';
    this.password = password;
    this.clientNonce = clientNonce;
    this.gs2Header = 'n,,';
    this.clientFirstBare = `n=${encodeSaslname(saslprep(username))},r=${clientNonce}`;
  }

  first(): Buffer {
    return Buffer.from(this.gs2Header + this.clientFirstBare, 'utf8');
  }

  /** Answers the server-first-message; throws on a malformed or hostile one. */
  final(serverFirst: Buffer): Buffer {
    const text = serverFirst.toString('utf8');
    const attrs = attributes(text);
    const nonce = attrs?.get('r');
    const salt = attrs?.get('s');
    const iterations = Number(attrs?.get('i'));
    if (nonce === undefined || salt === undefined || !nonce.startsWith(this.clientNonce))
      throw new Error('bad server-first-message');
    if (!Number.isInteger(iterations) || iterations < 1 || iterations > 1_000_000)
      throw new Error('bad iteration count');
    const salted = pbkdf2Sync(
      saslprep(this.password),
      Buffer.from(salt, 'base64'),
      iterations,
      hashLen(this.hash),
      algo(this.hash),
    );
    const clientKey = hmac(this.hash, salted, 'Client Key');
    const storedKey = h(this.hash, clientKey);
    const withoutProof = `c=${Buffer.from(this.gs2Header).toString('base64')},r=${nonce}`;
    const authMessage = `${this.clientFirstBare},${text},${withoutProof}`;
    const proof = xor(clientKey, hmac(this.hash, storedKey, authMessage));
    this.serverSignature = hmac(this.hash, hmac(this.hash, salted, 'Server Key'), authMessage);
    return Buffer.from(`${withoutProof},p=${proof.toString('base64')}`, 'utf8');
  }

  /** Checks the server-final-message (mutual authentication). */
  verify(serverFinal: Buffer): boolean {
    const text = serverFinal.toString('utf8');
    return this.serverSignature !== undefined && text === `v=${this.serverSignature.toString('base64')}`;
  }
}
