/**
 * RFC 3261 §17 transaction machines (with RFC 6026 Accepted), every timer path driven by node:test mock
 * timers: A, B, D (INVITE client), E, F, K (non-INVITE client), G, H, I, L (INVITE server), J (non-INVITE
 * server), and M (RFC 6026).
 */
import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import { createResponse, type SipRequest, type SipResponse } from '../../src/sip/message.ts';
import { parseMessage } from '../../src/sip/parser.ts';
import {
  type ClientTransaction,
  DEFAULT_TIMERS,
  InviteClientTransaction,
  InviteServerTransaction,
  NonInviteClientTransaction,
  NonInviteServerTransaction,
} from '../../src/sip/transaction.ts';
import { crlf } from './fixtures/rfc4475.ts';

const { T1, T2, T4 } = DEFAULT_TIMERS;

function req(method: string): SipRequest {
  return parseMessage(
    crlf(`${method} sip:bob@example.com SIP/2.0
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKabc
Max-Forwards: 70
To: <sip:bob@example.com>
From: <sip:alice@example.com>;tag=a1
Call-ID: tx1@example.com
CSeq: 1 ${method}
Contact: <sip:alice@192.0.2.1>
Content-Length: 0

`),
  ) as SipRequest;
}

function recorder() {
  const sent: Array<SipRequest | SipResponse> = [];
  const send = async (m: SipRequest | SipResponse) => {
    sent.push(m);
  };
  return { sent, send };
}

function tuRecorder() {
  const events: string[] = [];
  return {
    events,
    tu: {
      onResponse: (r: SipResponse, _tx: ClientTransaction) => events.push(`response ${r.status}`),
      onTimeout: () => events.push('timeout'),
      onTransportError: (_tx: ClientTransaction, e: Error) => events.push(`transport ${e.message}`),
    },
  };
}

function mockTimers(t: TestContext) {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  return (ms: number) => t.mock.timers.tick(ms);
}

const methods = (sent: Array<SipRequest | SipResponse>) =>
  sent.map((m) => ('method' in m ? (m as SipRequest).method : String((m as SipResponse).status)));

