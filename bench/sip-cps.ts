/**
 * `npm run bench -- sip-cps [--rates 100,200,400,600,800,1200,1600,2000] [--seconds 4] [--hold 0] [--children 1,8]
 *   [--attempts 2] [--tail 10] [--only ours|kamailio] [--no-memory] [--keep]`
 *
 * Call-setup rate of the voice server against Kamailio 5.6, measured the same way for both:
 * SIPp UAC -> system under test -> SIPp UAS on loopback UDP, the SAME caller and callee scenarios
 * (bench/_sip-cps-peers.ts: digest challenge on every INVITE, Record-Route honoured, no ordering
 * assumptions that UDP does not give). For each rate a batch of rate*seconds calls runs with a fresh UAS
 * (`-m calls`) on a fresh port (registered, the previous one unregistered); a batch passes when the caller AND the callee both count every call successful, none
 * failed, the caller achieved at least 90 % of the offered rate and ended within `--tail` seconds of
 * placing its last call (SIPp recovers a lost datagram by retransmission within a few seconds).
 * A rate passes when one of `--attempts` batches passes (every batch is printed: the machine is shared,
 * and a stall of SIPp caused by other jobs is not the system under test). The rates are tried in
 * increasing order up to the first failing rate; the highest passing rate is the result, printed as a
 * lower bound (">=") when even the highest rate tried passed, and the ratio then as a bound too.
 *
 * Memory first (a fresh voice server): heap (after forced GC) and RSS of the PBX idle, after a warm-up
 * and once its transactions have expired, then with 1,000 calls established and held (right after set-up,
 * and once the set-up transactions have expired), per call.
 * Our PBX runs in this Node process (one event-loop thread does the SIP work; SIPp runs in other
 * processes). Kamailio (stateful proxy: tm, rr, auth, registrar) runs once per `--children` value (UDP
 * receiver processes; 1 = one worker, like us; 8 = Kamailio's default).
 * Columns: retransmissions counted by both SIPps; datagrams the kernel dropped for a full receive buffer
 * during the batch (whole machine); CPU time (user + system) the system under test used per completed call
 * (ours: this process; Kamailio: all its processes), which does not depend on what else runs; the
 * 1-minute load average when the batch started.
 * `--profile DIR` writes a V8 CPU profile of this process per batch of ours (DIR/ours-RATE-TRY.cpuprofile;
 * profiling costs CPU: figures from a `--profile` run are not comparable).
 * `--keep` keeps the work directory with SIPp's error and message traces (message tracing costs SIPp CPU:
 * figures from a `--keep` run are not comparable).
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
import { Session } from 'node:inspector';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { VoiceServer } from '../src/pbx/server.ts';
import { InMemoryUserDirectory } from '../src/pbx/users.ts';
import { freeUdpTcpPort, Proc, waitUntil } from '../test/helpers/net.ts';
import { kamailioConfig, REGISTER_NO_AUTH, UAC, UAS } from './_sip-cps-peers.ts';

const SIPP = '/usr/bin/sipp';
const KAMAILIO = '/usr/sbin/kamailio';
const KAMAILIO_SHM_MB = 512;
const CLOCK_TICKS = 100; // USER_HZ of /proc/<pid>/stat on Linux (getconf CLK_TCK)
const CALLER = { extension: '2000', password: 'caller-pw' };
const CALLEE = { extension: '3000', password: 'callee-pw' };
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function arg(args: string[], name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback;
}

/** SIPp's final statistics screen: cumulative successful and failed calls, call rate, retransmissions. */
export function sippSummary(output: string): { ok: number; failed: number; cps: number; retrans: number } {
  const last = (re: RegExp) => [...output.matchAll(re)].at(-1)?.[1];
  const ok = last(/Successful call\s*\|\s*\d+\s*\|\s*(\d+)/g);
  const failed = last(/Failed call\s*\|\s*\d+\s*\|\s*(\d+)/g);
  const cps = last(/Call Rate\s*\|\s*[\d.]+ cps\s*\|\s*([\d.]+) cps/g);
  // the last message table: "  INVITE ---->  1000  12  0" (caller) or "  ----> INVITE  1000  12  0" (callee)
  let retrans = 0;
  const table = output.lastIndexOf('Messages  Retrans');
  if (table >= 0) {
    for (const line of output.slice(table).split('\n').slice(1)) {
      if (line.startsWith('----')) break;
      const m = /^\s*(?:\S+\s+(?:<-+|-+>)|(?:<-+|-+>)\s+\S+)\s+(?:E-RTD\d\s+)?(\d+)\s+(\d+)/.exec(line);
      if (m !== null && !line.includes('Pause')) retrans += Number(m[2]);
    }
  }
  return {
    ok: ok === undefined ? 0 : Number(ok),
    failed: failed === undefined ? -1 : Number(failed),
    cps: cps === undefined ? 0 : Number(cps),
    retrans,
  };
}

