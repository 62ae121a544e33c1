/**
 * CSTA events for calls between real SIPp phones (sip-tester) through the voice server, asserted per
 * monitor by a CSTA client on TCP: answered (either side hangs up), busy, no answer, caller cancel,
 * with BackInService/OutOfService as the SIPp callee registers and un-registers; and MakeCall between
 * two SIPp phones that answer (doNotPrompt), ended by the callee.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { CstaInterface } from '../../src/pbx/csta-interface.ts';
import { VoiceServer } from '../../src/pbx/server.ts';
import { InMemoryUserDirectory } from '../../src/pbx/users.ts';
import { type Proc, waitUntil } from '../helpers/net.ts';
import { SippPhones } from '../helpers/sipp.ts';
import { CstaTestClient, callIdOf } from './csta-client.ts';
import { type UacOutcome, type UasBehaviour, uacScenario, uasScenario } from './sipp-scenarios.ts';

const _REGISTER_XML = new URL('./sipp/register.xml', import.meta.url).pathname;
const users = new InMemoryUserDirectory([
  { name: 'alice', extension: '1001', sipPassword: 'alice-pw' },
  { name: 'bob', extension: '1002', sipPassword: 'bob-pw' },
]);

let voice: VoiceServer;
let csta: CstaInterface;
let client: CstaTestClient;
let monA: string;
let monB: string;
let dir: string;
let phones: SippPhones;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sb-csta-sipp-'));
  phones = new SippPhones(dir, () => voice.sipPort);
  voice = new VoiceServer({ users, host: '127.0.0.1', sipPort: 0, ringTimeoutMs: 1500 });
  await voice.start();
  csta = new CstaInterface(voice, { port: 0 });
  await csta.start();
  client = new CstaTestClient(csta.port);
  await client.connect();
  monA = await client.monitor('1001');
  monB = await client.monitor('1002');
});

after(async () => {
  await phones.stopAll();
  await client.close();
  await csta.stop();
  await voice.stop();
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  client.reset(monA);
  client.reset(monB);
});

/** A SIPp UAS registered as `ext`, with one call of `behaviour` to play. */
async function uas(ext: string, password: string, behaviour: UasBehaviour): Promise<Proc> {
  const { sip: port, media } = await phones.phonePorts();
  const file = join(dir, `uas-${ext}-${behaviour}.xml`);
  writeFileSync(file, uasScenario(behaviour));
  const p = phones.run(['-sf', file, '-p', String(port), '-m', '1', '-timeout', '30s', '-mp', String(media)]);
  await phones.register(ext, password, port);
  await waitUntil(
    () => voice.registrar.lookup(ext).some((b) => b.uri.port === port),
    5000,
    `${ext} registered`,
  );
  (p as Proc & { contactPort?: number }).contactPort = port;
  return p;
}

async function unregister(ext: string, password: string, p: Proc): Promise<void> {
  await phones.register(ext, password, (p as Proc & { contactPort?: number }).contactPort!, 0);
  assert.equal(voice.registrar.lookup(ext).length, 0);
}

async function callThrough(outcome: UacOutcome, behaviour: UasBehaviour): Promise<void> {
  const callee = await uas('1002', 'bob-pw', behaviour);
  const uacFile = join(dir, `uac-${outcome}.xml`);
  writeFileSync(uacFile, uacScenario(outcome));
  const csv = join(dir, 'caller.csv');
  writeFileSync(csv, 'SEQUENTIAL\n1001;localhost;alice-pw;1002\n');
  const { sip: uacPort, media: uacMedia } = await phones.phonePorts();
  const uac = phones.run([
    '-sf',
    uacFile,
    '-inf',
    csv,
    `127.0.0.1:${voice.sipPort}`,
    '-p',
    String(uacPort),
    '-m',
    '1',
    '-d',
    '500',
    '-timeout',
    '30s',
    '-mp',
    String(uacMedia),
    '-au',
    '1001',
    '-ap',
    'alice-pw',
  ]);
  const [uacCode, uasCode] = await Promise.all([uac.wait(40_000), callee.wait(40_000)]);
  assert.equal(uacCode, 0, `sipp caller failed:\n${uac.output.slice(-1500)}\n${phones.readErrors()}`);
  assert.equal(uasCode, 0, `sipp callee failed:\n${callee.output.slice(-1500)}\n${phones.readErrors()}`);
  await waitUntil(() => csta.model.size === 0, 5000, 'call over');
  await unregister('1002', 'bob-pw', callee);
}

const ORIGINATED = ['ServiceInitiated(1001) initiated newCall', 'Originated(1001) connected newCall'];

