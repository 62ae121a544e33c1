/**
 * isHoldOffer: which SDP offers of a phone put its call on hold (CSTA Held) — a=sendonly, a=inactive
 * (RFC 3264 §8.4) and the RFC 2543 connection address 0.0.0.0 that older phones still send — and which
 * take it off hold.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isHoldOffer, withDirection } from '../../src/pbx/b2bua.ts';

const offer = (lines: string[]) =>
  Buffer.from(
    [
      'v=0',
      'o=phone 1 2 IN IP4 192.0.2.10',
      's=-',
      ...lines.filter((l) => l.startsWith('c=')),
      't=0 0',
      'm=audio 4000 RTP/AVP 0',
      ...lines.filter((l) => !l.startsWith('c=')),
      '',
    ].join('\r\n'),
    'latin1',
  );

describe('isHoldOffer', () => {
  it('sendonly and inactive hold, at session or media level', () => {
    assert.equal(isHoldOffer(offer(['c=IN IP4 192.0.2.10', 'a=sendonly'])), true);
    assert.equal(isHoldOffer(offer(['c=IN IP4 192.0.2.10', 'a=inactive'])), true);
    assert.equal(
      isHoldOffer(Buffer.from('v=0\r\na=inactive\r\nc=IN IP4 192.0.2.10\r\nm=audio 4000 RTP/AVP 0\r\n')),
      true,
    );
  });

  it('the RFC 2543 hold: c=IN IP4 0.0.0.0, without any direction attribute', () => {
    assert.equal(isHoldOffer(offer(['c=IN IP4 0.0.0.0'])), true);
    assert.equal(isHoldOffer(Buffer.from('v=0\nc=IN IP4 0.0.0.0\nm=audio 4000 RTP/AVP 0\n')), true);
  });

  it('sendrecv, recvonly, no direction and look-alike lines do not hold', () => {
    assert.equal(isHoldOffer(offer(['c=IN IP4 192.0.2.10'])), false);
    assert.equal(isHoldOffer(offer(['c=IN IP4 192.0.2.10', 'a=sendrecv'])), false);
    assert.equal(isHoldOffer(offer(['c=IN IP4 192.0.2.10', 'a=recvonly'])), false);
    assert.equal(isHoldOffer(offer(['c=IN IP4 10.0.0.0', 'a=x-sendonly'])), false);
    assert.equal(isHoldOffer(offer(['c=IN IP4 0.0.0.01'])), false);
    assert.equal(isHoldOffer(Buffer.alloc(0)), false);
  });

  it('what withDirection makes of any offer holds exactly when the direction is sendonly or inactive', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('sendonly', 'inactive', 'sendrecv', 'recvonly', ''),
        fc.constantFrom('sendonly', 'inactive', 'sendrecv') as fc.Arbitrary<
          'sendonly' | 'inactive' | 'sendrecv'
        >,
        fc.nat(1000),
        (before, direction, bump) => {
          const sdp = offer(['c=IN IP4 192.0.2.10', ...(before === '' ? [] : [`a=${before}`])]);
          const out = withDirection({ type: 'application/sdp', body: sdp }, direction, bump);
          assert.equal(isHoldOffer(out.body), direction !== 'sendrecv');
        },
      ),
    );
  });
});
