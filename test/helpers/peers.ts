/**
 * Real test peers. A test that needs a peer which is not installed fails with a message naming the
 * install script; it never skips silently.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const PEER_BINARIES: Record<string, string> = {
  sipp: '/usr/bin/sipp',
  baresip: '/usr/bin/baresip',
  prosody: '/usr/bin/prosody',
  prosodyctl: '/usr/bin/prosodyctl',
  ejabberdctl: '/usr/sbin/ejabberdctl',
  profanity: '/usr/bin/profanity',
  tmux: '/usr/bin/tmux',
  chromium: '/usr/bin/chromium',
  'python3-slixmpp': '/usr/bin/python3',
};

/** Returns the absolute path of a peer's binary, or throws naming scripts/install-test-peers.sh. */
export function requirePeer(name: keyof typeof PEER_BINARIES | string): string {
  const path = PEER_BINARIES[name];
  if (path === undefined) throw new Error(`unknown peer ${name}`);
  let ok = existsSync(path);
  if (ok && name === 'python3-slixmpp') {
    try {
      execFileSync(path, ['-c', 'import slixmpp'], { stdio: 'ignore' });
    } catch {
      ok = false;
    }
  }
  if (!ok) {
    throw new Error(`test peer '${name}' is missing (${path}): run scripts/install-test-peers.sh`);
  }
  return path;
}

/** Where the shared reference recipes live (../shared/reference/peers beside the checkout). */
export const SHARED_PEERS_DIR = new URL('../../../shared/reference/peers/', import.meta.url).pathname;