describe('CSTA events for SIPp calls through the B2BUA', () => {
  it('answered, caller hangs up', async () => {
    await callThrough('answer', 'answer');
    const a = await client.expect(monA, [
      ...ORIGINATED,
      'Delivered(1002) connected newCall',
      'Established(1002) connected newCall',
      'ConnectionCleared(1001) null normalClearing',
    ]);
    const b = await client.expect(monB, [
      'BackInService(1002)',
      'Delivered(1002) alerting newCall',
      'Established(1002) connected newCall',
      'ConnectionCleared(1001) connected normalClearing',
      'ConnectionCleared(1002) null normalClearing',
      'OutOfService(1002)',
    ]);
    const ids = new Set([...a, ...b].map(callIdOf).filter((id) => id !== undefined));
    assert.equal(ids.size, 1);
  });

  it('answered, callee hangs up', async () => {
    await callThrough('remote-bye', 'hangup');
    await client.expect(monA, [
      ...ORIGINATED,
      'Delivered(1002) connected newCall',
      'Established(1002) connected newCall',
      'ConnectionCleared(1002) connected normalClearing',
      'ConnectionCleared(1001) null normalClearing',
    ]);
    await client.expect(monB, [
      'BackInService(1002)',
      'Delivered(1002) alerting newCall',
      'Established(1002) connected newCall',
      'ConnectionCleared(1002) null normalClearing',
      'OutOfService(1002)',
    ]);
  });

  it('busy', async () => {
    await callThrough('busy', 'busy');
    await client.expect(monA, [
      ...ORIGINATED,
      'Failed(1002) fail busy',
      'ConnectionCleared(1001) null normalClearing',
    ]);
    await client.expect(monB, ['BackInService(1002)', 'OutOfService(1002)']);
  });

  it('no answer', async () => {
    await callThrough('noanswer', 'ring');
    await client.expect(monA, [
      ...ORIGINATED,
      'Delivered(1002) connected newCall',
      'ConnectionCleared(1002) connected callNotAnswered',
      'ConnectionCleared(1001) null callNotAnswered',
    ]);
    await client.expect(monB, [
      'BackInService(1002)',
      'Delivered(1002) alerting newCall',
      'ConnectionCleared(1002) null callNotAnswered',
      'OutOfService(1002)',
    ]);
  });

  it('caller cancels', async () => {
    await callThrough('cancel', 'ring');
    await client.expect(monA, [
      ...ORIGINATED,
      'Delivered(1002) connected newCall',
      'ConnectionCleared(1001) null normalClearing',
    ]);
    await client.expect(monB, [
      'BackInService(1002)',
      'Delivered(1002) alerting newCall',
      'ConnectionCleared(1001) alerting normalClearing',
      'ConnectionCleared(1002) null normalClearing',
      'OutOfService(1002)',
    ]);
  });
});

describe('MakeCall between SIPp phones', () => {
  it('doNotPrompt: both SIPp phones answer, the callee hangs up, the caller is released', async () => {
    const a = await uas('1001', 'alice-pw', 'answer');
    const b = await uas('1002', 'bob-pw', 'hangup');
    const r = await client.link.request({
      name: 'MakeCall',
      callingDevice: '1001',
      calledDirectoryNumber: '1002',
      autoOriginate: 'doNotPrompt',
    });
    const [aCode, bCode] = await Promise.all([a.wait(40_000), b.wait(40_000)]);
    assert.equal(aCode, 0, `sipp caller phone failed:\n${a.output.slice(-1500)}\n${phones.readErrors()}`);
    assert.equal(bCode, 0, `sipp callee phone failed:\n${b.output.slice(-1500)}\n${phones.readErrors()}`);
    await waitUntil(() => csta.model.size === 0, 5000, 'call over');
    const eventsA = await client.expect(monA, [
      'BackInService(1001)',
      'ServiceInitiated(1001) initiated makeCall',
      'Originated(1001) connected newCall',
      'Delivered(1002) connected newCall',
      'Established(1002) connected newCall',
      'ConnectionCleared(1002) connected normalClearing',
      'ConnectionCleared(1001) null normalClearing',
    ]);
    await client.expect(monB, [
      'BackInService(1002)',
      'Delivered(1002) alerting newCall',
      'Established(1002) connected newCall',
      'ConnectionCleared(1002) null normalClearing',
    ]);
    assert.equal(callIdOf(eventsA[1]!), r.callingDevice.callID);
    await unregister('1001', 'alice-pw', a);
    await unregister('1002', 'bob-pw', b);
  });
});