describe('INVITE client transaction', () => {
  it('Timer A retransmits at T1, 2T1, 4T1 ... and Timer B times out at 64*T1', (t) => {
    const tick = mockTimers(t);
    const { sent, send } = recorder();
    const { events, tu } = tuRecorder();
    const tx = new InviteClientTransaction('k', req('INVITE'), send, false, DEFAULT_TIMERS, tu);
    tx.start();
    assert.equal(sent.length, 1);
    tick(T1);
    assert.equal(sent.length, 2);
    tick(2 * T1);
    assert.equal(sent.length, 3);
    tick(4 * T1);
    assert.equal(sent.length, 4);
    tick(64 * T1 - 7 * T1 - 1);
    assert.deepEqual(events, []);
    tick(1);
    assert.deepEqual(events, ['timeout']);
    assert.equal(tx.state, 'terminated');
    const count = sent.length;
    tick(100_000);
    assert.equal(sent.length, count, 'no retransmission after termination');
  });

  it('no Timer A on a reliable transport', (t) => {
    const tick = mockTimers(t);
    const { sent, send } = recorder();
    const tx = new InviteClientTransaction('k', req('INVITE'), send, true, DEFAULT_TIMERS, tuRecorder().tu);
    tx.start();
    tick(10 * T1);
    assert.equal(sent.length, 1);
    assert.deepEqual(tx.runningTimers, ['B']);
  });

  it('1xx stops Timer A; non-2xx final sends ACK, absorbs retransmissions with ACK, Timer D 32 s', (t) => {
    const tick = mockTimers(t);
    const { sent, send } = recorder();
    const { events, tu } = tuRecorder();
    const invite = req('INVITE');
    const tx = new InviteClientTransaction('k', invite, send, false, DEFAULT_TIMERS, tu);
    tx.start();
    tx.receiveResponse(createResponse(invite, 180, undefined, 'b1'));
    assert.equal(tx.state, 'proceeding');
    tick(10 * T1);
    assert.equal(sent.length, 1, 'Timer A stopped by 1xx');
    const busy = createResponse(invite, 486, undefined, 'b1');
    tx.receiveResponse(busy);
    assert.equal(tx.state, 'completed');
    assert.deepEqual(methods(sent), ['INVITE', 'ACK']);
    const ack = sent[1] as SipRequest;
    assert.equal(ack.to.params.get('tag'), 'b1');
    assert.equal(ack.cseq.seq, 1);
    assert.equal(ack.via.params.get('branch'), 'z9hG4bKabc', 'ACK for non-2xx uses the INVITE branch');
    tx.receiveResponse(busy);
    assert.deepEqual(methods(sent), ['INVITE', 'ACK', 'ACK']);
    assert.deepEqual(events, ['response 180', 'response 486'], 'retransmitted final not passed up');
    tick(32_000 - 1);
    assert.equal(tx.state, 'completed');
    tick(1);
    assert.equal(tx.state, 'terminated');
  });

  it('Timer D is zero on a reliable transport', (t) => {
    const tick = mockTimers(t);
    const invite = req('INVITE');
    const tx = new InviteClientTransaction(
      'k',
      invite,
      recorder().send,
      true,
      DEFAULT_TIMERS,
      tuRecorder().tu,
    );
    tx.start();
    tx.receiveResponse(createResponse(invite, 404, undefined, 'x'));
    tick(0);
    assert.equal(tx.state, 'terminated');
  });

  it('2xx moves to Accepted: retransmitted 2xx reach the TU, Timer M ends it at 64*T1', (t) => {
    const tick = mockTimers(t);
    const { events, tu } = tuRecorder();
    const invite = req('INVITE');
    const tx = new InviteClientTransaction('k', invite, recorder().send, false, DEFAULT_TIMERS, tu);
    tx.start();
    const ok = createResponse(invite, 200, undefined, 'b1');
    tx.receiveResponse(ok);
    tx.receiveResponse(ok);
    assert.deepEqual(events, ['response 200', 'response 200']);
    assert.equal(tx.state, 'accepted');
    tick(64 * T1);
    assert.equal(tx.state, 'terminated');
  });

  it('CANCEL copies the INVITE branch, Call-ID, From, To and CSeq number', () => {
    const invite = req('INVITE');
    const tx = new InviteClientTransaction(
      'k',
      invite,
      recorder().send,
      false,
      DEFAULT_TIMERS,
      tuRecorder().tu,
    );
    const cancel = tx.cancelRequest();
    assert.equal(cancel.method, 'CANCEL');
    assert.equal(cancel.via.params.get('branch'), 'z9hG4bKabc');
    assert.deepEqual(cancel.cseq, { seq: 1, method: 'CANCEL' });
    assert.equal(cancel.callId, invite.callId);
  });

  it('a transport error ends the transaction and tells the TU', async (t) => {
    mockTimers(t);
    const { events, tu } = tuRecorder();
    const tx = new InviteClientTransaction(
      'k',
      req('INVITE'),
      () => Promise.reject(new Error('unreachable')),
      false,
      DEFAULT_TIMERS,
      tu,
    );
    tx.start();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(events, ['transport unreachable']);
    assert.equal(tx.state, 'terminated');
  });
});

