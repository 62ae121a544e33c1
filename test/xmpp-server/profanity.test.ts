/** One real desktop-style client: profanity logs in over STARTTLS (certificate trusted) in tmux. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { waitUntil } from '../helpers/net.ts';
import { requirePeer } from '../helpers/peers.ts';
import { login, presence, startServer } from './harness.ts';

test('profanity logs in with STARTTLS and SCRAM, enables carbons, and receives a chat message', async (t) => {
  const tmux = requirePeer('tmux');
  requirePeer('profanity');
  const server = await startServer(t, undefined, { allowPlainLoopback: false });
  const home = mkdtempSync(join(tmpdir(), 'sb-profanity-'));
  const socketName = `sb-prof-${process.pid}`;
  const env = {
    ...process.env,
    HOME: home,
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_DATA_HOME: join(home, '.local/share'),
  };
  const run = (...args: string[]) =>
    execFileSync(tmux, ['-L', socketName, ...args], { env, encoding: 'utf8' });
  t.after(() => {
    try {
      run('kill-server');
    } catch {
      // already gone
    }
    rmSync(home, { recursive: true, force: true });
  });
  run('new-session', '-d', '-s', 'p', '-x', '200', '-y', '50', 'profanity');
  const screen = () => run('capture-pane', '-t', 'p', '-p');
  await waitUntil(() => screen().includes('/help'), 15_000, 'profanity started');
  run(
    'send-keys',
    '-t',
    'p',
    `/connect alice@localhost server 127.0.0.1 port ${server.c2sPort} tls trust`,
    'Enter',
  );
  await waitUntil(() => screen().includes('Enter password'), 15_000, 'password prompt');
  run('send-keys', '-t', 'p', 'alicepw', 'Enter');
  await waitUntil(() => /logged in successfully/.test(screen()), 15_000, `login; screen:\n${screen()}`);
  const jid = screen().match(/(alice@localhost\/\S+) logged in successfully/)?.[1];
  assert.ok(jid, screen());
  const bob = await login(t, server, 'bob', { tls: 'starttls' });
  bob.send(presence());
  bob.write(`<message to='${jid}' type='chat'><body>hello profanity</body></message>`);
  await waitUntil(() => screen().includes('bob@localhost'), 15_000, 'message notice in profanity');
  assert.doesNotMatch(screen(), /Server error enabling message carbons/, 'carbons are supported');
});
