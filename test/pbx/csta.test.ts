/**
 * The voice server's CSTA interface end to end: SIP test phones (the project's stack) call each other
 * through the B2BUA or are driven by MakeCall, while CSTA clients on TCP monitor the devices and the
 * exact event sequence of every monitor is compared with reference/csta.md §5. Also: device service
 * events, monitor bookkeeping over several clients, filters, every refusal's CSTAErrorCode, hostile
 * input, and a client that vanishes mid-call.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { encodeFrame } from '../../src/csta/index.ts';
import { CstaInterface } from '../../src/pbx/csta-interface.ts';
import { VoiceServer } from '../../src/pbx/server.ts';
import { InMemoryUserDirectory } from '../../src/pbx/users.ts';
import type { SipRequest, SipResponse } from '../../src/sip/message.ts';
import { waitEvent, waitUntil } from '../helpers/net.ts';
import { SDP, TestPhone } from '../helpers/sip-phone.ts';
import { CstaTestClient, callIdOf } from './csta-client.ts';

const users = new InMemoryUserDirectory([
  { name: 'alice', extension: '1001', sipPassword: 'alice-secret' },
  { name: 'bob', extension: '1002', sipPassword: 'bob-secret' },
  { name: 'carol', extension: '1003', sipPassword: 'carol-secret' },
  { name: 'dave', extension: '1004', sipPassword: 'dave-secret' },
]);

let voice: VoiceServer;
let csta: CstaInterface;
let client: CstaTestClient;
let alice: TestPhone;
let bob: TestPhone;
let monA: string;
let monB: string;
const phones: TestPhone[] = [];
const clients: CstaTestClient[] = [];

async function phone(ext: string, password: string, register = true): Promise<TestPhone> {
  const p = new TestPhone(ext, password, { host: '127.0.0.1', port: voice.sipPort, domain: 'localhost' });
  await p.start();
  phones.push(p);
  if (register) assert.equal((await p.register(600)).status, 200);
  return p;
}

async function cstaClient(): Promise<CstaTestClient> {
  const c = new CstaTestClient(csta.port);
  clients.push(c);
  await c.connect();
  return c;
}

/** Waits until the model has no call left (the SIP side is done with the last scenario). */
async function idle(): Promise<void> {
  await waitUntil(() => csta.model.size === 0, 5000, 'no calls left');
}

before(async () => {
  voice = new VoiceServer({ users, host: '127.0.0.1', sipPort: 0, ringTimeoutMs: 1500 });
  await voice.start();
  csta = new CstaInterface(voice, { port: 0, edition: 'ed4' });
  await csta.start();
  client = await cstaClient();
  monA = await client.monitor('1001');
  monB = await client.monitor('1002');
  alice = await phone('1001', 'alice-secret');
  bob = await phone('1002', 'bob-secret');
});

after(async () => {
  for (const c of clients) await c.close();
  for (const p of phones) await p.stop();
  await csta.stop();
  await voice.stop();
});

beforeEach(async () => {
  await idle();
  alice.dialog = undefined;
  bob.dialog = undefined;
  client.reset(monA);
  client.reset(monB);
});

describe('CSTA interface: B2BUA calls (csta.md §5.1, §5.3)', () => {
  it('basic call, caller hangs up: one callID, exact sequence on both monitors', async () => {
    bob.mode = 'answer';
    const { done } = alice.call('1002');
    assert.equal((await done).status, 200);
    await client.expect(monA, [
      'ServiceInitiated(1001) initiated newCall',
      'Originated(1001) connected newCall',
      'Delivered(1002) connected newCall',
      'Established(1002) connected newCall',
    ]);
    await alice.hangup();
    const a = await client.expect(monA, [
      'ServiceInitiated(1001) initiated newCall',
      'Originated(1001) connected newCall',
      'Delivered(1002) connected newCall',
      'Established(1002) connected newCall',
      'ConnectionCleared(1001) null normalClearing',
    ]);
    const b = await client.expect(monB, [
      'Delivered(1002) alerting newCall',
      'Established(1002) connected newCall',
      'ConnectionCleared(1001) connected normalClearing',
      'ConnectionCleared(1002) null normalClearing',
    ]);
    const ids = new Set([...a, ...b].map(callIdOf));
    assert.equal(ids.size, 1, 'one CSTA callID for the bridged call');
    const originated = a[1] as { callingDevice: unknown; calledDevice: unknown };
    assert.deepEqual(originated.callingDevice, { deviceIdentifier: '1001' });
    assert.deepEqual(originated.calledDevice, { deviceIdentifier: '1002' });
  });

  it('callee hangs up', async () => {
    bob.mode = 'answer';
    assert.equal((await alice.call('1002').done).status, 200);
    await waitUntil(() => client.eventsOf(monB).length >= 2, 3000, 'established');
    const bye = waitEvent(alice, 'bye', 3000);
    await bob.hangup();
    await bye;
    await client.expect(monA, [
      'ServiceInitiated(1001) initiated newCall',
      'Originated(1001) connected newCall',
      'Delivered(1002) connected newCall',
      'Established(1002) connected newCall',
      'ConnectionCleared(1002) connected normalClearing',
      'ConnectionCleared(1001) null normalClearing',
    ]);
    await client.expect(monB, [
      'Delivered(1002) alerting newCall',
      'Established(1002) connected newCall',
      'ConnectionCleared(1002) null normalClearing',
    ]);
  });

  it('busy: Failed on the caller only, then its connection clears', async () => {
    bob.mode = 'busy';
    assert.equal((await alice.call('1002').done).status, 486);
    await client.expect(monA, [
      'ServiceInitiated(1001) initiated newCall',
      'Originated(1001) connected newCall',
      'Failed(1002) fail busy',
      'ConnectionCleared(1001) null normalClearing',
    ]);
    await client.expect(monB, []);
  });

  it('no answer: ring timeout clears both connections with callNotAnswered', async () => {
    bob.mode = 'ring';
    assert.equal((await alice.call('1002').done).status, 480);
    await client.expect(monA, [
      'ServiceInitiated(1001) initiated newCall',
      'Originated(1001) connected newCall',
      'Delivered(1002) connected newCall',
      'ConnectionCleared(1002) connected callNotAnswered',
      'ConnectionCleared(1001) null callNotAnswered',
    ]);
    await client.expect(monB, [
      'Delivered(1002) alerting newCall',
      'ConnectionCleared(1002) null callNotAnswered',
    ]);
  });

  it('caller cancels while the callee is alerting', async () => {
    bob.mode = 'ring';
    const ringing = waitEvent(bob, 'incoming', 3000);
    const { done, cancel } = alice.call('1002', () => undefined);
    await ringing;
    await waitUntil(() => client.eventsOf(monB).length >= 1, 3000, 'Delivered');
    const cancelled = waitEvent(bob, 'cancelled', 3000);
    cancel();
    assert.equal((await done).status, 487);
    await cancelled;
    await client.expect(monA, [
      'ServiceInitiated(1001) initiated newCall',
      'Originated(1001) connected newCall',
      'Delivered(1002) connected newCall',
      'ConnectionCleared(1001) null normalClearing',
    ]);
    await client.expect(monB, [
      'Delivered(1002) alerting newCall',
      'ConnectionCleared(1001) alerting normalClearing',
      'ConnectionCleared(1002) null normalClearing',
    ]);
  });

  it('callee not registered: Failed with destOutOfOrder', async () => {
    const monC = await client.monitor('1003');
    assert.equal((await alice.call('1003').done).status, 480);
    await client.expect(monA, [
      'ServiceInitiated(1001) initiated newCall',
      'Originated(1001) connected newCall',
      'Failed(1003) fail destOutOfOrder',
      'ConnectionCleared(1001) null normalClearing',
    ]);
    await client.expect(monC, []);
  });

  it('ClearConnection of an answered B2BUA call BYEs both phones', async () => {
    bob.mode = 'answer';
    assert.equal((await alice.call('1002').done).status, 200);
    const established = await client.expect(monB, [
      'Delivered(1002) alerting newCall',
      'Established(1002) connected newCall',
    ]);
    const callID = callIdOf(established[0]!)!;
    const byes = Promise.all([waitEvent(alice, 'bye', 3000), waitEvent(bob, 'bye', 3000)]);
    await client.link.request({
      name: 'ClearConnection',
      connectionToBeCleared: { callID, deviceID: '1002' },
    });
    await byes;
    await client.expect(monB, [
      'Delivered(1002) alerting newCall',
      'Established(1002) connected newCall',
      'ConnectionCleared(1002) null normalClearing',
    ]);
    const a = client.eventsOf(monA).map((e) => e.name);
    assert.equal(a.at(-1), 'ConnectionClearedEvent');
  });

  it('SnapshotDevice and SnapshotCall show a ringing call', async () => {
    bob.mode = 'ring';
    const { done, cancel } = alice.call('1002', () => undefined);
    await waitUntil(() => client.eventsOf(monB).length >= 1, 3000, 'Delivered');
    const callID = callIdOf(client.eventsOf(monB)[0]!)!;
    const snap = await client.link.request({ name: 'SnapshotDevice', snapshotObject: '1002' });
    assert.deepEqual(
      'snapshotData' in snap.crossRefIDorSnapshotData
        ? snap.crossRefIDorSnapshotData.snapshotData.snapshotDeviceResponseInfo?.map((i) => [
            i.connectionIdentifier.callID,
            i.localCallState,
          ])
        : undefined,
      [[callID, { compoundCallState: { localConnectionState: ['alerting'] } }]],
    );
    const call = await client.link.request({ name: 'SnapshotCall', snapshotObject: { callID } });
    assert.deepEqual(
      'snapshotData' in call.crossRefIDorSnapshotData
        ? call.crossRefIDorSnapshotData.snapshotData.snapshotCallResponseInfo?.map((i) => [
            i.callIdentifier?.deviceID,
            i.localConnectionInfo,
          ])
        : undefined,
      [
        ['1001', 'connected'],
        ['1002', 'alerting'],
      ],
    );
    const answer = await client.refusal({
      name: 'AnswerCall',
      callToBeAnswered: { callID, deviceID: '1002' },
    });
    assert.equal(answer, 'operation/requestIncompatibleWithDevice');
    cancel();
    assert.equal((await done).status, 487);
    const idleSnap = await client.link.request({ name: 'SnapshotDevice', snapshotObject: '1003' });
    assert.deepEqual(idleSnap.crossRefIDorSnapshotData, { snapshotData: {} });
  });
});