/** The first SIPp error-log events, one line each. */
function firstEvents(log: string, count = 3): string {
  return log
    .split(/\n?(?=\d{4}-\d\d-\d\d\t\d\d:)/)
    .slice(1, 1 + count)
    .map((e) => `    ${e.split('\n')[0]!.slice(0, 220)}`)
    .join('\n');
}

/** CPU seconds (user + system) of a process and its direct children (Kamailio's workers). */
function processTreeCpuSeconds(pid: number): number {
  let ticks = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // fields after the ")" that ends the command name: state ppid ... utime(14) stime(15)
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(entry) === pid || Number(fields[1]) === pid) ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / CLOCK_TICKS;
}

/** Datagrams the kernel dropped because a receive buffer was full (all UDP sockets of the machine). */
function udpReceiveBufferDrops(): number {
  const lines = readFileSync('/proc/net/snmp', 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('Udp:'));
  const names = lines[0]?.split(/\s+/) ?? [];
  const values = lines[1]?.split(/\s+/) ?? [];
  return Number(values[names.indexOf('RcvbufErrors')] ?? 0);
}

/** Is a UDP socket bound to 127.0.0.1:port (so a freshly started SIPp is ready to receive)? */
function udpBound(port: number): boolean {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')} `;
  return readFileSync('/proc/net/udp', 'utf8').includes(`0100007F${hex}`);
}

/** Highest passing rate, whether every rate passed, CPU ms per call of each passing rate. */
interface RateResult {
  best: number | undefined;
  allPassed: boolean;
  cpu: Map<number, number>;
}

interface Target {
  label: string;
  /** host:port the caller sends to */
  address: string;
  /** calls still held by the system (ours only), to wait for a drained state between batches */
  activeCalls?: () => number;
  /** the system's own log (Kamailio's stderr), whose errors are printed under a failed batch */
  log?: () => string;
  /** CPU seconds (user + system) the system under test has used so far */
  cpuSeconds: () => number;
  /** contacts registered at the system (ours), to check that the previous callee was unregistered */
  bindings?: () => number;
  /** REGISTERs the callee's contact on `port` (expires 0: removes it) */
  register: (port: number, expires: number) => Promise<void>;
  /** writes a CPU profile of this process for each batch into this directory (ours only) */
  profileDir?: string;
}

/** Starts a V8 CPU profile of this process; the returned function stops it and writes it to `file`. */
async function startProfile(file: string): Promise<() => Promise<void>> {
  const session = new Session();
  session.connect();
  const post = (method: string, params?: object) =>
    new Promise<unknown>((resolve, reject) =>
      session.post(method, params, (err, result) => (err ? reject(err) : resolve(result))),
    );
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 200 });
  await post('Profiler.start');
  return async () => {
    const { profile } = (await post('Profiler.stop')) as { profile: object };
    writeFileSync(file, JSON.stringify(profile));
    session.disconnect();
  };
}

class Bench {
  readonly procs: Proc[] = [];
  readonly dir: string;
  readonly keep: boolean;
  constructor(dir: string, keep: boolean) {
    this.dir = dir;
    this.keep = keep;
  }

  sipp(args: string[]): Proc {
    const p = new Proc(SIPP, [...args, '-i', '127.0.0.1', '-nostdin'], { cwd: this.dir });
    this.procs.push(p);
    return p;
  }

