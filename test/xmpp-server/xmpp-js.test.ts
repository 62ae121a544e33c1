/** Interop with @xmpp/client (xmpp.js), an independent JavaScript client: STARTTLS, SCRAM-SHA-1, bind, iq both ways. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { client, type XmlStanza, xml } from '@xmpp/client';
import type { Element } from '../../src/xml/index.ts';
import { NS } from '../../src/xmpp/ns.ts';
import { waitUntil } from '../helpers/net.ts';
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

test('@xmpp/client: roster set and push, subscription approved by our client, errors it sees', async (t) => {
  const server = await startServer(t, undefined, { allowPlainLoopback: false });
  const bob = await login(t, server, 'bob', { tls: 'starttls', resource: 'desk' });
  bob.send(presence());
  bob.on('stanza', (el: Element) => {
    if (el.name === 'presence' && el.attr('type') === 'subscribe')
      bob.send(presence({ to: el.attr('from'), type: 'subscribed' }));
  });
  const xmpp = client({
    service: `xmpp://127.0.0.1:${server.c2sPort}`,
    domain: DOMAIN,
    username: 'alice',
    password: 'alicepw',
    resource: 'js',
  });
  xmpp.on('error', () => {});
  t.after(() => xmpp.stop().catch(() => {}));
  const pushes: string[] = [];
  const presences: string[] = [];
  xmpp.on('stanza', (stanza: XmlStanza) => {
    const item = stanza.getChild('query', NS.roster)?.getChild('item');
    if (stanza.is('iq') && stanza.attrs.type === 'set' && item !== undefined)
      pushes.push(
        `${item.attrs.jid}:${item.attrs.subscription}${item.attrs.ask ? `:${item.attrs.ask}` : ''}`,
      );
    if (stanza.is('presence')) presences.push(`${stanza.attrs.from}:${stanza.attrs.type ?? 'available'}`);
  });
  await xmpp.start();
  await xmpp.iqCaller.request(xml('iq', { type: 'get' }, xml('query', { xmlns: NS.roster })));
  await xmpp.send(xml('presence'));
  const set = await xmpp.iqCaller.request(
    xml(
      'iq',
      { type: 'set' },
      xml('query', { xmlns: NS.roster }, xml('item', { jid: 'bob@localhost', name: 'Bob' })),
    ),
  );
  assert.equal(set.attrs.type, 'result');
  await xmpp.send(xml('presence', { to: 'bob@localhost', type: 'subscribe' }));
  await waitUntil(
    () => pushes.includes('bob@localhost:to') && presences.includes('bob@localhost/desk:available'),
    5000,
    `pushes ${pushes} presences ${presences}`,
  );
  assert.deepEqual(pushes.slice(0, 2), ['bob@localhost:none', 'bob@localhost:none:subscribe']);
  await assert.rejects(
    xmpp.iqCaller.request(
      xml('iq', { type: 'get', to: '1001@cti.localhost' }, xml('query', { xmlns: NS.discoInfo })),
    ),
    (e: { condition?: string; type?: string }) => e.condition === 'service-unavailable',
  );
  await assert.rejects(
    xmpp.iqCaller.request(
      xml('iq', { type: 'get', to: 'bob@localhost/gone' }, xml('ping', { xmlns: NS.ping })),
    ),
    (e: { condition?: string }) => e.condition === 'service-unavailable',
  );
});
