/** `switchboard xmpp` and `switchboard user` (src/cli/xmpp.ts, src/cli/user.ts). */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import WebSocket from 'ws';
import { run as userCommand } from '../../src/cli/user.ts';
import { XmppClient } from '../../src/xmpp/client.ts';
import { Proc, waitEvent } from '../helpers/net.ts';
import { TestComponent } from './harness.ts';

const ROOT = new URL('../../', import.meta.url).pathname;

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'sb-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Runs a CLI module's run() in a child process (as bin/switchboard would once the lead registers it). */
function spawnCommand(module: string, args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  const script = `const m = await import(${JSON.stringify(join(ROOT, module))}); process.exitCode = await m.run(process.argv.slice(1));`;
  return new Proc(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, '--', ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
  });
}

async function captured(t: TestContext, argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  t.mock.method(console, 'log', (...a: unknown[]) => out.push(a.join(' ')));
  t.mock.method(console, 'error', (...a: unknown[]) => err.push(a.join(' ')));
  const code = await userCommand(argv);
  t.mock.restoreAll();
  return { code, out: out.join('\n'), err: err.join('\n') };
}

test('switchboard user add|list|passwd|set|del', async (t) => {
  const data = tempDir(t);
  const add = await captured(t, ['add', 'Alice', '--password', 'pw1', '--extension', '1001', '--data', data]);
  assert.equal(add.code, 0, add.err);
  assert.match(add.out, /added alice@localhost \(extension 1001\)/);
  assert.match(add.out, /SIP password: \S+/);
  assert.doesNotMatch(add.out, /^password:/m, 'a given password is not echoed');
  const taken = await captured(t, ['add', 'mallory', '--extension', '1001', '--data', data]);
  assert.equal(taken.code, 1);
  assert.match(taken.err, /extension 1001 already belongs to alice/);
  const dup = await captured(t, ['add', 'alice', '--data', data]);
  assert.equal(dup.code, 1);
  assert.match(dup.err, /already exists/);
  const gen = await captured(t, ['add', 'bob', '--data', data]);
  assert.match(gen.out, /^password: \S{16}$/m);
  const list = await captured(t, ['list', '--data', data]);
  assert.equal(list.out, 'alice\t1001\nbob\t-');
  assert.equal((await captured(t, ['passwd', 'alice', '--password', 'pw2', '--data', data])).code, 0);
  assert.equal((await captured(t, ['set', 'bob', '--extension', '1002', '--data', data])).code, 0);
  assert.match((await captured(t, ['list', '--data', data])).out, /bob\t1002/);
  assert.equal((await captured(t, ['del', 'bob', '--data', data])).code, 0);
  assert.equal((await captured(t, ['del', 'bob', '--data', data])).code, 1);
  assert.equal((await captured(t, ['add', 'bad name', '--data', data])).code, 2);
  assert.equal((await captured(t, ['frobnicate', 'x', '--data', data])).code, 2);
  assert.equal((await captured(t, ['add', 'x', '--extension', 'abc', '--data', data])).code, 2);
});

test('switchboard xmpp: runs from a TOML config, users from config and CLI can log in, SIGTERM stops it', async (t) => {
  const data = tempDir(t);
  assert.equal((await captured(t, ['add', 'carol', '--password', 'carolpw', '--data', data])).code, 0);
  const config = join(data, 'switchboard.toml');
  writeFileSync(
    config,
    '[http]\nport = 0\n[xmpp]\nc2s_port = 0\ncomponent_port = 0\ncomponent_secret = "gwsecret"\n[[users]]\nname = "alice"\npassword = "alicepw"\nextension = "1001"\n',
  );
  const proc = spawnCommand('src/cli/xmpp.ts', ['--config', config, '--data', data], {
    SWITCHBOARD_XMPP_ALLOW_PLAIN_LOOPBACK: 'true',
  });
  t.after(() => proc.stop());
  const m = await proc.waitForOutput(/c2s 127\.0\.0\.1:(\d+), components 127\.0\.0\.1:(\d+)/, 20_000);
  const c2s = Number(m[1]);
  for (const [username, password] of [
    ['alice', 'alicepw'],
    ['carol', 'carolpw'],
  ] as const) {
    const client = await XmppClient.connect({
      host: '127.0.0.1',
      port: c2s,
      domain: 'localhost',
      username,
      password,
      tls: 'none',
    });
    assert.match(client.jid, new RegExp(`^${username}@localhost/`));
    await client.close();
  }
  const gw = await TestComponent.connect(t, Number(m[2]), 'cti.localhost', 'gwsecret');
  assert.ok(gw.handshakeOk);
  gw.destroy();
  // XMPP over WebSocket on the HTTP port: the stream opens.
  const [, wsUrl] = await proc.waitForOutput(/websocket (ws:\S+)/, 5000);
  const ws = new WebSocket(wsUrl!, ['xmpp']);
  t.after(() => ws.terminate());
  ws.on('open', () =>
    ws.send("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>"),
  );
  const [first] = await waitEvent<Buffer>(ws, 'message', 5000);
  assert.match(String(first), /^<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' /);
  ws.terminate();
  proc.child.kill('SIGTERM');
  assert.equal(await proc.wait(10_000), 0);
});

test('switchboard xmpp: a bad config fails with one line naming the key', async () => {
  const proc = spawnCommand('src/cli/xmpp.ts', ['--data', '/nonexistent-sb'], {
    SWITCHBOARD_XMPP_C2S_PORT: 'abc',
  });
  const code = await proc.wait(20_000);
  assert.equal(code, 2);
  assert.equal(proc.output.trim(), 'config: xmpp.c2s_port: Invalid input: expected number, received string');
});
