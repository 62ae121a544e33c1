/**
 * `npm run bench -- pbx-csta [--seconds N] [--concurrency N]`
 *
 * The voice server's CSTA interface with two SIPp UAS phones that answer every call (1001 and 1002):
 * 1. MakeCall rate: a CSTA client keeps N MakeCalls (doNotPrompt) in flight; each is cleared with
 *    ClearCall as soon as Established arrives, and counts once ConnectionCleared (lci null) is in.
 *    Figures: completed 3PCC calls per second, and MakeCall → Established time p50/p99.
 * 2. SIP → CSTA delay for every event caused by a SIP message (180, 200, BYE responses …): from the
 *    moment the voice server's SIP transport hands the parsed message to the stack (parsing excluded)
 *    to (a) the event written to the CSTA socket and (b) the event decoded by the CSTA client.
 * Everything except SIPp runs in this process, on loopback.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CstaLink, type CstaMessage } from '../src/csta/index.ts';
import { CstaInterface } from '../src/pbx/csta-interface.ts';
import { VoiceServer } from '../src/pbx/server.ts';
import { InMemoryUserDirectory } from '../src/pbx/users.ts';
import { freeUdpTcpPort, Proc, waitEvent, waitUntil } from '../test/helpers/net.ts';
import { requirePeer } from '../test/helpers/peers.ts';
import { uasScenario } from '../test/pbx/sipp-scenarios.ts';

const REGISTER_XML = new URL('../test/pbx/sipp/register.xml', import.meta.url).pathname;

function arg(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const ms = (ns: bigint | number) => (Number(ns) / 1e6).toFixed(3);

export default async function run(args: string[]): Promise<void> {
  const seconds = arg(args, 'seconds', 5);
  const concurrency = arg(args, 'concurrency', 4);
  const sipp = requirePeer('sipp');
  const dir = mkdtempSync(join(tmpdir(), 'sb-bench-pbx-csta-'));
  const procs: Proc[] = [];
  const users = new InMemoryUserDirectory([
    { name: 'alice', extension: '1001', sipPassword: 'alice-pw' },
    { name: 'bob', extension: '1002', sipPassword: 'bob-pw' },
  ]);
  const voice = new VoiceServer({ users, host: '127.0.0.1', sipPort: 0, ringTimeoutMs: 10_000 });
  await voice.start();
  const csta = new CstaInterface(voice, { port: 0 });
  await csta.start();
  const link = new CstaLink({
    host: '127.0.0.1',
    port: csta.port,
    reconnect: false,
    keepAliveIntervalMs: 0,
    awaitSystemStatusMs: 2000,
    requestTimeoutMs: 20_000,
  });
  try {
    // SIPp phones: one UAS per extension, answering any number of calls
    for (const [ext, password] of [
      ['1001', 'alice-pw'],
      ['1002', 'bob-pw'],
    ] as const) {
      const port = await freeUdpTcpPort();
      const file = join(dir, `uas-${ext}.xml`);
      writeFileSync(file, uasScenario('answer'));
      procs.push(
        new Proc(sipp, ['-sf', file, '-p', String(port), '-i', '127.0.0.1', '-nostdin'], { cwd: dir }),
      );
      const csv = join(dir, `reg-${ext}.csv`);
      writeFileSync(csv, `SEQUENTIAL\n${ext};localhost;${password};${port};3600\n`);
      const reg = new Proc(
        sipp,
        [
          '-sf',
          REGISTER_XML,
          '-inf',
          csv,
          `127.0.0.1:${voice.sipPort}`,
          '-p',
          String(await freeUdpTcpPort()),
          '-i',
          '127.0.0.1',
          '-m',
          '1',
          '-nostdin',
          '-au',
          ext,
          '-ap',
          password,
        ],
        { cwd: dir },
      );
      if ((await reg.wait(20_000)) !== 0) throw new Error(`REGISTER ${ext} failed:\n${reg.output}`);
      await waitUntil(() => voice.registrar.lookup(ext).length > 0, 5000, `${ext} registered`);
    }

    // SIP dispatch timestamps: events written while a SIP message is being handled belong to it
    let sipAt: bigint | undefined;
    for (const t of voice.stack.transports) {
      t.prependListener('message', () => {
        sipAt = process.hrtime.bigint();
        queueMicrotask(() => {
          sipAt = undefined;
        });
      });
    }
    const toWire: number[] = [];
    const toClient: number[] = [];
    const pendingAtClient: Array<bigint | undefined> = [];
    csta.on('sent', () => {
      const at = sipAt;
      if (at !== undefined) toWire.push(Number(process.hrtime.bigint() - at));
      pendingAtClient.push(at);
    });

    const waiters = new Map<string, { want: (m: CstaMessage) => boolean; resolve: () => void }[]>();
    // events can arrive in the same read as the MakeCallResponse, before a waiter exists: keep them
    const seen = new Map<string, CstaMessage[]>();
    link.on('event', (message) => {
      const at = pendingAtClient.shift();
      if (at !== undefined) toClient.push(Number(process.hrtime.bigint() - at));
      const m = message as CstaMessage & Record<string, { callID?: string } | undefined>;
      const callID = (m.establishedConnection ?? m.droppedConnection ?? m.connection)?.callID;
      if (callID === undefined) return;
      const past = seen.get(callID) ?? [];
      past.push(message);
      seen.set(callID, past);
      const list = waiters.get(callID) ?? [];
      for (const w of [...list]) {
        if (w.want(message)) {
          list.splice(list.indexOf(w), 1);
          w.resolve();
        }
      }
    });
    const waitFor = (callID: string, want: (m: CstaMessage) => boolean) =>
      new Promise<void>((resolve) => {
        if ((seen.get(callID) ?? []).some(want)) {
          resolve();
          return;
        }
        const list = waiters.get(callID) ?? [];
        list.push({ want, resolve });
        waiters.set(callID, list);
      });

    const up = waitEvent(link, 'up', 5000);
    link.start();
    await up;
    const monA = (await link.request({ name: 'MonitorStart', monitorObject: { deviceObject: '1001' } }))
      .monitorCrossRefID;
    await link.request({ name: 'MonitorStart', monitorObject: { deviceObject: '1002' } });

    const setup: number[] = [];
    let completed = 0;
    let failed = 0;
    const deadline = Date.now() + seconds * 1000;
    const started = process.hrtime.bigint();
    const worker = async () => {
      while (Date.now() < deadline) {
        const t0 = process.hrtime.bigint();
        let callID: string;
        try {
          const r = await link.request({
            name: 'MakeCall',
            callingDevice: '1001',
            calledDirectoryNumber: '1002',
            autoOriginate: 'doNotPrompt',
          });
          callID = r.callingDevice.callID!;
        } catch {
          // a phone still busy with the previous call's BYE: count and go on
          failed++;
          continue;
        }
        const established = waitFor(callID, (m) => m.name === 'EstablishedEvent');
        const cleared = waitFor(
          callID,
          (m) =>
            m.name === 'ConnectionClearedEvent' &&
            m.monitorCrossRefID === monA &&
            m.localConnectionInfo === 'null',
        );
        await established;
        setup.push(Number(process.hrtime.bigint() - t0));
        await link.request({ name: 'ClearCall', callToBeCleared: { callID } });
        await cleared;
        seen.delete(callID);
        waiters.delete(callID);
        completed++;
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    const elapsedS = Number(process.hrtime.bigint() - started) / 1e9;
    setup.sort((a, b) => a - b);
    toWire.sort((a, b) => a - b);
    toClient.sort((a, b) => a - b);
    console.log(`pbx-csta: ${seconds} s, ${concurrency} MakeCalls in flight, SIPp UAS phones on UDP`);
    console.log(
      `  MakeCall (3PCC) rate: ${(completed / elapsedS).toFixed(1)} calls/s (${completed} completed, ${failed} refused)`,
    );
    console.log(
      `  MakeCall → Established: p50 ${ms(percentile(setup, 50))} ms, p99 ${ms(percentile(setup, 99))} ms`,
    );
    console.log(
      `  SIP message → CSTA event written: p50 ${ms(percentile(toWire, 50))} ms, p99 ${ms(percentile(toWire, 99))} ms (${toWire.length} events)`,
    );
    console.log(
      `  SIP message → CSTA event decoded by the client: p50 ${ms(percentile(toClient, 50))} ms, p99 ${ms(percentile(toClient, 99))} ms (${toClient.length} events)`,
    );
  } finally {
    await link.stop();
    await csta.stop();
    await voice.stop();
    for (const p of procs) await p.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