describe('CSTA interface: MakeCall (3PCC, csta.md §5.2)', () => {
  it('prompt: the caller rings first, then the callee gets the caller SDP; ClearConnection ends it', async () => {
    alice.mode = 'ring-then-answer';
    bob.mode = 'answer';
    const aliceRings = waitEvent<{ body: Buffer; get(h: string): string | undefined }>(
      alice,
      'incoming',
      3000,
    );
    const response = await client.link.request({
      name: 'MakeCall',
      callingDevice: '1001',
      calledDirectoryNumber: '1002',
      autoOriginate: 'prompt',
    });
    assert.equal(response.callingDevice.deviceID, '1001');
    const callID = response.callingDevice.callID!;
    const [inviteA] = await aliceRings;
    assert.equal(inviteA!.body.length, 0, 'offerless INVITE to the calling phone');
    assert.equal(inviteA!.get('Call-Info'), undefined, 'no auto-answer with prompt');
    await client.expect(monA, ['ServiceInitiated(1001) initiated makeCall']);
    const bobRings = waitEvent<{ body: Buffer }>(bob, 'incoming', 3000);
    const ackA = waitEvent<{ body: Buffer }>(alice, 'ack', 3000);
    alice.answer();
    const [inviteB] = await bobRings;
    assert.match(inviteB!.body.toString(), /m=audio 31000/, "the callee gets the caller's offer");
    const [ack] = await ackA;
    assert.match(ack!.body.toString(), /m=audio/, "the caller's ACK carries the callee's answer");
    const a = await client.expect(monA, [
      'ServiceInitiated(1001) initiated makeCall',
      'Originated(1001) connected newCall',
      'Delivered(1002) connected newCall',
      'Established(1002) connected newCall',
    ]);
    const b = await client.expect(monB, [
      'Delivered(1002) alerting newCall',
      'Established(1002) connected newCall',
    ]);
    assert.deepEqual(new Set([...a, ...b].map(callIdOf)), new Set([callID]));
    const byes = Promise.all([waitEvent(alice, 'bye', 3000), waitEvent(bob, 'bye', 3000)]);
    await client.link.request({
      name: 'ClearConnection',
      connectionToBeCleared: { callID, deviceID: '1001' },
    });
    await byes;
    await client.expect(monA, [
      'ServiceInitiated(1001) initiated makeCall',
      'Originated(1001) connected newCall',
      'Delivered(1002) connected newCall',
      'Established(1002) connected newCall',
      'ConnectionCleared(1001) null normalClearing',
    ]);
    await client.expect(monB, [
      'Delivered(1002) alerting newCall',
      'Established(1002) connected newCall',
      'ConnectionCleared(1001) connected normalClearing',
      'ConnectionCleared(1002) null normalClearing',
    ]);
  });

  it('doNotPrompt: auto-answer header; the callee hangs up and the caller gets a BYE', async () => {
    alice.mode = 'answer';
    bob.mode = 'answer';
    const aliceRings = waitEvent<{ get(h: string): string | undefined }>(alice, 'incoming', 3000);
    await client.link.request({
      name: 'MakeCall',
      callingDevice: '1001',
      calledDirectoryNumber: '1002',
      autoOriginate: 'doNotPrompt',
    });
    const [inviteA] = await aliceRings;
    assert.match(inviteA!.get('Call-Info') ?? '', /answer-after=0/);
    await client.expect(monB, ['Delivered(1002) alerting newCall', 'Established(1002) connected newCall']);
    await waitUntil(() => bob.dialog !== undefined, 3000, 'bob in a dialog');
    const bye = waitEvent(alice, 'bye', 3000);
    await bob.hangup();
    await bye;
    await client.expect(monA, [
      'ServiceInitiated(1001) initiated makeCall',
      'Originated(1001) connected newCall',
      'Delivered(1002) connected newCall',
      'Established(1002) connected newCall',
      'ConnectionCleared(1002) connected normalClearing',
      'ConnectionCleared(1001) null normalClearing',
    ]);
  });

  it("the caller's phone hangs up a MakeCall; ClearCall on another one", async () => {
    alice.mode = 'answer';
    bob.mode = 'answer';
    await client.link.request({ name: 'MakeCall', callingDevice: '1001', calledDirectoryNumber: '1002' });
    await client.expect(monB, ['Delivered(1002) alerting newCall', 'Established(1002) connected newCall']);
    await waitUntil(() => alice.dialog !== undefined, 3000, 'alice in a dialog');
    const bye = waitEvent(bob, 'bye', 3000);
    await alice.hangup();
    await bye;
    await client.expect(monB, [
      'Delivered(1002) alerting newCall',
      'Established(1002) connected newCall',
      'ConnectionCleared(1001) connected normalClearing',
      'ConnectionCleared(1002) null normalClearing',
    ]);
    await idle();
    client.reset(monA);
    client.reset(monB);
    const r = await client.link.request({
      name: 'MakeCall',
      callingDevice: '1001',
      calledDirectoryNumber: '1002',
    });
    await client.expect(monB, ['Delivered(1002) alerting newCall', 'Established(1002) connected newCall']);
    const byes = Promise.all([waitEvent(alice, 'bye', 3000), waitEvent(bob, 'bye', 3000)]);
    await client.link.request({ name: 'ClearCall', callToBeCleared: { callID: r.callingDevice.callID! } });
    await byes;
    await client.expect(monA, [
      'ServiceInitiated(1001) initiated makeCall',
      'Originated(1001) connected newCall',
      'Delivered(1002) connected newCall',
      'Established(1002) connected newCall',
      'ConnectionCleared(1001) null normalClearing',
    ]);
  });

  it('callee busy: Failed, then the caller is released', async () => {
    alice.mode = 'answer';
    bob.mode = 'busy';
    const bye = waitEvent(alice, 'bye', 3000);
    await client.link.request({ name: 'MakeCall', callingDevice: '1001', calledDirectoryNumber: '1002' });
    await bye;
    await client.expect(monA, [
      'ServiceInitiated(1001) initiated makeCall',
      'Originated(1001) connected newCall',
      'Failed(1002) fail busy',
      'ConnectionCleared(1001) null normalClearing',
    ]);
    await client.expect(monB, []);
  });

  it('the caller never answers the prompt', async () => {
    alice.mode = 'decline';
    await client.link.request({ name: 'MakeCall', callingDevice: '1001', calledDirectoryNumber: '1002' });
    await client.expect(monA, [
      'ServiceInitiated(1001) initiated makeCall',
      'ConnectionCleared(1001) null callNotAnswered',
    ]);
    await client.expect(monB, []);
  });
});