describe('non-INVITE client transaction', () => {
  it('Timer E doubles up to T2, then Timer F times out at 64*T1', (t) => {
    const tick = mockTimers(t);
    const { sent, send } = recorder();
    const { events, tu } = tuRecorder();
    const tx = new NonInviteClientTransaction('k', req('OPTIONS'), send, false, DEFAULT_TIMERS, tu);
    tx.start();
    const times: number[] = [];
    let now = 0;
    while (now < 64 * T1 - 100) {
      tick(100);
      now += 100;
      if (sent.length > times.length + 1) times.push(now);
    }
    // retransmissions at 500, 1500, 3500, 7500, 11500, ... (interval 500, 1000, 2000, 4000, 4000 ...)
    assert.deepEqual(times.slice(0, 6), [500, 1500, 3500, 7500, 11500, 15500]);
    assert.deepEqual(events, []);
    tick(100);
    assert.deepEqual(events, ['timeout']);
  });

  it('in Proceeding Timer E fires every T2; final response starts Timer K (T4)', (t) => {
    const tick = mockTimers(t);
    const { sent, send } = recorder();
    const { events, tu } = tuRecorder();
    const r = req('REGISTER');
    const tx = new NonInviteClientTransaction('k', r, send, false, DEFAULT_TIMERS, tu);
    tx.start();
    tx.receiveResponse(createResponse(r, 100));
    assert.equal(tx.state, 'proceeding');
    tick(T1);
    assert.equal(sent.length, 2, 'the pending E (T1) still fires');
    tick(T2);
    assert.equal(sent.length, 3, 'then every T2');
    tx.receiveResponse(createResponse(r, 200, undefined, 'x'));
    assert.equal(tx.state, 'completed');
    tx.receiveResponse(createResponse(r, 200, undefined, 'x'));
    assert.deepEqual(events, ['response 100', 'response 200']);
    tick(T4 - 1);
    assert.equal(tx.state, 'completed');
    tick(1);
    assert.equal(tx.state, 'terminated');
  });

  it('Timer K is zero on a reliable transport', (t) => {
    const tick = mockTimers(t);
    const r = req('BYE');
    const tx = new NonInviteClientTransaction('k', r, recorder().send, true, DEFAULT_TIMERS, tuRecorder().tu);
    tx.start();
    assert.deepEqual(tx.runningTimers, ['F']);
    tx.receiveResponse(createResponse(r, 200));
    tick(0);
    assert.equal(tx.state, 'terminated');
  });
});

