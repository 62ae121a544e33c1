/**
 * `npm run bench -- click-to-call [--calls N]`: chat message in → INVITE out to the caller's phone.
 * `switchboard up` runs as its own process; alice's chat client (our XMPP client) sends "call bob" to the
 * gateway and alice's phone (a SIP phone on the project's own stack, answering 486 so each call ends at
 * once; bob's phone is registered so the call is allowed) records when the INVITE arrives. Prints p50/p99 over N calls (default 1,000). Aim (issue 9):
 * p99 < 10 ms. SIPp is not used as the phone here: its scenarios cannot register with digest to a
 * per-run password and report per-INVITE arrival times to this process; the phone is the same one the
 * end-to-end tests use.
 */
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Element } from '../src/xml/index.ts';
import { XmppClient } from '../src/xmpp/client.ts';
import { TestPhone } from '../test/helpers/sip-phone.ts';

const ROOT = new URL('../', import.meta.url).pathname;

async function freePort(udpToo = false): Promise<number> {
  for (;;) {
    const s = createServer().listen(0, '127.0.0.1');
    await once(s, 'listening');
    const port = (s.address() as { port: number }).port;
    s.close();
    if (!udpToo) return port;
    const u = createSocket('udp4');
    const ok = await new Promise<boolean>((r) => {
      u.once('error', () => r(false));
      u.bind(port, '127.0.0.1', () => r(true));
    });
    u.close();
    if (ok) return port;
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export default async function bench(args: string[]): Promise<void> {
  const i = args.indexOf('--calls');
  const calls = i >= 0 ? Number(args[i + 1]) : 1000;
  const dir = mkdtempSync(join(tmpdir(), 'sb-bench-c2c-'));
  const c2s = await freePort();
  const sip = await freePort(true);
  writeFileSync(
    join(dir, 'config.toml'),
    `log_level = "error"\n[xmpp]\nc2s_port = ${c2s}\ncomponent_port = ${await freePort()}\nallow_plain_loopback = true\n[http]\nport = ${await freePort()}\n[pbx]\nsip_port = ${sip}\ncsta_port = ${await freePort()}\n[[users]]\nname = "alice"\npassword = "alicepw"\nextension = "1001"\nsip_password = "alice-sip"\n[[users]]\nname = "bob"\npassword = "bobpw"\nextension = "1002"\nsip_password = "bob-sip"\n`,
  );
  const up = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/cli/main.ts',
      'up',
      '--config',
      join(dir, 'config.toml'),
      '--data',
      join(dir, 'data'),
    ],
    {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let out = '';
  up.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  try {
    const deadline = Date.now() + 30_000;
    while (!out.includes('Switchboard is up') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    const phone = new TestPhone('1001', 'alice-sip', { host: '127.0.0.1', port: sip, domain: 'localhost' });
    await phone.start();
    phone.mode = 'busy';
    const reg = await phone.register(3600);
    if (reg.status !== 200) throw new Error(`REGISTER: ${reg.status}`);
    // The voice server refuses a MakeCall to a phone that is not registered, so bob needs one too.
    const bobPhone = new TestPhone('1002', 'bob-sip', { host: '127.0.0.1', port: sip, domain: 'localhost' });
    await bobPhone.start();
    if ((await bobPhone.register(3600)).status !== 200) throw new Error('REGISTER bob');
    const alice = await XmppClient.connect({
      host: '127.0.0.1',
      port: c2s,
      domain: 'localhost',
      username: 'alice',
      password: 'alicepw',
      tls: 'none',
      resource: 'bench',
    });
    // Give the gateway's CSTA link a moment to come up: the first MakeCall must not meet a down link.
    const ping = new Element('iq', 'jabber:client', { type: 'get', to: 'cti.localhost', id: 'st' });
    for (;;) {
      ping.children.length = 0;
      ping.c('RequestSystemStatus', {}, 'http://www.ecma-international.org/standards/ecma-323/csta/ed4');
      const r = await alice.iq(ping);
      if (r.find('RequestSystemStatusResponse', 'systemStatus')?.text() === 'normal') break;
      await new Promise((res) => setTimeout(res, 100));
    }
    const samples: number[] = [];
    for (let n = 0; n < calls + 20; n++) {
      const invite = once(phone, 'incoming');
      const t0 = performance.now();
      const m = new Element('message', 'jabber:client', { to: 'cti.localhost', type: 'chat', id: `c${n}` });
      m.c('body').append('call bob');
      alice.send(m);
      await invite;
      if (n >= 20) samples.push(performance.now() - t0); // the first 20 warm the JIT
      // Let the refused call finish before the next one.
      await new Promise((r) => setTimeout(r, 5));
    }
    samples.sort((a, b) => a - b);
    console.log(`click-to-call: ${calls} calls, chat "call bob" → INVITE at the caller's phone`);
    console.log(
      `p50 ${percentile(samples, 50).toFixed(2)} ms, p99 ${percentile(samples, 99).toFixed(2)} ms, max ${samples.at(-1)!.toFixed(2)} ms (aim p99 < 10 ms)`,
    );
    await alice.close();
    await phone.stop();
    await bobPhone.stop();
  } finally {
    up.kill('SIGTERM');
    await once(up, 'exit');
    rmSync(dir, { recursive: true, force: true });
  }
}
