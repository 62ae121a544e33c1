/**
 * `npm run bench -- xmpp-soak [--minutes N] [--rate R]`: churn against the text server at a steady rate
 * (connect, log in, chat, then close cleanly or vanish) for N minutes (default 10); prints the server's
 * RSS and heap after GC at the start, every minute and at the end, and any error. Aim (issue 4): flat.
 * The server runs in this process (so its memory is measured alone); the clients in a child process.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { XmppServer } from '../src/xmpp-server/server.ts';
import { credentialsFor, MemoryStore } from '../src/xmpp-server/store.ts';

function arg(args: string[], name: string, fallback: number): number {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
}

export default async function bench(args: string[]): Promise<void> {
  const minutes = arg(args, 'minutes', 10);
  const rate = arg(args, 'rate', 50);
  const users = 50;
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const dir = mkdtempSync(join(tmpdir(), 'sb-soak-'));
  const store = new MemoryStore();
  for (let i = 0; i < users; i++) store.createAccount(`u${i}`, await credentialsFor(`pw-u${i}`));
  const server = new XmppServer(
    {
      domain: 'localhost',
      host: '127.0.0.1',
      c2sPort: 0,
      componentPort: 0,
      components: new Map(),
      allowPlainLoopback: true,
      dataDir: dir,
      pingIntervalS: 5,
      pingTimeoutS: 3,
      maxSessionsPerAccount: 1000,
    },
    { store },
  );
  await server.start();
  const sample = (label: string) => {
    gc();
    const m = process.memoryUsage();
    const g = server.gauges();
    console.log(
      `${label.padEnd(8)} RSS ${(m.rss / 1048576).toFixed(1)} MB, heap ${(m.heapUsed / 1048576).toFixed(1)} MB, sessions ${g.switchboard_xmpp_sessions}`,
    );
    return m;
  };
  console.log(
    `xmpp-soak: ${minutes} min at ${rate} logins/s (1 in 3 clients vanish without closing), ${users} accounts`,
  );
  const start = sample('start');
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      new URL('_soak-clients.ts', import.meta.url).pathname,
      String(server.c2sPort),
      String(users),
      String(rate),
      String(minutes * 60),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  const timer = setInterval(() => sample('minute'), 60_000);
  await new Promise((r) => child.once('exit', r));
  clearInterval(timer);
  // Sessions of vanished clients end after ping interval + timeout.
  await new Promise((r) => setTimeout(r, 10_000));
  const endSample = sample('end');
  console.log(`clients: ${out.trim()}`);
  console.log(
    `growth: RSS ${((endSample.rss - start.rss) / 1048576).toFixed(1)} MB, heap ${((endSample.heapUsed - start.heapUsed) / 1048576).toFixed(1)} MB`,
  );
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
