/**
 * A private Prosody 0.12 instance for end-to-end tests (recipe: shared/reference/peers-howto.md §1),
 * on free loopback ports, in a temporary directory removed on stop.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeTcpPort, Proc, waitUntil } from './net.ts';
import { requirePeer } from './peers.ts';

export interface ProsodyOptions {
  domain?: string;
  components?: Record<string, string>; // component domain → secret
  users?: Record<string, string>; // user → password
  extraGlobal?: string;
  /** More modules to enable globally (e.g. "pep", "privilege"). */
  modules?: string[];
  /** Lines for the VirtualHost section (e.g. privileged_entities). */
  hostConfig?: string;
  /** Lines for every Component section (e.g. modules_enabled = { "privilege" }). */
  componentConfig?: string;
}

export interface ProsodyInstance {
  domain: string;
  c2sPort: number;
  componentPort: number;
  dir: string;
  proc: Proc;
  stop(): Promise<void>;
}

async function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export async function startProsody(options: ProsodyOptions = {}): Promise<ProsodyInstance> {
  const prosody = requirePeer('prosody');
  const prosodyctl = requirePeer('prosodyctl');
  const domain = options.domain ?? 'localhost';
  const dir = mkdtempSync(join(tmpdir(), 'sb-prosody-'));
  const c2sPort = await freeTcpPort();
  const componentPort = await freeTcpPort();
  const components = Object.entries(options.components ?? {})
    .map(
      ([jid, secret]) =>
        `Component "${jid}"\n  component_secret = "${secret}"\n${options.componentConfig ?? ''}\n`,
    )
    .join('');
  const config = join(dir, 'prosody.cfg.lua');
  writeFileSync(
    config,
    `pidfile = "${dir}/prosody.pid"
data_path = "${dir}"
run_as_root = true
log = { info = "${dir}/prosody.log"; error = "${dir}/prosody.err" }
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { ${c2sPort} }
c2s_direct_tls_ports = { }
s2s_ports = { }
component_ports = { ${componentPort} }
component_interfaces = { "127.0.0.1" }
http_ports = { }
https_ports = { }
modules_enabled = { "roster"; "saslauth"; "disco"; "ping"; "presence"; "message"; "iq"; "posix"; "smacks"; "version"; "offline"${(options.modules ?? []).map((m) => `; "${m}"`).join('')} }
modules_disabled = { "s2s" }
authentication = "internal_hashed"
storage = "internal"
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
${options.extraGlobal ?? ''}
VirtualHost "${domain}"
${options.hostConfig ?? ''}
${components}`,
  );
  for (const [user, password] of Object.entries(options.users ?? {})) {
    execFileSync(prosodyctl, ['--config', config, 'register', user, domain, password], { stdio: 'ignore' });
  }
  const proc = new Proc(prosody, ['--config', config, '-F'], { cwd: dir, detached: false });
  try {
    await waitUntil(
      async () =>
        proc.child.exitCode === null && (await portOpen(c2sPort)) && (await portOpen(componentPort)),
      10_000,
      'prosody to listen',
      50,
    );
  } catch (e) {
    await proc.stop();
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`${(e as Error).message}\n${proc.output}`);
  }
  return {
    domain,
    c2sPort,
    componentPort,
    dir,
    proc,
    async stop() {
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
