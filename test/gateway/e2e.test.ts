/**
 * The gateway end to end, as separate processes: a text server (ours, then Prosody 0.12), the gateway
 * (`switchboard gateway`), a slixmpp CTI client, and a voice server speaking CSTA XML over TCP. The voice
 * server here is a scripted CstaServer in the test process (the embedded PBX's CSTA interface is issue 7),
 * so the test can assert exactly what crosses the CSTA side.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type CstaMessage, CstaServer, type CstaServerConnection } from '../../src/csta/index.ts';
import { startEjabberd } from '../helpers/ejabberd.ts';
import { freeTcpPort, Proc, waitUntil } from '../helpers/net.ts';
import { requirePeer } from '../helpers/peers.ts';
import { startProsody } from '../helpers/prosody.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const SLIX_CTI = join(ROOT, 'test/peers/slix_cti.py');
const ED4 = 'http://www.ecma-international.org/standards/ecma-323/csta/ed4';

class Pbx {
  server = new CstaServer();
  readonly received: CstaMessage[] = [];
  readonly wire: string[] = [];
  readonly monitors = new Map<string, string>();
  connection: CstaServerConnection | undefined;
  port = 0;
  private next = 500;

  /** The voice server dies (all connections dropped) and comes back on the same port. */
  async restart(): Promise<void> {
    await this.server.close();
    this.monitors.clear();
    this.connection = undefined;
    this.server = new CstaServer({ port: this.port });
    await this.start();
  }

  async start(): Promise<void> {
    this.server.on('connection', (c) => {
      this.connection = c;
      c.socket.on('data', (d) => this.wire.push(d.toString('utf8')));
      c.on('request', (r) => {
        const m = r.message!;
        this.received.push(m);
        if (m.name === 'MonitorStart') {
          const xref = `X${this.next++}`;
          this.monitors.set(xref, (m.monitorObject as { deviceObject: string }).deviceObject);
          r.reply({ name: 'MonitorStartResponse', monitorCrossRefID: xref });
        } else if (m.name === 'MonitorStop') {
          this.monitors.delete(m.monitorCrossRefID);
          r.reply({ name: 'MonitorStopResponse' });
        } else if (m.name === 'MakeCall') {
          r.reply({
            name: 'MakeCallResponse',
            callingDevice: { callID: 'call-1', deviceID: m.callingDevice },
          });
        } else {
          r.fail({ operation: 'serviceNotSupported' } as never);
        }
      });
    });
    this.port = (await this.server.listen()).port;
  }

  delivered(xref: string): CstaMessage {
    return {
      name: 'DeliveredEvent',
      monitorCrossRefID: xref,
      connection: { callID: 'call-1', deviceID: '1001' },
      alertingDevice: { deviceIdentifier: '1001' },
      callingDevice: { deviceIdentifier: '1002' },
      calledDevice: { deviceIdentifier: '1001' },
      lastRedirectionDevice: { notKnown: true },
      localConnectionInfo: 'alerting',
      cause: 'newCall',
    } as CstaMessage;
  }
}

interface TextServer {
  name: string;
  c2sPort: number;
  componentPort: number;
  stop(): Promise<void>;
}

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
ping_interval_s = 3
ping_timeout_s = 1
[http]
port = 0
[[users]]
name = "alice"
password = "alicepw"
extension = "1001"
[[users]]
name = "bob"
password = "bobpw"
extension = "1002"
`,
  );
  const proc = new Proc(
    process.execPath,
    ['--import', 'tsx', 'src/cli/main.ts', 'xmpp', '--config', config, '--data', join(dir, 'xmpp-data')],
    { cwd: ROOT },
  );
  await proc.waitForOutput(/text server for localhost/, 20_000);
  return { name: 'our text server', c2sPort, componentPort, stop: () => proc.stop() };
}

async function prosodyTextServer(): Promise<TextServer> {
  const p = await startProsody({
    components: { 'cti.localhost': 's3cret' },
    users: { alice: 'alicepw', bob: 'bobpw' },
  });
  return { name: 'Prosody', c2sPort: p.c2sPort, componentPort: p.componentPort, stop: () => p.stop() };
}

async function ejabberdTextServer(): Promise<TextServer> {
  const e = await startEjabberd({
    components: { 'cti.localhost': 's3cret' },
    users: { alice: 'alicepw', bob: 'bobpw' },
  });
  return { name: 'ejabberd', c2sPort: e.c2sPort, componentPort: e.componentPort, stop: () => e.stop() };
}

const TEXT_SERVERS: [string, (dir: string) => Promise<TextServer>][] = [
  ['our text server', ourTextServer],
  ['Prosody 0.12', prosodyTextServer],
  ['ejabberd 23', ejabberdTextServer],
];

for (const [label, make] of TEXT_SERVERS) {
  describe(`gateway end to end with ${label}`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'sb-gw-e2e-'));
    const pbx = new Pbx();
    let text: TextServer;
    let gateway: Proc;
    let httpPort = 0;
    const clients: Proc[] = [];

    before(async () => {
      requirePeer('python3-slixmpp');
      await pbx.start();
      text = await make(dir);
      const config = join(dir, 'gateway.toml');
      httpPort = await freeTcpPort();
      writeFileSync(
        config,
        `log_level = "info"
