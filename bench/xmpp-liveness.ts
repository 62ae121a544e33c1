/**
 * `npm run bench -- xmpp-liveness [--interval S] [--timeout S] [--max-wait S] [--sm] [--only ours|prosody]`
 *
 * How fast the text server notices an unreachable client, seen from the gateway side: a slixmpp
 * client logs in and sends directed presence to the gateway component (the project's
 * ComponentConnection), then it is (a) frozen with SIGSTOP, or (b) cut off by dropping its loopback
 * packets with iptables (needs root). Printed per case: the time until the component receives the
 * client's unavailable presence, and until an iq from the component to the client's full JID comes
 * back as an error (one probe every 250 ms). Our server runs with `ping_interval_s`/`ping_timeout_s`
 * from the options (aim: ≤ interval + timeout + 1 s); Prosody 0.12 runs with its defaults (the test
 * helper's configuration, mod_smacks loaded, no c2s pings). `--sm` uses a client with XEP-0198
 * (stream management and resumption) instead. Cases that take longer than `--max-wait` print "> N s".
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ComponentConnection, stanza } from '../src/gateway/component.ts';
import type { Element } from '../src/xml/index.ts';
import { NS } from '../src/xmpp/ns.ts';
import { XmppServer } from '../src/xmpp-server/server.ts';
import { credentialsFor, MemoryStore } from '../src/xmpp-server/store.ts';
import { Proc, waitUntil } from '../test/helpers/net.ts';
import { startProsody } from '../test/helpers/prosody.ts';

const PYTHON = '/usr/bin/python3';
const GATEWAY = 'cti.localhost';
const SECRET = 'benchsecret';
const ROOT = new URL('..', import.meta.url).pathname;

interface Target {
  name: string;
  c2sPort: number;
  componentPort: number;
  stop(): Promise<void>;
}

interface Result {
  unavailableMs: number | undefined;
  iqErrorMs: number | undefined;
}

async function startOurs(intervalS: number, timeoutS: number): Promise<Target> {
  const dir = mkdtempSync(join(tmpdir(), 'sb-liveness-'));
  const store = new MemoryStore();
  store.createAccount('alice', await credentialsFor('alicepw'));
  const server = new XmppServer(
    {
      domain: 'localhost',
      host: '127.0.0.1',
      c2sPort: 0,
      componentPort: 0,
      components: new Map([[GATEWAY, SECRET]]),
      allowPlainLoopback: true,
      dataDir: dir,
      pingIntervalS: intervalS,
      pingTimeoutS: timeoutS,
      resumeTimeoutS: 300,
    },
    { store },
  );
  await server.start();
  return {
    name: `ours (ping ${intervalS} s + ${timeoutS} s)`,
    c2sPort: server.c2sPort,
    componentPort: server.componentPort,
    async stop() {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function startTheirs(): Promise<Target> {
  const p = await startProsody({ components: { [GATEWAY]: SECRET }, users: { alice: 'alicepw' } });
  return {
    name: 'Prosody 0.12 (defaults)',
    c2sPort: p.c2sPort,
    componentPort: p.componentPort,
    stop: () => p.stop(),
  };
}

/** The local port of the client's connection to `serverPort`, from `ss`. */
function clientPort(pid: number, serverPort: number): number {
  const out = execFileSync('ss', ['-tnpH', 'state', 'established', `( dport = :${serverPort} )`], {
    encoding: 'utf8',
  });
  for (const line of out.split('\n')) {
    if (!line.includes(`pid=${pid},`)) continue;
    const local = line.trim().split(/\s+/)[2];
    const port = Number(local?.slice(local.lastIndexOf(':') + 1));
    if (Number.isInteger(port)) return port;
  }
  throw new Error(`no connection of pid ${pid} to port ${serverPort}:\n${out}`);
}

function iptables(op: '-I' | '-D', port: number): void {
  for (const dir of ['--sport', '--dport'])
    execFileSync('iptables', [op, 'INPUT', '-i', 'lo', '-p', 'tcp', dir, String(port), '-j', 'DROP']);
}

