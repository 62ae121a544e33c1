/**
 * The whole product, as a newcomer meets it: `switchboard up` (text server, voice server, gateway in one
 * process), two SIP phones registered with digest, and two slixmpp chat clients. alice sends "call bob":
 * her phone rings first (third-party call control), then bob's; bob's chat says who is calling; once bob
 * answers, alice's phone contact shows "On the phone" in bob's roster. Issues 9 and 10.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freeTcpPort, freeUdpTcpPort, Proc, waitUntil } from '../helpers/net.ts';
import { requirePeer } from '../helpers/peers.ts';
import { TestPhone } from '../helpers/sip-phone.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const SLIX_CTI = join(ROOT, 'test/peers/slix_cti.py');

describe('click to call through switchboard up', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-c2c-'));
  let up: Proc;
  let c2s = 0;
  let sip = 0;
  const users: Record<string, { password: string; sip: string }> = {};
  const phones: TestPhone[] = [];
  const chats: Proc[] = [];

  before(async () => {
    requirePeer('python3-slixmpp');
    c2s = await freeTcpPort();
    sip = await freeUdpTcpPort();
    const config = join(dir, 'config.toml');
    writeFileSync(
      config,
      `log_level = "warn"
[xmpp]
c2s_port = ${c2s}
component_port = ${await freeTcpPort()}
allow_plain_loopback = true
[http]
port = ${await freeTcpPort()}
[pbx]
sip_port = ${sip}
csta_port = ${await freeTcpPort()}
`,
    );
    up = new Proc(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', 'up', '--config', config, '--data', join(dir, 'data')],
      { cwd: ROOT },
    );
    await up.waitForOutput(/Switchboard is up/, 30_000);
    for (const name of ['alice', 'bob']) {
      const [, password, sipPassword] = await up.waitForOutput(
        new RegExp(`${name}@localhost {2}password (\\S+) {2}phone \\d+, SIP password (\\S+)`),
        5000,
      );
      users[name] = { password: password!, sip: sipPassword! };
    }
  });

  after(async () => {
    for (const c of chats) await c.stop();
    for (const p of phones) await p.stop().catch(() => {});
    await up?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  function chat(user: string): Proc {
    const proc = new Proc(requirePeer('python3-slixmpp'), [
      SLIX_CTI,
      '--jid',
      `${user}@localhost/laptop`,
      // A generated password may start with '-': keep argparse from reading it as an option.
      `--password=${users[user]!.password}`,
      '--port',
      String(c2s),
    ]);
    chats.push(proc);
    return proc;
  }

  async function phone(extension: string, user: string): Promise<TestPhone> {
    const p = new TestPhone(extension, users[user]!.sip, {
      host: '127.0.0.1',
      port: sip,
      domain: 'localhost',
    });
    await p.start();
    phones.push(p);
    const r = await p.register(300);
    assert.equal(r.status, 200, `REGISTER ${extension}`);
    return p;
  }

  it('alice: "call bob" → her phone, then bob’s; bob is told who calls; presence follows the call', async () => {
    const alicePhone = await phone('1001', 'alice');
    const bobPhone = await phone('1002', 'bob');
    alicePhone.mode = 'answer'; // alice's phone picks up when it rings (she lifts the handset)
    bobPhone.mode = 'ring-then-answer';

    const bob = chat('bob');
    await bob.waitForOutput(/READY/, 20_000);
    bob.child.stdin!.write('subscribe 1001@cti.localhost\n');
    await bob.waitForOutput(/PRESENCE 1001@cti\.localhost available Idle/, 10_000);

    const alice = chat('alice');
    await alice.waitForOutput(/READY/, 20_000);
    const aliceRings = new Promise((resolve) => alicePhone.once('incoming', resolve));
    const bobRings = new Promise((resolve) => bobPhone.once('incoming', resolve));
    const t0 = performance.now();
    alice.child.stdin!.write('say cti.localhost call bob\n');
    await alice.waitForOutput(/MESSAGE cti\.localhost Calling bob \(1002\) from your phone 1001 …/, 10_000);
    await aliceRings;
    const tAlice = performance.now();
    await bobRings;
    console.log(
      `# chat "call bob" → alice's phone INVITE ${(tAlice - t0).toFixed(0)} ms, → bob's phone ${(performance.now() - t0).toFixed(0)} ms`,
    );

    await bob.waitForOutput(
      /MESSAGE 1002@cti\.localhost Incoming call from 1001 \(alice\) \| alice@localhost/,
      10_000,
    );
    bobPhone.answer();
    await bob.waitForOutput(/PRESENCE 1001@cti\.localhost dnd On the phone/, 10_000);
    // bob is not alice: he sees the state without her other party's number.
    assert.doesNotMatch(bob.output, /PRESENCE 1001@cti\.localhost dnd On the phone \(/);

    // alice hangs up from chat; both phones get BYE and her phone contact is idle again in bob's roster.
    const byeAlice = new Promise((resolve) => alicePhone.once('bye', resolve));
    const byeBob = new Promise((resolve) => bobPhone.once('bye', resolve));
    alice.child.stdin!.write('say cti.localhost hangup\n');
    await alice.waitForOutput(/MESSAGE cti\.localhost Hung up\./, 10_000);
    await Promise.all([byeAlice, byeBob]);
    await waitUntil(
      () => (bob.output.match(/PRESENCE 1001@cti\.localhost available Idle/g) ?? []).length >= 2,
      10_000,
      'Idle again',
    );
  });
});