  /** A callee (SIPp UAS) on `port`, taking `calls` calls then exiting; resolves once it is listening. */
  async callee(port: number, calls: number | undefined, name: string): Promise<Proc> {
    const scenario = join(this.dir, `uas-${name}.xml`);
    writeFileSync(scenario, UAS);
    const uas = this.sipp([
      '-sf',
      scenario,
      '-p',
      String(port),
      '-mp',
      String(port + 2),
      ...(calls === undefined ? [] : ['-m', String(calls)]),
      '-trace_err',
      ...(this.keep ? ['-trace_msg'] : []),
    ]);
    await waitUntil(() => udpBound(port) || uas.child.exitCode !== null, 10_000, 'SIPp UAS listening', 5);
    if (uas.child.exitCode !== null) throw new Error(`SIPp UAS exited:\n${uas.output.slice(-1500)}`);
    return uas;
  }

  /** A caller (SIPp UAC) placing `calls` calls at `rate` cps, each held `holdMs`, to `address`. */
  async caller(address: string, calls: number, rate: number, holdMs: number, limit: number, name: string) {
    const scenario = join(this.dir, `uac-${name}.xml`);
    writeFileSync(scenario, UAC);
    writeFileSync(
      join(this.dir, 'caller.csv'),
      `SEQUENTIAL\n${CALLER.extension};localhost;${CALLER.password};${CALLEE.extension}\n`,
    );
    return this.sipp([
      '-sf',
      scenario,
      '-inf',
      join(this.dir, 'caller.csv'),
      address,
      '-p',
      String(await freeUdpTcpPort()),
      '-m',
      String(calls),
      '-r',
      String(rate),
      '-d',
      String(holdMs),
      '-l',
      String(limit),
      '-au',
      CALLER.extension,
      '-ap',
      CALLER.password,
      '-mp',
      String(await freeUdpTcpPort()),
      '-trace_err',
      ...(this.keep ? ['-trace_msg'] : []),
    ]);
  }

  /** The rate batches against one system; returns the highest passing rate and whether all passed. */
  async rates(
    target: Target,
    rates: number[],
    opts: { seconds: number; holdMs: number; attempts: number; tailMs: number },
    name: string,
  ): Promise<RateResult> {
    console.log(`\n${target.label}`);
    console.log(
      'rate (cps) | try | calls | caller ok/failed | callee ok/failed | achieved cps | retrans | drops | cpu ms/call | load | result',
    );
    let best: number | undefined;
    const cpu = new Map<number, number>();
    let calleePort: number | undefined;
    for (const rate of rates) {
      let passed = false;
      for (let attempt = 1; attempt <= opts.attempts && !passed; attempt++) {
        // a fresh callee port per batch: retransmissions still due to the previous batch's callee (say, a
        // BYE whose 200 was lost) go to a closed port instead of failing calls of this batch
        const previous = calleePort;
        calleePort = await freeUdpTcpPort();
        const uas = await this.callee(calleePort, rate * opts.seconds, `${name}-${rate}-${attempt}`);
        await target.register(calleePort, 3600);
        if (previous !== undefined) await target.register(previous, 0);
        const bindings = target.bindings?.();
        if (bindings !== undefined && bindings !== 1)
          throw new Error(`the callee has ${bindings} bindings, not 1`);
        const result = await this.batch(target, uas, rate, attempt, opts, `${name}-${rate}-${attempt}`);
        passed = result.pass;
        if (passed) cpu.set(rate, result.cpuMsPerCall);
        const active = target.activeCalls;
        if (active !== undefined)
          await waitUntil(() => active() === 0, 35_000, 'calls drained', 20).catch(() =>
            console.log(`  ${active()} calls still up in the PBX after this batch`),
          );
      }
      if (!passed) return { best, allPassed: false, cpu };
      best = rate;
    }
    return { best, allPassed: true, cpu };
  }

