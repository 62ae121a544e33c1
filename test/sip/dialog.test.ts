/** Dialogs (RFC 3261 §12): UAC/UAS state from the creating messages, CSeq rules, loose and strict routing. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Dialog } from '../../src/sip/dialog.ts';
import { createResponse, type SipRequest } from '../../src/sip/message.ts';
import { parseMessage } from '../../src/sip/parser.ts';
import { formatUri } from '../../src/sip/uri.ts';
import { crlf } from './fixtures/rfc4475.ts';

const invite = (recordRoute: string[]) =>
  parseMessage(
    crlf(
      `INVITE sip:bob@biloxi.example.com SIP/2.0
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8
Max-Forwards: 70
To: Bob <sip:bob@biloxi.example.com>
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774
Call-ID: a84b4c76e66710
CSeq: 314159 INVITE
Contact: <sip:alice@pc33.atlanta.example.com>
${recordRoute.map((r) => `Record-Route: ${r}`).join('\n')}
Content-Length: 0

`.replace(/\n\n\n/, '\n\n'),
    ),
  ) as SipRequest;

describe('Dialog', () => {
  it('UAS side: tags, remote target, route set in Record-Route order, CSeq checks', () => {
    const req = invite(['<sip:p1.example.com;lr>', '<sip:p2.example.com;lr>']);
    const ok = createResponse(req, 200, undefined, 'bobtag');
    const d = Dialog.asUas(req, ok, '<sip:bob@192.0.2.4>');
    assert.equal(d.id, 'a84b4c76e66710|bobtag|1928301774');
    assert.equal(formatUri(d.remoteTarget), 'sip:alice@pc33.atlanta.example.com');
    const bye = d.createRequest('BYE');
    assert.equal(formatUri(bye.uri), 'sip:alice@pc33.atlanta.example.com', 'loose routing keeps the target');
    assert.deepEqual(bye.getAll('Route'), ['<sip:p1.example.com;lr>', '<sip:p2.example.com;lr>']);
    assert.equal(bye.from.params.get('tag'), 'bobtag');
    assert.equal(bye.to.params.get('tag'), '1928301774');
    assert.equal(bye.cseq.seq, 1);
    const byeFromAlice = invite([]);
    byeFromAlice.method = 'BYE';
    byeFromAlice.set('CSeq', '314160 BYE');
    assert.equal(d.acceptRemoteSeq(byeFromAlice), true);
    assert.equal(d.acceptRemoteSeq(byeFromAlice), false, 'a CSeq not higher than the last is refused');
  });

  it('UAC side: route set reversed, next CSeq, ACK reuses the INVITE CSeq', () => {
    const req = invite([]);
    const ok = createResponse(req, 200, undefined, 'bobtag');
    ok.append('Record-Route', '<sip:p2.example.com;lr>');
    ok.append('Record-Route', '<sip:p1.example.com;lr>');
    ok.append('Contact', '<sip:bob@192.0.2.4>');
    const d = Dialog.asUac(req, ok);
    assert.deepEqual(d.routeSet, ['<sip:p1.example.com;lr>', '<sip:p2.example.com;lr>']);
    assert.equal(d.createRequest('ACK', 314159).cseq.seq, 314159);
    assert.equal(d.createRequest('BYE').cseq.seq, 314160);
    assert.equal(formatUri(d.createRequest('BYE').uri), 'sip:bob@192.0.2.4');
  });

  it('strict routing: the first route becomes the Request-URI, the target the last Route', () => {
    const req = invite(['<sip:strict.example.com>', '<sip:p2.example.com;lr>']);
    const d = Dialog.asUas(req, createResponse(req, 200, undefined, 't'), '<sip:bob@192.0.2.4>');
    const bye = d.createRequest('BYE');
    assert.equal(formatUri(bye.uri), 'sip:strict.example.com');
    assert.deepEqual(bye.getAll('Route'), [
      '<sip:p2.example.com;lr>',
      '<sip:alice@pc33.atlanta.example.com>',
    ]);
  });
});
