/**
 * The whole product as a user meets it: two SIP phones registered with digest and two slixmpp chat
 * clients. alice sends "call bob": her phone rings first (third-party call control), then bob's; bob's
 * chat says who is calling; once bob answers, alice's phone contact shows "On the phone" in bob's roster;
 * alice hangs up from chat. Run against `switchboard up` (all parts in one process, issue 10) and against
 * Prosody with `switchboard pbx` and `switchboard gateway` as separate processes (issue 9).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BaresipPhone } from '../helpers/baresip.ts';
import { startEjabberd } from '../helpers/ejabberd.ts';
import { freeTcpPort, freeUdpTcpPort, Proc, waitUntil } from '../helpers/net.ts';
import { requirePeer } from '../helpers/peers.ts';
import { startProsody } from '../helpers/prosody.ts';
import { TestPhone } from '../helpers/sip-phone.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const SLIX_CTI = join(ROOT, 'test/peers/slix_cti.py');

interface Deployment {
  c2s: number;
  sip: number;
  users: Record<string, { password: string; sip: string }>;
  stop(): Promise<void>;
}

function switchboard(args: string[]): Proc {
  return new Proc(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: ROOT });
}

async function allInOne(dir: string): Promise<Deployment> {
  const c2s = await freeTcpPort();
  const sip = await freeUdpTcpPort();
  const config = join(dir, 'config.toml');
  writeFileSync(
    config,
    `log_level = "warn"\n[xmpp]\nc2s_port = ${c2s}\ncomponent_port = ${await freeTcpPort()}\nallow_plain_loopback = true\n[http]\nport = ${await freeTcpPort()}\n[pbx]\nsip_port = ${sip}\ncsta_port = ${await freeTcpPort()}\n`,
  );
  const up = switchboard(['up', '--config', config, '--data', join(dir, 'data')]);
  await up.waitForOutput(/Switchboard is up/, 30_000);
  const users: Deployment['users'] = {};
  for (const name of ['alice', 'bob']) {
    const [, password, sipPassword] = await up.waitForOutput(
      new RegExp(`${name}@localhost {2}password (\\S+) {2}phone \\d+, SIP password (\\S+)`),
      5000,
    );
    users[name] = { password: password!, sip: sipPassword! };
  }
  return { c2s, sip, users, stop: () => up.stop() };
}

async function prosodyWithParts(dir: string): Promise<Deployment> {
  const prosody = await startProsody({
    components: { 'cti.localhost': 's3cret' },
    users: { alice: 'alicepw', bob: 'bobpw' },
  });
  return withParts(dir, prosody);
}

async function ejabberdWithParts(dir: string): Promise<Deployment> {
  const ejabberd = await startEjabberd({
    components: { 'cti.localhost': 's3cret' },
    users: { alice: 'alicepw', bob: 'bobpw' },
  });
  return withParts(dir, ejabberd);
}

/** `switchboard pbx` and `switchboard gateway` as separate processes beside an external text server. */
async function withParts(
  dir: string,
  prosody: { c2sPort: number; componentPort: number; stop(): Promise<void> },
): Promise<Deployment> {
  const users = {
    alice: { password: 'alicepw', sip: 'alice-sip' },
    bob: { password: 'bobpw', sip: 'bob-sip' },
  };
  const sip = await freeUdpTcpPort();
  const csta = await freeTcpPort();
  const pbx = switchboard([
    'pbx',
    '--sip-port',
    String(sip),
    '--csta-port',
    String(csta),
    '--user',
    '1001:alice:alice-sip',
    '--user',
    '1002:bob:bob-sip',
  ]);
  await pbx.waitForOutput(/CSTA XML .* on tcp/, 30_000);
  const config = join(dir, 'gateway.toml');
  writeFileSync(
    config,
    `log_level = "warn"\n[http]\nport = ${await freeTcpPort()}\n[gateway]\nxmpp_port = ${prosody.componentPort}\ncomponent_secret = "s3cret"\ncsta_port = ${csta}\n[[users]]\nname = "alice"\nextension = "1001"\n[[users]]\nname = "bob"\nextension = "1002"\n`,
  );
  const gateway = switchboard(['gateway', '--config', config, '--data', join(dir, 'gw')]);
  await gateway.waitForOutput(/gateway cti\.localhost/, 30_000);
  return {
    c2s: prosody.c2sPort,
    sip,
    users,
    async stop() {
      await gateway.stop();
      await pbx.stop();
      await prosody.stop();
    },
  };
}

