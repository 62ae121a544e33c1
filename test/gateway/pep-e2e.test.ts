/**
 * A user's own phone state reaches their contacts as PEP (XEP-0163 + XEP-0108 User Activity) where the
 * text server grants XEP-0356 (issue 9 item 2), end to end with separate processes: a text server, the
 * voice server (`switchboard pbx`) with two SIP phones, the gateway (`switchboard gateway`), alice's chat
 * client (slix_cti.py, directed presence to the gateway so her phone is watched) and bob's chat client
 * (slix_pep.py, which shows User Activity). alice's phone calls bob's: bob's client gets alice's activity
 * talking/on_the_phone, and an empty activity once she hangs up.
 *
 * - Prosody 0.12 + community mod_privilege (urn:xmpp:privilege:2, iq permission for pubsub) + mod_pep:
 *   the gateway chooses pep-iq and Prosody's PEP service notifies bob.
 * - ejabberd 23.01: its mod_privilege speaks urn:xmpp:privilege:1 (roster, message, presence; no iq
 *   permission before 24.10): the gateway chooses pep-message and sends the notifications itself.
 * - our own text server, with nothing configured: its default XEP-0356 grant to the gateway component
 *   (iq permission for pubsub) → pep-iq, and its PEP service notifies bob.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { ComponentConnection } from '../../src/gateway/component.ts';
import { PepPublisher } from '../../src/gateway/pep.ts';
import { startEjabberd } from '../helpers/ejabberd.ts';
import { freeTcpPort, freeUdpTcpPort, Proc, waitUntil } from '../helpers/net.ts';
import { requirePeer } from '../helpers/peers.ts';
import { type ProsodyInstance, startProsody } from '../helpers/prosody.ts';
import { TestPhone } from '../helpers/sip-phone.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const SLIX_CTI = join(ROOT, 'test/peers/slix_cti.py');
const SLIX_PEP = join(ROOT, 'test/peers/slix_pep.py');
const PUBSUB = 'http://jabber.org/protocol/pubsub';

interface TextServer {
  c2sPort: number;
  componentPort: number;
  stop(): Promise<void>;
}

async function prosodyWithPrivilege(): Promise<TextServer> {
  requirePeer('prosody');
  const p = await startProsody({
    components: { 'cti.localhost': 's3cret' },
    users: { alice: 'alicepw', bob: 'bobpw' },
    modules: ['pep', 'privilege'],
    hostConfig: `privileged_entities = { ["cti.localhost"] = { roster = "get"; message = "outgoing"; iq = { ["${PUBSUB}"] = "set" } } }`,
    componentConfig: '  modules_enabled = { "privilege" }',
  });
  return p;
}

async function ejabberdWithPrivilege(): Promise<TextServer> {
  return startEjabberd({
    components: { 'cti.localhost': 's3cret' },
    users: { alice: 'alicepw', bob: 'bobpw' },
    modules: `  mod_privilege:
    roster:
      get: all
    message:
      outgoing: all`,
  });
}

/**
 * Our own text server with its default grant for the gateway component ([xmpp] gateway_privileges,
 * on unless turned off: pubsub iq set, message outgoing, roster get, managed presence).
 */
async function ourTextServer(dir: string): Promise<TextServer> {
  const c2sPort = await freeTcpPort();
  const componentPort = await freeTcpPort();
  const config = join(dir, 'xmpp.toml');
  writeFileSync(
    config,
    `log_level = "warn"
[xmpp]
c2s_port = ${c2sPort}
component_port = ${componentPort}
component_secret = "s3cret"
allow_plain_loopback = true
[http]
port = 0
[[users]]
name = "alice"
password = "alicepw"
[[users]]
name = "bob"
password = "bobpw"
`,
  );
  const proc = new Proc(
    process.execPath,
    ['--import', 'tsx', 'src/cli/main.ts', 'xmpp', '--config', config, '--data', join(dir, 'xmpp-data')],
    { cwd: ROOT },
  );
  await proc.waitForOutput(/text server for localhost/, 20_000);
  return { c2sPort, componentPort, stop: () => proc.stop() };
}

function switchboard(args: string[]): Proc {
  return new Proc(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { cwd: ROOT });
}

const CASES: {
  label: string;
  make: (dir: string) => Promise<TextServer>;
  mode: 'pep-iq' | 'pep-message';
  todo?: string;
}[] = [
  { label: 'Prosody 0.12 with mod_privilege and mod_pep', make: prosodyWithPrivilege, mode: 'pep-iq' },
  { label: 'ejabberd 23.01 with mod_privilege', make: ejabberdWithPrivilege, mode: 'pep-message' },
  { label: 'our text server', make: ourTextServer, mode: 'pep-iq' },
];

