/**
 * CSTA features with baresip, a real softphone, where SIPp would not notice a problem: whether a phone
 * accepts the voice server's hold re-INVITEs and, for the transfers, a re-INVITE carrying another
 * phone's SDP (another o= origin), an offerless INVITE and a second call while in one (consultation, on a
 * phone-dialled and on a MakeCall call); and baresip's own hold and resume.
 * Each CSTA event sequence is asserted per monitor.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { CstaInterface } from '../../src/pbx/csta-interface.ts';
import { VoiceServer } from '../../src/pbx/server.ts';
import { InMemoryUserDirectory } from '../../src/pbx/users.ts';
import { BaresipPhone } from '../helpers/baresip.ts';
import { freeTcpPort, freeUdpTcpPort, waitUntil } from '../helpers/net.ts';
import { CstaTestClient, callIdOf } from './csta-client.ts';

const users = new InMemoryUserDirectory([
  { name: 'alice', extension: '1001', sipPassword: 'alice-pw' },
  { name: 'bob', extension: '1002', sipPassword: 'bob-pw' },
  { name: 'dave', extension: '1004', sipPassword: 'dave-pw' },
]);

let voice: VoiceServer;
let csta: CstaInterface;
let client: CstaTestClient;
let dir: string;
let alice: BaresipPhone;
let bob: BaresipPhone;
let dave: BaresipPhone;
let monA: string;
let monB: string;
let monD: string;

/** baresip takes TCP port N+1 for TLS beside SIP port N: both must be free (and not the ctrl port). */
async function sipPortPair(avoid: number): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = await freeUdpTcpPort();
    if (port + 1 === avoid || port === avoid) continue;
    const next = createServer();
    const ok = await new Promise<boolean>((resolve) => {
      next.once('error', () => resolve(false));
      next.listen(port + 1, '127.0.0.1', () => resolve(true));
    });
    next.close();
    if (ok) return port;
  }
  throw new Error('no free port pair for baresip');
}

async function phone(name: string, ext: string, rtpBase: number): Promise<BaresipPhone> {
  const ctrlPort = await freeTcpPort();
  const sipPort = await sipPortPair(ctrlPort);
  const password = `${name}-pw`;
  const p = new BaresipPhone({
    dir: join(dir, name),
    sipPort,
    ctrlPort,
    rtpPorts: [rtpBase, rtpBase + 99],
    account: `<sip:${ext}@localhost>;auth_pass=${password};outbound="sip:127.0.0.1:${voice.sipPort}";regint=60;answermode=auto`,
  });
  await p.ready();
  return p;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sb-csta-baresip-'));
  voice = new VoiceServer({ users, host: '127.0.0.1', sipPort: 0, ringTimeoutMs: 5000 });
  await voice.start();
  csta = new CstaInterface(voice, { port: 0 });
  await csta.start();
  client = new CstaTestClient(csta.port);
  await client.connect();
  monA = await client.monitor('1001');
  monB = await client.monitor('1002');
  monD = await client.monitor('1004');
  const rtp = 20000 + Math.floor(Math.random() * 150) * 100;
  [alice, bob, dave] = await Promise.all([
    phone('alice', '1001', rtp),
    phone('bob', '1002', rtp + 5000),
    phone('dave', '1004', rtp + 10000),
  ]);
  await waitUntil(
    () => ['1001', '1002', '1004'].every((ext) => voice.registrar.lookup(ext).length > 0),
    15_000,
    'all three registered',
  );
});

