/** The reference XEP-0114 probe (stdlib Python component) against our component port. */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Proc } from '../helpers/net.ts';
import { requirePeer, SHARED_PEERS_DIR } from '../helpers/peers.ts';
import { GATEWAY, GATEWAY_SECRET, login, startServer } from './harness.ts';

const PYTHON = requirePeer('python3-slixmpp');
const PROBE = [
  join(SHARED_PEERS_DIR, 'scripts/xep0114_probe.py'),
  '/work/shared/reference/peers/scripts/xep0114_probe.py',
].find((p) => existsSync(p))!;

test('xep0114_probe.py: handshake and the iq error table of peers-howto §3', async (t) => {
  const server = await startServer(t);
  const alice = await login(t, server, 'alice', { resource: 'laptop' });
  const answering = alice;
  answering.on('stanza', (el) => {
    if (el.name === 'iq' && el.attr('type') === 'get' && el.attr('from') === GATEWAY)
      answering.write(`<iq type='result' id='${el.attr('id')}' to='${GATEWAY}'/>`);
  });
  const probe = new Proc(PYTHON, [
    PROBE,
    '--port',
    String(server.componentPort),
    '--domain',
    GATEWAY,
    '--secret',
    GATEWAY_SECRET,
    '--to',
    'alice@localhost/foo',
    '--to',
    'alice@localhost',
    '--to',
    'nobody@localhost',
    '--to',
    'alice@localhost/laptop',
  ]);
  t.after(() => probe.stop());
  assert.equal(await probe.wait(20_000), 0, probe.output);
  assert.match(probe.output, /handshake OK/);
  assert.match(probe.output, /alice@localhost\/foo\s+: error type=cancel condition=service-unavailable/);
  assert.match(probe.output, /-> alice@localhost\s+: error type=cancel condition=service-unavailable/);
  assert.match(probe.output, /nobody@localhost\s+: error type=cancel condition=service-unavailable/);
  assert.match(probe.output, /alice@localhost\/laptop\s+: type=result/);
  const wrong = new Proc(PYTHON, [
    PROBE,
    '--port',
    String(server.componentPort),
    '--domain',
    GATEWAY,
    '--secret',
    'wrong',
  ]);
  t.after(() => wrong.stop());
  assert.equal(await wrong.wait(20_000), 1);
  assert.match(wrong.output, /HANDSHAKE FAILED|closed by server/);
});