for (const { label, make, mode, todo } of CASES) {
  describe(`phone state as PEP with ${label}`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-pep-e2e-'));
    const procs: Proc[] = [];
    const phones: TestPhone[] = [];
    let text: TextServer | undefined;
    let gateway: Proc;
    let httpPort = 0;
    let sipPort = 0;
    /** A setup failure is the test's failure (so a todo case stays a todo, not a cancelled run). */
    let setupError: unknown;

    before(async () => {
      try {
        await setUp();
      } catch (e) {
        setupError = e;
      }
    });

    async function setUp(): Promise<void> {
      requirePeer('python3-slixmpp');
      text = await make(dir);
      sipPort = await freeUdpTcpPort();
      const csta = await freeTcpPort();
      const pbx = switchboard([
        'pbx',
        '--sip-port',
        String(sipPort),
        '--csta-port',
        String(csta),
        '--user',
        '1001:alice:alice-sip',
        '--user',
        '1002:bob:bob-sip',
      ]);
      procs.push(pbx);
      await pbx.waitForOutput(/CSTA XML .* on tcp/, 30_000);
      httpPort = await freeTcpPort();
      const config = join(dir, 'gateway.toml');
      writeFileSync(
        config,
        `log_level = "info"\n[http]\nport = ${httpPort}\n[gateway]\nxmpp_port = ${text.componentPort}\ncomponent_secret = "s3cret"\ncsta_port = ${csta}\n[[users]]\nname = "alice"\nextension = "1001"\n[[users]]\nname = "bob"\nextension = "1002"\n`,
      );
      gateway = switchboard(['gateway', '--config', config, '--data', join(dir, 'gw')]);
      procs.push(gateway);
    }

    after(async () => {
      for (const p of phones) await p.stop().catch(() => {});
      for (const p of procs.reverse()) await p.stop();
      await text?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    function chat(script: string, user: string, ...extra: string[]): Proc {
      const proc = new Proc(requirePeer('python3-slixmpp'), [
        script,
        '--jid',
        `${user}@localhost/laptop`,
        `--password=${user}pw`,
        '--port',
        String(text!.c2sPort),
        ...extra,
      ]);
      procs.push(proc);
      return proc;
    }

    async function phone(extension: string, password: string): Promise<TestPhone> {
      const p = new TestPhone(extension, password, { host: '127.0.0.1', port: sipPort, domain: 'localhost' });
      await p.start();
      phones.push(p);
      assert.equal((await p.register(300)).status, 200, `REGISTER ${extension}`);
      return p;
    }

    it(`the gateway chooses and logs ${mode}; bob's client gets alice's activity while she is on the phone`, {
      ...(todo === undefined ? {} : { todo }),
    }, async () => {
      if (setupError !== undefined) throw setupError;
      const t0 = performance.now();
      const [line] = await gateway.waitForOutput(/\{[^\n]*"pepMode":"[^"]+"[^\n]*\}/, 30_000);
      assert.match(line!, new RegExp(`"pepMode":"${mode}"`), `mode line: ${line}`);
      assert.match(line!, new RegExp(`phone state for contacts: ${mode} \\(`));
      console.log(`# ${label}: gateway says: ${(JSON.parse(line!) as { msg: string }).msg}`);
      const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
      assert.match(metrics, new RegExp(`^switchboard_gateway_pep_mode\\{mode="${mode}"\\} 1$`, 'm'));
      assert.match(metrics, /^switchboard_gateway_pep_mode\{mode="presence-only"\} 0$/m);

      // alice is online (directed presence to the gateway: her phone is watched) and approves bob;
      // bob's client subscribes to her, and is subscribed to in return (slixmpp's defaults).
      const alice = chat(SLIX_CTI, 'alice');
      await alice.waitForOutput(/READY/, 20_000);
      const bob = chat(SLIX_PEP, 'bob', '--subscribe', 'alice@localhost');
      await bob.waitForOutput(/READY/, 20_000);
      await bob.waitForOutput(/PRESENCE alice@localhost available/, 20_000);
      await alice.waitForOutput(/PRESENCE bob@localhost available/, 20_000);

      const alicePhone = await phone('1001', 'alice-sip');
      const bobPhone = await phone('1002', 'bob-sip');
      bobPhone.mode = 'answer';
      const tCall = performance.now();
      const answered = await alicePhone.call('1002').done;
      assert.equal(answered.status, 200);
      await bob.waitForOutput(/ACTIVITY alice@localhost talking on_the_phone On_the_phone/, 15_000);
      const tSeen = performance.now();
      await alicePhone.hangup();
      await bob.waitForOutput(/ACTIVITY alice@localhost none - - /, 15_000);
      console.log(
        `# ${label}: ${mode}; call answered → bob sees "on the phone" ${(tSeen - tCall).toFixed(0)} ms after the INVITE; whole test ${(performance.now() - t0).toFixed(0)} ms`,
      );
      const activities = bob.output.split('\n').filter((l) => l.startsWith('ACTIVITY'));
      // One notification per change of state of alice's phone: on the phone, then stopped (no repeats per
      // CSTA event). bob may also get his own phone's activity (a server whose managed-entity presence
      // tells the gateway bob is online has his phone watched too); that is not alice's.
      assert.deepEqual(
        activities
          .filter((l) => l.startsWith('ACTIVITY alice@localhost '))
          .map((l) => l.split(' ').slice(1, 4).join(' ')),
        ['alice@localhost talking on_the_phone', 'alice@localhost none -'],
        bob.output,
      );
      for (const l of activities) assert.doesNotMatch(l, /100[12]/, 'no phone number in PEP');
      assert.doesNotMatch(gateway.output, /PEP publishing failed/);
      for (const p of [alicePhone, bobPhone]) await p.register(0);
    });
  });
}

describe('PEP mode against Prosody 0.12, in process: no privileges, a reconnect, a server without PEP', () => {
  async function link(t: TestContext, prosody: ProsodyInstance) {
    const conn = new ComponentConnection({
      host: '127.0.0.1',
      port: prosody.componentPort,
      domain: 'cti.localhost',
      secret: 's3cret',
      keepAliveS: 0,
    });
    const lines: { level: string; msg: string; obj: Record<string, unknown> }[] = [];
    const log = {
      debug: () => {},
      info: (obj: object, msg = '') =>
        lines.push({ level: 'info', msg, obj: obj as Record<string, unknown> }),
      warn: (obj: object, msg = '') =>
        lines.push({ level: 'warn', msg, obj: obj as Record<string, unknown> }),
    };
    const pep = new PepPublisher({
      jid: 'cti.localhost',
      serverDomain: 'localhost',
      xmpp: conn,
      probeUser: 'alice@localhost',
      timeoutMs: 1000,
      log,
    });
    conn.on('stanza', (s) => pep.handleStanza(s));
    conn.on('online', () => pep.onOnline());
    conn.on('offline', () => pep.onOffline());
    t.after(async () => {
      pep.close();
      await conn.stop();
    });
    conn.start();
    const modes = () => lines.filter((l) => l.obj.pepMode !== undefined);
    return { conn, pep, lines, modes };
  }

  it('no mod_privilege: presence-only, logged once with the reason', async (t) => {
    const prosody = await startProsody({ components: { 'cti.localhost': 's3cret' }, users: { alice: 'a' } });
    t.after(() => prosody.stop());
    const { modes, pep } = await link(t, prosody);
    await waitUntil(() => modes().length === 1, 10_000, 'mode chosen');
    assert.equal(pep.mode, 'presence-only');
    assert.match(modes()[0]!.msg, /presence-only \(the text server granted no XEP-0356 privileges\)/);
  });

  it('privileges come again after a reconnect; a publish where the server has no PEP falls back to presence-only once', async (t) => {
    // mod_privilege grants the pubsub iq permission, but mod_pep is not loaded: nobody answers the publish.
    const prosody = await startProsody({
      components: { 'cti.localhost': 's3cret' },
      users: { alice: 'a' },
      modules: ['privilege'],
      hostConfig: `privileged_entities = { ["cti.localhost"] = { iq = { ["${PUBSUB}"] = "set" } } }`,
      componentConfig: '  modules_enabled = { "privilege" }',
    });
    t.after(() => prosody.stop());
    const { conn, pep, lines, modes } = await link(t, prosody);
    await waitUntil(() => pep.mode === 'pep-iq', 10_000, 'pep-iq chosen');
    // The link drops and comes back: the server grants again, the mode is chosen again.
    await conn.stop();
    pep.onOffline();
    assert.equal(pep.mode, 'presence-only');
    conn.start();
    await waitUntil(() => modes().length === 2 && pep.mode === 'pep-iq', 10_000, 'pep-iq after reconnect');

    pep.phoneState('alice@localhost', {
      available: true,
      show: 'dnd',
      status: 'On the phone',
      detailedStatus: 'On the phone (with 1002)',
    });
    await waitUntil(() => pep.mode === 'presence-only', 10_000, 'fallback');
    const warnings = lines.filter((l) => l.level === 'warn');
    assert.equal(warnings.length, 1);
    console.log(`# Prosody without mod_pep: ${warnings[0]!.msg}`);
    pep.phoneState('alice@localhost', {
      available: true,
      show: 'dnd',
      status: 'On hold',
      detailedStatus: 'On hold',
    });
    assert.equal(pep.counters.failed, 1, 'no retry');
    assert.equal(lines.filter((l) => l.level === 'warn').length, 1);
  });
});