async function measure(
  target: Target,
  fault: 'sigstop' | 'drop',
  sm: boolean,
  maxWaitMs: number,
): Promise<Result> {
  const link = new ComponentConnection({
    host: '127.0.0.1',
    port: target.componentPort,
    domain: GATEWAY,
    secret: SECRET,
    serverDomain: 'localhost',
    keepAliveS: 0,
  });
  const received: Element[] = [];
  link.on('stanza', (el) => received.push(el));
  link.start();
  const resource = `bench${Date.now() % 100000}`;
  const jid = `alice@localhost/${resource}`;
  const script = sm ? join(ROOT, 'test/xmpp-server/peers/slix_sm.py') : join(ROOT, 'test/peers/slix_cti.py');
  const client = new Proc(PYTHON, [
    script,
    '--jid',
    jid,
    '--password',
    'alicepw',
    '--port',
    String(target.c2sPort),
  ]);
  let dropped: number | undefined;
  try {
    await waitUntil(() => link.state === 'online', 10_000, 'component online');
    await client.waitForOutput(/READY /, 20_000);
    await waitUntil(
      () =>
        received.some(
          (el) => el.name === 'presence' && el.attr('from') === jid && el.attr('type') === undefined,
        ),
      10_000,
      'directed presence at the component',
    );
    const pid = client.child.pid!;
    const start = Date.now();
    if (fault === 'sigstop') client.child.kill('SIGSTOP');
    else {
      dropped = clientPort(pid, target.c2sPort);
      iptables('-I', dropped);
    }
    const result: Result = { unavailableMs: undefined, iqErrorMs: undefined };
    let probe = 0;
    const prober = setInterval(() => {
      const q = stanza('iq', { type: 'get', id: `probe-${++probe}`, from: GATEWAY, to: jid });
      q.c('ping', {}, NS.ping);
      link.send(q);
    }, 250);
    try {
      await waitUntil(
        () => {
          const now = Date.now() - start;
          if (
            result.unavailableMs === undefined &&
            received.some(
              (el) => el.name === 'presence' && el.attr('from') === jid && el.attr('type') === 'unavailable',
            )
          )
            result.unavailableMs = now;
          if (
            result.iqErrorMs === undefined &&
            received.some(
              (el) => el.name === 'iq' && el.attr('type') === 'error' && el.attr('id')?.startsWith('probe-'),
            )
          )
            result.iqErrorMs = now;
          return result.unavailableMs !== undefined && result.iqErrorMs !== undefined;
        },
        maxWaitMs,
        'detection',
        20,
      );
    } catch {
      // Not detected within max-wait: reported as such.
    } finally {
      clearInterval(prober);
    }
    return result;
  } finally {
    if (dropped !== undefined) iptables('-D', dropped);
    client.child.kill('SIGKILL');
    await client.stop(500);
    await link.stop();
  }
}

function seconds(ms: number | undefined, maxWaitMs: number): string {
  return ms === undefined ? `> ${maxWaitMs / 1000} s` : `${(ms / 1000).toFixed(2)} s`;
}

export default async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      interval: { type: 'string', default: '5' },
      timeout: { type: 'string', default: '3' },
      'max-wait': { type: 'string', default: '30' },
      sm: { type: 'boolean', default: false },
      only: { type: 'string' },
    },
  });
  const intervalS = Number(values.interval);
  const timeoutS = Number(values.timeout);
  const maxWaitMs = Number(values['max-wait']) * 1000;
  const sm = values.sm === true;
  const canDrop = process.getuid?.() === 0 && existsSync('/usr/sbin/iptables');
  const starters: Array<() => Promise<Target>> = [];
  if (values.only !== 'prosody') starters.push(() => startOurs(intervalS, timeoutS));
  if (values.only !== 'ours' && existsSync('/usr/bin/prosody')) starters.push(startTheirs);
  console.log(
    `client: slixmpp ${sm ? 'with XEP-0198' : 'without stream management'}; aim for ours: ≤ ${intervalS + timeoutS + 1} s`,
  );
  if (!canDrop) console.log('dropped packets: skipped (needs root and iptables)');
  const rows: string[][] = [];
  for (const start of starters) {
    const target = await start();
    try {
      for (const fault of ['sigstop', 'drop'] as const) {
        if (fault === 'drop' && !canDrop) continue;
        const r = await measure(target, fault, sm, maxWaitMs);
        rows.push([
          target.name,
          fault === 'sigstop' ? 'SIGSTOP' : 'packets dropped',
          seconds(r.unavailableMs, maxWaitMs),
          seconds(r.iqErrorMs, maxWaitMs),
        ]);
        console.log(rows.at(-1)!.join(' | '));
      }
    } finally {
      await target.stop();
    }
  }
  console.log('\n| server | fault | unavailable at the component | iq error at the component |');
  console.log('| --- | --- | --- | --- |');
  for (const row of rows) console.log(`| ${row.join(' | ')} |`);
}