describe('CSTA interface: monitors, device state, clients', () => {
  it('registration gives BackInService, un-registration OutOfService', async () => {
    const monD = await client.monitor('1004');
    const dave = await phone('1004', 'dave-secret', false);
    assert.equal((await dave.register(600)).status, 200);
    await client.expect(monD, ['BackInService(1004)']);
    assert.equal((await dave.register(0)).status, 200);
    await client.expect(monD, ['BackInService(1004)', 'OutOfService(1004)']);
    await client.link.request({ name: 'MonitorStop', monitorCrossRefID: monD });
  });

  it('several clients monitor one device, each with its own cross-ref; filters are honoured', async () => {
    const second = await cstaClient();
    const third = await cstaClient();
    const m2 = await second.monitor('1002');
    const r3 = await third.link.request({
      name: 'MonitorStart',
      monitorObject: { deviceObject: '1002' },
      requestedMonitorFilter: { callcontrol: { delivered: true, connectionCleared: true } },
    });
    const m3 = r3.monitorCrossRefID;
    assert.notEqual(m2, m3);
    assert.notEqual(m2, monB);
    bob.mode = 'answer';
    assert.equal((await alice.call('1002').done).status, 200);
    await alice.hangup();
    const full = [
      'Delivered(1002) alerting newCall',
      'Established(1002) connected newCall',
      'ConnectionCleared(1001) connected normalClearing',
      'ConnectionCleared(1002) null normalClearing',
    ];
    await client.expect(monB, full);
    await second.expect(m2, full);
    await third.expect(m3, ['Established(1002) connected newCall']);
    await second.close();
    await third.close();
  });

  it('a client that vanishes mid-call loses its monitors; the call and the other client go on', async () => {
    const doomed = await cstaClient();
    await doomed.monitor('1001');
    await doomed.monitor('1002');
    const before = csta.monitorCount;
    bob.mode = 'answer';
    assert.equal((await alice.call('1002').done).status, 200);
    await waitUntil(() => client.eventsOf(monB).length >= 2, 3000, 'established');
    doomed.link.session?.close('test');
    // the socket goes away without any goodbye
    await doomed.close();
    await waitUntil(() => csta.monitorCount === before - 2, 3000, 'monitors dropped');
    assert.equal(csta.model.size, 1, 'the call is still up');
    await alice.hangup();
    await client.expect(monB, [
      'Delivered(1002) alerting newCall',
      'Established(1002) connected newCall',
      'ConnectionCleared(1001) connected normalClearing',
      'ConnectionCleared(1002) null normalClearing',
    ]);
  });
});

describe('CSTA interface: refusals and hostile input', () => {
  it('every invalid request gets its CSTAErrorCode', async () => {
    const other = await cstaClient();
    const foreign = await other.monitor('1003');
    const cases: Array<[Parameters<CstaTestClient['refusal']>[0], string]> = [
      [{ name: 'MonitorStart', monitorObject: { deviceObject: '9999' } }, 'operation/invalidDeviceID'],
      [
        { name: 'MonitorStart', monitorObject: { callObject: { callID: 'x' } } },
        'operation/invalidMonitorObject',
      ],
      [{ name: 'MonitorStop', monitorCrossRefID: 'nope' }, 'operation/invalidMonitorCrossRefID'],
      [{ name: 'MonitorStop', monitorCrossRefID: foreign }, 'operation/invalidMonitorCrossRefID'],
      [
        { name: 'MakeCall', callingDevice: '9999', calledDirectoryNumber: '1002' },
        'operation/invalidCallingDeviceID',
      ],
      [
        { name: 'MakeCall', callingDevice: '1001', calledDirectoryNumber: '77' },
        'operation/invalidCalledDeviceID',
      ],
      [
        { name: 'MakeCall', callingDevice: '1001', calledDirectoryNumber: '1001' },
        'operation/notDifferentDevices',
      ],
      [
        { name: 'MakeCall', callingDevice: '1003', calledDirectoryNumber: '1002' },
        'systemResourceAvailibility/callingDeviceOutOfService',
      ],
      [
        { name: 'MakeCall', callingDevice: '1001', calledDirectoryNumber: '1003' },
        'systemResourceAvailibility/calledDeviceOutOfService',
      ],
      [
        { name: 'ClearConnection', connectionToBeCleared: { callID: 'c-none', deviceID: '1001' } },
        'operation/invalidCallID',
      ],
      [
        { name: 'ClearConnection', connectionToBeCleared: { callID: 'c-none' } },
        'operation/invalidConnectionID',
      ],
      [{ name: 'ClearCall', callToBeCleared: { callID: 'c-none' } }, 'operation/invalidCallID'],
      [{ name: 'ClearCall', callToBeCleared: {} }, 'operation/invalidCallID'],
      [
        { name: 'AnswerCall', callToBeAnswered: { callID: 'c-none', deviceID: '1002' } },
        'operation/invalidCallID',
      ],
      [
        { name: 'ConferenceCall', heldCall: { callID: 'a' }, activeCall: { callID: 'b' } },
        'operation/serviceNotSupported',
      ],
      [{ name: 'HoldCall', callToBeHeld: { callID: 'a', deviceID: '1001' } }, 'operation/invalidCallID'],
      [{ name: 'RetrieveCall', callToBeRetrieved: { callID: 'a' } }, 'operation/invalidConnectionID'],
      [
        {
          name: 'ConsultationCall',
          existingCall: { callID: 'a', deviceID: '1001' },
          consultedDevice: '1003',
        },
        'operation/invalidCallID',
      ],
      [
        {
          name: 'TransferCall',
          heldCall: { callID: 'a', deviceID: '1001' },
          activeCall: { callID: 'b', deviceID: '1001' },
        },
        'operation/invalidCallID',
      ],
      [{ name: 'Escape', privateData: { string: '00' } }, 'operation/serviceNotSupported'],
      [{ name: 'SnapshotDevice', snapshotObject: '42' }, 'operation/invalidDeviceID'],
      [{ name: 'SnapshotCall', snapshotObject: { callID: 'c-none' } }, 'operation/invalidCallID'],
      [{ name: 'GetLogicalDeviceInformation', device: '42' }, 'operation/invalidDeviceID'],
    ];
    for (const [request, expected] of cases)
      assert.equal(await client.refusal(request), expected, JSON.stringify(request));
    const info = await client.link.request({ name: 'GetLogicalDeviceInformation', device: '1001' });
    assert.equal(info.deviceCategory, 'station');
    assert.equal(info.appearanceType, 'basicStandard');
    // the foreign monitor survived the attempt to stop it from another client
    await other.link.request({ name: 'MonitorStop', monitorCrossRefID: foreign });
    await other.close();
  });

  it('a connected call refuses AnswerCall on the wrong connection state', async () => {
    bob.mode = 'answer';
    assert.equal((await alice.call('1002').done).status, 200);
    const [delivered] = await client.expect(monB, [
      'Delivered(1002) alerting newCall',
      'Established(1002) connected newCall',
    ]);
    const callID = callIdOf(delivered!)!;
    assert.equal(
      await client.refusal({ name: 'AnswerCall', callToBeAnswered: { callID, deviceID: '1002' } }),
      'stateIncompatibility/invalidConnectionState',
    );
    assert.equal(
      await client.refusal({ name: 'ClearConnection', connectionToBeCleared: { callID, deviceID: '1003' } }),
      'operation/invalidConnectionID',
    );
    await alice.hangup();
  });

  it('garbage, unknown requests and broken frames do not disturb other clients', async () => {
    const socket = connect(csta.port, '127.0.0.1');
    await waitEvent(socket, 'connect', 3000);
    const replies: Buffer[] = [];
    socket.on('data', (d: Buffer) => replies.push(d));
    socket.on('error', () => undefined);
    socket.write(encodeFrame('0001', '<not xml'));
    socket.write(
      encodeFrame(
        '0002',
        '<Frobnicate xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"/>',
      ),
    );
    socket.write(
      encodeFrame(
        '0003',
        '<MakeCall xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><calledDirectoryNumber>1</calledDirectoryNumber></MakeCall>',
      ),
    );
    await waitUntil(
      () =>
        (
          Buffer.concat(replies)
            .toString()
            .match(/CSTAErrorCode/g) ?? []
        ).length >= 3,
      3000,
      'three CSTAErrorCode answers',
    );
    // a frame header that claims fewer than 8 bytes: the connection is closed
    const closed = waitEvent(socket, 'close', 3000);
    socket.write(Buffer.from([0, 0, 0, 4, 0x30, 0x30, 0x30, 0x34]));
    await closed;
    socket.destroy();
    await client.link.request({ name: 'RequestSystemStatus' });
    assert.ok(csta.monitorCount >= 2);
  });
});

