/**
 * A private ejabberd 23 instance for end-to-end tests (recipe: shared/reference/peers-howto.md §2), on
 * free loopback ports with its own Erlang node name, in a temporary directory removed on stop.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freeTcpPort } from './net.ts';
import { requirePeer, SHARED_PEERS_DIR } from './peers.ts';

const run = promisify(execFile);

export interface EjabberdInstance {
  domain: string;
  c2sPort: number;
  componentPort: number;
  dir: string;
  stop(): Promise<void>;
}

export async function startEjabberd(options: {
  components: Record<string, string>;
  users: Record<string, string>;
  domain?: string;
  /** YAML appended to the modules section, indented by two spaces (e.g. mod_privilege options). */
  modules?: string;
}): Promise<EjabberdInstance> {
  const ctl = requirePeer('ejabberdctl');
  const domain = options.domain ?? 'localhost';
  const dir = mkdtempSync(join(tmpdir(), 'sb-ejabberd-'));
  const c2sPort = await freeTcpPort();
  const componentPort = await freeTcpPort();
  for (const sub of ['etc', 'spool', 'logs']) mkdirSync(join(dir, sub));
  const base = readFileSync(join(SHARED_PEERS_DIR, 'ejabberd/ejabberd.yml'), 'utf8');
  const services = Object.entries(options.components)
    .map(([jid, secret]) => `      ${jid}:\n        password: "${secret}"`)
    .join('\n');
  const yml = base
    .replace('  - example.test', `  - ${domain}`)
    .replace('port: 25222', `port: ${c2sPort}`)
    .replace('port: 25347', `port: ${componentPort}`)
    .replace(/ {6}gw\.example\.test:\n {8}password: "gwsecret"/, services)
    .replace('admin@example.test', `admin@${domain}`)
    .concat(options.modules === undefined ? '' : `\n${options.modules}\n`);
  writeFileSync(join(dir, 'etc/ejabberd.yml'), yml);
  const node = `sbtest${process.pid}x${c2sPort}@localhost`;
  const cfg = readFileSync(join(SHARED_PEERS_DIR, 'ejabberd/ejabberdctl.cfg'), 'utf8').replace(
    'ERLANG_NODE=ejabberd-test@localhost',
    `ERLANG_NODE=${node}`,
  );
  writeFileSync(join(dir, 'etc/ejabberdctl.cfg'), `${cfg}\nEJABBERD_PID_PATH=${dir}/ejabberd.pid\n`);
  copyFileSync('/etc/ejabberd/inetrc', join(dir, 'etc/inetrc'));
  await run('chown', ['-R', 'ejabberd:ejabberd', dir]);
  await run('chmod', ['711', dir]);
  const args = ['--config-dir', join(dir, 'etc'), '--spool', join(dir, 'spool'), '--logs', join(dir, 'logs')];
  try {
    await run(ctl, [...args, 'start']);
    await run(ctl, [...args, 'started'], { timeout: 60_000 });
    for (const [user, password] of Object.entries(options.users)) {
      await run(ctl, [...args, 'register', user, domain, password]);
    }
  } catch (e) {
    let log = '';
    try {
      log = readFileSync(join(dir, 'logs/ejabberd.log'), 'utf8').split('\n').slice(-10).join('\n');
    } catch {}
    await run(ctl, [...args, 'stop']).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`ejabberd did not start: ${(e as Error).message}\n${log}`);
  }
  return {
    domain,
    c2sPort,
    componentPort,
    dir,
    async stop() {
      await run(ctl, [...args, 'stop']).catch(() => {});
      await run(ctl, [...args, 'stopped'], { timeout: 30_000 }).catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
