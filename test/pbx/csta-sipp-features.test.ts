/**
 * CSTA features with real SIPp phones (sip-tester) through the voice server, each event sequence asserted
 * per monitor by a CSTA client on TCP (reference/csta.md §5): hold and retrieve (by CSTA, with the
 * caller on UDP and on TCP, and by a phone's own re-INVITE: sendonly, inactive, c=0.0.0.0; offerless
 * re-INVITEs and UPDATE refreshes change nothing), consultation and transfer, single-step transfer,
 * deflect, forwarding (immediate, busy, no answer), do not disturb, and a CSTA client that vanishes
 * mid-call; on phone-dialled (B2BUA) and MakeCall (third-party) calls. The SIPp scenarios answer exactly
 * what the voice server sends (re-INVITEs with sendonly/inactive/sendrecv and the other phone's media,
 * offerless INVITEs, answers in ACKs, BYEs) and fail when it sends anything else.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import type { CstaMessage } from '../../src/csta/index.ts';
import { CstaInterface } from '../../src/pbx/csta-interface.ts';
import { VoiceServer } from '../../src/pbx/server.ts';
import { InMemoryUserDirectory } from '../../src/pbx/users.ts';
import { type Proc, waitUntil } from '../helpers/net.ts';
import { SippPhones } from '../helpers/sipp.ts';
import { CstaTestClient, callIdOf, describe as describeEvent } from './csta-client.ts';
import { type Step, uacPhone, uacScenario, uasPhone, uasScenario } from './sipp-scenarios.ts';

const PASSWORDS: Record<string, string> = { '1001': 'alice-pw', '1002': 'bob-pw', '1004': 'dave-pw' };
const users = new InMemoryUserDirectory([
  { name: 'alice', extension: '1001', sipPassword: 'alice-pw' },
  { name: 'bob', extension: '1002', sipPassword: 'bob-pw' },
  { name: 'dave', extension: '1004', sipPassword: 'dave-pw' },
]);

let voice: VoiceServer;
let csta: CstaInterface;
let client: CstaTestClient;
let monA: string;
let monB: string;
let monD: string;
let dir: string;
let phones: SippPhones;
/** SIPp phones registered by the current test: un-registered after it. */
let registered: Phone[] = [];
let scenarioCounter = 0;

/** A SIPp phone: its SIP port and the media port its SDP shows. */
interface Phone {
  ext: string;
  name: string;
  sip: number;
  media: number;
  /** A calling phone may use TCP (one connection to the voice server, as phones behind NAT do). */
  transport: 'udp' | 'tcp';
  proc?: Proc;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sb-csta-sipp-features-'));
  phones = new SippPhones(dir, () => voice.sipPort);
  // the ring time is what no-answer forwarding waits for; long enough for DeflectCall on a busy machine
  voice = new VoiceServer({ users, host: '127.0.0.1', sipPort: 0, ringTimeoutMs: 2500 });
  await voice.start();
  csta = new CstaInterface(voice, { port: 0 });
  await csta.start();
  client = new CstaTestClient(csta.port);
  await client.connect();
  monA = await client.monitor('1001');
  monB = await client.monitor('1002');
  monD = await client.monitor('1004');
});