describe('CSTA interface: do not disturb and immediate forwarding (csta.md §5.3, §5.7, §5.8)', () => {
  it('DND: event, read back, calls and MakeCalls to the device fail with doNotDisturb', async () => {
    await client.link.request({ name: 'SetDoNotDisturb', device: '1002', doNotDisturbOn: true });
    await client.expect(monB, ['DoNotDisturb(1002) on']);
    assert.equal(
      (await client.link.request({ name: 'GetDoNotDisturb', device: '1002' })).doNotDisturbOn,
      true,
    );
    client.reset(monB);
    bob.mode = 'answer';
    assert.equal((await alice.call('1002').done).status, 486);
    await client.expect(monA, [
      'ServiceInitiated(1001) initiated newCall',
      'Originated(1001) connected newCall',
      'Failed(1002) fail doNotDisturb',
      'ConnectionCleared(1001) null normalClearing',
    ]);
    await idle();
    client.reset(monA);
    alice.mode = 'answer';
    const bye = waitEvent(alice, 'bye', 3000);
    const invitesToBob = bob.received.filter((r) => r.method === 'INVITE').length;
    await client.link.request({ name: 'MakeCall', callingDevice: '1001', calledDirectoryNumber: '1002' });
    await bye;
    await client.expect(monA, [
      'ServiceInitiated(1001) initiated makeCall',
      'Originated(1001) connected newCall',
      'Failed(1002) fail doNotDisturb',
      'ConnectionCleared(1001) null normalClearing',
    ]);
    assert.equal(bob.received.filter((r) => r.method === 'INVITE').length, invitesToBob, 'bob never rang');
    await client.expect(monB, []);
    await client.link.request({ name: 'SetDoNotDisturb', device: '1002', doNotDisturbOn: false });
    await client.expect(monB, ['DoNotDisturb(1002) off']);
  });

  it('forward immediate: event, read back, the call rings the destination with Diverted and redirection', async () => {
    const dave = await phone('1004', 'dave-secret');
    dave.mode = 'answer';
    const monD = await client.monitor('1004');
    assert.equal(
      await client.refusal({
        name: 'SetForwarding',
        device: '1002',
        forwardingType: 'forwardDND',
        activateForward: true,
        forwardDN: '1004',
      }),
      'operation/invalidForwardingType',
    );
    assert.equal(
      await client.refusal({
        name: 'SetForwarding',
        device: '1002',
        forwardingType: 'forwardImmediate',
        activateForward: true,
        forwardDN: '555',
      }),
      'operation/invalidForwardingDestination',
    );
    await client.link.request({
      name: 'SetForwarding',
      device: '1002',
      forwardingType: 'forwardImmediate',
      activateForward: true,
      forwardDN: '1004',
    });
    await client.expect(monB, ['Forwarding(1002) forwardImmediate on 1004']);
    const list = await client.link.request({ name: 'GetForwarding', device: '1002' });
    assert.deepEqual(
      list.forwardingList?.map((i) => [i.forwardingType, i.forwardStatus, i.forwardDN]),
      [
        ['forwardImmediate', true, '1004'],
        ['forwardBusy', false, undefined],
        ['forwardNoAns', false, undefined],
      ],
    );
    client.reset(monB);
    assert.equal((await alice.call('1002').done).status, 200);
    await alice.hangup();
    const a = await client.expect(monA, [
      'ServiceInitiated(1001) initiated newCall',
      'Originated(1001) connected newCall',
      'Delivered(1004) connected callForwardImmediate',
      'Established(1004) connected callForwardImmediate',
      'ConnectionCleared(1001) null normalClearing',
    ]);
    await client.expect(monB, ['Diverted(1002) null callForwardImmediate to 1004']);
    await client.expect(monD, [
      'Delivered(1004) alerting callForwardImmediate',
      'Established(1004) connected callForwardImmediate',
      'ConnectionCleared(1001) connected normalClearing',
      'ConnectionCleared(1004) null normalClearing',
    ]);
    const delivered = a[2] as { calledDevice: unknown; lastRedirectionDevice: unknown };
    assert.deepEqual(delivered.calledDevice, { deviceIdentifier: '1002' });
    assert.deepEqual(delivered.lastRedirectionDevice, { numberDialed: '1002' });
    await client.link.request({ name: 'SetForwarding', device: '1002', activateForward: false });
    await client.expect(monB, [
      'Diverted(1002) null callForwardImmediate to 1004',
      'Forwarding(1002) forwardImmediate off',
    ]);
    assert.equal((await dave.register(0)).status, 200);
    await client.link.request({ name: 'MonitorStop', monitorCrossRefID: monD });
  });
});

/** The phone sends a re-INVITE in its dialog with the given media direction and ACKs the 2xx. */
async function reinvite(p: TestPhone, direction: 'sendonly' | 'sendrecv'): Promise<SipResponse> {
  const dialog = p.dialog!;
  const invite = dialog.createRequest('INVITE');
  invite.set('Content-Type', 'application/sdp');
  invite.body = Buffer.from(`${SDP(32000)}a=${direction}\r\n`);
  const destination = { protocol: 'UDP' as const, address: '127.0.0.1', port: voice.sipPort };
  const response = await new Promise<SipResponse>((resolve, reject) => {
    p.stack.sendRequest(
      invite,
      {
        onResponse: (r) => {
          if (r.status >= 200) resolve(r);
        },
        onTimeout: () => reject(new Error('re-INVITE timed out')),
        onTransportError: (_tx, e) => reject(e),
      },
      destination,
    );
  });
  if (response.status < 300)
    await p.stack.sendStateless(dialog.createRequest('ACK', invite.cseq.seq), destination);
  return response;
}

