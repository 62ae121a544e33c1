/**
 * `npm run bench -- xmpp-c2s [--connections 5000] [--pairs 200] [--messages 100] [--window 4]
 *  [--logins 300] [--concurrency 16] [--only ours|prosody]`
 *
 * The same load against our text server (src/cli/xmpp.ts in its own process) and Prosody 0.12, one
 * after the other in one run, each on loopback with fresh data:
 *  (c) logins/s: full STARTTLS + SCRAM-SHA-1 + bind + close, `concurrency` at a time (both servers only
 *      offer SCRAM-SHA-1 in common; the client caches SaltedPassword, so the server's work is measured);
 *  (b) chat messages/s and p50/p99 latency between `pairs` client pairs, each sender keeping `window`
 *      messages in flight to its receiver's full JID;
 *  (a) `connections` concurrent authenticated sessions (PLAIN on loopback, no TLS, like peers-howto's
 *      Prosody setup): server RSS growth per connection.
 * Prosody runs with the modules that match our feature set (roster, saslauth, tls, disco, ping,
 * presence, message, iq, version, offline, posix): no smacks or carbons, which we do not have either.
 * The load generator uses raw sockets for (a) and (b) so its own cost stays small and equal for both.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { XmppClient } from '../src/xmpp/client.ts';
import { credentialsFor, SqliteStore } from '../src/xmpp-server/store.ts';
import { ensureSelfSignedCertificate } from '../src/xmpp-server/tls.ts';

const ROOT = new URL('../', import.meta.url).pathname;
const DOMAIN = 'localhost';
const PASSWORD = 'benchpw';
const ITERATIONS = 4096;
const PHASE_TIMEOUT_MS = 180_000;

interface Options {
  connections: number;
  pairs: number;
  messages: number;
  window: number;
  logins: number;
  concurrency: number;
  only: string | undefined;
}

interface Figures {
  loginsPerSec?: number;
  cpuMsPerLogin?: number;
  messagesPerSec?: number;
  cpuUsPerMessage?: number;
  p50Ms?: number;
  p99Ms?: number;
  rssPerConnKiB?: number;
  connections?: number;
  errors: string[];
}

interface Target {
  name: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function waitForPort(port: number, timeoutMs: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
    if (Date.now() > deadline) throw new Error(`port ${port} did not open`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** CPU time (user + system) the process has used, in ms (clock ticks of 10 ms on Linux). */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function rssKiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = status.match(/VmRSS:\s+(\d+) kB/);
  return m === null ? Number.NaN : Number(m[1]);
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

// ---- the two servers ----------------------------------------------------------------------------------