[http]
port = ${httpPort}
[gateway]
xmpp_port = ${text.componentPort}
component_secret = "s3cret"
csta_port = ${pbx.port}
event_ack_timeout_s = 2
[[users]]
name = "alice"
extension = "1001"
[[users]]
name = "bob"
extension = "1002"
`,
      );
      gateway = new Proc(
        process.execPath,
        ['--import', 'tsx', 'src/cli/main.ts', 'gateway', '--config', config, '--data', join(dir, 'gw-data')],
        { cwd: ROOT },
      );
      await gateway.waitForOutput(/connected to the text server/, 20_000);
      await gateway.waitForOutput(/voice server link up/, 20_000);
    });

    after(async () => {
      for (const c of clients) await c.stop();
      await gateway?.stop();
      await text?.stop();
      await pbx.server.close();
      rmSync(dir, { recursive: true, force: true });
    });

    async function metrics(): Promise<string> {
      return (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    }

    function client(user: string, password: string, ...csta: string[]): Proc {
      const args = [
        SLIX_CTI,
        '--jid',
        `${user}@localhost/cti`,
        '--password',
        password,
        '--port',
        String(text.c2sPort),
      ];
      for (const c of csta) args.push('--csta', c);
      const proc = new Proc(requirePeer('python3-slixmpp'), args);
      clients.push(proc);
      return proc;
    }

    it('MonitorStart, events as iqs, a refused foreign device, and the PBX monitor stopped when the client leaves', async () => {
      const alice = client(
        'alice',
        'alicepw',
        `<MonitorStart xmlns='${ED4}'><monitorObject><deviceObject>1001</deviceObject></monitorObject></MonitorStart>`,
        `<MakeCall xmlns='${ED4}'><callingDevice>1002</callingDevice><calledDirectoryNumber>1003</calledDirectoryNumber></MakeCall>`,
        `<MakeCall xmlns='${ED4}'><callingDevice>1001</callingDevice><calledDirectoryNumber>1002</calledDirectoryNumber></MakeCall>`,
      );
      const [, xref] = await alice.waitForOutput(/RESULT MonitorStart MonitorStartResponse (\S+)/, 20_000);
      await alice.waitForOutput(
        /ERROR MakeCall auth forbidden operation\/privilegeViolationSpecifiedDevice/,
        10_000,
      );
      await alice.waitForOutput(/RESULT MakeCall MakeCallResponse call-1/, 10_000);
      assert.equal(pbx.monitors.size, 1);
      const pbxXref = [...pbx.monitors.keys()][0]!;
      assert.notEqual(pbxXref, xref);

      pbx.connection!.sendEvent(pbx.delivered(pbxXref));
      await alice.waitForOutput(new RegExp(`EVENT DeliveredEvent ${xref}`), 10_000);

      // A second client on the same device shares the PBX monitor.
      const alice2 = new Proc(requirePeer('python3-slixmpp'), [
        SLIX_CTI,
        '--jid',
        'alice@localhost/second',
        '--password',
        'alicepw',
        '--port',
        String(text.c2sPort),
        '--csta',
        `<MonitorStart xmlns='${ED4}'><monitorObject><deviceObject>1001</deviceObject></monitorObject></MonitorStart>`,
      ]);
      clients.push(alice2);
      await alice2.waitForOutput(/RESULT MonitorStart MonitorStartResponse \S+/, 20_000);
      assert.equal(pbx.received.filter((m) => m.name === 'MonitorStart').length, 1);

      // The first client leaves: the other keeps the monitor, and the PBX monitor stays.
      alice.child.stdin!.write('quit\n');
      await alice.waitForOutput(/DISCONNECTED/, 10_000);
      // The gateway learns of it when the text server forwards the unavailable presence.
      await waitUntil(
        async () => /^switchboard_gateway_client_monitors 1$/m.test(await metrics()),
        10_000,
        'monitor ended',
      );
      pbx.connection!.sendEvent(pbx.delivered(pbxXref));
      await alice2.waitForOutput(/EVENT DeliveredEvent/, 10_000);
      assert.equal(pbx.monitors.size, 1);

      // The last client leaves: the PBX monitor is stopped as soon as the text server reports it.
      const t0 = performance.now();
      alice2.child.stdin!.write('quit\n');
      await waitUntil(() => pbx.monitors.size === 0, 10_000, 'MonitorStop at the PBX');
      console.log(
        `# ${text.name}: PBX monitor stopped ${(performance.now() - t0).toFixed(0)} ms after the last client quit`,
      );

      // Nothing on the CSTA side names a JID.
      assert.doesNotMatch(pbx.wire.join(''), /alice|@localhost/);

      // The metrics tell the same story.
      const scraped = await metrics();
      assert.match(scraped, /^switchboard_gateway_csta_link_up 1$/m);
      assert.match(scraped, /^switchboard_gateway_client_monitors 0$/m);
      assert.match(scraped, /^switchboard_gateway_device_monitors 0$/m);
      assert.match(scraped, /^switchboard_gateway_monitors_ended_total\{reason="unavailable"\} 2$/m);
      assert.match(scraped, /^switchboard_gateway_events_sent_total 2$/m);
    });

    it('a frozen client (SIGSTOP) loses its monitors when an event goes unanswered; nothing more is sent to it', async () => {
      const bob = client(
        'bob',
        'bobpw',
        `<MonitorStart xmlns='${ED4}'><monitorObject><deviceObject>1002</deviceObject></monitorObject></MonitorStart>`,
      );
      await bob.waitForOutput(/RESULT MonitorStart MonitorStartResponse \S+/, 20_000);
      const pbxXref = [...pbx.monitors.entries()].find(([, d]) => d === '1002')![0];
      const sentBefore = Number(/^switchboard_gateway_events_sent_total (\d+)$/m.exec(await metrics())![1]);
      bob.child.kill('SIGSTOP');
      try {
        const t0 = performance.now();
        pbx.connection!.sendEvent(pbx.delivered(pbxXref));
        await waitUntil(
          async () =>
            /^switchboard_gateway_monitors_ended_total\{reason="timeout"\} 1$/m.test(await metrics()),
          15_000,
          'client monitor ended by the ack timeout',
        );
        console.log(
          `# ${text.name}: frozen client's monitors ended ${(performance.now() - t0).toFixed(0)} ms after the event (event_ack_timeout_s = 2)`,
        );
        pbx.connection!.sendEvent(pbx.delivered(pbxXref));
        const after = await metrics();
        assert.match(after, new RegExp(`^switchboard_gateway_events_sent_total ${sentBefore + 1}$`, 'm'));
        assert.match(after, /^switchboard_gateway_client_monitors 0$/m);
      } finally {
        bob.child.kill('SIGCONT');
      }
      // bob is still online as far as the text server knows, so the gateway still watches his phone
      // for his chat (phone presence, call messages); when he leaves, the voice-server monitor goes too.
      bob.child.stdin!.write('quit\n');
      await waitUntil(() => !pbx.monitors.has(pbxXref), 15_000, 'MonitorStop once bob is gone');
    });

    // Prosody and ejabberd find a silent client only after their own, much longer timeouts
    // (shared/reference/peers-howto.md §5); for them the event-ack path above is what ends the monitors.
    if (label === 'our text server') {
      it('a frozen client is found dead by the text server, which tells the gateway; the PBX monitor stops', async () => {
        const carol = client(
          'alice',
          'alicepw',
          `<MonitorStart xmlns='${ED4}'><monitorObject><deviceObject>1001</deviceObject></monitorObject></MonitorStart>`,
        );
        await carol.waitForOutput(/RESULT MonitorStart MonitorStartResponse \S+/, 20_000);
        const pbxXref = [...pbx.monitors.entries()].find(([, d]) => d === '1001')![0];
        carol.child.kill('SIGSTOP');
        const t0 = performance.now();
        try {
          await waitUntil(
            () => !pbx.monitors.has(pbxXref),
            15_000,
            'MonitorStop once the text server reports the client gone',
          );
          console.log(
            `# ${text.name}: frozen client's PBX monitor stopped ${(performance.now() - t0).toFixed(0)} ms after SIGSTOP (ping_interval_s 3 + ping_timeout_s 1)`,
          );
          assert.match(
            await metrics(),
            /^switchboard_gateway_monitors_ended_total\{reason="unavailable"\} [1-9]/m,
          );
        } finally {
          carol.child.kill('SIGCONT');
        }
      });
    }

    it('the voice server is killed and restarted: monitors come back without client action', async () => {
      const alice = client(
        'alice',
        'alicepw',
        `<MonitorStart xmlns='${ED4}'><monitorObject><deviceObject>1001</deviceObject></monitorObject></MonitorStart>`,
      );
      const [, xref] = await alice.waitForOutput(/RESULT MonitorStart MonitorStartResponse (\S+)/, 20_000);
      const startsOf1001 = () =>
        pbx.received.filter(
          (m) =>
            m.name === 'MonitorStart' &&
            (m.monitorObject as { deviceObject?: string }).deviceObject === '1001',
        ).length;
      const startsBefore = startsOf1001();
      await pbx.restart();
      await gateway.waitForOutput(/voice server link down/, 10_000);
      await waitUntil(
        () => [...pbx.monitors.values()].includes('1001'),
        20_000,
        'monitor restored at the new PBX',
      );
      assert.equal(startsOf1001(), startsBefore + 1, 'one voice-server monitor for the device, shared');
      const pbxXref = [...pbx.monitors.entries()].find(([, d]) => d === '1001')![0];
      pbx.connection!.sendEvent(pbx.delivered(pbxXref));
      await alice.waitForOutput(new RegExp(`EVENT DeliveredEvent ${xref}`), 10_000);
      alice.child.stdin!.write('quit\n');
      await waitUntil(() => pbx.monitors.size === 0, 10_000, 'MonitorStop after quit');
    });
  });
}
