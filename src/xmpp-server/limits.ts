/**
 * Per-address rate limits (connections, failed logins): a fixed window of counts per address.
 * The table is bounded, so a flood from many addresses cannot grow it without limit; when it is full,
 * entries of expired windows go first, then the oldest.
 */

export interface RateLimitOptions {
  /** Events allowed per address per window; 0 disables the limit. */
  max: number;
  windowMs: number;
  /** Addresses never limited (exact match after stripping an IPv4-mapped prefix). */
  exempt?: readonly string[];
  /** Most addresses tracked at once. */
  maxAddresses?: number;
}

interface Window {
  start: number;
  count: number;
}

/** `::ffff:127.0.0.1` and `127.0.0.1` are the same peer. */
export function normalizeAddress(address: string | undefined): string {
  if (address === undefined) return '';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

export class AddressRateLimiter {
  private readonly max: number;
  private readonly windowMs: number;
  private readonly exempt: Set<string>;
  private readonly maxAddresses: number;
  private readonly windows = new Map<string, Window>();

  constructor(options: RateLimitOptions) {
    this.max = options.max;
    this.windowMs = options.windowMs;
    this.exempt = new Set((options.exempt ?? []).map(normalizeAddress));
    this.maxAddresses = options.maxAddresses ?? 100_000;
  }

  private current(address: string, now: number): Window | undefined {
    const w = this.windows.get(address);
    if (w === undefined || now - w.start >= this.windowMs) return undefined;
    return w;
  }

  /** True when this address already used up its events in the current window. */
  blocked(address: string | undefined, now = Date.now()): boolean {
    const key = normalizeAddress(address);
    if (this.max <= 0 || this.exempt.has(key)) return false;
    return (this.current(key, now)?.count ?? 0) >= this.max;
  }

  /** Counts one event; returns false when it is over the limit. */
  hit(address: string | undefined, now = Date.now()): boolean {
    const key = normalizeAddress(address);
    if (this.max <= 0 || this.exempt.has(key)) return true;
    let w = this.current(key, now);
    if (w === undefined) {
      this.windows.delete(key);
      if (this.windows.size >= this.maxAddresses) this.evict(now);
      w = { start: now, count: 0 };
      this.windows.set(key, w);
    }
    w.count++;
    return w.count <= this.max;
  }

  private evict(now: number): void {
    for (const [key, w] of this.windows) {
      if (now - w.start >= this.windowMs) this.windows.delete(key);
    }
    // Still full: drop the oldest (Map keeps insertion order).
    while (this.windows.size >= this.maxAddresses) {
      const first = this.windows.keys().next();
      if (first.done === true) break;
      this.windows.delete(first.value);
    }
  }

  get size(): number {
    return this.windows.size;
  }
}