after(async () => {
  await Promise.all([alice?.stop(), bob?.stop(), dave?.stop()]);
  await client?.close();
  await csta?.stop();
  await voice?.stop();
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(async () => {
  await waitUntil(() => csta.model.size === 0, 10_000, 'no calls left');
  await client.link.request({ name: 'RequestSystemStatus' });
  for (const m of [monA, monB, monD]) client.reset(m);
});

/** alice dials bob, who answers automatically; resolves with the callID once both are established. */
async function aliceCallsBob(): Promise<string> {
  const aliceFrom = alice.events.length;
  const bobFrom = bob.events.length;
  await alice.command('dial', 'sip:1002@localhost');
  await alice.waitForEvent('CALL_ESTABLISHED', 15_000, aliceFrom);
  await bob.waitForEvent('CALL_ESTABLISHED', 15_000, bobFrom);
  await waitUntil(() => client.eventsOf(monB).length >= 2, 5000, 'Established on bob');
  return callIdOf(client.eventsOf(monB)[0]!)!;
}

const ANSWERED_A = [
  'ServiceInitiated(1001) initiated newCall',
  'Originated(1001) connected newCall',
  'Delivered(1002) connected newCall',
  'Established(1002) connected newCall',
];
const ANSWERED_B = ['Delivered(1002) alerting newCall', 'Established(1002) connected newCall'];

describe('CSTA with baresip phones', () => {
  it('HoldCall/RetrieveCall: both baresip phones accept the re-INVITEs; the call goes on', async () => {
    const callID = await aliceCallsBob();
    await client.link.request({ name: 'HoldCall', callToBeHeld: { callID, deviceID: '1001' } });
    await waitUntil(() => client.eventsOf(monB).length >= 3, 10_000, 'Held');
    await client.link.request({ name: 'RetrieveCall', callToBeRetrieved: { callID, deviceID: '1001' } });
    await waitUntil(() => client.eventsOf(monB).length >= 4, 10_000, 'Retrieved');
    const bobFrom = bob.events.length;
    await alice.command('hangup');
    await bob.waitForEvent('CALL_CLOSED', 10_000, bobFrom);
    await client.expect(monA, [
      ...ANSWERED_A,
      'Held(1001) hold normal',
      'Retrieved(1001) connected normal',
      'ConnectionCleared(1001) null normalClearing',
    ]);
    await client.expect(monB, [
      ...ANSWERED_B,
      'Held(1001) connected normal',
      'Retrieved(1001) connected normal',
      'ConnectionCleared(1001) connected normalClearing',
      'ConnectionCleared(1002) null normalClearing',
    ]);
  });

  it("baresip's own hold and resume give Held and Retrieved", async () => {
    await aliceCallsBob();
    await alice.command('hold');
    await waitUntil(() => client.eventsOf(monB).length >= 3, 10_000, 'Held');
    await alice.command('resume');
    await waitUntil(() => client.eventsOf(monB).length >= 4, 10_000, 'Retrieved');
    const aliceFrom = alice.events.length;
    await bob.command('hangup');
    await alice.waitForEvent('CALL_CLOSED', 10_000, aliceFrom);
    await client.expect(monA, [
      ...ANSWERED_A,
      'Held(1001) hold normal',
      'Retrieved(1001) connected normal',
      'ConnectionCleared(1002) connected normalClearing',
      'ConnectionCleared(1001) null normalClearing',
    ]);
    await client.expect(monB, [
      ...ANSWERED_B,
      'Held(1001) connected normal',
      'Retrieved(1001) connected normal',
      'ConnectionCleared(1002) null normalClearing',
    ]);
  });

  it("SingleStepTransferCall: bob's baresip takes dave's SDP in a re-INVITE, dave's the offerless INVITE", async () => {
    const callID = await aliceCallsBob();
    const aliceFrom = alice.events.length;
    const daveFrom = dave.events.length;
    await client.link.request({
      name: 'SingleStepTransferCall',
      activeCall: { callID, deviceID: '1001' },
      transferredTo: '1004',
    });
    await alice.waitForEvent('CALL_CLOSED', 10_000, aliceFrom);
    await dave.waitForEvent('CALL_ESTABLISHED', 15_000, daveFrom);
    await waitUntil(() => client.eventsOf(monD).length >= 2, 10_000, 'Established on dave');
    assert.equal(csta.model.size, 1, 'bob and dave are in the call');
    const bobFrom = bob.events.length;
    await dave.command('hangup');
    await bob.waitForEvent('CALL_CLOSED', 10_000, bobFrom);
    await client.expect(monA, [...ANSWERED_A, 'Transfered(1001) null singleStepTransfer']);
    await client.expect(monB, [
      ...ANSWERED_B,
      'Transfered(1001) connected singleStepTransfer',
      'Delivered(1004) connected singleStepTransfer',
      'Established(1004) connected singleStepTransfer',
      'ConnectionCleared(1004) connected normalClearing',
      'ConnectionCleared(1002) null normalClearing',
    ]);
    await client.expect(monD, [
      'Delivered(1004) alerting singleStepTransfer',
      'Established(1004) connected singleStepTransfer',
      'ConnectionCleared(1004) null normalClearing',
    ]);
  });

  it("ConsultationCall and TransferCall: alice's baresip answers the second line, bob and dave take each other's SDP", async () => {
    const c1 = await aliceCallsBob();
    const daveFrom = dave.events.length;
    const consultation = await client.link.request({
      name: 'ConsultationCall',
      existingCall: { callID: c1, deviceID: '1001' },
      consultedDevice: '1004',
    });
    const c2 = consultation.initiatedCall.callID!;
    await dave.waitForEvent('CALL_ESTABLISHED', 15_000, daveFrom);
    await waitUntil(() => client.eventsOf(monA).length >= 9, 10_000, 'the consultation is established');
    const aliceFrom = alice.events.length;
    await client.link.request({
      name: 'TransferCall',
      heldCall: { callID: c1, deviceID: '1001' },
      activeCall: { callID: c2, deviceID: '1001' },
    });
    // both of alice's calls end; bob and dave stay in c1
    await alice.waitForEvent('CALL_CLOSED', 10_000, aliceFrom);
    await waitUntil(
      () => alice.events.slice(aliceFrom).filter((e) => e.type === 'CALL_CLOSED').length === 2,
      10_000,
      'both of alice’s lines closed',
    );
    assert.equal(csta.model.size, 1, 'bob and dave are in c1');
    const daveFrom2 = dave.events.length;
    await bob.command('hangup');
    await dave.waitForEvent('CALL_CLOSED', 10_000, daveFrom2);
    const a = await client.expect(monA, [
      ...ANSWERED_A,
      'Held(1001) hold consultation',
      'ServiceInitiated(1001) initiated consultation',
      'Originated(1001) connected newCall',
      'Delivered(1004) connected newCall',
      'Established(1004) connected newCall',
      'Transfered(1001) null transfer',
    ]);
    assert.deepEqual(a.map(callIdOf), [c1, c1, c1, c1, c1, c2, c2, c2, c2, c1]);
    await client.expect(monB, [
      ...ANSWERED_B,
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
  });

  it('MakeCall, then ConsultationCall and TransferCall: the same with a third-party call from the start', async () => {
    const aliceFrom = alice.events.length;
    const bobFrom = bob.events.length;
    const r = await client.link.request({
      name: 'MakeCall',
      callingDevice: '1001',
      calledDirectoryNumber: '1002',
      autoOriginate: 'doNotPrompt',
    });
    const c1 = r.callingDevice.callID!;
    await bob.waitForEvent('CALL_ESTABLISHED', 15_000, bobFrom);
    await waitUntil(() => client.eventsOf(monB).length >= 2, 10_000, 'Established on bob');
    const daveFrom = dave.events.length;
    const consultation = await client.link.request({
      name: 'ConsultationCall',
      existingCall: { callID: c1, deviceID: '1001' },
      consultedDevice: '1004',
    });
    const c2 = consultation.initiatedCall.callID!;
    await dave.waitForEvent('CALL_ESTABLISHED', 15_000, daveFrom);
    await waitUntil(() => client.eventsOf(monA).length >= 9, 10_000, 'the consultation is established');
    await client.link.request({
      name: 'TransferCall',
      heldCall: { callID: c1, deviceID: '1001' },
      activeCall: { callID: c2, deviceID: '1001' },
    });
    await waitUntil(
      () => alice.events.slice(aliceFrom).filter((e) => e.type === 'CALL_CLOSED').length === 2,
      10_000,
      'both of alice’s lines closed',
    );
    const bobFrom2 = bob.events.length;
    await dave.command('hangup');
    await bob.waitForEvent('CALL_CLOSED', 10_000, bobFrom2);
    const a = await client.expect(monA, [
      'ServiceInitiated(1001) initiated makeCall',
      'Originated(1001) connected newCall',
      'Delivered(1002) connected newCall',
      'Established(1002) connected newCall',
      'Held(1001) hold consultation',
      'ServiceInitiated(1001) initiated consultation',
      'Originated(1001) connected newCall',
      'Delivered(1004) connected newCall',
      'Established(1004) connected newCall',
      'Transfered(1001) null transfer',
    ]);
    assert.deepEqual(a.map(callIdOf), [c1, c1, c1, c1, c1, c2, c2, c2, c2, c1]);
    await client.expect(monB, [
      ...ANSWERED_B,
      'Held(1001) connected consultation',
      'Transfered(1001) connected transfer',
      'ConnectionCleared(1004) connected normalClearing',
      'ConnectionCleared(1002) null normalClearing',
    ]);
    await client.expect(monD, [
      'Delivered(1004) alerting newCall',
      'Established(1004) connected newCall',
      'Transfered(1001) connected transfer',
      'ConnectionCleared(1004) null normalClearing',
    ]);
  });
});
