/**
 * `npm run bench -- sip-cps [--rates 50,100,200,400] [--seconds 5] [--hold 1000]`
 * Call-setup rate through the voice server: SIPp UAC (answers the 407 digest challenge on every call)
 * -> B2BUA -> SIPp UAS registered with digest. For each rate a batch of rate*seconds calls runs; the
 * highest rate whose batch had zero failed calls is printed, then memory with 1,000 calls up.
 * Then the same rates through Kamailio 5.6 as a stateful proxy (shared/reference/peers/kamailio, no
 * digest: a proxy does half a B2BUA's work and no authentication here) with the same SIPp UAS behind it,
 * and the ratio of the two highest zero-failure rates. Kamailio comes from scripts/install-test-peers.sh.
 */
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { VoiceServer } from '../src/pbx/server.ts';
import { InMemoryUserDirectory } from '../src/pbx/users.ts';
import { freeUdpTcpPort, Proc, waitUntil } from '../test/helpers/net.ts';
import { uacScenario, uasScenario } from '../test/pbx/sipp-scenarios.ts';

const SIPP = '/usr/bin/sipp';
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const KAMAILIO = '/usr/sbin/kamailio';
const SHARED_PEERS = new URL('../../shared/reference/peers/', import.meta.url).pathname;

/** REGISTER without digest (Kamailio's test config does not challenge); Contact points at the UAS. */
const REGISTER_NO_AUTH = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="REGISTER without auth">
  <send retrans="500">
    <![CDATA[
      REGISTER sip:[field1] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[field0]@[field1]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[field0]@[field1]>
      Call-ID: [call_id]
      CSeq: 1 REGISTER
      Contact: <sip:[field0]@[local_ip]:[field2]>
      Expires: 3600
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="200"/>
</scenario>
`;

function arg(args: string[], name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback;
}

function counts(output: string): { ok: number; failed: number } {
  const ok = /Successful call\s*\|\s*\d+\s*\|\s*(\d+)/.exec(output);
  const failed = /Failed call\s*\|\s*\d+\s*\|\s*(\d+)/.exec(output);
  return { ok: ok ? Number(ok[1]) : 0, failed: failed ? Number(failed[1]) : -1 };
}

export default async function run(args: string[]): Promise<void> {
  if (!existsSync(SIPP)) throw new Error('sipp is missing: run scripts/install-test-peers.sh');
  const rates = arg(args, 'rates', '50,100,200,400').split(',').map(Number);
  const seconds = Number(arg(args, 'seconds', '5'));
  const hold = Number(arg(args, 'hold', '0'));
  /** --keep: keep SIPp's traces (message logs) in the work directory and print its path. */
  const keep = args.includes('--keep');
  const dir = mkdtempSync(join(tmpdir(), 'sb-cps-'));
  const users = new InMemoryUserDirectory([
    { name: 'caller', extension: '2000', sipPassword: 'caller-pw' },
    { name: 'callee', extension: '3000', sipPassword: 'callee-pw' },
  ]);
  const server = new VoiceServer({ users, host: '127.0.0.1', sipPort: 0, ringTimeoutMs: 30_000 });
  await server.start();
  const procs: Proc[] = [];
  const sipp = (a: string[]) => {
    const p = new Proc(SIPP, [...a, '-i', '127.0.0.1', '-nostdin'], { cwd: dir });
    procs.push(p);
    return p;
  };
  try {
    // the callee: one SIPp UAS taking every call, registered at the PBX
    const uasPort = await freeUdpTcpPort();
    writeFileSync(join(dir, 'uas.xml'), uasScenario('answer'));
    const uas = sipp([
      '-sf',
      join(dir, 'uas.xml'),
      '-p',
      String(uasPort),
      '-mp',
      String(uasPort + 2),
      '-trace_err',
      ...(keep ? ['-trace_msg'] : []),
    ]);
    writeFileSync(join(dir, 'reg.csv'), `SEQUENTIAL\n3000;localhost;callee-pw;${uasPort};3600\n`);
    const registerXml = new URL('../test/pbx/sipp/register.xml', import.meta.url).pathname;
    const reg = sipp([
      '-sf',
      registerXml,
      '-inf',
      join(dir, 'reg.csv'),
      `127.0.0.1:${server.sipPort}`,
      '-p',
      String(await freeUdpTcpPort()),
      '-m',
      '1',
      '-au',
      '3000',
      '-ap',
      'callee-pw',
      '-timeout',
      '10s',
    ]);
    if ((await reg.wait(15_000)) !== 0) throw new Error(`REGISTER failed:\n${reg.output.slice(-1000)}`);
    writeFileSync(join(dir, 'uac.xml'), uacScenario('answer'));
    writeFileSync(join(dir, 'caller.csv'), 'SEQUENTIAL\n2000;localhost;caller-pw;3000\n');

    console.log(
      `sip-cps: SIPp UAC -> Switchboard B2BUA (digest on every INVITE) -> SIPp UAS, UDP on loopback, ${seconds} s per rate`,
    );
    console.log('rate (cps) | calls | ok | failed | achieved cps | rss MB');
    let best: { rate: number; achieved: number } | undefined;
    for (const rate of rates) {
      const calls = rate * seconds;
      const started = performance.now();
      const uac = sipp([
        '-sf',
        join(dir, 'uac.xml'),
        '-inf',
        join(dir, 'caller.csv'),
        `127.0.0.1:${server.sipPort}`,
        '-p',
        String(await freeUdpTcpPort()),
        '-m',
        String(calls),
        '-r',
        String(rate),
        '-d',
        String(hold),
        '-l',
        String(Math.max(rate * 4, 100)),
        '-au',
        '2000',
        '-ap',
        'caller-pw',
        '-timeout',
        `${seconds * 4 + 30}s`,
        '-mp',
        '40000',
      ]);
      await uac.wait(seconds * 4_000 + 60_000);
      const elapsed = (performance.now() - started) / 1000;
      const { ok, failed } = counts(uac.output);
      const achieved = ok / elapsed;
      const rss = process.memoryUsage().rss / 1024 / 1024;
      console.log(
        `${String(rate).padStart(10)} | ${String(calls).padStart(5)} | ${String(ok).padStart(5)} | ${String(failed).padStart(6)} | ${achieved.toFixed(1).padStart(12)} | ${rss.toFixed(0)}`,
      );
      if (failed === 0 && ok === calls) best = { rate, achieved };
      else {
        const errors = readdirSync(dir).filter((f) => f.endsWith('_errors.log'));
        for (const f of errors) console.log(`${f}:\n${readFileSync(join(dir, f), 'utf8').slice(0, 1500)}`);
        console.log(uac.output.slice(-2500));
        break;
      }
      await waitUntil(() => server.b2bua.activeCalls.length === 0, 30_000, 'calls drained');
    }
    console.log(
      best
        ? `highest rate with zero failed calls: ${best.rate} cps (achieved ${best.achieved.toFixed(1)} cps incl. SIPp start-up)`
        : 'no rate finished without failures',
    );

    // memory with 1,000 calls up: long calls (hold 120 s) placed at 200 cps
    gc();
    const before = process.memoryUsage();
    const long = sipp([
      '-sf',
      join(dir, 'uac.xml'),
      '-inf',
      join(dir, 'caller.csv'),
      `127.0.0.1:${server.sipPort}`,
      '-p',
      String(await freeUdpTcpPort()),
      '-m',
      '1000',
      '-r',
      '200',
      '-d',
      '120000',
      '-l',
      '1000',
      '-au',
      '2000',
      '-ap',
      'caller-pw',
      '-timeout',
      '60s',
      '-mp',
      '41000',
    ]);
    await waitUntil(
      () =>
        server.b2bua.activeCalls.filter((c) => c.state === 'connected').length >= 1000 ||
        long.child.exitCode !== null,
      60_000,
      '1000 calls up',
      100,
    );
    gc();
    const up = process.memoryUsage();
    const connected = server.b2bua.activeCalls.filter((c) => c.state === 'connected').length;
    console.log(
      `memory with ${connected} calls up: rss ${(up.rss / 1048576).toFixed(1)} MB, heap used ${(up.heapUsed / 1048576).toFixed(1)} MB ` +
        `(heap +${((up.heapUsed - before.heapUsed) / 1048576).toFixed(1)} MB over idle, ~${((up.heapUsed - before.heapUsed) / Math.max(connected, 1) / 1024).toFixed(1)} KB per call)`,
    );
    const { ok: longOk, failed: longFailed } = counts(long.output);
    if (connected < 1000)
      console.log(
        `long-call SIPp so far: ok ${longOk}, failed ${longFailed}; active calls ${server.b2bua.activeCalls.length}`,
      );
    await long.stop(1000);
    await uas.stop(1000);

    if (!existsSync(KAMAILIO)) {
      console.log(
        'Kamailio is not installed (scripts/install-test-peers.sh installs it): no comparison printed.',
      );
      return;
    }
    const kport = await freeUdpTcpPort();
    const cfg = readFileSync(join(SHARED_PEERS, 'kamailio/kamailio.cfg'), 'utf8')
      .replace('listen=udp:127.0.0.1:15080', `listen=udp:127.0.0.1:${kport}`)
      .replace(/^debug=2$/m, 'debug=1'); // no per-request log lines: they would cost Kamailio, not us
    writeFileSync(join(dir, 'kamailio.cfg'), cfg);
    mkdirSync(join(dir, 'kamrun'), { recursive: true });
    const kam = new Proc(KAMAILIO, [
      '-f',
      join(dir, 'kamailio.cfg'),
      '-DD',
      '-E',
      '-Y',
      join(dir, 'kamrun'),
      '-P',
      join(dir, 'kamailio.pid'),
      '-w',
      dir,
    ]);
    procs.push(kam);
    const kuasPort = await freeUdpTcpPort();
    // Behind a record-routing proxy the callee must echo Record-Route, or the caller's ACK and BYE lose their route.
    writeFileSync(
      join(dir, 'uas-rr.xml'),
      uasScenario('answer').replaceAll(
        '      [last_Via:]\n',
        '      [last_Via:]\n      [last_Record-Route:]\n',
      ),
    );
    const kuas = sipp([
      '-sf',
      join(dir, 'uas-rr.xml'),
      '-p',
      String(kuasPort),
      '-mp',
      String(kuasPort + 2),
      '-trace_err',
    ]);
    writeFileSync(join(dir, 'reg-noauth.xml'), REGISTER_NO_AUTH);
    // SIPp writes its traces beside the scenario: keep a copy in the work directory (shared/ is read-only).
    writeFileSync(join(dir, 'uac_rr.xml'), readFileSync(join(SHARED_PEERS, 'sipp/uac_rr.xml')));
    writeFileSync(join(dir, 'kreg.csv'), `SEQUENTIAL\n3000;127.0.0.1;${kuasPort}\n`);
    let registered = false;
    for (let attempt = 0; attempt < 20 && !registered; attempt++) {
      const r = sipp([
        '-sf',
        join(dir, 'reg-noauth.xml'),
        '-inf',
        join(dir, 'kreg.csv'),
        `127.0.0.1:${kport}`,
        '-p',
        String(await freeUdpTcpPort()),
        '-m',
        '1',
        '-timeout',
        '2s',
      ]);
      registered = (await r.wait(10_000)) === 0;
    }
    if (!registered) throw new Error(`could not register at Kamailio:\n${kam.output.slice(-1500)}`);
    console.log('');
    console.log(
      `sip-cps: SIPp UAC -> Kamailio 5.6 stateful proxy (record-route, no auth) -> SIPp UAS, ${seconds} s per rate`,
    );
    console.log('rate (cps) | calls | ok | failed | achieved cps');
    let kbest: { rate: number; achieved: number } | undefined;
    for (const rate of rates) {
      const calls = rate * seconds;
      const started = performance.now();
      const uac = sipp([
        '-sf',
        join(dir, 'uac_rr.xml'),
        `127.0.0.1:${kport}`,
        '-s',
        '3000',
        '-p',
        String(await freeUdpTcpPort()),
        '-m',
        String(calls),
        '-r',
        String(rate),
        '-d',
        String(hold),
        '-l',
        String(Math.max(rate * 4, 100)),
        '-timeout',
        `${seconds * 4 + 30}s`,
        '-mp',
        '42000',
      ]);
      await uac.wait(seconds * 4_000 + 60_000);
      const elapsed = (performance.now() - started) / 1000;
      const { ok, failed } = counts(uac.output);
      console.log(
        `${String(rate).padStart(10)} | ${String(calls).padStart(5)} | ${String(ok).padStart(5)} | ${String(failed).padStart(6)} | ${(ok / elapsed).toFixed(1).padStart(12)}`,
      );
      if (failed === 0 && ok === calls) kbest = { rate, achieved: ok / elapsed };
      else {
        console.log(uac.output.slice(-1500));
        break;
      }
    }
    await kuas.stop(1000);
    console.log(
      kbest
        ? `Kamailio: highest rate with zero failed calls: ${kbest.rate} cps`
        : 'Kamailio: no rate finished without failures',
    );
    if (best !== undefined && kbest !== undefined) {
      console.log(
        `ratio ours / Kamailio: ${(best.rate / kbest.rate).toFixed(2)} (aim >= 0.5; the rates tried were ${rates.join(', ')} cps)`,
      );
    }
  } finally {
    for (const p of procs) await p.stop(1000);
    await server.stop();
    if (keep) console.log(`traces kept in ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}