for (const [label, deploy] of [
  ['switchboard up', allInOne],
  ['Prosody 0.12 + switchboard pbx + switchboard gateway', prosodyWithParts],
  ['ejabberd 23 + switchboard pbx + switchboard gateway', ejabberdWithParts],
] as const) {
  describe(`click to call with ${label}`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-c2c-'));
    let deployment: Deployment;
    const phones: TestPhone[] = [];
    const chats: Proc[] = [];

    before(async () => {
      requirePeer('python3-slixmpp');
      deployment = await deploy(dir);
    });

    after(async () => {
      for (const c of chats) await c.stop();
      for (const p of phones) await p.stop().catch(() => {});
      await deployment?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    function chat(user: string, ...extra: string[]): Proc {
      const proc = new Proc(requirePeer('python3-slixmpp'), [
        SLIX_CTI,
        '--jid',
        `${user}@localhost/laptop`,
        // A generated password may start with '-': keep argparse from reading it as an option.
        `--password=${deployment.users[user]!.password}`,
        '--port',
        String(deployment.c2s),
        ...extra,
      ]);
      chats.push(proc);
      return proc;
    }

    async function phone(extension: string, user: string): Promise<TestPhone> {
      const p = new TestPhone(extension, deployment.users[user]!.sip, {
        host: '127.0.0.1',
        port: deployment.sip,
        domain: 'localhost',
      });
      await p.start();
      phones.push(p);
      const r = await p.register(300);
      assert.equal(r.status, 200, `REGISTER ${extension}`);
      return p;
    }

    it('a CTI client monitoring alice’s phone gets the call’s CSTA events as iqs, in order (csta.md §5.1)', async () => {
      const alicePhone = await phone('1001', 'alice');
      const bobPhone = await phone('1002', 'bob');
      bobPhone.mode = 'answer';
      const ED4 = 'http://www.ecma-international.org/standards/ecma-323/csta/ed4';
      const cti = chat(
        'alice',
        '--csta',
        `<MonitorStart xmlns='${ED4}'><monitorObject><deviceObject>1001</deviceObject></monitorObject></MonitorStart>`,
      );
      const [, xref] = await cti.waitForOutput(/RESULT MonitorStart MonitorStartResponse (\S+)/, 20_000);
      const answered = await alicePhone.call('1002').done;
      assert.equal(answered.status, 200);
      await cti.waitForOutput(/EVENT EstablishedEvent/, 10_000);
      await alicePhone.hangup();
      await cti.waitForOutput(/EVENT ConnectionClearedEvent/, 10_000);
      const events = [...cti.output.matchAll(/EVENT (\w+) (\S+)/g)].map((m) => [m[1], m[2]]);
      assert.deepEqual(
        events.map(([name]) => name),
        [
          'ServiceInitiatedEvent',
          'OriginatedEvent',
          'DeliveredEvent',
          'EstablishedEvent',
          'ConnectionClearedEvent',
        ],
      );
      for (const [, x] of events) assert.equal(x, xref, 'every event carries the client’s own cross-ref');
      cti.child.stdin!.write('quit\n');
      await cti.waitForOutput(/DISCONNECTED/, 10_000);
      for (const p of [alicePhone, bobPhone]) await p.register(0);
    });

    it('alice: "call bob" → her phone, then bob’s; bob is told who calls; presence follows the call', async () => {
      const alicePhone = await phone('1001', 'alice');
      const bobPhone = await phone('1002', 'bob');
      alicePhone.mode = 'answer'; // alice's phone picks up when it rings (she lifts the handset)
      bobPhone.mode = 'ring-then-answer';

      const bob = chat('bob', '--subscribe', '1001@cti.localhost');
      await bob.waitForOutput(/READY/, 20_000);
      await bob.waitForOutput(/PRESENCE 1001@cti\.localhost available Idle/, 10_000).catch((e) => {
        console.log(bob.output);
        throw e;
      });

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
        `# ${label}: chat "call bob" → alice's phone INVITE ${(tAlice - t0).toFixed(0)} ms, → bob's phone ${(performance.now() - t0).toFixed(0)} ms`,
      );

      await bob.waitForOutput(
        /MESSAGE 1002@cti\.localhost Incoming call from 1001 \(alice\) \| alice@localhost/,
        10_000,
      );
      bobPhone.answer();
      await bob.waitForOutput(/PRESENCE 1001@cti\.localhost dnd On the phone/, 10_000);
      // bob is not alice: he sees the state without her other party's number.
      assert.doesNotMatch(bob.output, /PRESENCE 1001@cti\.localhost dnd On the phone \(/);

      // alice shares her numbers with bob, then nothing; each takes effect at once (issue 9 item 3).
      alice.child.stdin!.write('say cti.localhost share bob@localhost numbers\n');
      await alice.waitForOutput(/MESSAGE cti\.localhost bob@localhost now sees numbers/, 10_000);
      await bob.waitForOutput(/PRESENCE 1001@cti\.localhost dnd On the phone \(with 1002\)/, 10_000);
      alice.child.stdin!.write('say cti.localhost share bob none\n');
      await alice.waitForOutput(/MESSAGE cti\.localhost bob@localhost now sees none/, 10_000);
      await bob.waitForOutput(/PRESENCE 1001@cti\.localhost unavailable -/, 10_000);
      alice.child.stdin!.write('say cti.localhost share bob default\n');
      await waitUntil(
        () => (bob.output.match(/^PRESENCE 1001@cti\.localhost dnd On the phone$/gm) ?? []).length >= 2,
        10_000,
        'the state without the number again',
      );

      // alice hangs up from chat; both phones get BYE and her phone contact is idle again for bob.
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
}

describe('click to call from profanity in tmux (switchboard up)', () => {
  it('profanity sends "call bob" to cti.localhost: alice’s phone rings, then bob’s', async (t) => {
    const tmux = requirePeer('tmux');
    requirePeer('profanity');
    const dir = mkdtempSync(join(tmpdir(), 'sb-c2c-prof-'));
    const deployment = await allInOne(dir);
    const home = join(dir, 'home');
    const socketName = `sb-c2c-${process.pid}`;
    const env = {
      ...process.env,
      HOME: home,
      XDG_CONFIG_HOME: join(home, '.config'),
      XDG_DATA_HOME: join(home, '.local/share'),
    };
    const run = (...args: string[]) =>
      execFileSync(tmux, ['-L', socketName, ...args], { env, encoding: 'utf8' });
    const phones: TestPhone[] = [];
    t.after(async () => {
      try {
        run('kill-server');
      } catch {
        // already gone
      }
      for (const p of phones) await p.stop().catch(() => {});
      await deployment.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    for (const [ext, user] of [
      ['1001', 'alice'],
      ['1002', 'bob'],
    ] as const) {
      const p = new TestPhone(ext, deployment.users[user]!.sip, {
        host: '127.0.0.1',
        port: deployment.sip,
        domain: 'localhost',
      });
      await p.start();
      phones.push(p);
      assert.equal((await p.register(300)).status, 200);
    }
    const [alicePhone, bobPhone] = phones as [TestPhone, TestPhone];
    alicePhone.mode = 'answer';
    bobPhone.mode = 'ring';
    const aliceRings = new Promise((resolve) => alicePhone.once('incoming', resolve));
    const bobRings = new Promise((resolve) => bobPhone.once('incoming', resolve));

    run('new-session', '-d', '-s', 'p', '-x', '200', '-y', '50', 'profanity');
    const screen = () => run('capture-pane', '-t', 'p', '-p');
    await waitUntil(() => screen().includes('/help'), 15_000, 'profanity started');
    run(
      'send-keys',
      '-t',
      'p',
      `/connect alice@localhost server 127.0.0.1 port ${deployment.c2s} tls trust`,
      'Enter',
    );
    await waitUntil(() => screen().includes('Enter password'), 15_000, 'password prompt');
    run('send-keys', '-t', 'p', '-l', '--', deployment.users.alice!.password);
    run('send-keys', '-t', 'p', 'Enter');
    await waitUntil(() => /logged in successfully/.test(screen()), 15_000, `login; screen:\n${screen()}`);
    run('send-keys', '-t', 'p', '/msg cti.localhost call bob', 'Enter');
    await aliceRings;
    await bobRings;
    await waitUntil(
      () => screen().includes('Calling bob (1002) from your phone 1001'),
      15_000,
      `the answer in profanity; screen:\n${screen()}`,
    );
  });
});

describe('click to call with baresip phones (switchboard up)', () => {
  it('alice: "call bob" → alice’s baresip answers, bob’s baresip rings; bob is told; presence follows; hangup from chat', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-c2c-baresip-'));
    const deployment = await allInOne(dir);
    const phones: BaresipPhone[] = [];
    const chats: Proc[] = [];
    t.after(async () => {
      for (const c of chats) await c.stop();
      for (const p of phones) await p.stop().catch(() => {});
      await deployment.stop();
      rmSync(dir, { recursive: true, force: true });
    });
    const rtp = 21000 + Math.floor(Math.random() * 150) * 100;
    const baresip = async (name: string, ext: string, answer: 'auto' | 'manual', rtpBase: number) => {
      const ctrlPort = await freeTcpPort();
      const sipPort = await sipPortPair(ctrlPort);
      const p = new BaresipPhone({
        dir: join(dir, name),
        sipPort,
        ctrlPort,
        rtpPorts: [rtpBase, rtpBase + 99],
        account: `<sip:${ext}@localhost>;auth_pass=${deployment.users[name]!.sip};outbound="sip:127.0.0.1:${deployment.sip}";regint=60;answermode=${answer}`,
      });
      phones.push(p);
      await p.ready();
      await waitUntil(
        async () => /OK/.test((await p.command('reginfo')).data ?? ''),
        15_000,
        `${name} registered`,
      );
      return p;
    };
    // alice's phone answers by itself when the voice server rings it (she lifts the handset).
    const alicePhone = await baresip('alice', '1001', 'auto', rtp);
    const bobPhone = await baresip('bob', '1002', 'manual', rtp + 5000);
    const chat = (user: string, ...extra: string[]) => {
      const p = new Proc(requirePeer('python3-slixmpp'), [
        SLIX_CTI,
        '--jid',
        `${user}@localhost/laptop`,
        `--password=${deployment.users[user]!.password}`,
        '--port',
        String(deployment.c2s),
        ...extra,
      ]);
      chats.push(p);
      return p;
    };
    const bob = chat('bob', '--subscribe', '1001@cti.localhost');
    await bob.waitForOutput(/PRESENCE 1001@cti\.localhost available Idle/, 20_000);
    const alice = chat('alice');
    await alice.waitForOutput(/READY/, 20_000);
    // A CTI client of bob's monitors his phone through the gateway while the call goes on.
    const ED4 = 'http://www.ecma-international.org/standards/ecma-323/csta/ed4';
    const cti = new Proc(requirePeer('python3-slixmpp'), [
      SLIX_CTI,
      '--jid',
      'bob@localhost/cti',
      `--password=${deployment.users.bob!.password}`,
      '--port',
      String(deployment.c2s),
      '--csta',
      `<MonitorStart xmlns='${ED4}'><monitorObject><deviceObject>1002</deviceObject></monitorObject></MonitorStart>`,
    ]);
    chats.push(cti);
    await cti.waitForOutput(/RESULT MonitorStart MonitorStartResponse \S+/, 20_000);

    const bobFrom = bobPhone.events.length;
    alice.child.stdin!.write('say cti.localhost call bob\n');
    await alice.waitForOutput(/MESSAGE cti\.localhost Calling bob \(1002\) from your phone 1001 …/, 10_000);
    // alice's phone answered with its offer (RFC 3725 flow I); it is ACKed with bob's answer once bob picks up.
    await alicePhone.waitForEvent('CALL_LOCAL_SDP', 15_000);
    await bobPhone.waitForEvent('CALL_INCOMING', 15_000, bobFrom);
    await bob.waitForOutput(
      /MESSAGE 1002@cti\.localhost Incoming call from 1001 \(alice\) \| alice@localhost/,
      10_000,
    );
    await bobPhone.command('accept');
    await bobPhone.waitForEvent('CALL_ESTABLISHED', 15_000, bobFrom);
    await alicePhone.waitForEvent('CALL_ESTABLISHED', 15_000);
    await bob.waitForOutput(/PRESENCE 1001@cti\.localhost dnd On the phone/, 10_000);

    const closedFrom = bobPhone.events.length;
    alice.child.stdin!.write('say cti.localhost hangup\n');
    await alice.waitForOutput(/MESSAGE cti\.localhost Hung up\./, 10_000);
    await bobPhone.waitForEvent('CALL_CLOSED', 10_000, closedFrom);
    // bob's phone as CSTA saw it (csta.md §5.1/§5.2, called side): alerting, connected, cleared.
    await cti.waitForOutput(/EVENT ConnectionClearedEvent/, 10_000);
    const events = [...cti.output.matchAll(/EVENT (\w+)/g)].map((m) => m[1]);
    assert.deepEqual(events.slice(0, 3), ['DeliveredEvent', 'EstablishedEvent', 'ConnectionClearedEvent']);
  });
});

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
