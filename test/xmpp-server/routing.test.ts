/**
 * RFC 6121 §8.5 routing, case by case: local bare and full JIDs with and without available resources,
 * non-existent accounts, the server itself, other domains; error stanzas are never answered.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Element } from '../../src/xml/index.ts';
import { NS } from '../../src/xmpp/ns.ts';
import {
  assertNothingBefore,
  DOMAIN,
  errorCondition,
  iq,
  login,
  message,
  presence,
  startServer,
} from './harness.ts';

const isMessage = (body: string) => (el: Element) =>
  el.name === 'message' && el.getChildText('body') === body;
const isError = (el: Element) => el.attr('type') === 'error';

test('§8.5.1 no such user: message and iq get service-unavailable, presence is ignored', async (t) => {
  const server = await startServer(t);
  const alice = await login(t, server, 'alice');
  alice.send(message({ to: 'nobody@localhost', id: 'm1', type: 'chat' }, 'hello?'));
  const m = await alice.waitFor((el) => el.attr('id') === 'm1');
  assert.equal(m.attr('type'), 'error');
  assert.equal(errorCondition(m), 'service-unavailable');
  assert.equal(m.attr('from'), 'nobody@localhost');
  const reply = await alice.iq(iq({ type: 'get', to: 'nobody@localhost/x' }, 'query', 'urn:x-test'));
  assert.equal(errorCondition(reply), 'service-unavailable');
  assert.equal(reply.getChild('error')?.attr('type'), 'cancel');
  const bare = await alice.iq(iq({ type: 'get', to: 'nobody@localhost' }, 'ping', NS.ping));
  assert.equal(errorCondition(bare), 'service-unavailable');
  alice.send(presence({ to: 'nobody@localhost' }));
  alice.send(presence({ to: 'nobody@localhost', type: 'subscribe' }));
  alice.send(presence({ to: 'nobody@localhost', type: 'probe' }));
  await assertNothingBefore(alice, (el) => el.name === 'presence', 'presence reply for a non-existent user');
});

test('§8.5.2.1.1 message to bare JID: normal to the highest priority, chat to all non-negative, headline to all non-negative', async (t) => {
  const server = await startServer(t);
  const alice = await login(t, server, 'alice');
  const high = await login(t, server, 'bob', { resource: 'high' });
  const low = await login(t, server, 'bob', { resource: 'low' });
  const negative = await login(t, server, 'bob', { resource: 'neg' });
  high.send(presence({}, 10));
  low.send(presence({}, 1));
  negative.send(presence({}, -1));
  // Each sees the others' presence once the broadcast ran.
  await high.waitFor((el) => el.name === 'presence' && el.attr('from') === 'bob@localhost/neg');
  alice.send(message({ to: 'bob@localhost' }, 'normal'));
  alice.send(message({ to: 'bob@localhost', type: 'chat' }, 'chat'));
  alice.send(message({ to: 'bob@localhost', type: 'headline' }, 'headline'));
  await high.waitFor(isMessage('headline'));
  await low.waitFor(isMessage('headline'));
  assert.ok(high.received.some(isMessage('normal')));
  assert.ok(high.received.some(isMessage('chat')));
  assert.ok(low.received.some(isMessage('chat')));
  await assertNothingBefore(low, isMessage('normal'), 'normal message at the lower priority');
  await assertNothingBefore(negative, (el) => el.name === 'message', 'message at negative priority');
  assert.equal(high.received.find(isMessage('normal'))?.attr('from'), alice.jid);
});

test('§8.5.2.1.1 groupchat to a bare JID is service-unavailable; error messages are ignored', async (t) => {
  const server = await startServer(t);
  const alice = await login(t, server, 'alice');
  const bob = await login(t, server, 'bob');
  bob.send(presence());
  alice.send(message({ to: 'bob@localhost', type: 'groupchat', id: 'g1' }, 'gc'));
  const err = await alice.waitFor((el) => el.attr('id') === 'g1');
  assert.equal(errorCondition(err), 'service-unavailable');
  alice.send(message({ to: 'bob@localhost', type: 'error', id: 'e1' }, 'err'));
  await assertNothingBefore(bob, (el) => el.attr('id') === 'e1', 'error message delivered to bare JID');
  await assertNothingBefore(alice, (el) => el.attr('id') === 'e1', 'answer to an error');
});

test('§8.5.2.2 no available resource: chat/normal stored offline and delivered with a delay stamp; headline ignored', async (t) => {
  const server = await startServer(t);
  const alice = await login(t, server, 'alice');
  alice.send(message({ to: 'bob@localhost', type: 'chat' }, 'while you were out'));
  alice.send(message({ to: 'bob@localhost/gone' }, 'to a gone resource'));
  alice.send(message({ to: 'bob@localhost', type: 'headline' }, 'news'));
  await assertNothingBefore(alice, isError, 'error for an offline message');
  // bound but not yet available: still offline for bare messages
  const bob = await login(t, server, 'bob');
  await assertNothingBefore(bob, (el) => el.name === 'message', 'message before initial presence');
  bob.send(presence());
  const first = await bob.waitFor(isMessage('while you were out'));
  await bob.waitFor(isMessage('to a gone resource'));
  assert.equal(first.getChild('delay', NS.delay)?.attr('from'), DOMAIN);
  assert.match(first.getChild('delay', NS.delay)?.attr('stamp') ?? '', /^\d{4}-\d\d-\d\dT/);
  await assertNothingBefore(bob, isMessage('news'), 'headline kept offline');
  // Delivered once only.
  const again = await login(t, server, 'bob');
  again.send(presence());
  await assertNothingBefore(again, (el) => el.name === 'message', 'offline message delivered twice');
});

test('offline storage is bounded: the message over the limit gets service-unavailable', async (t) => {
  const server = await startServer(t, undefined, { offlineLimit: 2 });
  const alice = await login(t, server, 'alice');
  for (const n of [1, 2, 3]) alice.send(message({ to: 'bob@localhost', id: `o${n}` }, `m${n}`));
  const err = await alice.waitFor((el) => el.attr('id') === 'o3');
  assert.equal(errorCondition(err), 'service-unavailable');
  assert.ok(!alice.received.some((el) => el.attr('id') === 'o1' || el.attr('id') === 'o2'));
});

test('§8.5.2 presence to a bare JID goes to all available resources; iq to a bare JID is answered by the server', async (t) => {
  const server = await startServer(t);
  const alice = await login(t, server, 'alice');
  const b1 = await login(t, server, 'bob', { resource: 'one' });
  const b2 = await login(t, server, 'bob', { resource: 'two' });
  b1.send(presence());
  b2.send(presence());
  await b1.waitFor((el) => el.name === 'presence' && el.attr('from') === 'bob@localhost/two');
  alice.send(presence({ to: 'bob@localhost' }));
  await b1.waitFor((el) => el.name === 'presence' && el.attr('from') === alice.jid);
  await b2.waitFor((el) => el.name === 'presence' && el.attr('from') === alice.jid);
  const ping = await alice.iq(iq({ type: 'get', to: 'bob@localhost' }, 'ping', NS.ping));
  assert.equal(ping.attr('type'), 'result');
  assert.equal(ping.attr('from'), 'bob@localhost');
  const other = await alice.iq(iq({ type: 'get', to: 'bob@localhost' }, 'query', 'urn:x-test'));
  assert.equal(errorCondition(other), 'service-unavailable');
  const roster = await alice.iq(iq({ type: 'get', to: 'bob@localhost' }, 'query', NS.roster));
  assert.equal(errorCondition(roster), 'service-unavailable', 'no one reads another user’s roster');
  const info = await alice.iq(iq({ type: 'get', to: 'bob@localhost' }, 'query', NS.discoInfo));
  assert.equal(info.getChild('query', NS.discoInfo)?.getChild('identity')?.attr('category'), 'account');
});

test('§8.5.3.1 full JID with a matching resource: message, presence and iq are delivered; iq results come back', async (t) => {
  const server = await startServer(t);
  const alice = await login(t, server, 'alice');
  const bob = await login(t, server, 'bob', { resource: 'desk' });
  alice.send(message({ to: 'bob@localhost/desk', type: 'groupchat' }, 'gc-full'));
  await bob.waitFor(isMessage('gc-full'));
  alice.send(presence({ to: 'bob@localhost/desk' }));
  await bob.waitFor((el) => el.name === 'presence' && el.attr('from') === alice.jid);
  bob.on('stanza', (el: Element) => {
    if (el.name === 'iq' && el.attr('type') === 'get' && el.getChild('query', 'urn:x-test'))
      bob.send(new Element('iq', NS.client, { type: 'result', id: el.attr('id'), to: el.attr('from') }));
  });
  const reply = await alice.iq(iq({ type: 'get', to: 'bob@localhost/desk' }, 'query', 'urn:x-test'));
  assert.equal(reply.attr('type'), 'result');
  assert.equal(reply.attr('from'), 'bob@localhost/desk');
});

test('§8.5.3.2 full JID without a matching resource: chat goes to bare, groupchat errors, headline/presence ignored, iq service-unavailable', async (t) => {
  const server = await startServer(t);
  const alice = await login(t, server, 'alice');
  const bob = await login(t, server, 'bob', { resource: 'desk' });
  bob.send(presence());
  alice.send(message({ to: 'bob@localhost/phone', type: 'chat' }, 'to-phone'));
  const got = await bob.waitFor(isMessage('to-phone'));
  assert.equal(got.attr('to'), 'bob@localhost/phone', 'addressing kept');
  alice.send(message({ to: 'bob@localhost/phone', type: 'groupchat', id: 'gc' }, 'x'));
  assert.equal(errorCondition(await alice.waitFor((el) => el.attr('id') === 'gc')), 'service-unavailable');
  alice.send(message({ to: 'bob@localhost/phone', type: 'headline' }, 'hl'));
  alice.send(presence({ to: 'bob@localhost/phone' }));
  await assertNothingBefore(
    bob,
    (el) => isMessage('hl')(el) || (el.name === 'presence' && el.attr('from') === alice.jid),
    'ignored stanza',
  );
  const r = await alice.iq(iq({ type: 'get', to: 'bob@localhost/phone' }, 'ping', NS.ping));
  assert.equal(errorCondition(r), 'service-unavailable');
  assert.equal(r.getChild('error')?.attr('type'), 'cancel');
  assert.equal(r.attr('from'), 'bob@localhost/phone');
});

test('never answer an error with an error; iq results to nowhere are dropped', async (t) => {
  const server = await startServer(t);
  const alice = await login(t, server, 'alice');
  alice.send(new Element('iq', NS.client, { type: 'error', id: 'x1', to: 'nobody@localhost/r' }));
  alice.send(new Element('iq', NS.client, { type: 'result', id: 'x2', to: 'bob@localhost/gone' }));
  alice.send(message({ type: 'error', id: 'x3', to: 'nobody@localhost' }, 'e'));
  alice.send(message({ type: 'error', id: 'x4', to: 'other.example' }, 'e'));
  await assertNothingBefore(
    alice,
    (el) => ['x1', 'x2', 'x3', 'x4'].includes(el.attr('id') ?? ''),
    'reply to an error or result',
  );
});

test('other domains (no s2s) get remote-server-not-found; malformed to gets jid-malformed', async (t) => {
  const server = await startServer(t);
  const alice = await login(t, server, 'alice');
  alice.send(message({ to: 'juliet@example.com', id: 'r1' }, 'hi'));
  assert.equal(
    errorCondition(await alice.waitFor((el) => el.attr('id') === 'r1')),
    'remote-server-not-found',
  );
  alice.send(message({ to: 'bad@@jid', id: 'r2' }, 'hi'));
  const err = await alice.waitFor((el) => el.attr('id') === 'r2');
  assert.equal(errorCondition(err), 'jid-malformed');
});

test('spoofed from on c2s is replaced by the session JID', async (t) => {
  const server = await startServer(t);
  const alice = await login(t, server, 'alice');
  const bob = await login(t, server, 'bob');
  alice.send(message({ to: bob.jid, from: 'carol@localhost/evil' }, 'spoof'));
  const got = await bob.waitFor(isMessage('spoof'));
  assert.equal(got.attr('from'), alice.jid);
});

test('server iq: ping, disco#info, disco#items, version; message without to goes to own bare JID', async (t) => {
  const server = await startServer(t);
  const alice = await login(t, server, 'alice');
  const info = await alice.iq(iq({ type: 'get', to: DOMAIN }, 'query', NS.discoInfo));
  const features = info
    .getChild('query', NS.discoInfo)
    ?.getChildren('feature')
    .map((f) => f.attr('var'));
  for (const f of [NS.discoInfo, NS.discoItems, NS.ping, NS.version]) assert.ok(features?.includes(f), f);
  assert.equal(info.getChild('query')?.getChild('identity')?.attr('category'), 'server');
  const items = await alice.iq(iq({ type: 'get', to: DOMAIN }, 'query', NS.discoItems));
  assert.deepEqual(
    items
      .getChild('query')
      ?.getChildren('item')
      .map((i) => i.attr('jid')),
    ['cti.localhost'],
  );
  const version = await alice.iq(iq({ type: 'get', to: DOMAIN }, 'query', NS.version));
  assert.equal(version.getChild('query')?.getChildText('name'), 'Switchboard');
  const unknown = await alice.iq(iq({ type: 'get', to: DOMAIN }, 'query', 'urn:x-unknown'));
  assert.equal(errorCondition(unknown), 'service-unavailable');
  const empty = await alice.iq(new Element('iq', NS.client, { type: 'get', to: DOMAIN }));
  assert.equal(errorCondition(empty), 'bad-request');
  alice.send(presence());
  alice.send(message({ type: 'chat' }, 'note to self'));
  const self = await alice.waitFor(isMessage('note to self'));
  assert.equal(self.attr('to'), 'alice@localhost');
});
