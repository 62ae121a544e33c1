/** Interop with slixmpp 1.8 (python3-slixmpp), an independent client implementation. */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Element } from '../../src/xml/index.ts';
import { NS } from '../../src/xmpp/ns.ts';
import { Proc } from '../helpers/net.ts';
import { requirePeer, SHARED_PEERS_DIR } from '../helpers/peers.ts';
import { GATEWAY, login, message, presence, startServer, TestComponent } from './harness.ts';

const PYTHON = requirePeer('python3-slixmpp');
const OWN_SCRIPT = new URL('./peers/slix_tls.py', import.meta.url).pathname;
// SHARED_PEERS_DIR assumes the checkout sits beside shared/; a worktree under /work/wt/ does not.
const SHARED_SCRIPT = [
  join(SHARED_PEERS_DIR, 'scripts/slix_client.py'),
  '/work/shared/reference/peers/scripts/slix_client.py',
].find((p) => existsSync(p))!;

function slix(t: import('node:test').TestContext, script: string, args: string[]): Proc {
  const proc = new Proc(PYTHON, [script, ...args]);
  t.after(() => proc.stop());
  return proc;
}

test('slixmpp over STARTTLS: login, roster, ping, disco, version, subscription approved by our client, chat message', async (t) => {
  const server = await startServer(t, undefined, { allowPlainLoopback: false });
  const bob = await login(t, server, 'bob', { tls: 'starttls', resource: 'desk' });
  await bob.iq(new Element('iq', NS.client, { type: 'get' }, [new Element('query', NS.roster)]));
  bob.send(presence());
  bob.on('stanza', (el: Element) => {
    if (el.name === 'presence' && el.attr('type') === 'subscribe')
      bob.send(presence({ to: el.attr('from'), type: 'subscribed' }));
  });
  const alice = slix(t, OWN_SCRIPT, [
    '--jid',
    'alice@localhost/slix',
    '--password',
    'alicepw',
    '--port',
    String(server.c2sPort),
    '--subscribe',
    'bob@localhost',
    '--to',
    'bob@localhost',
    '--msg',
    'hello from slixmpp',
  ]);
  assert.equal(await alice.wait(30_000), 0, alice.output);
  assert.match(alice.output, /SESSION jid=alice@localhost\/slix/);
  assert.match(alice.output, /ROSTER \[\]/);
  assert.match(alice.output, /PING ok/);
  assert.match(alice.output, /VERSION Switchboard/);
  assert.match(alice.output, /SUBSCRIBED bob@localhost subscription=to/);
  assert.match(alice.output, /DONE/);
  const m = await bob.waitFor(
    (el) => el.name === 'message' && el.getChildText('body') === 'hello from slixmpp',
  );
  assert.equal(m.attr('from'), 'alice@localhost/slix');
});

test('slixmpp approves our subscription and receives our message', async (t) => {
  const server = await startServer(t, undefined, { allowPlainLoopback: false });
  const bob = slix(t, OWN_SCRIPT, [
    '--jid',
    'bob@localhost/slix',
    '--password',
    'bobpw',
    '--port',
    String(server.c2sPort),
    '--approve',
    '--expect-message',
  ]);
  await bob.waitForOutput(/ROSTER/, 20_000);
  const alice = await login(t, server, 'alice', { tls: 'starttls' });
  await alice.iq(new Element('iq', NS.client, { type: 'get' }, [new Element('query', NS.roster)]));
  alice.send(presence());
  alice.send(presence({ to: 'bob@localhost', type: 'subscribe' }));
  await alice.waitFor(
    (el) => el.name === 'presence' && el.attr('type') === 'subscribed' && el.attr('from') === 'bob@localhost',
  );
  await alice.waitFor(
    (el) =>
      el.name === 'presence' && el.attr('from') === 'bob@localhost/slix' && el.attr('type') === undefined,
  );
  alice.send(message({ to: 'bob@localhost', type: 'chat' }, 'hi slix'));
  assert.equal(await bob.wait(30_000), 0, bob.output);
  assert.match(bob.output, /SUBSCRIBE from=alice@localhost/);
  assert.match(bob.output, new RegExp(`MESSAGE from=${alice.jid.replace(/[/.]/g, '\\$&')} body=hi slix`));
});

test('the shared slix_client.py (plaintext on loopback): message between two slixmpp clients, component iq answered', async (t) => {
  const server = await startServer(t);
  const gw = await TestComponent.connect(t, server.componentPort);
  const port = String(server.c2sPort);
  const bob = slix(t, SHARED_SCRIPT, [
    '--port',
    port,
    '--jid',
    'bob@localhost/desk',
    '--password',
    'bobpw',
    '--stay',
    '4',
    '--expect-msgs',
    '1',
  ]);
  await bob.waitForOutput(/roster OK/, 20_000);
  gw.send(
    new Element('iq', NS.component, { type: 'get', id: 'csta1', from: GATEWAY, to: 'bob@localhost/desk' }, [
      new Element('MakeCall', 'http://www.ecma-international.org/standards/ecma-323/csta/ed4'),
    ]),
  );
  const result = await gw.waitFor((el) => el.attr('id') === 'csta1');
  assert.equal(result.attr('type'), 'result');
  assert.equal(result.attr('from'), 'bob@localhost/desk');
  const alice = slix(t, SHARED_SCRIPT, [
    '--port',
    port,
    '--jid',
    'alice@localhost/laptop',
    '--password',
    'alicepw',
    '--to',
    'bob@localhost',
    '--msg',
    'hi bob',
    '--stay',
    '0.5',
  ]);
  assert.equal(await alice.wait(20_000), 0, alice.output);
  assert.equal(await bob.wait(20_000), 0, bob.output);
  assert.match(bob.output, /RECEIVED message from alice@localhost\/laptop: 'hi bob'/);
  // bob has gone: an iq to his full JID is now service-unavailable.
  gw.send(
    new Element('iq', NS.component, { type: 'get', id: 'csta2', from: GATEWAY, to: 'bob@localhost/desk' }, [
      new Element('ping', NS.ping),
    ]),
  );
  const gone = await gw.waitFor((el) => el.attr('id') === 'csta2');
  assert.equal(gone.attr('type'), 'error');
});
