/**
 * Two headless baresip phones register at the voice server with digest and call each other through
 * the B2BUA (alice -> bob answered automatically, then bob -> alice accepted by hand), with RTP flowing
 * directly between them (SDP passed through) and hang-up from either side.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import type { Call } from '../../src/pbx/call.ts';
import { VoiceServer } from '../../src/pbx/server.ts';
import { InMemoryUserDirectory } from '../../src/pbx/users.ts';
import { BaresipPhone } from '../helpers/baresip.ts';
import { freeTcpPort, freeUdpTcpPort, waitEvent, waitUntil } from '../helpers/net.ts';

const users = new InMemoryUserDirectory([
  { name: 'alice', extension: '1001', sipPassword: 'alice-pw-1' },
  { name: 'bob', extension: '1002', sipPassword: 'bob-pw-2' },
]);

let server: VoiceServer;
let dir: string;
let alice: BaresipPhone;
let bob: BaresipPhone;

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

async function phone(
  name: string,
  ext: string,
  password: string,
  answer: 'auto' | 'manual',
  rtpBase: number,
): Promise<BaresipPhone> {
  const ctrlPort = await freeTcpPort();
  const sipPort = await sipPortPair(ctrlPort);
  const p = new BaresipPhone({
    dir: join(dir, name),
    sipPort,
    ctrlPort,
    rtpPorts: [rtpBase, rtpBase + 99],
    account: `<sip:${ext}@localhost>;auth_pass=${password};outbound="sip:127.0.0.1:${server.sipPort}";regint=60;answermode=${answer}`,
  });
  await p.ready();
  return p;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sb-baresip-'));
  server = new VoiceServer({ users, host: '127.0.0.1', sipPort: 0 });
  await server.start();
  const rtp = 20000 + Math.floor(Math.random() * 200) * 100;
  alice = await phone('alice', '1001', 'alice-pw-1', 'manual', rtp);
  bob = await phone('bob', '1002', 'bob-pw-2', 'auto', rtp + 5000);
});

after(async () => {
  await alice?.stop();
  await bob?.stop();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

it('both phones register with digest auth', async () => {
  await waitUntil(
    () => server.registrar.lookup('1001').length > 0 && server.registrar.lookup('1002').length > 0,
    15_000,
    'both registered',
  );
  const info = await alice.command('reginfo');
  assert.match(info.data ?? '', /OK/);
});

it('alice calls bob (auto answer): established through the B2BUA, alice hangs up', async () => {
  const nextCall = waitEvent<Call>(server, 'call', 10_000);
  const from = bob.events.length;
  await alice.command('dial', 'sip:1002@localhost');
  await alice.waitForEvent('CALL_ESTABLISHED', 15_000);
  await bob.waitForEvent('CALL_ESTABLISHED', 15_000, from);
  const [call] = await nextCall;
  assert.equal(call!.state, 'connected');
  assert.equal(call!.callerExtension, '1001');
  assert.equal(call!.calleeExtension, '1002');
  const bobFrom = bob.events.length;
  await alice.command('hangup');
  await bob.waitForEvent('CALL_CLOSED', 10_000, bobFrom);
  await waitUntil(() => call!.state === 'released', 5000, 'released');
  assert.equal(call!.releaseCause, 'caller-hangup');
});

it('bob calls alice, alice accepts by hand and then hangs up', async () => {
  const nextCall = waitEvent<Call>(server, 'call', 10_000);
  const aliceFrom = alice.events.length;
  const bobFrom = bob.events.length;
  await bob.command('dial', 'sip:1001@localhost');
  await alice.waitForEvent('CALL_INCOMING', 15_000, aliceFrom);
  const [call] = await nextCall;
  await waitUntil(() => call!.state === 'alerting', 5000, 'alerting');
  await alice.command('accept');
  await bob.waitForEvent('CALL_ESTABLISHED', 15_000, bobFrom);
  await waitUntil(() => call!.state === 'connected', 5000, 'connected');
  await alice.command('hangup');
  await bob.waitForEvent('CALL_CLOSED', 10_000, bobFrom);
  await waitUntil(() => call!.state === 'released', 5000, 'released');
  assert.equal(call!.releaseCause, 'callee-hangup');
});