describe('CSTA interface: hold and retrieve (csta.md §5.4)', () => {
  it('HoldCall/RetrieveCall re-INVITE both phones (sendonly/inactive, then sendrecv)', async () => {
    bob.mode = 'answer';
    assert.equal((await alice.call('1002').done).status, 200);
    const [delivered] = await client.expect(monB, [
      'Delivered(1002) alerting newCall',
      'Established(1002) connected newCall',
    ]);
    const callID = callIdOf(delivered!)!;
    const bobReinvite = waitEvent<SipRequest>(bob, 'reinvite', 3000);
    const aliceReinvite = waitEvent<SipRequest>(alice, 'reinvite', 3000);
    await client.link.request({ name: 'HoldCall', callToBeHeld: { callID, deviceID: '1001' } });
    const [toBob] = await bobReinvite;
    const [toAlice] = await aliceReinvite;
    assert.match(toBob!.body.toString(), /a=sendonly/);
    assert.match(toBob!.body.toString(), /m=audio 30000/, "the held party gets the holder's media");
    assert.match(toAlice!.body.toString(), /a=inactive/);
    await client.expect(monB, [
      'Delivered(1002) alerting newCall',
      'Established(1002) connected newCall',
      'Held(1001) connected normal',
    ]);
    assert.equal(
      await client.refusal({ name: 'HoldCall', callToBeHeld: { callID, deviceID: '1001' } }),
      'stateIncompatibility/invalidConnectionState',
    );
    assert.equal(
      await client.refusal({ name: 'RetrieveCall', callToBeRetrieved: { callID, deviceID: '1002' } }),
      'stateIncompatibility/noHeldCall',
    );
    const bobRetrieve = waitEvent<SipRequest>(bob, 'reinvite', 3000);
    await client.link.request({ name: 'RetrieveCall', callToBeRetrieved: { callID, deviceID: '1001' } });
    const [again] = await bobRetrieve;
    assert.match(again!.body.toString(), /a=sendrecv/);
    await waitUntil(() => client.eventsOf(monA).length >= 6, 3000, 'Retrieved');
    await alice.hangup();
    await client.expect(monA, [
      'ServiceInitiated(1001) initiated newCall',
      'Originated(1001) connected newCall',
      'Delivered(1002) connected newCall',
      'Established(1002) connected newCall',
      'Held(1001) hold normal',
      'Retrieved(1001) connected normal',
      'ConnectionCleared(1001) null normalClearing',
    ]);
    await client.expect(monB, [
      'Delivered(1002) alerting newCall',
      'Established(1002) connected newCall',
      'Held(1001) connected normal',
      'Retrieved(1001) connected normal',
      'ConnectionCleared(1001) connected normalClearing',
      'ConnectionCleared(1002) null normalClearing',
    ]);
  });

  it("a phone's own re-INVITE with sendonly gives Held, with sendrecv Retrieved; held connections clear", async () => {
    bob.mode = 'answer';
    assert.equal((await alice.call('1002').done).status, 200);
    await waitUntil(() => client.eventsOf(monB).length >= 2, 3000, 'established');
    assert.equal((await reinvite(bob, 'sendonly')).status, 200);
    await client.expect(monA, [
      'ServiceInitiated(1001) initiated newCall',
      'Originated(1001) connected newCall',
      'Delivered(1002) connected newCall',
      'Established(1002) connected newCall',
      'Held(1002) connected normal',
    ]);
    assert.equal((await reinvite(bob, 'sendrecv')).status, 200);
    assert.equal((await reinvite(bob, 'sendonly')).status, 200);
    await waitUntil(() => client.eventsOf(monB).length >= 5, 3000, 'held again');
    await alice.hangup();
    await client.expect(monB, [
      'Delivered(1002) alerting newCall',
      'Established(1002) connected newCall',
      'Held(1002) hold normal',
      'Retrieved(1002) connected normal',
      'Held(1002) hold normal',
      'ConnectionCleared(1001) hold normalClearing',
      'ConnectionCleared(1002) null normalClearing',
    ]);
  });

  it('HoldCall/RetrieveCall on a MakeCall call re-INVITE both phones too', async () => {
    alice.mode = 'answer';
    bob.mode = 'answer';
    const r = await client.link.request({
      name: 'MakeCall',
      callingDevice: '1001',
      calledDirectoryNumber: '1002',
    });
    await client.expect(monB, ['Delivered(1002) alerting newCall', 'Established(1002) connected newCall']);
    const callID = r.callingDevice.callID!;
    const toAlice = waitEvent<SipRequest>(alice, 'reinvite', 3000);
    const toBob = waitEvent<SipRequest>(bob, 'reinvite', 3000);
    await client.link.request({ name: 'HoldCall', callToBeHeld: { callID, deviceID: '1002' } });
    assert.match((await toAlice)[0]!.body.toString(), /a=sendonly/);
    assert.match((await toBob)[0]!.body.toString(), /a=inactive/);
    await client.expect(monB, [
      'Delivered(1002) alerting newCall',
      'Established(1002) connected newCall',
      'Held(1002) hold normal',
    ]);
    await client.link.request({ name: 'RetrieveCall', callToBeRetrieved: { callID, deviceID: '1002' } });
    await waitUntil(() => client.eventsOf(monB).length >= 4, 3000, 'Retrieved');
    await client.link.request({ name: 'ClearCall', callToBeCleared: { callID } });
    await client.expect(monA, [
      'ServiceInitiated(1001) initiated makeCall',
      'Originated(1001) connected newCall',
      'Delivered(1002) connected newCall',
      'Established(1002) connected newCall',
      'Held(1002) connected normal',
      'Retrieved(1002) connected normal',
      'ConnectionCleared(1001) null normalClearing',
    ]);
  });
});

describe('CSTA interface: deflect (csta.md §5.6)', () => {
  it('DeflectCall while alerting: Diverted to the deflecting phone, the new phone rings and answers', async () => {
    const dave = await phone('1004', 'dave-secret');
    dave.mode = 'answer';
    const monD = await client.monitor('1004');
    bob.mode = 'ring';
    const ringing = waitEvent(bob, 'incoming', 3000);
    const { done } = alice.call('1002', () => undefined);
    await ringing;
    const [delivered] = await client.expect(monB, ['Delivered(1002) alerting newCall']);
    const callID = callIdOf(delivered!)!;
    assert.equal(
      await client.refusal({
        name: 'DeflectCall',
        callToBeDiverted: { callID, deviceID: '1002' },
        newDestination: '4242',
      }),
      'operation/invalidDestinationDeviceID',
    );
    assert.equal(
      await client.refusal({
        name: 'DeflectCall',
        callToBeDiverted: { callID, deviceID: '1001' },
        newDestination: '1004',
      }),
      'stateIncompatibility/invalidConnectionState',
    );
    const cancelled = waitEvent(bob, 'cancelled', 3000);
    await client.link.request({
      name: 'DeflectCall',
      callToBeDiverted: { callID, deviceID: '1002' },
      newDestination: '1004',
    });
    await cancelled;
    assert.equal((await done).status, 200, 'the caller is answered by the new destination');
    await client.expect(monB, ['Delivered(1002) alerting newCall', 'Diverted(1002) null redirected to 1004']);
    await waitUntil(() => client.eventsOf(monD).length >= 2, 3000, 'established at 1004');
    await alice.hangup();
    const a = await client.expect(monA, [
      'ServiceInitiated(1001) initiated newCall',
      'Originated(1001) connected newCall',
      'Delivered(1002) connected newCall',
      'Delivered(1004) connected redirected',
      'Established(1004) connected redirected',
      'ConnectionCleared(1001) null normalClearing',
    ]);
    await client.expect(monD, [
      'Delivered(1004) alerting redirected',
      'Established(1004) connected redirected',
      'ConnectionCleared(1001) connected normalClearing',
      'ConnectionCleared(1004) null normalClearing',
    ]);
    const redirected = a[3] as { calledDevice: unknown; lastRedirectionDevice: unknown };
    assert.deepEqual(redirected.calledDevice, { deviceIdentifier: '1002' });
    assert.deepEqual(redirected.lastRedirectionDevice, { numberDialed: '1002' });
    assert.equal(new Set(a.map(callIdOf)).size, 1, 'the call keeps its callID');
    assert.equal((await dave.register(0)).status, 200);
    await client.link.request({ name: 'MonitorStop', monitorCrossRefID: monD });
  });
});

