import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError, gatewayJid, loadConfig } from '../../src/config/config.ts';

function file(t: import('node:test').TestContext, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'sb-config-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'switchboard.toml');
  writeFileSync(path, text);
  return path;
}

test('defaults follow SPEC.md §2', () => {
  const c = loadConfig({ env: {} });
  assert.equal(c.xmpp.domain, 'localhost');
  assert.equal(c.xmpp.c2s_port, 5222);
  assert.equal(c.xmpp.component_port, 5347);
  assert.equal(c.http.port, 5280);
  // Unset by default: each command chooses (xmpp: no, up: yes).
  assert.equal(c.xmpp.allow_plain_loopback, undefined);
  assert.equal(gatewayJid(c), 'cti.localhost');
});

test('TOML file, then SWITCHBOARD_ environment variables on top', (t) => {
  const path = file(
    t,
    `[xmpp]\ndomain = "example.test"\nc2s_port = 15222\ncomponent_secret = "s3"\n[xmpp.components]\n"other.example.test" = "x"\n[[users]]\nname = "alice"\npassword = "pw"\nextension = "1001"\n`,
  );
  const c = loadConfig({
    file: path,
    env: {
      SWITCHBOARD_XMPP_C2S_PORT: '25222',
      SWITCHBOARD_XMPP_ALLOW_PLAIN_LOOPBACK: 'true',
      SWITCHBOARD_GATEWAY_JID: 'gw.example.test',
      HOME: '/x',
    },
  });
  assert.equal(c.xmpp.domain, 'example.test');
  assert.equal(c.xmpp.c2s_port, 25222);
  assert.equal(c.xmpp.allow_plain_loopback, true);
  assert.equal(c.xmpp.component_secret, 's3');
  assert.deepEqual(c.xmpp.components, { 'other.example.test': 'x' });
  assert.equal(gatewayJid(c), 'gw.example.test');
  assert.deepEqual(c.users, [{ name: 'alice', password: 'pw', extension: '1001' }]);
});

test('bad config fails with one line naming the key', (t) => {
  const cases: Array<[string | undefined, NodeJS.ProcessEnv, RegExp]> = [
    ['[xmpp]\nc2s_port = 70000\n', {}, /^config: xmpp\.c2s_port: /],
    ['[xmpp]\nc2s_port = "x"\n', {}, /^config: xmpp\.c2s_port: /],
    ['[xmpp]\ncolor = "blue"\n', {}, /^config: xmpp\.color: unknown key$/],
    ['[pbx]\ncsta_edition = "ed9"\n', {}, /^config: pbx\.csta_edition: /],
    ['[[users]]\nname = "a"\nextension = "12a"\n', {}, /^config: users\.0\.extension: digits only$/],
    ['[xmpp\n', {}, /^config: .* is not valid TOML: /],
    [undefined, { SWITCHBOARD_XMPP_ALLOW_PLAIN_LOOPBACK: 'maybe' }, /^config: xmpp\.allow_plain_loopback: /],
    [undefined, { SWITCHBOARD_XMPP_PING_TIMEOUT_S: '-1' }, /^config: xmpp\.ping_timeout_s: /],
  ];
  for (const [text, env, pattern] of cases) {
    const path = text === undefined ? undefined : file(t, text);
    assert.throws(
      () => loadConfig({ file: path, env }),
      (e: unknown) => e instanceof ConfigError && pattern.test(e.message) && !e.message.includes('\n'),
      `${text ?? JSON.stringify(env)}`,
    );
  }
  assert.throws(
    () => loadConfig({ file: '/nonexistent/x.toml', env: {} }),
    /config: cannot read \/nonexistent\/x.toml: ENOENT/,
  );
});

test('[gateway] sharing: a default and per-extension levels, from TOML or the environment (issue 9)', (t) => {
  assert.equal(loadConfig({ env: {} }).gateway.sharing, 'state', 'numbers go only to the owner by default');
  assert.deepEqual(loadConfig({ env: {} }).gateway.sharing_devices, {});
  const path = file(t, '[gateway]\nsharing = "none"\n[gateway.sharing_devices]\n"1001" = "numbers"\n');
  const c = loadConfig({ file: path, env: {} });
  assert.equal(c.gateway.sharing, 'none');
  assert.deepEqual(c.gateway.sharing_devices, { '1001': 'numbers' });
  const e = loadConfig({
    env: {
      SWITCHBOARD_GATEWAY_SHARING: 'numbers',
      SWITCHBOARD_GATEWAY_SHARING_DEVICES: '1001=none, 1002=state',
    },
  });
  assert.equal(e.gateway.sharing, 'numbers');
  assert.deepEqual(e.gateway.sharing_devices, { '1001': 'none', '1002': 'state' });
  for (const [text, env, pattern] of [
    ['[gateway]\nsharing = "all"\n', {}, /^config: gateway\.sharing: /],
    ['[gateway.sharing_devices]\n"1001" = "everything"\n', {}, /^config: gateway\.sharing_devices\.1001: /],
    ['[gateway.sharing_devices]\n"alice" = "state"\n', {}, /^config: gateway\.sharing_devices\.alice: /],
    [undefined, { SWITCHBOARD_GATEWAY_SHARING_DEVICES: '1001' }, /^config: gateway\.sharing_devices\.1001: /],
  ] as const) {
    const p = text === undefined ? undefined : file(t, text);
    assert.throws(
      () => loadConfig({ file: p, env }),
      (err: unknown) => err instanceof ConfigError && pattern.test(err.message),
      `${text ?? JSON.stringify(env)}`,
    );
  }
});