async function startOurs(dir: string, users: number): Promise<Target> {
  const data = join(dir, 'ours');
  mkdirSync(data, { recursive: true });
  const store = new SqliteStore(join(data, 'accounts.sqlite'));
  const creds = await credentialsFor(PASSWORD);
  const insert = () => {
    for (let i = 0; i < users; i++) store.createAccount(`u${i}`, creds);
  };
  insert();
  store.close();
  ensureSelfSignedCertificate(data, DOMAIN);
  const port = await freePort();
  const componentPort = await freePort();
  const config = join(data, 'switchboard.toml');
  writeFileSync(
    config,
    `log_level = "error"\n[xmpp]\nc2s_port = ${port}\ncomponent_port = ${componentPort}\nallow_plain_loopback = true\ncomponent_secret = "x"\n`,
  );
  const script = `const m = await import(${JSON.stringify(join(ROOT, 'src/cli/xmpp.ts'))}); process.exitCode = await m.run(process.argv.slice(1));`;
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', script, '--', '--config', config, '--data', data],
    { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  await waitForPort(port, 30_000, child);
  return { name: 'ours', port, pid: child.pid!, stop: () => stopChild(child) };
}

function prosodyAccount(salt: string): string {
  const salted = pbkdf2Sync(PASSWORD, Buffer.from(salt), ITERATIONS, 20, 'sha1');
  const storedKey = createHash('sha1')
    .update(createHmac('sha1', salted).update('Client Key').digest())
    .digest('hex');
  const serverKey = createHmac('sha1', salted).update('Server Key').digest('hex');
  return `return {\n\t["stored_key"] = "${storedKey}";\n\t["server_key"] = "${serverKey}";\n\t["iteration_count"] = ${ITERATIONS};\n\t["salt"] = "${salt}";\n};\n`;
}

async function startProsody(dir: string, users: number): Promise<Target> {
  const base = join(dir, 'prosody');
  const accounts = join(base, 'data', DOMAIN, 'accounts');
  mkdirSync(accounts, { recursive: true });
  const file = prosodyAccount('5f0c7a3e-bench-salt');
  for (let i = 0; i < users; i++) writeFileSync(join(accounts, `u${i}.dat`), file);
  const cert = ensureSelfSignedCertificate(base, DOMAIN);
  const port = await freePort();
  const cfg = join(base, 'prosody.cfg.lua');
  writeFileSync(
    cfg,
    `pidfile = "${base}/prosody.pid"
data_path = "${base}/data"
run_as_root = true
log = { error = "${base}/prosody.err" }
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { ${port} }
c2s_direct_tls_ports = { }
s2s_ports = { }
component_ports = { }
http_ports = { }
https_ports = { }
modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "ping"; "presence"; "message"; "iq"; "version"; "offline"; "posix" }
modules_disabled = { "s2s" }
authentication = "internal_hashed"
storage = "internal"
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
ssl = { certificate = "${cert.certPath}"; key = "${cert.keyPath}" }
VirtualHost "${DOMAIN}"
`,
  );
  const child = spawn('/usr/bin/prosody', ['--config', cfg, '-F'], {
    cwd: base,
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  await waitForPort(port, 30_000, child);
  return { name: 'prosody', port, pid: child.pid!, stop: () => stopChild(child) };
}

// ---- a raw, cheap client for (a) and (b) ---------------------------------------------------------------

class RawConn {
  readonly socket: Socket;
  buffer = '';
  private waiter: (() => void) | undefined;
  onData: ((chunk: string) => void) | undefined;

  constructor(socket: Socket) {
    this.socket = socket;
    socket.setEncoding('utf8');
    socket.setNoDelay(true);
    socket.on('data', (d: string) => {
      if (this.onData !== undefined) {
        this.onData(d);
        return;
      }
      this.buffer += d;
      this.waiter?.();
    });
    socket.on('error', () => {});
    socket.on('close', () => this.waiter?.());
  }

  async until(marker: string, timeoutMs = 30_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!this.buffer.includes(marker)) {
      if (/<failure|<stream:error/.test(this.buffer))
        throw new Error(`server said: ${this.buffer.slice(0, 200)}`);
      if (this.socket.destroyed) throw new Error('connection closed');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${marker}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    const out = this.buffer;
    this.buffer = '';
    return out;
  }
}

const HEADER = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='${DOMAIN}' version='1.0'>`;

async function rawLogin(port: number, user: string, resource: string): Promise<RawConn> {
  const socket = connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const c = new RawConn(socket);
  socket.write(HEADER);
  await c.until('</stream:features>');
  socket.write(
    `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${user}\0${PASSWORD}`).toString('base64')}</auth>`,
  );
  await c.until('<success');
  socket.write(HEADER);
  await c.until('</stream:features>');
  socket.write(
    `<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${resource}</resource></bind></iq>`,
  );
  await c.until('</jid>');
  return c;
}

async function pool<T>(count: number, concurrency: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(count);
  let next = 0;
  const workers = Array.from({ length: Math.min(concurrency, count) }, async () => {
    for (;;) {
      const i = next++;
      if (i >= count) return;
      out[i] = await fn(i);
    }
  });
  await Promise.all(workers);
  return out;
}

function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${what} took longer than ${PHASE_TIMEOUT_MS} ms`)),
        PHASE_TIMEOUT_MS,
      );
    }),
  ]);
}

// ---- the three measurements ------------------------------------------------------------------------

async function measureLogins(target: Target, o: Options): Promise<{ perSec: number; cpuMsPerLogin: number }> {
  const cache = new Map<string, Buffer>();
  // Warm the client-side cache once so only the server's share of SCRAM is timed.
  const warm = await XmppClient.connect({
    host: '127.0.0.1',
    port: target.port,
    domain: DOMAIN,
    username: 'u0',
    password: PASSWORD,
    tls: 'starttls',
    mechanism: 'SCRAM-SHA-1',
    scramCache: cache,
  });
  await warm.close();
  const cpu0 = cpuMs(target.pid);
  const start = performance.now();
  await pool(o.logins, o.concurrency, async (i) => {
    const c = await XmppClient.connect({
      host: '127.0.0.1',
      port: target.port,
      domain: DOMAIN,
      username: `u${i % 1000}`,
      password: PASSWORD,
      tls: 'starttls',
      mechanism: 'SCRAM-SHA-1',
      scramCache: cache,
      timeoutMs: 30_000,
    });
    c.kill();
  });
  const seconds = (performance.now() - start) / 1000;
  return { perSec: o.logins / seconds, cpuMsPerLogin: (cpuMs(target.pid) - cpu0) / o.logins };
}

async function measureMessages(
  target: Target,
  o: Options,
): Promise<{ perSec: number; p50: number; p99: number; cpuUsPerMessage: number }> {
  const senders = await pool(o.pairs, 32, (i) => rawLogin(target.port, `u${2 * i}`, 's'));
  const receivers = await pool(o.pairs, 32, (i) => rawLogin(target.port, `u${2 * i + 1}`, 'r'));
  const latencies: number[] = [];
  const total = o.pairs * o.messages;
  let received = 0;
  let resolveDone: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    resolveDone = resolve;
  });
  const cpu0 = cpuMs(target.pid);
  const start = performance.now();
  for (let i = 0; i < o.pairs; i++) {
    const sender = senders[i]!;
    const receiver = receivers[i]!;
    const to = `u${2 * i + 1}@${DOMAIN}/r`;
    const sentAt = new Map<number, number>();
    let nextSeq = 0;
    const sendNext = () => {
      if (nextSeq >= o.messages) return;
      const seq = nextSeq++;
      sentAt.set(seq, performance.now());
      sender.socket.write(`<message to='${to}' type='chat'><body>${seq}</body></message>`);
    };
    let tail = '';
    receiver.onData = (chunk) => {
      const text = tail + chunk;
      const re = /<body>(\d+)<\/body>/g;
      let m: RegExpExecArray | null = re.exec(text);
      let consumed = 0;
      while (m !== null) {
        const seq = Number(m[1]);
        const t0 = sentAt.get(seq);
        if (t0 !== undefined) {
          latencies.push(performance.now() - t0);
          sentAt.delete(seq);
          received++;
          sendNext();
        }
        consumed = re.lastIndex;
        m = re.exec(text);
      }
      tail = text.slice(consumed).slice(-64);
      if (received === total) resolveDone();
    };
    for (let w = 0; w < o.window; w++) sendNext();
  }
  await done;
  const seconds = (performance.now() - start) / 1000;
  const cpuUsPerMessage = ((cpuMs(target.pid) - cpu0) * 1000) / total;
  for (const c of [...senders, ...receivers]) c.socket.destroy();
  latencies.sort((a, b) => a - b);
  const pct = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]!;
  return { perSec: total / seconds, p50: pct(50), p99: pct(99), cpuUsPerMessage };
}

async function measureMemory(target: Target, o: Options): Promise<{ perConnKiB: number; connected: number }> {
  // Let earlier phases' connections wind down before the baseline.
  await new Promise((r) => setTimeout(r, 1000));
  const before = rssKiB(target.pid);
  const conns = await pool(o.connections, 64, (i) => rawLogin(target.port, `u${i}`, 'm'));
  await new Promise((r) => setTimeout(r, 1000));
  const after = rssKiB(target.pid);
  for (const c of conns) c.socket.destroy();
  return { perConnKiB: (after - before) / conns.length, connected: conns.length };
}

async function runAgainst(target: Target, o: Options): Promise<Figures> {
  const f: Figures = { errors: [] };
  if (o.logins > 0)
    try {
      const l = await withTimeout(measureLogins(target, o), 'logins');
      f.loginsPerSec = l.perSec;
      f.cpuMsPerLogin = l.cpuMsPerLogin;
    } catch (e) {
      f.errors.push(`(c) logins: ${(e as Error).message}`);
    }
  if (o.pairs > 0 && o.messages > 0)
    try {
      const m = await withTimeout(measureMessages(target, o), 'messages');
      f.messagesPerSec = m.perSec;
      f.p50Ms = m.p50;
      f.p99Ms = m.p99;
      f.cpuUsPerMessage = m.cpuUsPerMessage;
    } catch (e) {
      f.errors.push(`(b) messages: ${(e as Error).message}`);
    }
  if (o.connections > 0)
    try {
      const m = await withTimeout(measureMemory(target, o), 'connections');
      f.rssPerConnKiB = m.perConnKiB;
      f.connections = m.connected;
    } catch (e) {
      f.errors.push(`(a) connections: ${(e as Error).message}`);
    }
  return f;
}

function fmt(n: number | undefined, digits = 1): string {
  return n === undefined || Number.isNaN(n) ? 'n/a' : n.toFixed(digits);
}

export default async function xmppC2s(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      connections: { type: 'string', default: '5000' },
      pairs: { type: 'string', default: '200' },
      messages: { type: 'string', default: '100' },
      window: { type: 'string', default: '4' },
      logins: { type: 'string', default: '300' },
      concurrency: { type: 'string', default: '16' },
      only: { type: 'string' },
    },
  });
  const o: Options = {
    connections: Number(values.connections),
    pairs: Number(values.pairs),
    messages: Number(values.messages),
    window: Number(values.window),
    logins: Number(values.logins),
    concurrency: Number(values.concurrency),
    only: values.only,
  };
  const users = Math.max(o.connections, o.pairs * 2, 1000);
  const dir = mkdtempSync(join(tmpdir(), 'sb-bench-xmpp-'));
  const results = new Map<string, Figures>();
  try {
    const starters: Array<[string, () => Promise<Target>]> = [['ours', () => startOurs(dir, users)]];
    if (existsSync('/usr/bin/prosody')) starters.push(['prosody', () => startProsody(dir, users)]);
    else console.log('prosody is not installed (/usr/bin/prosody): only our figures are printed');
    for (const [name, start] of starters) {
      if (o.only !== undefined && o.only !== name) continue;
      console.log(`-- ${name}: starting (${users} accounts)`);
      const target = await start();
      try {
        const f = await runAgainst(target, o);
        results.set(name, f);
        console.log(
          `-- ${name}: logins/s ${fmt(f.loginsPerSec)}, msgs/s ${fmt(f.messagesPerSec, 0)}, p50 ${fmt(f.p50Ms, 2)} ms, p99 ${fmt(f.p99Ms, 2)} ms, RSS/conn ${fmt(f.rssPerConnKiB, 2)} KiB (${f.connections ?? 0} conns)`,
        );
        for (const e of f.errors) console.log(`   error: ${e}`);
      } finally {
        await target.stop();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const ours = results.get('ours');
  const prosody = results.get('prosody');
  const rows: Array<[string, keyof Figures, string, boolean]> = [
    [`(a) RSS per connection, ${o.connections} sessions`, 'rssPerConnKiB', 'KiB', false],
    [`(b) messages/s, ${o.pairs} pairs`, 'messagesPerSec', 'msg/s', true],
    ['(b) latency p50', 'p50Ms', 'ms', false],
    ['(b) latency p99', 'p99Ms', 'ms', false],
    ['(b) server CPU per message', 'cpuUsPerMessage', 'µs', false],
    ['(c) logins/s (STARTTLS + SCRAM-SHA-1)', 'loginsPerSec', '/s', true],
    ['(c) server CPU per login', 'cpuMsPerLogin', 'ms', false],
  ];
  console.log(`\n${'measure'.padEnd(44)}${'ours'.padEnd(16)}${'prosody'.padEnd(16)}ours/prosody`);
  for (const [label, key, unit] of rows) {
    const a = ours?.[key] as number | undefined;
    const b = prosody?.[key] as number | undefined;
    const ratio = a !== undefined && b !== undefined && b !== 0 ? (a / b).toFixed(2) : 'n/a';
    console.log(
      `${label.padEnd(44)}${`${fmt(a, 2)} ${unit}`.padEnd(16)}${`${fmt(b, 2)} ${unit}`.padEnd(16)}${ratio}`,
    );
  }
}