  /** One batch of rate*seconds calls with a fresh callee; prints its row; true when it passed. */
  private async batch(
    target: Target,
    uas: Proc,
    rate: number,
    attempt: number,
    opts: { seconds: number; holdMs: number; tailMs: number },
    name: string,
  ): Promise<{ pass: boolean; cpuMsPerCall: number }> {
    const calls = rate * opts.seconds;
    const load = loadavg()[0]!;
    const logStart = target.log?.().length ?? 0;
    const dropsBefore = udpReceiveBufferDrops();
    const stopProfile =
      target.profileDir === undefined
        ? undefined
        : await startProfile(join(target.profileDir, `${name}.cpuprofile`));
    const cpuBefore = target.cpuSeconds();
    const uac = await this.caller(target.address, calls, rate, opts.holdMs, Math.max(rate * 4, 100), name);
    let finished = true;
    try {
      // every call is placed after `seconds`; `tail` more for the last ones to end (a stall is a failure)
      await uac.wait(opts.seconds * 1000 + opts.holdMs + opts.tailMs);
    } catch {
      finished = false;
      await uac.stop(2000);
    }
    // the callee ends by itself once it has seen `calls` calls; if some never reached it, stop it
    await uas.wait(finished ? 5_000 : 500).catch(() => uas.stop(2000));
    const a = sippSummary(uac.output);
    const b = sippSummary(uas.output);
    const drops = udpReceiveBufferDrops() - dropsBefore;
    const cpuMsPerCall = ((target.cpuSeconds() - cpuBefore) * 1000) / Math.max(a.ok, 1);
    await stopProfile?.();
    const pass =
      finished && a.ok === calls && a.failed === 0 && b.ok === calls && b.failed === 0 && a.cps >= rate * 0.9;
    console.log(
      `${String(rate).padStart(10)} | ${String(attempt).padStart(3)} | ${String(calls).padStart(5)} | ${`${a.ok}/${a.failed}`.padStart(16)} | ${`${b.ok}/${b.failed}`.padStart(16)} | ${a.cps.toFixed(1).padStart(12)} | ${String(a.retrans + b.retrans).padStart(7)} | ${String(drops).padStart(5)} | ${cpuMsPerCall.toFixed(2).padStart(11)} | ${load.toFixed(1).padStart(4)} | ${pass ? 'pass' : finished ? 'FAIL' : `FAIL (calls not done ${opts.tailMs / 1000} s after the last was placed)`}`,
    );
    if (!pass) {
      for (const f of readdirSync(this.dir).filter(
        (f) => f.includes(`${name}_`) && f.endsWith('_errors.log'),
      )) {
        const events = firstEvents(readFileSync(join(this.dir, f), 'utf8'));
        if (events !== '') console.log(`  ${f}, first events:\n${events}`);
      }
      const errors = (target.log?.().slice(logStart) ?? '')
        .split('\n')
        .filter((l) => /ERROR|CRITICAL|ALERT/.test(l));
      if (errors.length > 0)
        console.log(
          `  the system's log: ${errors.length} error lines, first:\n${errors
            .slice(0, 3)
            .map((l) => `    ${l.slice(0, 220)}`)
            .join('\n')}`,
        );
    }
    return { pass, cpuMsPerCall };
  }

  async stopAll(): Promise<void> {
    for (const p of this.procs) await p.stop(1000);
  }
}

function newVoiceServer(): VoiceServer {
  const users = new InMemoryUserDirectory([
    { name: 'caller', extension: CALLER.extension, sipPassword: CALLER.password },
    { name: 'callee', extension: CALLEE.extension, sipPassword: CALLEE.password },
  ]);
  return new VoiceServer({ users, host: '127.0.0.1', sipPort: 0, ringTimeoutMs: 30_000 });
}

/** REGISTER the callee's SIPp port at our PBX (digest). */
async function registerAtPbx(
  bench: Bench,
  server: VoiceServer,
  calleePort: number,
  expires = 3600,
): Promise<void> {
  writeFileSync(
    join(bench.dir, 'reg.csv'),
    `SEQUENTIAL\n${CALLEE.extension};localhost;${CALLEE.password};${calleePort};${expires}\n`,
  );
  const reg = bench.sipp([
    '-sf',
    new URL('../test/pbx/sipp/register.xml', import.meta.url).pathname,
    '-inf',
    join(bench.dir, 'reg.csv'),
    `127.0.0.1:${server.sipPort}`,
    '-p',
    String(await freeUdpTcpPort()),
    '-m',
    '1',
    '-au',
    CALLEE.extension,
    '-ap',
    CALLEE.password,
  ]);
  if ((await reg.wait(15_000)) !== 0) throw new Error(`REGISTER failed:\n${reg.output.slice(-1000)}`);
}

