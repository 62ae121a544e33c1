/** Interop with @xmpp/client (xmpp.js), an independent JavaScript client: STARTTLS, SCRAM-SHA-1, bind, iq both ways. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { client, xml } from '@xmpp/client';
import type { Element } from '../../src/xml/index.ts';
import { NS } from '../../src/xmpp/ns.ts';
import { DOMAIN, iq, login, message, presence, startServer } from './harness.ts';

// xmpp.js verifies the server certificate on STARTTLS and offers no option to trust one; the test server
// uses the self-signed certificate it made itself. This only affects this test file's own process.
process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';

test('@xmpp/client logs in over STARTTLS, exchanges messages and iqs with our client', async (t) => {
  const server = await startServer(t, undefined, { allowPlainLoopback: false });
  const bob = await login(t, server, 'bob', { tls: 'starttls', resource: 'desk' });
  bob.send(presence());
  const xmpp = client({
    service: `xmpp://127.0.0.1:${server.c2sPort}`,
    domain: DOMAIN,
    username: 'alice',
    password: 'alicepw',
    resource: 'xmppjs',
  });
  xmpp.on('error', () => {});
  t.after(() => xmpp.stop().catch(() => {}));
  const messages: string[] = [];
  xmpp.on('stanza', (stanza: { is(name: string): boolean; getChildText(name: string): string | null }) => {
    if (stanza.is('message')) messages.push(stanza.getChildText('body') ?? '');
  });
  xmpp.iqCallee.get('urn:x-test', 'query', () =>
    xml('query', { xmlns: 'urn:x-test' }, xml('answer', {}, '42')),
  );
  const address = await xmpp.start();
  assert.equal(address.toString(), 'alice@localhost/xmppjs');
  await xmpp.send(xml('presence'));
  await xmpp.send(xml('presence', { to: 'bob@localhost/desk' }));
  const pong = await xmpp.iqCaller.request(
    xml('iq', { type: 'get', to: DOMAIN }, xml('ping', { xmlns: NS.ping })),
  );
  assert.equal(pong.attrs.type, 'result');
  const roster = await xmpp.iqCaller.request(xml('iq', { type: 'get' }, xml('query', { xmlns: NS.roster })));
  assert.equal(roster.getChild('query', NS.roster)?.children.length, 0);
  await xmpp.send(xml('message', { to: 'bob@localhost', type: 'chat' }, xml('body', {}, 'hi from xmpp.js')));
  const got = await bob.waitFor((el: Element) => el.name === 'message');
  assert.equal(got.attr('from'), 'alice@localhost/xmppjs');
  assert.equal(got.getChildText('body'), 'hi from xmpp.js');
  bob.send(message({ to: 'alice@localhost/xmppjs', type: 'chat' }, 'hi back'));
  const answer = await bob.iq(iq({ type: 'get', to: 'alice@localhost/xmppjs' }, 'query', 'urn:x-test'));
  assert.equal(answer.attr('type'), 'result');
  assert.equal(answer.getChild('query', 'urn:x-test')?.getChildText('answer'), '42');
  assert.deepEqual(messages, ['hi back']);
  await xmpp.stop();
  const gone = await bob.waitFor(
    (el: Element) => el.name === 'presence' && el.attr('type') === 'unavailable',
  );
  assert.equal(
    gone.attr('from'),
    'alice@localhost/xmppjs',
    'directed presence recipient told on session end',
  );
});