describe('CSTA interface: forwarding on busy and on no answer (csta.md §5.7)', () => {
  it('forwardBusy and forwardNoAns send the call on once, with Diverted and redirection causes', async () => {
    const dave = await phone('1004', 'dave-secret');
    dave.mode = 'answer';
    const monD = await client.monitor('1004');
    for (const forwardingType of ['forwardBusy', 'forwardNoAns'] as const) {
      await client.link.request({
        name: 'SetForwarding',
        device: '1002',
        forwardingType,
        activateForward: true,
        forwardDN: '1004',
      });
    }
    await client.expect(monB, [
      'Forwarding(1002) forwardBusy on 1004',
      'Forwarding(1002) forwardNoAns on 1004',
    ]);
    const list = await client.link.request({ name: 'GetForwarding', device: '1002' });
    assert.deepEqual(
      list.forwardingList?.map((i) => [i.forwardingType, i.forwardStatus, i.forwardDN]),
      [
        ['forwardImmediate', false, undefined],
        ['forwardBusy', true, '1004'],
        ['forwardNoAns', true, '1004'],
      ],
    );

    // busy at 1002: the call goes to 1004
    client.reset(monB);
    bob.mode = 'busy';
    assert.equal((await alice.call('1002').done).status, 200);
    await alice.hangup();
    await client.expect(monA, [
      'ServiceInitiated(1001) initiated newCall',
      'Originated(1001) connected newCall',
      'Delivered(1004) connected callForwardBusy',
      'Established(1004) connected callForwardBusy',
      'ConnectionCleared(1001) null normalClearing',
    ]);
    await client.expect(monB, ['Diverted(1002) null callForwardBusy to 1004']);
    await client.expect(monD, [
      'Delivered(1004) alerting callForwardBusy',
      'Established(1004) connected callForwardBusy',
      'ConnectionCleared(1001) connected normalClearing',
      'ConnectionCleared(1004) null normalClearing',
    ]);

    // no answer at 1002: after the ring time the call goes to 1004
    await idle();
    client.reset(monA);
    client.reset(monB);
    client.reset(monD);
    bob.mode = 'ring';
    const cancelled = waitEvent(bob, 'cancelled', 5000);
    assert.equal((await alice.call('1002').done).status, 200);
    await cancelled;
    await alice.hangup();
    await client.expect(monA, [
      'ServiceInitiated(1001) initiated newCall',
      'Originated(1001) connected newCall',
      'Delivered(1002) connected newCall',
      'Delivered(1004) connected callForwardNoAnswer',
      'Established(1004) connected callForwardNoAnswer',
      'ConnectionCleared(1001) null normalClearing',
    ]);
    await client.expect(monB, [
      'Delivered(1002) alerting newCall',
      'Diverted(1002) null callForwardNoAnswer to 1004',
    ]);

    // one hop only: with 1004 busy too, the call fails as busy
    await idle();
    client.reset(monA);
    bob.mode = 'busy';
    dave.mode = 'busy';
    assert.equal((await alice.call('1002').done).status, 486);
    await client.expect(monA, [
      'ServiceInitiated(1001) initiated newCall',
      'Originated(1001) connected newCall',
      'Delivered(1004) connected callForwardBusy',
      'ConnectionCleared(1004) connected busy',
      'Failed(1004) fail busy',
      'ConnectionCleared(1001) null normalClearing',
    ]);

    await client.link.request({ name: 'SetForwarding', device: '1002', activateForward: false });
    assert.equal((await dave.register(0)).status, 200);
    await client.link.request({ name: 'MonitorStop', monitorCrossRefID: monD });
  });
});

describe('CSTA interface: single-step transfer (csta.md §5.5)', () => {
  it('SingleStepTransferCall on a MakeCall call: Transfered, the target rings, media re-bridged', async () => {
    const dave = await phone('1004', 'dave-secret');
    dave.mode = 'answer';
    const monD = await client.monitor('1004');
    alice.mode = 'answer';
    bob.mode = 'answer';
    const r = await client.link.request({
      name: 'MakeCall',
      callingDevice: '1001',
      calledDirectoryNumber: '1002',
    });
    const callID = r.callingDevice.callID!;
    await client.expect(monB, ['Delivered(1002) alerting newCall', 'Established(1002) connected newCall']);
    assert.equal(
      await client.refusal({
        name: 'SingleStepTransferCall',
        activeCall: { callID, deviceID: '1001' },
        transferredTo: '1002',
      }),
      'operation/invalidDestinationDeviceID',
    );
    const aliceBye = waitEvent(alice, 'bye', 3000);
    const daveRings = waitEvent<SipRequest>(dave, 'incoming', 3000);
    const bobReinvite = waitEvent<SipRequest>(bob, 'reinvite', 3000);
    const daveAck = waitEvent<SipRequest>(dave, 'ack', 3000);
    const response = await client.link.request({
      name: 'SingleStepTransferCall',
      activeCall: { callID, deviceID: '1001' },
      transferredTo: '1004',
    });
    assert.deepEqual(
      { callID: response.transferredCall.callID, deviceID: response.transferredCall.deviceID },
      { callID, deviceID: '1004' },
    );
    await aliceBye;
    assert.equal((await daveRings)[0]!.body.length, 0, 'offerless INVITE to the target');
    assert.match((await bobReinvite)[0]!.body.toString(), /m=audio 31000/, "bob gets the target's offer");
    assert.match((await daveAck)[0]!.body.toString(), /m=audio 40000/, "the target's ACK has bob's answer");
    await client.expect(monA, [
      'ServiceInitiated(1001) initiated makeCall',
      'Originated(1001) connected newCall',
      'Delivered(1002) connected newCall',
      'Established(1002) connected newCall',
      'Transfered(1001) null singleStepTransfer',
    ]);
    const b = await client.expect(monB, [
      'Delivered(1002) alerting newCall',
      'Established(1002) connected newCall',
      'Transfered(1001) connected singleStepTransfer',
      'Delivered(1004) connected singleStepTransfer',
      'Established(1004) connected singleStepTransfer',
    ]);
    const delivered = b[3] as { callingDevice: unknown; lastRedirectionDevice: unknown };
    assert.deepEqual(delivered.callingDevice, { deviceIdentifier: '1002' });
    assert.deepEqual(delivered.lastRedirectionDevice, { numberDialed: '1001' });
    await client.link.request({ name: 'ClearCall', callToBeCleared: { callID } });
    await client.expect(monD, [
      'Delivered(1004) alerting singleStepTransfer',
      'Established(1004) connected singleStepTransfer',
      'ConnectionCleared(1002) connected normalClearing',
      'ConnectionCleared(1004) null normalClearing',
    ]);
    assert.equal((await dave.register(0)).status, 200);
    await client.link.request({ name: 'MonitorStop', monitorCrossRefID: monD });
  });

  for (const transferring of ['1001', '1002'] as const) {
    it(`SingleStepTransferCall on a phone-dialled call by ${transferring === '1001' ? 'the caller' : 'the callee'}`, async () => {
      const dave = await phone('1004', 'dave-secret');
      dave.mode = 'answer';
      bob.mode = 'answer';
      assert.equal((await alice.call('1002').done).status, 200);
      const [delivered] = await client.expect(monB, [
        'Delivered(1002) alerting newCall',
        'Established(1002) connected newCall',
      ]);
      const callID = callIdOf(delivered!)!;
      const [leaving, staying] = transferring === '1001' ? [alice, bob] : [bob, alice];
      const bye = waitEvent(leaving, 'bye', 3000);
      const daveRings = waitEvent<SipRequest>(dave, 'incoming', 3000);
      const media = waitEvent<SipRequest>(staying, 'reinvite', 3000);
      const daveAck = waitEvent<SipRequest>(dave, 'ack', 3000);
      await client.link.request({
        name: 'SingleStepTransferCall',
        activeCall: { callID, deviceID: transferring },
        transferredTo: '1004',
      });
      await bye;
      assert.equal((await daveRings)[0]!.body.length, 0);
      assert.match((await media)[0]!.body.toString(), /m=audio 31000/, "the target's offer");
      assert.match(
        (await daveAck)[0]!.body.toString(),
        /m=audio 40000/,
        'the answer of the phone that stays',
      );
      const stayingExt = transferring === '1001' ? '1002' : '1001';
      const monStaying = transferring === '1001' ? monB : monA;
      await waitUntil(
        () =>
          client
            .eventsOf(monStaying)
            .some(
              (e) =>
                e.name === 'EstablishedEvent' &&
                callIdOf(e) === callID &&
                (e as { answeringDevice?: { deviceIdentifier?: string } }).answeringDevice
                  ?.deviceIdentifier === '1004',
            ),
        3000,
        'established with 1004',
      );
      const tail = client
        .eventsOf(monStaying)
        .slice(-3)
        .map((e) => e.name);
      assert.deepEqual(tail, ['TransferedEvent', 'DeliveredEvent', 'EstablishedEvent']);
      const leavingEvents = client.eventsOf(transferring === '1001' ? monA : monB);
      assert.equal(leavingEvents.at(-1)?.name, 'TransferedEvent');
      assert.equal((leavingEvents.at(-1) as { localConnectionInfo?: string }).localConnectionInfo, 'null');
      const daveBye = waitEvent(dave, 'bye', 3000);
      await staying.hangup();
      await daveBye;
      await idle();
      const before =
        transferring === '1001'
          ? ['Delivered(1002) alerting newCall', 'Established(1002) connected newCall']
          : [
              'ServiceInitiated(1001) initiated newCall',
              'Originated(1001) connected newCall',
              'Delivered(1002) connected newCall',
              'Established(1002) connected newCall',
            ];
      await client.expect(monStaying, [
        ...before,
        `Transfered(${transferring}) connected singleStepTransfer`,
        'Delivered(1004) connected singleStepTransfer',
        'Established(1004) connected singleStepTransfer',
        `ConnectionCleared(${stayingExt}) null normalClearing`,
      ]);
      assert.equal((await dave.register(0)).status, 200);
    });
  }
});