const MB = 1024 * 1024;
function snapshot(server: VoiceServer) {
  gc();
  gc();
  const m = process.memoryUsage();
  const t = server.stack.transactionCount;
  return { heap: m.heapUsed, rss: m.rss, transactions: t.server + t.client };
}

/** Memory of a fresh voice server: idle (after a warm-up and with no transaction left), then 1,000 calls up. */
async function memory(bench: Bench, calls: number): Promise<void> {
  const server = newVoiceServer();
  await server.start();
  try {
    const calleePort = await freeUdpTcpPort();
    const uas = await bench.callee(calleePort, undefined, 'memory');
    await registerAtPbx(bench, server, calleePort);
    const connected = () => server.b2bua.activeCalls.filter((c) => c.state === 'connected').length;
    // warm-up (code compiled and optimised, pools grown), then wait for its transactions to expire
    const warm = await bench.caller(`127.0.0.1:${server.sipPort}`, 200, 100, 0, 400, 'memory-warmup');
    await warm.wait(60_000).catch(() => warm.stop(1000));
    const noTransactions = () => {
      const t = server.stack.transactionCount;
      return t.server + t.client === 0;
    };
    await waitUntil(
      () => server.b2bua.activeCalls.length === 0 && noTransactions(),
      60_000,
      'idle PBX',
      200,
    ).catch(() => undefined); // the snapshot prints what is left
    const idle = snapshot(server);
    const held = await bench.caller(`127.0.0.1:${server.sipPort}`, calls, 200, 600_000, calls, 'memory-held');
    // until all are up, or no new call came up for 10 s (calls that failed are not retried)
    let last = { count: 0, at: Date.now() };
    await waitUntil(
      () => {
        const n = connected();
        if (n !== last.count) last = { count: n, at: Date.now() };
        return n >= calls || held.child.exitCode !== null || Date.now() - last.at > 10_000;
      },
      120_000,
      `${calls} calls up`,
      50,
    );
    const setUp = snapshot(server);
    const up = connected();
    // the set-up transactions (RFC 6026 Accepted state, 407 exchanges) expire after 64*T1 = 32 s
    await waitUntil(
      () => noTransactions() || connected() < up,
      60_000,
      'set-up transactions expired',
      200,
    ).catch(
      () => undefined, // printed below with the transaction count
    );
    const steady = snapshot(server);
    const still = connected();
    const line = (what: string, s: ReturnType<typeof snapshot>) =>
      `  ${what.padEnd(44)} heap ${(s.heap / MB).toFixed(1).padStart(6)} MB  rss ${(s.rss / MB).toFixed(1).padStart(6)} MB  transactions ${s.transactions}`;
    const perCall = (s: ReturnType<typeof snapshot>, n: number) =>
      `heap +${((s.heap - idle.heap) / n / 1024).toFixed(1)} KB, rss +${((s.rss - idle.rss) / n / 1024).toFixed(1)} KB`;
    console.log(
      '\nmemory of the PBX (this Node process, heap after forced GC; SIPp runs in other processes):',
    );
    console.log(line('idle (after a 200-call warm-up)', idle));
    console.log(line(`${up} calls up, just set up`, setUp));
    console.log(line(`${still} calls up, set-up transactions expired`, steady));
    if (still < calls || up < calls) {
      console.log(`  only ${Math.min(up, still)} of ${calls} calls were up; the caller's errors:`);
      for (const f of readdirSync(bench.dir).filter(
        (f) => f.startsWith('uac-memory-held_') && f.endsWith('_errors.log'),
      ))
        console.log(firstEvents(readFileSync(join(bench.dir, f), 'utf8')));
    }
    console.log(
      `  per call: ${perCall(steady, Math.max(still, 1))} (established calls); ${perCall(setUp, Math.max(up, 1))} right after set-up`,
    );
    await held.stop(1000);
    await uas.stop(1000);
  } finally {
    await server.stop();
  }
}

