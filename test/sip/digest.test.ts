/** Digest (RFC 7616): the RFC's own example vectors, header parsing, nonce expiry, stale and replay. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { digestResponse, NonceManager, parseAuthHeader } from '../../src/sip/digest.ts';

describe('digestResponse', () => {
  const base = {
    username: 'Mufasa',
    realm: 'http-auth@example.org',
    password: 'Circle of Life',
    method: 'GET',
    uri: '/dir/index.html',
    nonce: '7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v',
    qop: 'auth',
    nc: '00000001',
    cnonce: 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ',
  };
  it('matches RFC 7616 §3.9.1 for MD5 and SHA-256', () => {
    assert.equal(digestResponse({ ...base, algorithm: 'MD5' }), '8ca523f5e9506fed4657c9700eebdbec');
    assert.equal(
      digestResponse({ ...base, algorithm: 'SHA-256' }),
      '753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1',
    );
  });
  it('RFC 2617 form without qop (RFC 2069 compatibility)', () => {
    const { qop: _q, nc: _n, cnonce: _c, ...noQop } = base;
    assert.match(digestResponse({ ...noQop, algorithm: 'MD5' }), /^[0-9a-f]{32}$/);
  });
});

describe('parseAuthHeader', () => {
  it('parses quoted and token values with odd spacing', () => {
    const h = parseAuthHeader(
      'Digest username="1001",realm="localhost" , nonce="a,b", uri="sip:localhost", qop=auth, nc=00000001',
    );
    assert.equal(h?.scheme, 'Digest');
    assert.equal(h?.params.get('nonce'), 'a,b');
    assert.equal(h?.params.get('qop'), 'auth');
  });
  it('rejects malformed and oversized headers without throwing', () => {
    assert.equal(parseAuthHeader('Digest username="x'), undefined);
    assert.equal(parseAuthHeader('Digest a=1, a=2'), undefined);
    assert.equal(parseAuthHeader(`Digest username="${'x'.repeat(5000)}"`), undefined);
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (s) => void parseAuthHeader(s)),
      { numRuns: 2000 },
    );
  });
});

describe('NonceManager', () => {
  it('accepts its own nonces, refuses forged ones, marks old ones stale', () => {
    let now = 1_000_000;
    const m = new NonceManager({ lifetimeMs: 1000, now: () => now });
    const nonce = m.create();
    assert.equal(m.check(nonce, undefined), 'ok');
    assert.equal(m.check(`${nonce}x`, undefined), 'invalid');
    assert.equal(m.check('abc', undefined), 'invalid');
    assert.equal(new NonceManager().check(nonce, undefined), 'invalid', 'another server secret');
    now += 1001;
    assert.equal(m.check(nonce, undefined), 'stale');
  });
  it('refuses a replayed or decreasing nonce count', () => {
    const m = new NonceManager();
    const nonce = m.create();
    assert.equal(m.check(nonce, '00000001'), 'ok');
    assert.equal(m.check(nonce, '00000001'), 'replay');
    assert.equal(m.check(nonce, '00000002'), 'ok');
    assert.equal(m.check(nonce, 'zz'), 'invalid');
  });
  it('bounds the nonce-count table', () => {
    const m = new NonceManager({ maxTracked: 10 });
    const nonces = Array.from({ length: 50 }, () => m.create());
    for (const n of nonces) assert.equal(m.check(n, '00000001'), 'ok');
    assert.equal(m.check(nonces[49]!, '00000001'), 'replay');
  });
});