describe('CSTA interface: clearing calls that are still ringing', () => {
  it('ClearConnection of the alerting callee: the callee is cancelled, the caller gets 603', async () => {
    bob.mode = 'ring';
    const { done } = alice.call('1002', () => undefined);
    const [delivered] = await client.expect(monB, ['Delivered(1002) alerting newCall']);
    const cancelled = waitEvent(bob, 'cancelled', 3000);
    await client.link.request({
      name: 'ClearConnection',
      connectionToBeCleared: { callID: callIdOf(delivered!)!, deviceID: '1002' },
    });
    assert.equal((await done).status, 603);
    await cancelled;
    await client.expect(monA, [
      'ServiceInitiated(1001) initiated newCall',
      'Originated(1001) connected newCall',
      'Delivered(1002) connected newCall',
      'ConnectionCleared(1002) connected normalClearing',
      'ConnectionCleared(1001) null normalClearing',
    ]);
    await client.expect(monB, [
      'Delivered(1002) alerting newCall',
      'ConnectionCleared(1002) null normalClearing',
    ]);
  });

  it('ClearCall while the MakeCall prompt rings the caller: the caller phone is cancelled', async () => {
    alice.mode = 'ring';
    const rings = waitEvent(alice, 'incoming', 3000);
    const r = await client.link.request({
      name: 'MakeCall',
      callingDevice: '1001',
      calledDirectoryNumber: '1002',
    });
    await rings;
    const cancelled = waitEvent(alice, 'cancelled', 3000);
    await client.link.request({ name: 'ClearCall', callToBeCleared: { callID: r.callingDevice.callID! } });
    await cancelled;
    await client.expect(monA, [
      'ServiceInitiated(1001) initiated makeCall',
      'ConnectionCleared(1001) null normalClearing',
    ]);
    await client.expect(monB, []);
  });
});

describe('CSTA interface: consultation and transfer (csta.md §5.5)', () => {
  it('ConsultationCall holds the call and calls the target from a second line; TransferCall joins them', async () => {
    const dave = await phone('1004', 'dave-secret');
    dave.mode = 'answer';
    const monD = await client.monitor('1004');
    alice.mode = 'answer';
    bob.mode = 'answer';
    const r = await client.link.request({
      name: 'MakeCall',
      callingDevice: '1001',
      calledDirectoryNumber: '1002',
    });
    const c1 = r.callingDevice.callID!;
    await client.expect(monB, ['Delivered(1002) alerting newCall', 'Established(1002) connected newCall']);
    const secondLine = waitEvent<SipRequest>(alice, 'incoming', 3000);
    const consultation = await client.link.request({
      name: 'ConsultationCall',
      existingCall: { callID: c1, deviceID: '1001' },
      consultedDevice: '1004',
    });
    const c2 = consultation.initiatedCall.callID!;
    assert.notEqual(c2, c1);
    assert.equal(consultation.initiatedCall.deviceID, '1001');
    assert.match((await secondLine)[0]!.get('Call-Info') ?? '', /answer-after=0/);
    await client.expect(monD, ['Delivered(1004) alerting newCall', 'Established(1004) connected newCall']);
    const consulting = [
      'ServiceInitiated(1001) initiated makeCall',
      'Originated(1001) connected newCall',
      'Delivered(1002) connected newCall',
      'Established(1002) connected newCall',
      'Held(1001) hold consultation',
      'ServiceInitiated(1001) initiated consultation',
      'Originated(1001) connected newCall',
      'Delivered(1004) connected newCall',
      'Established(1004) connected newCall',
    ];
    const a = [...(await client.expect(monA, consulting))];
    assert.deepEqual(
      a.map(callIdOf),
      [c1, c1, c1, c1, c1, c2, c2, c2, c2],
      'the consultation has its own callID',
    );
    assert.equal(
      await client.refusal({
        name: 'TransferCall',
        heldCall: { callID: c2, deviceID: '1001' },
        activeCall: { callID: c1, deviceID: '1001' },
      }),
      'stateIncompatibility/invalidHeldConnectionState',
    );
    const bobMedia = waitEvent<SipRequest>(bob, 'reinvite', 3000);
    const daveMedia = waitEvent<SipRequest>(dave, 'reinvite', 3000);
    let byes = 0;
    const onBye = () => byes++;
    alice.on('bye', onBye);
    const transfer = await client.link.request({
      name: 'TransferCall',
      heldCall: { callID: c1, deviceID: '1001' },
      activeCall: { callID: c2, deviceID: '1001' },
    });
    assert.equal(transfer.transferredCall.callID, c1);
    assert.equal(transfer.transferredCall.deviceID, '1004');
    const [toBob] = await bobMedia;
    const [toDave] = await daveMedia;
    assert.match(toBob!.body.toString(), /a=sendrecv/);
    assert.match(toDave!.body.toString(), /a=sendrecv/);
    await waitUntil(() => byes === 2, 3000, 'both of alice’s lines hung up');
    alice.off('bye', onBye);
    const [transfered] = (await client.expect(monA, [...consulting, 'Transfered(1001) null transfer'])).slice(
      -1,
    );
    const t = transfered as { secondaryOldCall?: { callID?: string }; transferredToDevice: unknown };
    assert.equal(t.secondaryOldCall?.callID, c2);
    assert.deepEqual(t.transferredToDevice, { deviceIdentifier: '1004' });
    await client.expect(monB, [
      'Delivered(1002) alerting newCall',
      'Established(1002) connected newCall',
      'Held(1001) connected consultation',
      'Transfered(1001) connected transfer',
    ]);
    await client.expect(monD, [
      'Delivered(1004) alerting newCall',
      'Established(1004) connected newCall',
      'Transfered(1001) connected transfer',
    ]);
    assert.equal(csta.model.size, 1, 'one call left: bob and dave on c1');
    await client.link.request({ name: 'ClearCall', callToBeCleared: { callID: c1 } });
    await client.expect(monD, [
      'Delivered(1004) alerting newCall',
      'Established(1004) connected newCall',
      'Transfered(1001) connected transfer',
      'ConnectionCleared(1004) null normalClearing',
    ]);
    await client.expect(monB, [
      'Delivered(1002) alerting newCall',
      'Established(1002) connected newCall',
      'Held(1001) connected consultation',
      'Transfered(1001) connected transfer',
      'ConnectionCleared(1004) connected normalClearing',
      'ConnectionCleared(1002) null normalClearing',
    ]);
    assert.equal((await dave.register(0)).status, 200);
    await client.link.request({ name: 'MonitorStop', monitorCrossRefID: monD });
  });
});

describe('CSTA interface: deflect on a MakeCall call', () => {
  it('the ringing called phone is cancelled and the new destination gets the caller offer', async () => {
    const dave = await phone('1004', 'dave-secret');
    dave.mode = 'answer';
    alice.mode = 'answer';
    bob.mode = 'ring';
    const cancelled = waitEvent(bob, 'cancelled', 3000);
    const daveRings = waitEvent<SipRequest>(dave, 'incoming', 3000);
    const r = await client.link.request({
      name: 'MakeCall',
      callingDevice: '1001',
      calledDirectoryNumber: '1002',
    });
    const callID = r.callingDevice.callID!;
    await client.expect(monB, ['Delivered(1002) alerting newCall']);
    await client.link.request({
      name: 'DeflectCall',
      callToBeDiverted: { callID, deviceID: '1002' },
      newDestination: '1004',
    });
    await cancelled;
    assert.match((await daveRings)[0]!.body.toString(), /m=audio 31000/, "the caller's offer");
    await client.expect(monA, [
      'ServiceInitiated(1001) initiated makeCall',
      'Originated(1001) connected newCall',
      'Delivered(1002) connected newCall',
      'Delivered(1004) connected redirected',
      'Established(1004) connected redirected',
    ]);
    await client.expect(monB, ['Delivered(1002) alerting newCall', 'Diverted(1002) null redirected to 1004']);
    const byes = Promise.all([waitEvent(alice, 'bye', 3000), waitEvent(dave, 'bye', 3000)]);
    await client.link.request({ name: 'ClearCall', callToBeCleared: { callID } });
    await byes;
    assert.equal((await dave.register(0)).status, 200);
  });
});