after(async () => {
  await phones.stopAll();
  await client.close();
  await csta.stop();
  await voice.stop();
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(async () => {
  registered = [];
  await resetMonitors();
});

afterEach(async () => {
  await phones.stopAll();
  for (const p of registered) await phones.register(p.ext, PASSWORDS[p.ext]!, p.sip, 0);
  // even when a test failed half-way, the next one starts without forwarding or DND
  await client.link.request({ name: 'SetForwarding', device: '1002', activateForward: false });
  await client.link.request({ name: 'SetDoNotDisturb', device: '1002', doNotDisturbOn: false });
  await waitUntil(() => csta.model.size === 0, 5000, 'no calls left');
});

/** Ports for a SIPp phone (media = SIP port + 2, as the other tests use). */
async function phone(ext: string, name: string, transport: 'udp' | 'tcp' = 'udp'): Promise<Phone> {
  return { ext, name, ...(await phones.phonePorts()), transport };
}

/** Starts `p` as a called phone with `xml` for one call and registers its contact. */
async function answering(p: Phone, xml: string): Promise<Phone> {
  const file = join(dir, `${p.name}-${++scenarioCounter}.xml`);
  writeFileSync(file, xml);
  p.proc = phones.run([
    '-sf',
    file,
    '-p',
    String(p.sip),
    '-mp',
    String(p.media),
    '-m',
    '1',
    '-timeout',
    '30s',
  ]);
  await phones.register(p.ext, PASSWORDS[p.ext]!, p.sip);
  registered.push(p);
  await waitUntil(
    () => voice.registrar.lookup(p.ext).some((b) => b.uri.port === p.sip),
    5000,
    `${p.name} registered`,
  );
  return p;
}

/** Starts `p` calling `callee` with `xml` (digest with its own password); `-d` is the talk pause. */
function calling(p: Phone, callee: string, xml: string, pauseMs = 300): Phone {
  const file = join(dir, `${p.name}-${++scenarioCounter}.xml`);
  writeFileSync(file, xml);
  const csv = join(dir, `${p.name}-${scenarioCounter}.csv`);
  writeFileSync(csv, `SEQUENTIAL\n${p.ext};localhost;${PASSWORDS[p.ext]};${callee}\n`);
  p.proc = phones.run([
    '-sf',
    file,
    '-inf',
    csv,
    `127.0.0.1:${voice.sipPort}`,
    '-p',
    String(p.sip),
    '-mp',
    String(p.media),
    '-m',
    '1',
    '-d',
    String(pauseMs),
    '-timeout',
    '30s',
    '-au',
    p.ext,
    '-ap',
    PASSWORDS[p.ext]!,
    ...(p.transport === 'tcp' ? ['-t', 't1'] : []),
  ]);
  return p;
}

/** Every SIPp phone played its scenario to the end (exit 0), then the call model is empty. */
async function played(...list: Phone[]): Promise<void> {
  const codes = await Promise.all(list.map((p) => p.proc!.wait(40_000)));
  list.forEach((p, i) => {
    assert.equal(
      codes[i],
      0,
      `SIPp ${p.name} failed:\n${p.proc!.output.slice(-1500)}\n${phones.readErrors()}`,
    );
  });
  await waitUntil(() => csta.model.size === 0, 5000, 'call over');
}

/** Forgets the events so far on every monitor (after a round trip, so nothing is still on the way). */
async function resetMonitors(): Promise<void> {
  await client.link.request({ name: 'RequestSystemStatus' });
  for (const m of [monA, monB, monD]) client.reset(m);
}

/** Waits for `predicate`; on a timeout the message shows every monitor's events and SIPp's errors. */
async function waitFor(predicate: () => boolean, what: string): Promise<void> {
  try {
    await waitUntil(predicate, 10_000, what);
  } catch (e) {
    const seen = [monA, monB, monD].map(
      (m) => `${m}: ${JSON.stringify(client.eventsOf(m).map(describeEvent))}`,
    );
    throw new Error(`${(e as Error).message}\n${seen.join('\n')}\n${phones.readErrors()}`);
  }
}

/** Waits until `monitor` has seen an event named `name` and returns its callID. */
async function callIdOn(monitor: string, name: string): Promise<string> {
  let found: CstaMessage | undefined;
  await waitFor(() => {
    found = client.eventsOf(monitor).find((e) => e.name === name);
    return found !== undefined;
  }, `${name} on ${monitor}`);
  return callIdOf(found!)!;
}

/** Waits until `monitor` has `count` events. */
async function eventsOn(monitor: string, count: number, what: string): Promise<void> {
  await waitFor(() => client.eventsOf(monitor).length >= count, what);
}

function oneCallId(...lists: CstaMessage[][]): string {
  const ids = new Set(
    lists
      .flat()
      .map(callIdOf)
      .filter((id) => id !== undefined),
  );
  assert.equal(ids.size, 1, `one callID, got ${[...ids].join(', ')}`);
  return [...ids][0]!;
}

const DIALLED = ['ServiceInitiated(1001) initiated newCall', 'Originated(1001) connected newCall'];
const ANSWERED_A = [...DIALLED, 'Delivered(1002) connected newCall', 'Established(1002) connected newCall'];
const ANSWERED_B = ['Delivered(1002) alerting newCall', 'Established(1002) connected newCall'];

describe('hold and retrieve with SIPp phones (csta.md §5.4)', () => {
  for (const transport of ['udp', 'tcp'] as const) {
    it(`HoldCall/RetrieveCall on a phone-dialled call (caller on ${transport}): both SIPp phones take the re-INVITEs`, async () => {
      // over TCP the re-INVITEs to the caller must come on its own connection: its Contact has no
      // transport parameter, and SIPp -t t1 listens on nothing else
      const alice = await phone('1001', 'alice', transport);
      const bob = await phone('1002', 'bob');
      // the holder (alice) gets bob's media inactive, bob gets alice's media sendonly; sendrecv to retrieve
      await answering(
        bob,
        uasPhone([
          { recvReinvite: 'sendonly', media: alice.media },
          { recvReinvite: 'sendrecv', media: alice.media },
          'recv-bye',
        ]),
      );
      await resetMonitors();
      calling(
        alice,
        '1002',
        uacPhone([
          { recvReinvite: 'inactive', media: bob.media },
          { recvReinvite: 'sendrecv', media: bob.media },
          'recv-bye',
        ]),
      );
      const callID = await callIdOn(monB, 'EstablishedEvent');
      await client.link.request({ name: 'HoldCall', callToBeHeld: { callID, deviceID: '1001' } });
      await eventsOn(monB, 3, 'Held');
      await client.link.request({ name: 'RetrieveCall', callToBeRetrieved: { callID, deviceID: '1001' } });
      await eventsOn(monB, 4, 'Retrieved');
      await client.link.request({
        name: 'ClearConnection',
        connectionToBeCleared: { callID, deviceID: '1001' },
      });
      await played(alice, bob);
      const a = await client.expect(monA, [
        ...ANSWERED_A,
        'Held(1001) hold normal',
        'Retrieved(1001) connected normal',
        'ConnectionCleared(1001) null normalClearing',
      ]);
      const b = await client.expect(monB, [
        ...ANSWERED_B,
        'Held(1001) connected normal',
        'Retrieved(1001) connected normal',
        'ConnectionCleared(1001) connected normalClearing',
        'ConnectionCleared(1002) null normalClearing',
      ]);
      assert.equal(oneCallId(a, b), callID);
    });
  }

  for (const hold of ['sendonly', 'c=0.0.0.0'] as const) {
    it(`the calling SIPp phone holds (${hold}) and retrieves with its own re-INVITEs, then hangs up`, async () => {
      const alice = await phone('1001', 'alice');
      const bob = await phone('1002', 'bob');
      await answering(
        bob,
        uasPhone([
          { recvReinvite: hold === 'sendonly' ? 'sendonly' : 'any', media: alice.media },
          { recvReinvite: 'sendrecv', media: alice.media },
          'recv-bye',
        ]),
      );
      await resetMonitors();
      // a session refresh by UPDATE first (relayed to bob, who answers it); bob's answers to the
      // re-INVITEs come back to alice through the B2BUA
      calling(
        alice,
        '1002',
        uacPhone([
          'update',
          { sendReinvite: hold, media: bob.media },
          { sendReinvite: 'sendrecv', media: bob.media },
          'bye',
        ]),
      );
      await played(alice, bob);
      const a = await client.expect(monA, [
        ...ANSWERED_A,
        'Held(1001) hold normal',
        'Retrieved(1001) connected normal',
        'ConnectionCleared(1001) null normalClearing',
      ]);
      const b = await client.expect(monB, [
        ...ANSWERED_B,
        'Held(1001) connected normal',
        'Retrieved(1001) connected normal',
        'ConnectionCleared(1001) connected normalClearing',
        'ConnectionCleared(1002) null normalClearing',
      ]);
      oneCallId(a, b);
    });
  }

  it('the calling SIPp phone holds the RFC 2543 way (c=0.0.0.0); RetrieveCall re-offers its SDP from before the hold', async () => {
    const alice = await phone('1001', 'alice');
    const bob = await phone('1002', 'bob');
    // bob gets alice's 0.0.0.0 offer relayed, then, on RetrieveCall, alice's real address again (the
    // sendrecv offer check wants c=IN IP4 127.0.0.1 and alice's media port)
    await answering(
      bob,
      uasPhone([
        { recvReinvite: 'any', media: alice.media },
        { recvReinvite: 'sendrecv', media: alice.media },
        'recv-bye',
      ]),
    );
    await resetMonitors();
    calling(
      alice,
      '1002',
      uacPhone([
        { sendReinvite: 'c=0.0.0.0', media: bob.media },
        { recvReinvite: 'sendrecv', media: bob.media },
        'recv-bye',
      ]),
    );
    const callID = await callIdOn(monB, 'HeldEvent');
    await client.link.request({ name: 'RetrieveCall', callToBeRetrieved: { callID, deviceID: '1001' } });
    await eventsOn(monB, 4, 'Retrieved');
    await client.link.request({
      name: 'ClearConnection',
      connectionToBeCleared: { callID, deviceID: '1001' },
    });
    await played(alice, bob);
    const a = await client.expect(monA, [
      ...ANSWERED_A,
      'Held(1001) hold normal',
      'Retrieved(1001) connected normal',
      'ConnectionCleared(1001) null normalClearing',
    ]);
    const b = await client.expect(monB, [
      ...ANSWERED_B,
      'Held(1001) connected normal',
      'Retrieved(1001) connected normal',
      'ConnectionCleared(1001) connected normalClearing',
      'ConnectionCleared(1002) null normalClearing',
    ]);
    oneCallId(a, b);
  });

  it('the called SIPp phone re-INVITEs without SDP, then holds (inactive); the caller hangs up on the held call', async () => {
    const alice = await phone('1001', 'alice');
    const bob = await phone('1002', 'bob');
    // first a re-INVITE without SDP (alice's offer comes back in the 200, bob's answer goes to her in
    // the ACK; no hold), then the hold
    await answering(
      bob,
      uasPhone([
        { sendReinvite: 'offerless', media: alice.media },
        { sendReinvite: 'inactive', media: alice.media },
        'recv-bye',
      ]),
    );
    await resetMonitors();
    // alice hangs up once bob's hold has reached her
    calling(
      alice,
      '1002',
      uacPhone([
        { recvReinvite: 'offerless', media: bob.media },
        { recvReinvite: 'inactive', media: bob.media },
        'bye',
      ]),
    );
    await played(alice, bob);
    await client.expect(monA, [
      ...ANSWERED_A,
      'Held(1002) connected normal',
      'ConnectionCleared(1001) null normalClearing',
    ]);
    await client.expect(monB, [
      ...ANSWERED_B,
      'Held(1002) hold normal',
      'ConnectionCleared(1001) hold normalClearing',
      'ConnectionCleared(1002) null normalClearing',
    ]);
  });

  it('HoldCall/RetrieveCall on a MakeCall call between two SIPp phones (3PCC re-INVITEs)', async () => {
    const alice = await phone('1001', 'alice');
    const bob = await phone('1002', 'bob');
    // bob holds: alice gets bob's media sendonly, bob gets alice's inactive
    await answering(
      alice,
      uasPhone(
        [
          { recvReinvite: 'sendonly', media: bob.media },
          { recvReinvite: 'sendrecv', media: bob.media },
          'recv-bye',
        ],
        { invite: { headers: [['Call-Info', 'answer-after=0']] }, ack: { body: [`m=audio ${bob.media} `] } },
      ),
    );
    await answering(
      bob,
      uasPhone(
        [
          { recvReinvite: 'inactive', media: alice.media },
          { recvReinvite: 'sendrecv', media: alice.media },
          'recv-bye',
        ],
        { invite: { body: [`m=audio ${alice.media} `] } },
      ),
    );
    await resetMonitors();
    const r = await client.link.request({
      name: 'MakeCall',
      callingDevice: '1001',
      calledDirectoryNumber: '1002',
      autoOriginate: 'doNotPrompt',
    });
    const callID = r.callingDevice.callID!;
    await eventsOn(monB, 2, 'Established');
    await client.link.request({ name: 'HoldCall', callToBeHeld: { callID, deviceID: '1002' } });
    await eventsOn(monB, 3, 'Held');
    await client.link.request({ name: 'RetrieveCall', callToBeRetrieved: { callID, deviceID: '1002' } });
    await eventsOn(monB, 4, 'Retrieved');
    await client.link.request({ name: 'ClearCall', callToBeCleared: { callID } });
    await played(alice, bob);
    const a = await client.expect(monA, [
      'ServiceInitiated(1001) initiated makeCall',
      'Originated(1001) connected newCall',
      'Delivered(1002) connected newCall',
      'Established(1002) connected newCall',
      'Held(1002) connected normal',
      'Retrieved(1002) connected normal',
      'ConnectionCleared(1001) null normalClearing',
    ]);
    const b = await client.expect(monB, [
      ...ANSWERED_B,
      'Held(1002) hold normal',
      'Retrieved(1002) connected normal',
      'ConnectionCleared(1001) connected normalClearing',
      'ConnectionCleared(1002) null normalClearing',
    ]);
    assert.equal(oneCallId(a, b), callID);
  });
  it('on a MakeCall call bob holds the RFC 2543 way (c=0.0.0.0); RetrieveCall re-offers his SDP from before', async () => {
    const alice = await phone('1001', 'alice');
    const bob = await phone('1002', 'bob');
    await answering(
      alice,
      uasPhone(
        [
          { recvReinvite: 'any', media: bob.media },
          { recvReinvite: 'sendrecv', media: bob.media },
          'recv-bye',
        ],
        { invite: { headers: [['Call-Info', 'answer-after=0']] }, ack: { body: [`m=audio ${bob.media} `] } },
      ),
    );
    await answering(
      bob,
      uasPhone(
        [
          { sendReinvite: 'c=0.0.0.0', media: alice.media },
          { recvReinvite: 'sendrecv', media: alice.media },
          'recv-bye',
        ],
        { invite: { body: [`m=audio ${alice.media} `] } },
      ),
    );
    await resetMonitors();
    const r = await client.link.request({
      name: 'MakeCall',
      callingDevice: '1001',
      calledDirectoryNumber: '1002',
      autoOriginate: 'doNotPrompt',
    });
    const callID = r.callingDevice.callID!;
    await callIdOn(monB, 'HeldEvent');
    await client.link.request({ name: 'RetrieveCall', callToBeRetrieved: { callID, deviceID: '1002' } });
    await eventsOn(monB, 4, 'Retrieved');
    await client.link.request({ name: 'ClearCall', callToBeCleared: { callID } });
    await played(alice, bob);
    const b = await client.expect(monB, [
      ...ANSWERED_B,
      'Held(1002) hold normal',
      'Retrieved(1002) connected normal',
      'ConnectionCleared(1001) connected normalClearing',
      'ConnectionCleared(1002) null normalClearing',
    ]);
    assert.equal(oneCallId(b), callID);
  });

  it("a SIPp phone's UPDATE refresh is answered and its re-INVITEs in a MakeCall call are relayed: Held, Retrieved", async () => {
    const alice = await phone('1001', 'alice');
    const bob = await phone('1002', 'bob');
    await answering(
      alice,
      uasPhone([
        { recvReinvite: 'sendonly', media: bob.media },
        { recvReinvite: 'sendrecv', media: bob.media },
        'recv-bye',
      ]),
    );
    // bob refreshes the session by UPDATE (RFC 4028) and by an offerless re-INVITE (answered with
    // alice's last SDP); alice's answers to his holds come back through the third-party side
    await answering(
      bob,
      uasPhone([
        'update',
        { sendReinvite: 'offerless', media: alice.media },
        { sendReinvite: 'sendonly', media: alice.media },
        { sendReinvite: 'sendrecv', media: alice.media },
        'recv-bye',
      ]),
    );
    await resetMonitors();
    const r = await client.link.request({
      name: 'MakeCall',
      callingDevice: '1001',
      calledDirectoryNumber: '1002',
      autoOriginate: 'doNotPrompt',
    });
    const callID = r.callingDevice.callID!;
    await eventsOn(monB, 4, 'Held and Retrieved');
    await client.link.request({ name: 'ClearCall', callToBeCleared: { callID } });
    await played(alice, bob);
    await client.expect(monA, [
      'ServiceInitiated(1001) initiated makeCall',
      'Originated(1001) connected newCall',
      'Delivered(1002) connected newCall',
      'Established(1002) connected newCall',
      'Held(1002) connected normal',
      'Retrieved(1002) connected normal',
      'ConnectionCleared(1001) null normalClearing',
    ]);
    await client.expect(monB, [
      ...ANSWERED_B,
      'Held(1002) hold normal',
      'Retrieved(1002) connected normal',
      'ConnectionCleared(1001) connected normalClearing',
      'ConnectionCleared(1002) null normalClearing',
    ]);
  });
});

describe('transfers with SIPp phones (csta.md §5.5)', () => {
  it('ConsultationCall and TransferCall on a phone-dialled call: bob and dave talk on, bob hangs up', async () => {
    const alice = await phone('1001', 'alice');
    const aliceLine2 = await phone('1001', 'alice-line2');
    const bob = await phone('1002', 'bob');
    const dave = await phone('1004', 'dave');
    // consultation: alice holds (bob gets alice's media sendonly), her second line auto-answers the call
    // to dave; transfer: both lines of alice get BYE, bob and dave get each other's media sendrecv
    await answering(
      bob,
      uasPhone([
        { recvReinvite: 'sendonly', media: alice.media },
        { recvReinvite: 'sendrecv', media: dave.media },
        'pause',
        'bye',
      ]),
    );
    await answering(
      aliceLine2,
      uasPhone(['recv-bye'], {
        invite: { headers: [['Call-Info', 'answer-after=0']] },
        ack: { body: [`m=audio ${dave.media} `] },
      }),
    );
    await answering(
      dave,
      uasPhone([{ recvReinvite: 'sendrecv', media: bob.media, ackOptional: true }, 'recv-bye'], {
        invite: { body: [`m=audio ${aliceLine2.media} `] },
      }),
    );
    await resetMonitors();
    calling(alice, '1002', uacPhone([{ recvReinvite: 'inactive', media: bob.media }, 'recv-bye']));
    const c1 = await callIdOn(monB, 'EstablishedEvent');
    const consultation = await client.link.request({
      name: 'ConsultationCall',
      existingCall: { callID: c1, deviceID: '1001' },
      consultedDevice: '1004',
    });
    const c2 = consultation.initiatedCall.callID!;
    assert.notEqual(c2, c1);
    await eventsOn(monD, 2, 'dave answered the consultation');
    const consulting = [
      ...ANSWERED_A,
      'Held(1001) hold consultation',
      'ServiceInitiated(1001) initiated consultation',
      'Originated(1001) connected newCall',
      'Delivered(1004) connected newCall',
      'Established(1004) connected newCall',
    ];
    const a = await client.expect(monA, consulting);
    assert.deepEqual(a.map(callIdOf), [c1, c1, c1, c1, c1, c2, c2, c2, c2]);
    const transfer = await client.link.request({
      name: 'TransferCall',
      heldCall: { callID: c1, deviceID: '1001' },
      activeCall: { callID: c2, deviceID: '1001' },
    });
    assert.equal(transfer.transferredCall.callID, c1);
    assert.equal(transfer.transferredCall.deviceID, '1004');
    await played(alice, aliceLine2, bob, dave);
    const [transfered] = (await client.expect(monA, [...consulting, 'Transfered(1001) null transfer'])).slice(
      -1,
    );
    assert.equal((transfered as { secondaryOldCall?: { callID?: string } }).secondaryOldCall?.callID, c2);
    const b = await client.expect(monB, [
      ...ANSWERED_B,
      'Held(1001) connected consultation',
      'Transfered(1001) connected transfer',
      'ConnectionCleared(1002) null normalClearing',
    ]);
    const d = await client.expect(monD, [
      'Delivered(1004) alerting newCall',
      'Established(1004) connected newCall',
      'Transfered(1001) connected transfer',
      'ConnectionCleared(1002) connected normalClearing',
      'ConnectionCleared(1004) null normalClearing',
    ]);
    assert.deepEqual(b.map(callIdOf), [c1, c1, c1, c1, c1]);
    assert.deepEqual(d.map(callIdOf), [c2, c2, c1, c1, c1], 'dave moves from c2 to c1');
  });

  for (const transferring of ['1001', '1002'] as const) {
    const by = transferring === '1001' ? 'the caller' : 'the callee';
    it(`SingleStepTransferCall on a phone-dialled call by ${by}: dave answers the offerless INVITE, then hangs up`, async () => {
      const alice = await phone('1001', 'alice');
      const bob = await phone('1002', 'bob');
      const dave = await phone('1004', 'dave');
      const [staying, stayingExt] = transferring === '1001' ? [bob, '1002'] : [alice, '1001'];
      // the party that stays gets dave's offer; its answer goes to dave in the ACK
      const stays: Step[] = [{ recvReinvite: 'any', media: dave.media }, 'recv-bye'];
      await answering(bob, uasPhone(transferring === '1002' ? ['recv-bye'] : stays));
      await answering(
        dave,
        uasPhone(['pause', 'bye'], {
          invite: { headers: [['Content-Length', '^ *0 *$']] },
          ack: { body: [`m=audio ${staying.media} `] },
        }),
      );
      await resetMonitors();
      calling(alice, '1002', uacPhone(transferring === '1001' ? ['recv-bye'] : stays));
      const callID = await callIdOn(monB, 'EstablishedEvent');
      const response = await client.link.request({
        name: 'SingleStepTransferCall',
        activeCall: { callID, deviceID: transferring },
        transferredTo: '1004',
      });
      assert.equal(response.transferredCall.callID, callID);
      await played(alice, bob, dave);
      const monLeaving = transferring === '1001' ? monA : monB;
      const monStaying = transferring === '1001' ? monB : monA;
      const before = transferring === '1001' ? ANSWERED_A : ANSWERED_B;
      const leaving = await client.expect(monLeaving, [
        ...before,
        `Transfered(${transferring}) null singleStepTransfer`,
      ]);
      const stayed = await client.expect(monStaying, [
        ...(transferring === '1001' ? ANSWERED_B : ANSWERED_A),
        `Transfered(${transferring}) connected singleStepTransfer`,
        'Delivered(1004) connected singleStepTransfer',
        'Established(1004) connected singleStepTransfer',
        'ConnectionCleared(1004) connected normalClearing',
        `ConnectionCleared(${stayingExt}) null normalClearing`,
      ]);
      const d = await client.expect(monD, [
        'Delivered(1004) alerting singleStepTransfer',
        'Established(1004) connected singleStepTransfer',
        'ConnectionCleared(1004) null normalClearing',
      ]);
      assert.equal(oneCallId(leaving, stayed, d), callID);
      const delivered = d[0] as { callingDevice: unknown; lastRedirectionDevice: unknown };
      assert.deepEqual(delivered.callingDevice, { deviceIdentifier: stayingExt });
      assert.deepEqual(delivered.lastRedirectionDevice, { numberDialed: transferring });
    });
  }
  it('SingleStepTransferCall on a MakeCall call: the calling SIPp phone gets BYE, bob gets the offer of dave', async () => {
    const alice = await phone('1001', 'alice');
    const bob = await phone('1002', 'bob');
    const dave = await phone('1004', 'dave');
    await answering(
      alice,
      uasPhone(['recv-bye'], { invite: { headers: [['Call-Info', 'answer-after=0']] } }),
    );
    await answering(bob, uasPhone([{ recvReinvite: 'any', media: dave.media }, 'recv-bye']));
    await answering(
      dave,
      uasPhone(['pause', 'bye'], {
        invite: { headers: [['Content-Length', '^ *0 *$']] },
        ack: { body: [`m=audio ${bob.media} `] },
      }),
    );
    await resetMonitors();
    const r = await client.link.request({
      name: 'MakeCall',
      callingDevice: '1001',
      calledDirectoryNumber: '1002',
      autoOriginate: 'doNotPrompt',
    });
    const callID = r.callingDevice.callID!;
    await eventsOn(monB, 2, 'Established');
    await client.link.request({
      name: 'SingleStepTransferCall',
      activeCall: { callID, deviceID: '1001' },
      transferredTo: '1004',
    });
    await played(alice, bob, dave);
    const a = await client.expect(monA, [
      'ServiceInitiated(1001) initiated makeCall',
      'Originated(1001) connected newCall',
      'Delivered(1002) connected newCall',
      'Established(1002) connected newCall',
      'Transfered(1001) null singleStepTransfer',
    ]);
    const b = await client.expect(monB, [
      ...ANSWERED_B,
      'Transfered(1001) connected singleStepTransfer',
      'Delivered(1004) connected singleStepTransfer',
      'Established(1004) connected singleStepTransfer',
      'ConnectionCleared(1004) connected normalClearing',
      'ConnectionCleared(1002) null normalClearing',
    ]);
    const d = await client.expect(monD, [
      'Delivered(1004) alerting singleStepTransfer',
      'Established(1004) connected singleStepTransfer',
      'ConnectionCleared(1004) null normalClearing',
    ]);
    assert.equal(oneCallId(a, b, d), callID);
  });
});

describe('deflect, forwarding and do not disturb with SIPp phones (csta.md §5.3, §5.6, §5.7)', () => {
  it('DeflectCall while the SIPp callee rings: it is cancelled, dave rings and answers', async () => {
    const alice = await phone('1001', 'alice');
    const bob = await phone('1002', 'bob');
    const dave = await phone('1004', 'dave');
    await answering(bob, uasScenario('ring'));
    await answering(dave, uasPhone(['recv-bye'], { invite: { body: [`m=audio ${alice.media} `] } }));
    await resetMonitors();
    calling(alice, '1002', uacPhone(['pause', 'bye'], { ringbacks: 2 }));
    const callID = await callIdOn(monB, 'DeliveredEvent');
    await client.link.request({
      name: 'DeflectCall',
      callToBeDiverted: { callID, deviceID: '1002' },
      newDestination: '1004',
    });
    await played(alice, bob, dave);
    const a = await client.expect(monA, [
      ...DIALLED,
      'Delivered(1002) connected newCall',
      'Delivered(1004) connected redirected',
      'Established(1004) connected redirected',
      'ConnectionCleared(1001) null normalClearing',
    ]);
    const b = await client.expect(monB, [
      'Delivered(1002) alerting newCall',
      'Diverted(1002) null redirected to 1004',
    ]);
    const d = await client.expect(monD, [
      'Delivered(1004) alerting redirected',
      'Established(1004) connected redirected',
      'ConnectionCleared(1001) connected normalClearing',
      'ConnectionCleared(1004) null normalClearing',
    ]);
    assert.equal(oneCallId(a, b, d), callID);
    redirectedFrom(a[3]!, '1002');
  });

  it('DeflectCall on a MakeCall call: the ringing SIPp phone is cancelled, dave gets the caller offer', async () => {
    const alice = await phone('1001', 'alice');
    const bob = await phone('1002', 'bob');
    const dave = await phone('1004', 'dave');
    await answering(alice, uasPhone(['recv-bye'], { ack: { body: [`m=audio ${dave.media} `] } }));
    await answering(bob, uasScenario('ring'));
    await answering(dave, uasPhone(['recv-bye'], { invite: { body: [`m=audio ${alice.media} `] } }));
    await resetMonitors();
    const r = await client.link.request({
      name: 'MakeCall',
      callingDevice: '1001',
      calledDirectoryNumber: '1002',
      autoOriginate: 'doNotPrompt',
    });
    const callID = r.callingDevice.callID!;
    await eventsOn(monB, 1, 'Delivered');
    await client.link.request({
      name: 'DeflectCall',
      callToBeDiverted: { callID, deviceID: '1002' },
      newDestination: '1004',
    });
    await eventsOn(monD, 2, 'Established');
    await client.link.request({ name: 'ClearCall', callToBeCleared: { callID } });
    await played(alice, bob, dave);
    const a = await client.expect(monA, [
      'ServiceInitiated(1001) initiated makeCall',
      'Originated(1001) connected newCall',
      'Delivered(1002) connected newCall',
      'Delivered(1004) connected redirected',
      'Established(1004) connected redirected',
      'ConnectionCleared(1001) null normalClearing',
    ]);
    const b = await client.expect(monB, [
      'Delivered(1002) alerting newCall',
      'Diverted(1002) null redirected to 1004',
    ]);
    const d = await client.expect(monD, [
      'Delivered(1004) alerting redirected',
      'Established(1004) connected redirected',
      'ConnectionCleared(1001) connected normalClearing',
      'ConnectionCleared(1004) null normalClearing',
    ]);
    assert.equal(oneCallId(a, b, d), callID);
    redirectedFrom(a[3]!, '1002');
  });

  for (const [forwardingType, cause] of [
    ['forwardImmediate', 'callForwardImmediate'],
    ['forwardBusy', 'callForwardBusy'],
    ['forwardNoAns', 'callForwardNoAnswer'],
  ] as const) {
    it(`${forwardingType}: the SIPp caller ends up talking to dave, with Diverted and ${cause}`, async () => {
      const alice = await phone('1001', 'alice');
      const bob = await phone('1002', 'bob');
      const dave = await phone('1004', 'dave');
      await client.link.request({
        name: 'SetForwarding',
        device: '1002',
        forwardingType,
        activateForward: true,
        forwardDN: '1004',
      });
      await client.expect(monB, [`Forwarding(1002) ${forwardingType} on 1004`]);
      // immediate: bob is not rung at all; busy: bob answers 486; no answer: bob rings out
      if (forwardingType === 'forwardBusy') await answering(bob, uasScenario('busy'));
      if (forwardingType === 'forwardNoAns') await answering(bob, uasScenario('ring'));
      await answering(dave, uasPhone(['recv-bye'], { invite: { body: [`m=audio ${alice.media} `] } }));
      await resetMonitors();
      calling(alice, '1002', uacPhone(['pause', 'bye'], { ringbacks: 2 }));
      await played(...[alice, dave, ...(forwardingType === 'forwardImmediate' ? [] : [bob])]);
      const rang = forwardingType === 'forwardNoAns';
      const a = await client.expect(monA, [
        ...DIALLED,
        ...(rang ? ['Delivered(1002) connected newCall'] : []),
        `Delivered(1004) connected ${cause}`,
        `Established(1004) connected ${cause}`,
        'ConnectionCleared(1001) null normalClearing',
      ]);
      const b = await client.expect(monB, [
        ...(rang ? ['Delivered(1002) alerting newCall'] : []),
        `Diverted(1002) null ${cause} to 1004`,
      ]);
      const d = await client.expect(monD, [
        `Delivered(1004) alerting ${cause}`,
        `Established(1004) connected ${cause}`,
        'ConnectionCleared(1001) connected normalClearing',
        'ConnectionCleared(1004) null normalClearing',
      ]);
      oneCallId(a, b, d);
      redirectedFrom(a.at(-3)!, '1002');
      await client.link.request({ name: 'SetForwarding', device: '1002', activateForward: false });
      await client.expect(monB, [
        ...(rang ? ['Delivered(1002) alerting newCall'] : []),
        `Diverted(1002) null ${cause} to 1004`,
        `Forwarding(1002) ${forwardingType} off`,
      ]);
    });
  }

  it('DND: the call to the registered SIPp phone gets 486 and Failed doNotDisturb; after DND off it rings', async () => {
    const alice = await phone('1001', 'alice');
    const refused = await phone('1001', 'alice-refused');
    const bob = await phone('1002', 'bob');
    // bob plays one call: had the PBX rung him during DND, he would have answered that one
    await answering(bob, uasPhone(['recv-bye']));
    await resetMonitors();
    await client.link.request({ name: 'SetDoNotDisturb', device: '1002', doNotDisturbOn: true });
    calling(refused, '1002', uacScenario('busy'));
    await played(refused);
    await client.expect(monA, [
      ...DIALLED,
      'Failed(1002) fail doNotDisturb',
      'ConnectionCleared(1001) null normalClearing',
    ]);
    await client.expect(monB, ['DoNotDisturb(1002) on']);
    await resetMonitors();
    await client.link.request({ name: 'SetDoNotDisturb', device: '1002', doNotDisturbOn: false });
    calling(alice, '1002', uacPhone(['pause', 'bye']));
    await played(alice, bob);
    await client.expect(monB, [
      'DoNotDisturb(1002) off',
      ...ANSWERED_B,
      'ConnectionCleared(1001) connected normalClearing',
      'ConnectionCleared(1002) null normalClearing',
    ]);
  });

  it('DND: a MakeCall to the DND device fails once the SIPp caller answered, which then gets BYE', async () => {
    const alice = await phone('1001', 'alice');
    const bob = await phone('1002', 'bob');
    await answering(
      alice,
      uasPhone(['recv-bye'], { invite: { headers: [['Call-Info', 'answer-after=0']] } }),
    );
    // registered (MakeCall needs that), never rung: it is stopped unplayed after the test
    await answering(bob, uasPhone(['recv-bye']));
    await client.link.request({ name: 'SetDoNotDisturb', device: '1002', doNotDisturbOn: true });
    await resetMonitors();
    await client.link.request({
      name: 'MakeCall',
      callingDevice: '1001',
      calledDirectoryNumber: '1002',
      autoOriginate: 'doNotPrompt',
    });
    await played(alice);
    await client.expect(monA, [
      'ServiceInitiated(1001) initiated makeCall',
      'Originated(1001) connected newCall',
      'Failed(1002) fail doNotDisturb',
      'ConnectionCleared(1001) null normalClearing',
    ]);
    await client.link.request({ name: 'SetDoNotDisturb', device: '1002', doNotDisturbOn: false });
    await client.expect(monB, ['DoNotDisturb(1002) off']);
  });
});

describe('link fault with SIPp phones', () => {
  it('a CSTA client vanishes mid-call: its monitors are dropped, the SIPp call goes on and ends normally', async () => {
    const alice = await phone('1001', 'alice');
    const bob = await phone('1002', 'bob');
    await answering(bob, uasPhone(['recv-bye']));
    await resetMonitors();
    const doomed = new CstaTestClient(csta.port);
    await doomed.connect();
    const before = csta.monitorCount;
    const doomedA = await doomed.monitor('1001');
    await doomed.monitor('1002');
    calling(alice, '1002', uacPhone(['recv-bye']));
    await callIdOn(monB, 'EstablishedEvent');
    await waitUntil(() => doomed.eventsOf(doomedA).length >= 4, 5000, 'the doomed client saw Established');
    // the socket goes away without any goodbye
    doomed.link.session?.close('test');
    await doomed.close();
    await waitUntil(() => csta.monitorCount === before, 5000, 'its monitors dropped');
    assert.equal(csta.model.size, 1, 'the call is still up');
    const callID = callIdOf(client.eventsOf(monB)[0]!)!;
    await client.link.request({
      name: 'ClearConnection',
      connectionToBeCleared: { callID, deviceID: '1002' },
    });
    await played(alice, bob);
    await client.expect(monA, [
      ...ANSWERED_A,
      'ConnectionCleared(1002) connected normalClearing',
      'ConnectionCleared(1001) null normalClearing',
    ]);
    await client.expect(monB, [...ANSWERED_B, 'ConnectionCleared(1002) null normalClearing']);
  });
});

/** calledDevice = the dialled device and lastRedirectionDevice = numberDialed (csta.md §5.7). */
function redirectedFrom(event: CstaMessage, dialled: string): void {
  const e = event as { calledDevice?: unknown; lastRedirectionDevice?: unknown };
  assert.deepEqual(e.calledDevice, { deviceIdentifier: dialled });
  assert.deepEqual(e.lastRedirectionDevice, { numberDialed: dialled });
}
