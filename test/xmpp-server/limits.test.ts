/** Per-address rate limits (limits.ts): counting, windows, exemptions, and a bounded table. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { AddressRateLimiter, normalizeAddress } from '../../src/xmpp-server/limits.ts';

test('allows max events per window per address, then blocks until the window is over', () => {
  const limiter = new AddressRateLimiter({ max: 3, windowMs: 1000 });
  for (let i = 0; i < 3; i++) assert.equal(limiter.hit('10.0.0.1', 0), true);
  assert.equal(limiter.blocked('10.0.0.1', 10), true);
  assert.equal(limiter.hit('10.0.0.1', 10), false);
  assert.equal(limiter.hit('10.0.0.2', 10), true, 'other addresses are not affected');
  assert.equal(limiter.blocked('10.0.0.1', 1000), false, 'a new window');
  assert.equal(limiter.hit('10.0.0.1', 1000), true);
});

test('exempt addresses and max 0 are never limited; IPv4-mapped IPv6 is the same address', () => {
  const limiter = new AddressRateLimiter({ max: 1, windowMs: 1000, exempt: ['127.0.0.1'] });
  for (let i = 0; i < 10; i++) assert.equal(limiter.hit('::ffff:127.0.0.1', 0), true);
  assert.equal(limiter.hit('::ffff:10.1.1.1', 0), true);
  assert.equal(limiter.hit('10.1.1.1', 0), false);
  assert.equal(normalizeAddress('::ffff:10.1.1.1'), '10.1.1.1');
  assert.equal(normalizeAddress('::1'), '::1');
  const off = new AddressRateLimiter({ max: 0, windowMs: 1000 });
  for (let i = 0; i < 10; i++) assert.equal(off.hit('10.0.0.1', 0), true);
  assert.equal(off.size, 0);
});

test('the table never holds more than maxAddresses, whatever the addresses and times', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.string({ maxLength: 40 }), fc.nat({ max: 10_000 })), { maxLength: 300 }),
      (events) => {
        const limiter = new AddressRateLimiter({ max: 2, windowMs: 500, maxAddresses: 16 });
        let now = 0;
        for (const [address, dt] of events) {
          now += dt;
          limiter.hit(address, now);
          assert.ok(limiter.size <= 16);
        }
      },
    ),
  );
});
