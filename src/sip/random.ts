/**
 * Random identifiers (branches, tags, Call-IDs, nonces) from a pool of cryptographically strong bytes.
 * crypto.randomBytes costs a call into OpenSSL per identifier, which showed as about a tenth of the
 * voice server's JavaScript time per call; one refill per 4 KB serves a few hundred identifiers.
 * Bytes are never handed out twice.
 */
import { randomFillSync } from 'node:crypto';

const POOL_BYTES = 4096;
const pool = Buffer.allocUnsafe(POOL_BYTES);
let offset = POOL_BYTES;

function take(bytes: number): number {
  if (bytes > POOL_BYTES) throw new RangeError('too many random bytes at once');
  if (offset + bytes > POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  const at = offset;
  offset += bytes;
  return at;
}

/** `bytes` random bytes as lower-case hex (2 characters per byte). */
export function randomHex(bytes: number): string {
  const at = take(bytes);
  return pool.toString('hex', at, at + bytes);
}

/** `bytes` random bytes as base64url without padding. */
export function randomBase64url(bytes: number): string {
  const at = take(bytes);
  return pool.toString('base64url', at, at + bytes);
}
