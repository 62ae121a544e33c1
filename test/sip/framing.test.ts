/** Content-Length framing on stream transports (RFC 3261 §18.3), keep-alives, and hostile streams. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { DEFAULT_SIP_LIMITS } from '../../src/sip/errors.ts';
import { type FramedItem, SipStreamFramer } from '../../src/sip/framing.ts';
import { SipRequest } from '../../src/sip/message.ts';
import { crlf, MPART01, MPART01_BODY } from './fixtures/rfc4475.ts';

const msg = (n: number, body = '') =>
  crlf(`OPTIONS sip:u@example.com SIP/2.0
Via: SIP/2.0/TCP h.example.com;branch=z9hG4bK${n}
To: <sip:u@example.com>
From: <sip:c@example.com>;tag=1
Call-ID: call${n}
CSeq: ${n} OPTIONS
Max-Forwards: 70
Content-Length: ${Buffer.byteLength(body)}

`) + body;

function callIds(items: FramedItem[]): string[] {
  return items.filter((i) => i.kind === 'message').map((i) => (i.kind === 'message' ? i.message.callId : ''));
}

describe('SipStreamFramer', () => {
  it('splits pipelined messages, with bodies containing blank lines', () => {
    const f = new SipStreamFramer();
    const items = f.push(Buffer.from(msg(1, 'a\r\n\r\nb') + msg(2) + msg(3, 'xyz')));
    assert.deepEqual(callIds(items), ['call1', 'call2', 'call3']);
    const first = items[0];
    assert.ok(first?.kind === 'message' && first.message instanceof SipRequest);
    assert.equal(first.message.body.toString(), 'a\r\n\r\nb');
    assert.equal(f.buffered, 0);
  });

  it('reassembles a message split at every possible point (and trickled byte by byte)', () => {
    const whole = Buffer.from(msg(1, 'hello') + msg(2));
    for (let cut = 1; cut < whole.length; cut++) {
      const f = new SipStreamFramer();
      const items = [...f.push(whole.subarray(0, cut)), ...f.push(whole.subarray(cut))];
      assert.deepEqual(callIds(items), ['call1', 'call2'], `cut at ${cut}`);
    }
    const f = new SipStreamFramer();
    const items: FramedItem[] = [];
    for (const b of whole) items.push(...f.push(Buffer.from([b])));
    assert.deepEqual(callIds(items), ['call1', 'call2']);
  });

  it('frames RFC 4475 mpart01 (binary body with CR, LF and NUL bytes) split at every point', () => {
    const whole = Buffer.concat([MPART01, Buffer.from(msg(2))]);
    for (let cut = 1; cut < whole.length; cut++) {
      const f = new SipStreamFramer();
      const items = [...f.push(whole.subarray(0, cut)), ...f.push(whole.subarray(cut))];
      const first = items[0];
      assert.ok(first?.kind === 'message', `cut at ${cut}`);
      assert.ok(first.message.body.equals(MPART01_BODY), `cut at ${cut}`);
      assert.equal(callIds(items)[1], 'call2', `cut at ${cut}`);
    }
  });

  it('reports CRLF CRLF keep-alive pings and ignores single CRLFs between messages', () => {
    const f = new SipStreamFramer();
    const items = f.push(Buffer.from(`\r\n\r\n${msg(1)}\r\n${msg(2)}`));
    assert.equal(items[0]?.kind, 'ping');
    assert.deepEqual(callIds(items), ['call1', 'call2']);
  });

  it('missing Content-Length on a stream is fatal (400 and close)', () => {
    const f = new SipStreamFramer();
    const items = f.push(Buffer.from(msg(1).replace('Content-Length: 0\r\n', '')));
    const e = items[0];
    assert.ok(e?.kind === 'error');
    assert.equal(e.error.status, 400);
    assert.equal(e.error.fatal, true);
    assert.equal(e.error.partial?.method, 'OPTIONS');
    assert.deepEqual(f.push(Buffer.from(msg(2))), [], 'nothing after a fatal error');
  });

  it('a bad message with valid framing is reported and the stream continues', () => {
    const f = new SipStreamFramer();
    const items = f.push(Buffer.from(msg(1).replace('CSeq: 1 OPTIONS', 'CSeq: x') + msg(2)));
    assert.equal(items[0]?.kind, 'error');
    assert.equal(items[0]?.kind === 'error' && items[0].error.fatal, false);
    assert.deepEqual(callIds(items), ['call2']);
  });

  it('negative, conflicting or oversized Content-Length is fatal', () => {
    for (const cl of ['-1', '5\r\nContent-Length: 6', String(DEFAULT_SIP_LIMITS.maxBodyBytes + 1)]) {
      const f = new SipStreamFramer();
      const items = f.push(Buffer.from(msg(1).replace('Content-Length: 0', `Content-Length: ${cl}`)));
      assert.ok(items[0]?.kind === 'error' && items[0].error.fatal, cl);
    }
  });

  it('an endless header section is cut at the limit with bounded memory', () => {
    const f = new SipStreamFramer();
    let items: FramedItem[] = [];
    items = f.push(Buffer.from('OPTIONS sip:a@b SIP/2.0\r\n'));
    const line = Buffer.from(`X-Junk: ${'j'.repeat(100)}\r\n`);
    for (let i = 0; i < 1000 && items.length === 0; i++) items = f.push(line);
    assert.ok(items[0]?.kind === 'error' && items[0].error.status === 513);
    assert.equal(f.buffered, 0);
  });

  it('random chunking of random valid streams yields the same messages', () => {
    fc.assert(
      fc.property(
        fc.array(fc.string({ maxLength: 50 }), { minLength: 1, maxLength: 5 }),
        fc.array(fc.nat(400), { maxLength: 10 }),
        (bodies, cuts) => {
          const stream = Buffer.from(bodies.map((b, i) => msg(i, b)).join(''));
          const f = new SipStreamFramer();
          const items: FramedItem[] = [];
          let pos = 0;
          for (const c of [...cuts.map((c) => c % (stream.length + 1))].sort((a, b) => a - b)) {
            items.push(...f.push(stream.subarray(pos, Math.max(pos, c))));
            pos = Math.max(pos, c);
          }
          items.push(...f.push(stream.subarray(pos)));
          assert.deepEqual(
            callIds(items),
            bodies.map((_, i) => `call${i}`),
          );
          items.forEach((it, i) => {
            assert.ok(it.kind === 'message');
            assert.equal(it.message.body.toString(), Buffer.from(bodies[i]!).toString());
          });
        },
      ),
      { numRuns: 300 },
    );
  });

  it('garbage never throws', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 10 }), (chunks) => {
        const f = new SipStreamFramer();
        for (const c of chunks) f.push(Buffer.from(c));
      }),
      { numRuns: 1000 },
    );
  });
});