export default async function run(args: string[]): Promise<void> {
  if (!existsSync(SIPP)) throw new Error('sipp is missing: run scripts/install-test-peers.sh');
  const rates = arg(args, 'rates', '100,200,400,600,800,1200,1600,2000').split(',').map(Number);
  const seconds = Number(arg(args, 'seconds', '4'));
  const hold = Number(arg(args, 'hold', '0'));
  const childrenList = arg(args, 'children', '1,8').split(',').map(Number);
  const only = arg(args, 'only', 'all');
  const attempts = Number(arg(args, 'attempts', '2'));
  const tailMs = Number(arg(args, 'tail', '10')) * 1000;
  const keep = args.includes('--keep');
  const profileDir = args.includes('--profile') ? arg(args, 'profile', '') : undefined;
  if (profileDir !== undefined) mkdirSync(profileDir, { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), 'sb-cps-'));
  const bench = new Bench(dir, keep);
  const load = loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
  console.log(
    `sip-cps: SIPp caller -> system under test -> SIPp callee, UDP on 127.0.0.1, ${seconds} s per rate, hold ${hold} ms; ` +
      `${cpus().length} CPUs shared by SIPp (2 processes), the system under test and anything else running (load average ${load})`,
  );
  console.log(
    'same scenarios for both: INVITE / 407 / ACK / INVITE with digest / 100 / 180 / 200 / ACK / BYE / 200; pass = every call ' +
      `successful at caller and callee, none failed, >= 90 % of the offered rate achieved, all done ${tailMs / 1000} s after the last call was placed; up to ${attempts} tries per rate ` +
      '(every try printed; the machine is shared, a stall of the load generator is not the system under test)',
  );
  const summary: string[] = [];
  let ours: RateResult | undefined;
  const kams: Array<{ children: number } & RateResult> = [];
  try {
    if (only !== 'kamailio' && !args.includes('--no-memory')) await memory(bench, 1000);

    if (only !== 'kamailio') {
      const server = newVoiceServer();
      await server.start();
      try {
        ours = await bench.rates(
          {
            label:
              'Switchboard voice server (B2BUA: two dialogs and four transactions per call, digest), one Node process',
            address: `127.0.0.1:${server.sipPort}`,
            activeCalls: () => server.b2bua.activeCalls.length,
            cpuSeconds: () => {
              const u = process.cpuUsage();
              return (u.user + u.system) / 1e6;
            },
            register: (port, expires) => registerAtPbx(bench, server, port, expires),
            bindings: () => server.registrar.bindingCount,
            ...(profileDir === undefined ? {} : { profileDir }),
          },
          rates,
          { seconds, holdMs: hold, attempts, tailMs },
          'ours',
        );
      } finally {
        await server.stop();
      }
      summary.push(`ours: ${bound(ours, rates)}`);
    }

    if (only !== 'ours') {
      if (!existsSync(KAMAILIO)) {
        console.log(
          '\nKamailio is not installed (scripts/install-test-peers.sh installs it): no comparison.',
        );
      } else {
        for (const children of childrenList) {
          const k = await kamailioRates(bench, children, rates, seconds, hold, attempts, tailMs);
          kams.push({ children, ...k });
          summary.push(`Kamailio children=${children}: ${bound(k, rates)}`);
        }
      }
    }

    console.log('\nhighest call-setup rate with zero failed calls:');
    for (const s of summary) console.log(`  ${s}`);
    if (ours !== undefined)
      for (const k of kams) {
        console.log(`  ratio ours / Kamailio children=${k.children}: ${ratio(ours, k, rates)} (aim >= 0.5)`);
        // CPU per call at the highest rate both passed: a comparison that other jobs on the machine disturb less
        const common = [...ours.cpu.keys()].filter((r) => k.cpu.has(r)).at(-1);
        if (common !== undefined) {
          const o = ours.cpu.get(common)!;
          const t = k.cpu.get(common)!;
          console.log(
            `    CPU per call at ${common} cps: ours ${o.toFixed(2)} ms, Kamailio ${t.toFixed(2)} ms (Kamailio / ours = ${(t / o).toFixed(2)})`,
          );
        }
      }
  } finally {
    await bench.stopAll();
    if (keep) console.log(`traces kept in ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

function bound(r: RateResult, rates: number[]): string {
  if (r.best === undefined) return `< ${rates[0]} cps (failed at the lowest rate tried)`;
  return r.allPassed ? `>= ${r.best} cps (the highest rate tried; not saturated)` : `${r.best} cps`;
}

/** ours / theirs, honest about bounds: a lower bound on one side makes the ratio a bound. */
function ratio(ours: RateResult, theirs: RateResult, rates: number[]): string {
  if (ours.best === undefined || theirs.best === undefined) {
    if (ours.best === undefined && theirs.best === undefined)
      return 'not determined (both failed the lowest rate)';
    return ours.best === undefined
      ? `< ${(rates[0]! / theirs.best!).toFixed(2)}`
      : `> ${(ours.best / rates[0]!).toFixed(2)}`;
  }
  const r = (ours.best / theirs.best).toFixed(2);
  if (ours.allPassed && theirs.allPassed)
    return `not determined (both passed the highest rate, ${ours.best} cps)`;
  if (theirs.allPassed) return `<= ${r} (Kamailio was not saturated)`;
  if (ours.allPassed) return `>= ${r} (ours was not saturated)`;
  return r;
}

async function kamailioRates(
  bench: Bench,
  children: number,
  rates: number[],
  seconds: number,
  hold: number,
  attempts: number,
  tailMs: number,
): Promise<RateResult> {
  const port = await freeUdpTcpPort();
  const name = `kam${children}`;
  const cfg = join(bench.dir, `${name}.cfg`);
  writeFileSync(cfg, kamailioConfig(port, children, CALLER.password));
  const run = join(bench.dir, `${name}-run`);
  mkdirSync(run, { recursive: true });
  // -m: shared memory (MB). The default 64 MB runs out near 800 cps (each transaction is kept for its
  // wait timer) and Kamailio then answers 500; our Node heap is not capped that low either.
  const kam = new Proc(KAMAILIO, [
    '-f',
    cfg,
    '-m',
    String(KAMAILIO_SHM_MB),
    '-DD',
    '-E',
    '-Y',
    run,
    '-P',
    join(run, 'kamailio.pid'),
    '-w',
    run,
  ]);
  bench.procs.push(kam);
  try {
    writeFileSync(join(bench.dir, `${name}-reg.xml`), REGISTER_NO_AUTH);
    await waitUntil(() => udpBound(port) || kam.child.exitCode !== null, 15_000, 'Kamailio listening', 20);
    const register = async (calleePort: number, expires: number) => {
      writeFileSync(
        join(bench.dir, `${name}-reg.csv`),
        `SEQUENTIAL\n${CALLEE.extension};127.0.0.1;${calleePort};${expires}\n`,
      );
      for (let attempt = 0; attempt < 10; attempt++) {
        const r = bench.sipp([
          '-sf',
          join(bench.dir, `${name}-reg.xml`),
          '-inf',
          join(bench.dir, `${name}-reg.csv`),
          `127.0.0.1:${port}`,
          '-p',
          String(await freeUdpTcpPort()),
          '-m',
          '1',
          '-recv_timeout',
          '2000',
        ]);
        if ((await r.wait(10_000).catch(() => null)) === 0) return;
      }
      throw new Error(`could not register at Kamailio:\n${kam.output.slice(-1500)}`);
    };
    return await bench.rates(
      {
        label: `Kamailio 5.6 stateful proxy (tm + rr + auth: record_route, t_relay, digest on INVITE), shm ${KAMAILIO_SHM_MB} MB, children=${children}${children === 1 ? ' (one SIP worker process, like our one Node process)' : children === 8 ? " (Kamailio's default)" : ''}`,
        address: `127.0.0.1:${port}`,
        log: () => kam.output,
        cpuSeconds: () => (kam.child.pid === undefined ? 0 : processTreeCpuSeconds(kam.child.pid)),
        register,
      },
      rates,
      { seconds, holdMs: hold, attempts, tailMs },
      name,
    );
  } finally {
    await kam.stop(2000);
  }
}
