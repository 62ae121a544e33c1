/**
 * End to end with SIPp (sip-tester) through the voice server over UDP: digest REGISTER, then calls from
 * a SIPp caller (answering the 407) to a SIPp callee registered by a SIPp REGISTER: answered with caller
 * hang-up, callee hang-up, busy, no answer (ring timeout), caller cancels.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Call } from '../../src/pbx/call.ts';
import { VoiceServer } from '../../src/pbx/server.ts';
import { InMemoryUserDirectory } from '../../src/pbx/users.ts';
import { freeUdpTcpPort, waitEvent, waitUntil } from '../helpers/net.ts';
import { SippPhones } from '../helpers/sipp.ts';
import { type UacOutcome, type UasBehaviour, uacScenario, uasScenario } from './sipp-scenarios.ts';

const REGISTER_XML = new URL('./sipp/register.xml', import.meta.url).pathname;
const users = new InMemoryUserDirectory([
  { name: 'alice', extension: '1001', sipPassword: 'alice-pw' },
  { name: 'bob', extension: '1002', sipPassword: 'bob-pw' },
]);

let server: VoiceServer;
let dir: string;
let phones: SippPhones;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sb-sipp-'));
  phones = new SippPhones(dir, () => server.sipPort);
  server = new VoiceServer({ users, host: '127.0.0.1', sipPort: 0, ringTimeoutMs: 1500 });
  await server.start();
});

after(async () => {
  await phones.stopAll();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function callThrough(outcome: UacOutcome, behaviour: UasBehaviour): Promise<Call> {
  const uasPort = await freeUdpTcpPort();
  const uasFile = join(dir, `uas-${behaviour}.xml`);
  writeFileSync(uasFile, uasScenario(behaviour));
  const uas = phones.run([
    '-sf',
    uasFile,
    '-p',
    String(uasPort),
    '-m',
    '1',
    '-timeout',
    '30s',
    '-mp',
    String(uasPort + 2),
  ]);
  await uas.waitForOutput(/Scenario Screen|Call-rate|Sipp/i, 10_000).catch(() => undefined);
  await phones.register('1002', 'bob-pw', uasPort);
  await waitUntil(
    () => server.registrar.lookup('1002').some((b) => b.uri.port === uasPort),
    5000,
    'callee registered',
  );

  const uacFile = join(dir, `uac-${outcome}.xml`);
  writeFileSync(uacFile, uacScenario(outcome));
  const csv = join(dir, 'caller.csv');
  writeFileSync(csv, 'SEQUENTIAL\n1001;localhost;alice-pw;1002\n');
  const uacPort = await freeUdpTcpPort();
  const nextCall = waitEvent<Call>(server, 'call', 20_000);
  const uac = phones.run([
    '-sf',
    uacFile,
    '-inf',
    csv,
    `127.0.0.1:${server.sipPort}`,
    '-p',
    String(uacPort),
    '-m',
    '1',
    '-d',
    '500',
    '-timeout',
    '30s',
    '-mp',
    String(uacPort + 2),
    '-au',
    '1001',
    '-ap',
    'alice-pw',
  ]);
  const [uacCode, uasCode] = await Promise.all([uac.wait(40_000), uas.wait(40_000)]);
  assert.equal(uacCode, 0, `sipp caller failed:\n${uac.output.slice(-1500)}\n${phones.readErrors()}`);
  assert.equal(uasCode, 0, `sipp callee failed:\n${uas.output.slice(-1500)}\n${phones.readErrors()}`);
  const [call] = await nextCall;
  await waitUntil(() => call!.state === 'released', 5000, 'call released');
  // un-register this callee so the next test's call does not fork to a finished SIPp
  await phones.register('1002', 'bob-pw', uasPort, 0);
  assert.equal(server.registrar.lookup('1002').length, 0);
  return call!;
}

describe('SIPp through the PBX', () => {
  it('registers with digest auth', async () => {
    const inService = waitEvent(server, 'device-in-service', 20_000);
    await phones.register('1001', 'alice-pw', 5999);
    assert.deepEqual(await inService, ['1001']);
  });

  it('registers with digest over TCP (-t t1)', async () => {
    const csv = join(dir, 'reg-tcp.csv');
    writeFileSync(csv, 'SEQUENTIAL\n1001;localhost;alice-pw;5998;300\n');
    const port = await freeUdpTcpPort();
    const p = phones.run([
      '-sf',
      REGISTER_XML,
      '-inf',
      csv,
      `127.0.0.1:${server.sipPort}`,
      '-t',
      't1',
      '-p',
      String(port),
      '-m',
      '1',
      '-timeout',
      '15s',
      '-au',
      '1001',
      '-ap',
      'alice-pw',
    ]);
    assert.equal(
      await p.wait(20_000),
      0,
      `sipp REGISTER over TCP failed:\n${p.output.slice(-1500)}\n${phones.readErrors()}`,
    );
    assert.ok(server.registrar.lookup('1001').some((b) => b.source.protocol === 'TCP'));
  });

  it('answered call, caller hangs up', async () => {
    const call = await callThrough('answer', 'answer');
    assert.equal(call.releaseCause, 'caller-hangup');
    assert.ok(call.answeredAt !== undefined);
  });

  it('answered call, callee hangs up', async () => {
    const call = await callThrough('remote-bye', 'hangup');
    assert.equal(call.releaseCause, 'callee-hangup');
  });

  it('busy callee', async () => {
    const call = await callThrough('busy', 'busy');
    assert.equal(call.releaseCause, 'busy');
  });

  it('no answer: the ring timeout cancels the callee and the caller gets 480', async () => {
    const call = await callThrough('noanswer', 'ring');
    assert.equal(call.releaseCause, 'no-answer');
  });

  it('caller cancels while ringing', async () => {
    const call = await callThrough('cancel', 'ring');
    assert.equal(call.releaseCause, 'caller-cancel');
  });
});
