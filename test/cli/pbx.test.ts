/** `switchboard pbx`: starts on the given port, answers OPTIONS and REGISTER, stops cleanly on SIGTERM. */
import assert from 'node:assert/strict';
import { after, it } from 'node:test';
import { CstaTestClient } from '../../test/pbx/csta-client.ts';
import { freeTcpPort, freeUdpTcpPort, Proc } from '../helpers/net.ts';
import { TestPhone } from '../helpers/sip-phone.ts';

const procs: Proc[] = [];
const phones: TestPhone[] = [];
const clients: CstaTestClient[] = [];
after(async () => {
  for (const c of clients) await c.close();
  for (const p of phones) await p.stop();
  for (const p of procs) await p.stop();
});

const ENTRY =
  "import('./src/cli/pbx.ts').then((m) => m.run(process.argv.slice(1))).then((c) => { process.exitCode = c; })";

it('runs the voice server from the environment port and stops on SIGTERM with exit 0', async () => {
  const port = await freeUdpTcpPort();
  const cstaPort = await freeTcpPort();
  const proc = new Proc(
    process.execPath,
    ['--import', 'tsx', '-e', ENTRY, '--', '--user', '1001:alice:pw1', '--domain', 'example.test'],
    {
      env: {
        ...process.env,
        SWITCHBOARD_PBX_SIP_PORT: String(port),
        SWITCHBOARD_PBX_CSTA_PORT: String(cstaPort),
        SWITCHBOARD_PBX_CSTA_EDITION: 'ed6',
      },
    },
  );
  procs.push(proc);
  await proc.waitForOutput(/SIP on udp\+tcp 127\.0\.0\.1:(\d+), domain example\.test/, 20_000);
  await proc.waitForOutput(new RegExp(`CSTA XML \\(ed6\\) on tcp 127\\.0\\.0\\.1:${cstaPort}`), 5000);
  const client = new CstaTestClient(cstaPort, 'ed6');
  clients.push(client);
  await client.connect();
  const monitor = await client.monitor('1001');
  const phone = new TestPhone('1001', 'pw1', { host: '127.0.0.1', port, domain: 'example.test' });
  await phone.start();
  phones.push(phone);
  assert.equal((await phone.register(300)).status, 200);
  await proc.waitForOutput(/device in service/, 5000);
  await client.expect(monitor, ['BackInService(1001)']);
  assert.equal(client.link.session?.edition, 'ed6');
  proc.child.kill('SIGTERM');
  assert.equal(await proc.wait(10_000), 0);
});

it('refuses a bad port with exit 2 and one line naming the key', async () => {
  const proc = new Proc(process.execPath, ['--import', 'tsx', '-e', ENTRY, '--', '--sip-port', 'x1']);
  procs.push(proc);
  assert.equal(await proc.wait(20_000), 2);
  assert.match(proc.output, /sip_port: not a port number: x1/);
});