describe('INVITE server transaction', () => {
  it('absorbs INVITE retransmissions by resending the last provisional', (t) => {
    mockTimers(t);
    const { sent, send } = recorder();
    const invite = req('INVITE');
    const tx = new InviteServerTransaction('k', invite, send, false, DEFAULT_TIMERS, {});
    tx.reply(100);
    tx.receiveRequest(invite);
    tx.reply(180, undefined, 't1');
    tx.receiveRequest(invite);
    assert.deepEqual(methods(sent), ['100', '100', '180', '180']);
  });

  it('§17.2.1: 100 (Trying) only when the TU has sent nothing within the delay', (t) => {
    const tick = mockTimers(t);
    const quiet = recorder();
    const silent = new InviteServerTransaction('k1', req('INVITE'), quiet.send, false, DEFAULT_TIMERS, {});
    silent.tryingAfter(200);
    tick(199);
    assert.deepEqual(methods(quiet.sent), [], 'nothing before the delay');
    tick(1);
    assert.deepEqual(methods(quiet.sent), ['100']);
    silent.receiveRequest(silent.request);
    assert.deepEqual(methods(quiet.sent), ['100', '100'], 'a retransmitted INVITE gets the 100 again');

    const ringing = recorder();
    const rings = new InviteServerTransaction('k2', req('INVITE'), ringing.send, false, DEFAULT_TIMERS, {});
    rings.tryingAfter(200);
    tick(50);
    rings.reply(180, undefined, 't2');
    tick(1000);
    assert.deepEqual(methods(ringing.sent), ['180'], 'a 180 within the delay makes the 100 unneeded');
    assert.equal(rings.runningTimers.includes('Trying'), false);

    const answered = recorder();
    const challenged = new InviteServerTransaction(
      'k3',
      req('INVITE'),
      answered.send,
      false,
      DEFAULT_TIMERS,
      {},
    );
    challenged.reply(407, undefined, 't3');
    challenged.tryingAfter(200);
    tick(T1 - 1); // Timer G would retransmit the 407 at T1
    assert.deepEqual(methods(answered.sent), ['407'], 'an INVITE answered at once gets no 100');
  });

  it('non-2xx final: Timer G retransmits (T1 doubling, capped at T2), Timer H times out without ACK', (t) => {
    const tick = mockTimers(t);
    const { sent, send } = recorder();
    const events: string[] = [];
    const tx = new InviteServerTransaction('k', req('INVITE'), send, false, DEFAULT_TIMERS, {
      onTimeout: () => events.push('H'),
    });
    tx.reply(486, undefined, 't1');
    assert.equal(tx.state, 'completed');
    const at: number[] = [];
    for (let now = 100; now <= 64 * T1; now += 100) {
      const before = sent.length;
      tick(100);
      if (sent.length > before) at.push(now);
    }
    assert.deepEqual(at.slice(0, 6), [500, 1500, 3500, 7500, 11500, 15500]);
    assert.deepEqual(events, ['H']);
    assert.equal(tx.state, 'terminated');
  });

  it('ACK moves Completed to Confirmed, stops G and H, and Timer I (T4) ends it', (t) => {
    const tick = mockTimers(t);
    const { sent, send } = recorder();
    const invite = req('INVITE');
    const acks: string[] = [];
    const tx = new InviteServerTransaction('k', invite, send, false, DEFAULT_TIMERS, {});
    tx.onAck = (a) => acks.push(a.method);
    tx.reply(404, undefined, 't1');
    tx.receiveRequest(invite);
    assert.equal(sent.length, 2, 'retransmitted INVITE gets the final response again');
    const ack = req('ACK');
    tx.receiveRequest(ack);
    assert.equal(tx.state, 'confirmed');
    assert.deepEqual(acks, ['ACK']);
    assert.deepEqual(tx.runningTimers, ['I']);
    tx.receiveRequest(ack);
    assert.deepEqual(acks, ['ACK'], 'ACK retransmissions absorbed');
    tick(T4);
    assert.equal(tx.state, 'terminated');
    assert.equal(sent.length, 2);
  });

  it('reliable transport: no Timer G and Timer I is zero', (t) => {
    const tick = mockTimers(t);
    const tx = new InviteServerTransaction('k', req('INVITE'), recorder().send, true, DEFAULT_TIMERS, {});
    tx.reply(603);
    assert.deepEqual(tx.runningTimers, ['H']);
    tx.receiveRequest(req('ACK'));
    tick(0);
    assert.equal(tx.state, 'terminated');
  });

  it('2xx moves to Accepted: INVITE retransmissions are absorbed, Timer L ends it', (t) => {
    const tick = mockTimers(t);
    const { sent, send } = recorder();
    const invite = req('INVITE');
    const tx = new InviteServerTransaction('k', invite, send, false, DEFAULT_TIMERS, {});
    tx.reply(200, undefined, 't1');
    tx.receiveRequest(invite);
    assert.equal(sent.length, 1);
    assert.equal(tx.state, 'accepted');
    tick(64 * T1);
    assert.equal(tx.state, 'terminated');
  });
});

describe('non-INVITE server transaction', () => {
  it('Trying absorbs retransmissions silently; Completed resends the final; Timer J is 64*T1', (t) => {
    const tick = mockTimers(t);
    const { sent, send } = recorder();
    const r = req('BYE');
    const tx = new NonInviteServerTransaction('k', r, send, false, DEFAULT_TIMERS, {});
    tx.receiveRequest(r);
    assert.equal(sent.length, 0);
    tx.reply(200);
    tx.receiveRequest(r);
    assert.deepEqual(methods(sent), ['200', '200']);
    tx.reply(500);
    assert.equal(sent.length, 2, 'a second final response is not sent');
    tick(64 * T1 - 1);
    assert.equal(tx.state, 'completed');
    tick(1);
    assert.equal(tx.state, 'terminated');
  });

  it('Proceeding resends the provisional; Timer J is zero on reliable transports', (t) => {
    const tick = mockTimers(t);
    const { sent, send } = recorder();
    const r = req('OPTIONS');
    const tx = new NonInviteServerTransaction('k', r, send, true, DEFAULT_TIMERS, {});
    tx.reply(100);
    tx.receiveRequest(r);
    assert.deepEqual(methods(sent), ['100', '100']);
    tx.reply(200);
    tick(0);
    assert.equal(tx.state, 'terminated');
  });
});