describe('CSTA interface: consultation and transfer of a phone-dialled call', () => {
  it('the B2BUA call is taken over, held, consulted and transferred; the callee and the target talk on', async () => {
    const dave = await phone('1004', 'dave-secret');
    dave.mode = 'answer';
    const monD = await client.monitor('1004');
    alice.mode = 'answer';
    bob.mode = 'answer';
    assert.equal((await alice.call('1002').done).status, 200);
    const [delivered] = await client.expect(monB, [
      'Delivered(1002) alerting newCall',
      'Established(1002) connected newCall',
    ]);
    const c1 = callIdOf(delivered!)!;
    const holdToBob = waitEvent<SipRequest>(bob, 'reinvite', 3000);
    const consultation = await client.link.request({
      name: 'ConsultationCall',
      existingCall: { callID: c1, deviceID: '1001' },
      consultedDevice: '1004',
    });
    const c2 = consultation.initiatedCall.callID!;
    assert.match((await holdToBob)[0]!.body.toString(), /a=sendonly/);
    await client.expect(monD, ['Delivered(1004) alerting newCall', 'Established(1004) connected newCall']);
    const consulting = [
      'ServiceInitiated(1001) initiated newCall',
      'Originated(1001) connected newCall',
      'Delivered(1002) connected newCall',
      'Established(1002) connected newCall',
      'Held(1001) hold consultation',
      'ServiceInitiated(1001) initiated consultation',
      'Originated(1001) connected newCall',
      'Delivered(1004) connected newCall',
      'Established(1004) connected newCall',
    ];
    await client.expect(monA, consulting);
    const bobMedia = waitEvent<SipRequest>(bob, 'reinvite', 3000);
    await client.link.request({
      name: 'TransferCall',
      heldCall: { callID: c1, deviceID: '1001' },
      activeCall: { callID: c2, deviceID: '1001' },
    });
    assert.match((await bobMedia)[0]!.body.toString(), /m=audio 31000[\s\S]*a=sendrecv/);
    await client.expect(monA, [...consulting, 'Transfered(1001) null transfer']);
    const daveBye = waitEvent(dave, 'bye', 3000);
    await bob.hangup();
    await daveBye;
    await client.expect(monB, [
      'Delivered(1002) alerting newCall',
      'Established(1002) connected newCall',
      'Held(1001) connected consultation',
      'Transfered(1001) connected transfer',
      'ConnectionCleared(1002) null normalClearing',
    ]);
    await client.expect(monD, [
      'Delivered(1004) alerting newCall',
      'Established(1004) connected newCall',
      'Transfered(1001) connected transfer',
      'ConnectionCleared(1002) connected normalClearing',
      'ConnectionCleared(1004) null normalClearing',
    ]);
    assert.equal((await dave.register(0)).status, 200);
    await client.link.request({ name: 'MonitorStop', monitorCrossRefID: monD });
  });
});

describe('CSTA interface: a phone re-INVITEs inside a MakeCall call', () => {
  it('the offer is relayed to the other phone; sendonly gives Held, sendrecv Retrieved', async () => {
    alice.mode = 'answer';
    bob.mode = 'answer';
    const r = await client.link.request({
      name: 'MakeCall',
      callingDevice: '1001',
      calledDirectoryNumber: '1002',
    });
    await client.expect(monB, ['Delivered(1002) alerting newCall', 'Established(1002) connected newCall']);
    await waitUntil(() => bob.dialog !== undefined, 3000, 'bob in a dialog');
    const relayed = waitEvent<SipRequest>(alice, 'reinvite', 3000);
    const held = await reinvite(bob, 'sendonly');
    assert.equal(held.status, 200);
    assert.match(held.body.toString(), /m=audio 40000/, "alice's answer comes back");
    assert.match((await relayed)[0]!.body.toString(), /m=audio 32000[\s\S]*a=sendonly/);
    assert.equal((await reinvite(bob, 'sendrecv')).status, 200);
    await client.link.request({ name: 'ClearCall', callToBeCleared: { callID: r.callingDevice.callID! } });
    await client.expect(monB, [
      'Delivered(1002) alerting newCall',
      'Established(1002) connected newCall',
      'Held(1002) hold normal',
      'Retrieved(1002) connected normal',
      'ConnectionCleared(1001) connected normalClearing',
      'ConnectionCleared(1002) null normalClearing',
    ]);
  });
});

/** The phone sends an UPDATE in its dialog, with `sdp` as offer when given. */
async function update(p: TestPhone, sdp?: string): Promise<SipResponse> {
  const request = p.dialog!.createRequest('UPDATE');
  if (sdp !== undefined) {
    request.set('Content-Type', 'application/sdp');
    request.body = Buffer.from(sdp);
  }
  const destination = { protocol: 'UDP' as const, address: '127.0.0.1', port: voice.sipPort };
  return new Promise<SipResponse>((resolve, reject) => {
    p.stack.sendRequest(
      request,
      {
        onResponse: (r) => {
          if (r.status >= 200) resolve(r);
        },
        onTimeout: () => reject(new Error('UPDATE timed out')),
        onTransportError: (_tx, e) => reject(e),
      },
      destination,
    );
  });
}

describe('CSTA interface: UPDATE inside a MakeCall call', () => {
  it('a session refresh (UPDATE without a body, RFC 4028) gets 200 with Contact; an UPDATE offer gets 488', async () => {
    alice.mode = 'answer';
    bob.mode = 'answer';
    const r = await client.link.request({
      name: 'MakeCall',
      callingDevice: '1001',
      calledDirectoryNumber: '1002',
    });
    await client.expect(monB, ['Delivered(1002) alerting newCall', 'Established(1002) connected newCall']);
    await waitUntil(() => bob.dialog !== undefined && alice.dialog !== undefined, 3000, 'both in dialogs');
    const refreshed = await update(bob);
    assert.equal(refreshed.status, 200);
    assert.ok(refreshed.contacts.length === 1, 'the 200 has a Contact');
    assert.equal((await update(alice)).status, 200);
    assert.equal((await update(bob, `${SDP(32000)}a=sendonly\r\n`)).status, 488);
    await client.link.request({ name: 'ClearCall', callToBeCleared: { callID: r.callingDevice.callID! } });
    await client.expect(monB, [
      'Delivered(1002) alerting newCall',
      'Established(1002) connected newCall',
      'ConnectionCleared(1001) connected normalClearing',
      'ConnectionCleared(1002) null normalClearing',
    ]);
  });
});

describe('CSTA interface: forwarding on busy and no answer for MakeCall calls', () => {
  it('the called phone is busy, then does not answer: the call goes on to the destination', async () => {
    const dave = await phone('1004', 'dave-secret');
    dave.mode = 'answer';
    alice.mode = 'answer';
    for (const forwardingType of ['forwardBusy', 'forwardNoAns'] as const) {
      await client.link.request({
        name: 'SetForwarding',
        device: '1002',
        forwardingType,
        activateForward: true,
        forwardDN: '1004',
      });
    }
    for (const [mode, cause] of [
      ['busy', 'callForwardBusy'],
      ['ring', 'callForwardNoAnswer'],
    ] as const) {
      await idle();
      client.reset(monA);
      client.reset(monB);
      bob.mode = mode;
      const daveAnswers = waitEvent(dave, 'ack', 5000);
      const r = await client.link.request({
        name: 'MakeCall',
        callingDevice: '1001',
        calledDirectoryNumber: '1002',
      });
      await daveAnswers;
      const alerting = mode === 'ring' ? ['Delivered(1002) connected newCall'] : [];
      await client.expect(monA, [
        'ServiceInitiated(1001) initiated makeCall',
        'Originated(1001) connected newCall',
        ...alerting,
        `Delivered(1004) connected ${cause}`,
        `Established(1004) connected ${cause}`,
      ]);
      await client.expect(monB, [
        ...(mode === 'ring' ? ['Delivered(1002) alerting newCall'] : []),
        `Diverted(1002) null ${cause} to 1004`,
      ]);
      await client.link.request({ name: 'ClearCall', callToBeCleared: { callID: r.callingDevice.callID! } });
    }
    await idle();
    await client.link.request({ name: 'SetForwarding', device: '1002', activateForward: false });
    assert.equal((await dave.register(0)).status, 200);
  });
});
