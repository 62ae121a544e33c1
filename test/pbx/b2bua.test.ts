/**
 * B2BUA calls between extensions through the voice server, with test phones built on the stack:
 * 407 challenge, answered call with SDP passed through, BYE from either side, busy, not registered,
 * unknown extension, ring timeout, caller CANCEL, parallel forking (first 200 wins, others cancelled),
 * re-INVITE relay, and the call object's state events.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Call, CallState } from '../../src/pbx/call.ts';
import { VoiceServer } from '../../src/pbx/server.ts';
import { InMemoryUserDirectory } from '../../src/pbx/users.ts';
import { SipRequest } from '../../src/sip/message.ts';
import { parseUri } from '../../src/sip/uri.ts';
import { waitEvent, waitUntil } from '../helpers/net.ts';
import { TestPhone } from '../helpers/sip-phone.ts';

const users = new InMemoryUserDirectory([
  { name: 'alice', extension: '1001', sipPassword: 'alice-secret', displayName: 'Alice A' },
  { name: 'bob', extension: '1002', sipPassword: 'bob-secret' },
  { name: 'carol', extension: '1003', sipPassword: 'carol-secret' },
]);

let server: VoiceServer;
const phones: TestPhone[] = [];

async function phone(
  ext: string,
  password: string,
  register = true,
  protocol: 'UDP' | 'TCP' = 'UDP',
): Promise<TestPhone> {
  const p = new TestPhone(
    ext,
    password,
    { host: '127.0.0.1', port: server.sipPort, domain: 'localhost' },
    protocol,
  );
  await p.start();
  phones.push(p);
  if (register) assert.equal((await p.register(600)).status, 200);
  return p;
}

function track(call: Call): CallState[] {
  const states: CallState[] = [call.state];
  call.on('state', (s) => states.push(s));
  return states;
}

before(async () => {
  server = new VoiceServer({ users, host: '127.0.0.1', sipPort: 0, ringTimeoutMs: 1500 });
  await server.start();
});

after(async () => {
  for (const p of phones) await p.stop();
  await server.stop();
});

describe('B2BUA', () => {
  it('answered call: 407 first, 180 relayed, SDP both ways, caller hangs up', async () => {
    const alice = await phone('1001', 'alice-secret');
    const bob = await phone('1002', 'bob-secret');
    const nextCall = waitEvent<Call>(server, 'call', 3000);
    const provisional: number[] = [];
    const { done } = alice.call('1002', (r) => provisional.push(r.status));
    const [call] = await nextCall;
    const states = track(call!);
    const ok = await done;
    assert.equal(ok.status, 200);
    assert.ok(provisional.includes(180));
    assert.match(ok.body.toString(), /m=audio 31000/, "callee's SDP reaches the caller");
    const invite = bob.received.find((r) => r.method === 'INVITE')!;
    assert.match(invite.body.toString(), /m=audio 30000/, "caller's SDP reaches the callee");
    assert.match(invite.get('From') ?? '', /"Alice A" <sip:1001@localhost>/);
    assert.equal(invite.callId === ok.callId, false, 'the B leg is a separate dialog');
    await waitUntil(() => states.includes('connected'), 3000, 'connected');
    assert.equal(server.activeCallCount, 1);
    assert.ok(server.registeredDeviceCount >= 2);
    const byeAtBob = waitEvent(bob, 'bye', 3000);
    assert.equal((await alice.hangup()).status, 200);
    await byeAtBob;
    await waitUntil(() => call!.state === 'released', 3000, 'released');
    assert.equal(call!.releaseCause, 'caller-hangup');
    assert.deepEqual(states, ['initiated', 'alerting', 'connected', 'released']);
    await alice.register(0);
    await bob.register(0);
  });

  it('callee hangs up: the caller gets BYE', async () => {
    const alice = await phone('1001', 'alice-secret');
    const bob = await phone('1002', 'bob-secret');
    const nextCall = waitEvent<Call>(server, 'call', 3000);
    assert.equal((await alice.call('1002').done).status, 200);
    const [call] = await nextCall;
    await waitEvent(bob, 'ack', 3000);
    const byeAtAlice = waitEvent(alice, 'bye', 3000);
    assert.equal((await bob.hangup()).status, 200);
    await byeAtAlice;
    await waitUntil(() => call!.state === 'released', 3000, 'released');
    assert.equal(call!.releaseCause, 'callee-hangup');
    await alice.register(0);
    await bob.register(0);
  });

  it('busy callee -> 486; declined -> 603', async () => {
    const alice = await phone('1001', 'alice-secret');
    const bob = await phone('1002', 'bob-secret');
    bob.mode = 'busy';
    assert.equal((await alice.call('1002').done).status, 486);
    bob.mode = 'decline';
    assert.equal((await alice.call('1002').done).status, 603);
    await alice.register(0);
    await bob.register(0);
  });

  it('unregistered callee -> 480, unknown extension -> 404', async () => {
    const alice = await phone('1001', 'alice-secret');
    assert.equal((await alice.call('1003').done).status, 480);
    assert.equal((await alice.call('4242').done).status, 404);
    await alice.register(0);
  });

  it('415 for a body that is not SDP, 483 when Max-Forwards is used up', async () => {
    const alice = await phone('1001', 'alice-secret');
    const bob = await phone('1002', 'bob-secret');
    const r = await alice.call('1002', undefined, { contentType: 'application/unknownformat' }).done;
    assert.equal(r.status, 415);
    assert.equal(r.get('Accept'), 'application/sdp');
    assert.equal((await alice.call('1002', undefined, { maxForwards: 0 }).done).status, 483);
    await alice.register(0);
    await bob.register(0);
  });

  it('unanswered call ends after the ring timeout with 480 and the callee gets CANCEL', async () => {
    const alice = await phone('1001', 'alice-secret');
    const bob = await phone('1002', 'bob-secret');
    bob.mode = 'ring';
    const cancelled = waitEvent(bob, 'cancelled', 5000);
    const nextCall = waitEvent<Call>(server, 'call', 3000);
    const r = await alice.call('1002').done;
    assert.equal(r.status, 480);
    await cancelled;
    const [call] = await nextCall;
    assert.equal(call!.releaseCause, 'no-answer');
    await alice.register(0);
    await bob.register(0);
  });

  it('caller cancels: 487 to the caller, CANCEL to the callee', async () => {
    const alice = await phone('1001', 'alice-secret');
    const bob = await phone('1002', 'bob-secret');
    bob.mode = 'ring';
    const cancelled = waitEvent(bob, 'cancelled', 5000);
    let handle: ReturnType<TestPhone['call']> | undefined;
    const ringing = new Promise<void>((resolve) => {
      const c = alice.call('1002', (r) => {
        if (r.status === 180) resolve();
      });
      handle = c;
    });
    await ringing;
    handle!.cancel();
    assert.equal((await handle!.done).status, 487);
    await cancelled;
    await alice.register(0);
    await bob.register(0);
  });

  it('forks to every contact: the first 200 wins, the other fork is cancelled', async () => {
    const alice = await phone('1001', 'alice-secret');
    const desk = await phone('1003', 'carol-secret');
    const mobile = await phone('1003', 'carol-secret');
    desk.mode = 'ring';
    mobile.mode = 'ring-then-answer';
    const deskCancelled = waitEvent(desk, 'cancelled', 5000);
    const mobileRinging = waitEvent(mobile, 'incoming', 3000);
    const call = alice.call('1003');
    await mobileRinging;
    await waitUntil(() => desk.incoming !== undefined, 3000, 'desk rings');
    mobile.answer();
    assert.equal((await call.done).status, 200);
    await deskCancelled;
    const byeAtMobile = waitEvent(mobile, 'bye', 3000);
    await alice.hangup();
    await byeAtMobile;
    await alice.register(0);
    await desk.register(0);
    await mobile.register(0);
  });

  it('relays a re-INVITE from the caller to the callee', async () => {
    const alice = await phone('1001', 'alice-secret');
    const bob = await phone('1002', 'bob-secret');
    assert.equal((await alice.call('1002').done).status, 200);
    const reinviteAtBob = waitEvent(bob, 'reinvite', 3000);
    const d = alice.dialog!;
    const re = d.createRequest('INVITE');
    re.append('Content-Type', 'application/sdp');
    re.body = Buffer.from(
      'v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0\r\na=sendonly\r\n',
    );
    const response = await new Promise<import('../../src/sip/message.ts').SipResponse>((resolve, reject) =>
      alice.stack.sendRequest(
        re,
        { onResponse: (r) => r.status >= 200 && resolve(r), onTimeout: reject, onTransportError: reject },
        { protocol: 'UDP', address: '127.0.0.1', port: server.sipPort },
      ),
    );
    assert.equal(response.status, 200);
    const [forwarded] = await reinviteAtBob;
    assert.match((forwarded as import('../../src/sip/message.ts').SipRequest).body.toString(), /a=sendonly/);
    await alice.stack.sendStateless(d.createRequest('ACK', re.cseq.seq), {
      protocol: 'UDP',
      address: '127.0.0.1',
      port: server.sipPort,
    });
    const byeAtBob = waitEvent(bob, 'bye', 3000);
    await alice.hangup();
    await byeAtBob;
    await alice.register(0);
    await bob.register(0);
  });

  it('TCP phones: registration over a connection, the call reaches the callee on that connection', async () => {
    const alice = await phone('1001', 'alice-secret', true, 'TCP');
    const bob = await phone('1002', 'bob-secret', true, 'TCP');
    assert.equal(server.registrar.lookup('1002')[0]?.source.protocol, 'TCP');
    const ok = await alice.call('1002').done;
    assert.equal(ok.status, 200);
    assert.equal(bob.received.find((r) => r.method === 'INVITE')?.via.transport, 'TCP');
    await waitEvent(bob, 'ack', 3000);
    const byeAtAlice = waitEvent(alice, 'bye', 3000);
    assert.equal((await bob.hangup()).status, 200);
    await byeAtAlice;
    await alice.register(0);
    await bob.register(0);
  });

  it('a caller that never ACKs the 200 gets BYE after 64*T1, and so does the callee', async () => {
    const fast = new VoiceServer({
      users,
      host: '127.0.0.1',
      sipPort: 0,
      timers: { T1: 20, T2: 160, T4: 200 },
    });
    await fast.start();
    try {
      const mk = async (ext: string, pw: string) => {
        const p = new TestPhone(ext, pw, { host: '127.0.0.1', port: fast.sipPort, domain: 'localhost' });
        await p.start();
        phones.push(p);
        assert.equal((await p.register(600)).status, 200);
        return p;
      };
      const alice = await mk('1001', 'alice-secret');
      const bob = await mk('1002', 'bob-secret');
      alice.skipAck = true;
      const nextCall = waitEvent<Call>(fast, 'call', 3000);
      const byeAtAlice = waitEvent(alice, 'bye', 5000);
      const byeAtBob = waitEvent(bob, 'bye', 5000);
      assert.equal((await alice.call('1002').done).status, 200);
      const [call] = await nextCall;
      await byeAtAlice;
      await byeAtBob;
      await waitUntil(() => call!.state === 'released', 3000, 'released');
      assert.equal(call!.releaseCause, 'no-ack');
    } finally {
      await fast.stop();
    }
  });

  it('leaves no transactions or calls behind once the timers have run (no leak)', async () => {
    const fast = new VoiceServer({
      users,
      host: '127.0.0.1',
      sipPort: 0,
      // short timers so the drain is quick, but not so short that a loaded machine times out a transaction
      timers: { T1: 25, T2: 200, T4: 250, D: 500 },
    });
    await fast.start();
    try {
      const mk = async (ext: string, pw: string) => {
        const p = new TestPhone(ext, pw, { host: '127.0.0.1', port: fast.sipPort, domain: 'localhost' });
        await p.start();
        phones.push(p);
        assert.equal((await p.register(600)).status, 200);
        return p;
      };
      const alice = await mk('1001', 'alice-secret');
      const bob = await mk('1002', 'bob-secret');
      for (let i = 0; i < 5; i++) {
        assert.equal((await alice.call('1002').done).status, 200);
        await waitEvent(bob, 'ack', 3000);
        assert.equal((await alice.hangup()).status, 200);
      }
      bob.mode = 'busy';
      assert.equal((await alice.call('1002').done).status, 486);
      await waitUntil(() => fast.activeCallCount === 0, 3000, 'calls released');
      await waitUntil(
        () => fast.stack.transactionCount.server + fast.stack.transactionCount.client === 0,
        5000,
        'transactions drained',
      );
    } finally {
      await fast.stop();
    }
  });

  it('BYE for an unknown dialog gets 481; the server keeps no call state after all this', async () => {
    const alice = await phone('1001', 'alice-secret');
    const bye = new SipRequest('BYE', parseUri('sip:1002@localhost'));
    bye.append('From', '<sip:1001@localhost>;tag=nosuch');
    bye.append('To', '<sip:1002@localhost>;tag=dialog');
    bye.append('Call-ID', 'unknown-dialog@test');
    bye.append('CSeq', '5 BYE');
    const r = await new Promise<number>((resolve, reject) =>
      alice.stack.sendRequest(
        bye,
        {
          onResponse: (x) => x.status >= 200 && resolve(x.status),
          onTimeout: reject,
          onTransportError: reject,
        },
        { protocol: 'UDP', address: '127.0.0.1', port: server.sipPort },
      ),
    );
    assert.equal(r, 481);
    await waitUntil(() => server.b2bua.activeCalls.length === 0, 3000, 'no active calls');
  });
});
