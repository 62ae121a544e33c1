/** Rosters, subscriptions and presence (RFC 6121 §2-4) end to end through our own client. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Element } from '../../src/xml/index.ts';
import type { XmppClient } from '../../src/xmpp/client.ts';
import { NS } from '../../src/xmpp/ns.ts';
import { assertNothingBefore, errorCondition, iq, login, presence, startServer } from './harness.ts';

function rosterItems(el: Element) {
  return (el.getChild('query', NS.roster)?.getChildren('item') ?? []).map((i) => ({
    jid: i.attr('jid'),
    subscription: i.attr('subscription'),
    ask: i.attr('ask'),
    name: i.attr('name'),
    groups: i.getChildren('group').map((g) => g.text()),
  }));
}

async function getRoster(c: XmppClient) {
  const reply = await c.iq(iq({ type: 'get' }, 'query', NS.roster));
  assert.equal(reply.attr('type'), 'result');
  return rosterItems(reply);
}

function rosterSet(c: XmppClient, item: Record<string, string>, groups: string[] = []) {
  const el = new Element('iq', NS.client, { type: 'set' });
  const it = el.c('query', {}, NS.roster).c('item', item);
  for (const g of groups) it.c('group').append(g);
  return c.iq(el);
}

const push = (jid: string, pred: (i: ReturnType<typeof rosterItems>[number]) => boolean) => (el: Element) =>
  el.name === 'iq' && el.attr('type') === 'set' && rosterItems(el).some((i) => i.jid === jid && pred(i));

const pres = (from: string, type?: string) => (el: Element) =>
  el.name === 'presence' && el.attr('from') === from && el.attr('type') === type;

test('roster get, set with name and groups, push to interested resources, remove', async (t) => {
  const server = await startServer(t);
  const a1 = await login(t, server, 'alice');
  const a2 = await login(t, server, 'alice');
  assert.deepEqual(await getRoster(a1), []);
  await getRoster(a2);
  const set = await rosterSet(a1, { jid: 'Bob@LOCALHOST', name: 'Bobby' }, ['Friends', 'Work']);
  assert.equal(set.attr('type'), 'result');
  const pushed = await a2.waitFor(push('bob@localhost', (i) => i.name === 'Bobby'));
  assert.equal(pushed.attr('from'), undefined, 'pushes come from the account itself');
  a2.send(new Element('iq', NS.client, { type: 'result', id: pushed.attr('id') }));
  const roster = await getRoster(a1);
  assert.deepEqual(roster, [
    {
      jid: 'bob@localhost',
      subscription: 'none',
      ask: undefined,
      name: 'Bobby',
      groups: ['Friends', 'Work'],
    },
  ]);
  const removed = await rosterSet(a1, { jid: 'bob@localhost', subscription: 'remove' });
  assert.equal(removed.attr('type'), 'result');
  await a2.waitFor(push('bob@localhost', (i) => i.subscription === 'remove'));
  assert.deepEqual(await getRoster(a1), []);
  const again = await rosterSet(a1, { jid: 'bob@localhost', subscription: 'remove' });
  assert.equal(errorCondition(again), 'item-not-found');
});

test('bad roster sets: two items, duplicate group, empty group, malformed JID', async (t) => {
  const server = await startServer(t);
  const a = await login(t, server, 'alice');
  const two = new Element('iq', NS.client, { type: 'set' });
  const q = two.c('query', {}, NS.roster);
  q.c('item', { jid: 'x@localhost' });
  q.c('item', { jid: 'y@localhost' });
  assert.equal(errorCondition(await a.iq(two)), 'bad-request');
  assert.equal(errorCondition(await rosterSet(a, { jid: 'x@localhost' }, ['g', 'g'])), 'bad-request');
  assert.equal(errorCondition(await rosterSet(a, { jid: 'x@localhost' }, [''])), 'not-acceptable');
  assert.equal(errorCondition(await rosterSet(a, { jid: 'x@@localhost' })), 'jid-malformed');
});

test('full subscription handshake between two local users, then presence flows both ways', async (t) => {
  const server = await startServer(t);
  const alice = await login(t, server, 'alice', { resource: 'a' });
  const bob = await login(t, server, 'bob', { resource: 'b' });
  await getRoster(alice);
  await getRoster(bob);
  alice.send(presence());
  bob.send(presence());
  alice.send(presence({ to: 'bob@localhost', type: 'subscribe' }));
  await alice.waitFor(push('bob@localhost', (i) => i.ask === 'subscribe' && i.subscription === 'none'));
  const request = await bob.waitFor(pres('alice@localhost', 'subscribe'));
  assert.equal(request.attr('to'), 'bob@localhost');
  bob.send(presence({ to: 'alice@localhost', type: 'subscribed' }));
  await bob.waitFor(push('alice@localhost', (i) => i.subscription === 'from'));
  await alice.waitFor(pres('bob@localhost', 'subscribed'));
  await alice.waitFor(push('bob@localhost', (i) => i.subscription === 'to' && i.ask === undefined));
  await alice.waitFor(pres('bob@localhost/b'), 5000, "bob's presence after approval");
  // And the other direction.
  bob.send(presence({ to: 'alice@localhost', type: 'subscribe' }));
  await alice.waitFor(pres('bob@localhost', 'subscribe'));
  alice.send(presence({ to: 'bob@localhost', type: 'subscribed' }));
  await bob.waitFor(push('alice@localhost', (i) => i.subscription === 'both'));
  await alice.waitFor(push('bob@localhost', (i) => i.subscription === 'both'));
  await bob.waitFor(pres('alice@localhost/a'));
  // A status change is broadcast to the subscriber.
  const away = presence();
  away.c('show').append('away');
  alice.send(away);
  const seen = await bob.waitFor((el) => pres('alice@localhost/a')(el) && el.getChildText('show') === 'away');
  assert.equal(seen.attr('to'), 'bob@localhost/b');
  // Unsubscribe from bob's presence: alice's item drops 'to', bob's drops 'from'.
  alice.send(presence({ to: 'bob@localhost', type: 'unsubscribe' }));
  await alice.waitFor(push('bob@localhost', (i) => i.subscription === 'from'));
  await bob.waitFor(push('alice@localhost', (i) => i.subscription === 'to'));
  await bob.waitFor(pres('alice@localhost', 'unsubscribe'));
  await alice.waitFor(pres('bob@localhost/b', 'unavailable'));
  // Cancel bob's subscription to alice.
  alice.send(presence({ to: 'bob@localhost', type: 'unsubscribed' }));
  await alice.waitFor(push('bob@localhost', (i) => i.subscription === 'none'));
  await bob.waitFor(push('alice@localhost', (i) => i.subscription === 'none'));
  await bob.waitFor(pres('alice@localhost/a', 'unavailable'));
});

test('pre-approval: a later subscribe is approved at once without asking the user', async (t) => {
  const server = await startServer(t);
  const bob = await login(t, server, 'bob');
  await getRoster(bob);
  bob.send(presence());
  bob.send(presence({ to: 'alice@localhost', type: 'subscribed' }));
  const pre = await bob.waitFor(push('alice@localhost', () => true));
  assert.equal(rosterItems(pre)[0]?.subscription, 'none');
  const alice = await login(t, server, 'alice');
  await getRoster(alice);
  alice.send(presence());
  alice.send(presence({ to: 'bob@localhost', type: 'subscribe' }));
  await alice.waitFor(pres('bob@localhost', 'subscribed'));
  await alice.waitFor(push('bob@localhost', (i) => i.subscription === 'to'));
  await bob.waitFor(push('alice@localhost', (i) => i.subscription === 'from'));
  await assertNothingBefore(
    bob,
    pres('alice@localhost', 'subscribe'),
    'subscribe shown despite pre-approval',
  );
});

test('a subscription request to an offline user waits and is delivered on their next available presence', async (t) => {
  const server = await startServer(t);
  const alice = await login(t, server, 'alice');
  alice.send(presence({ to: 'carol@localhost', type: 'subscribe' }));
  await assertNothingBefore(alice, (el) => el.attr('type') === 'error', 'error for offline subscribe');
  const carol = await login(t, server, 'carol');
  const roster = await getRoster(carol);
  assert.deepEqual(roster, [], 'a pending request is not a roster item');
  carol.send(presence());
  await carol.waitFor(pres('alice@localhost', 'subscribe'));
  // Denial: unsubscribed cancels the request; alice's pending ask is cleared.
  await getRoster(alice);
  carol.send(presence({ to: 'alice@localhost', type: 'unsubscribed' }));
  await alice.waitFor(push('carol@localhost', (i) => i.ask === undefined && i.subscription === 'none'));
});

test('initial presence: probes answer with contacts’ presence, or unavailable when offline; own resources see each other', async (t) => {
  const server = await startServer(t);
  // Make alice and bob mutual subscribers.
  const alice = await login(t, server, 'alice', { resource: 'a' });
  const bob = await login(t, server, 'bob', { resource: 'b' });
  alice.send(presence());
  bob.send(presence());
  alice.send(presence({ to: 'bob@localhost', type: 'subscribe' }));
  await bob.waitFor(pres('alice@localhost', 'subscribe'));
  bob.send(presence({ to: 'alice@localhost', type: 'subscribed' }));
  bob.send(presence({ to: 'alice@localhost', type: 'subscribe' }));
  await alice.waitFor(pres('bob@localhost', 'subscribe'));
  alice.send(presence({ to: 'bob@localhost', type: 'subscribed' }));
  await bob.waitFor(pres('alice@localhost', 'subscribed'));
  // bob available with status; alice logs in again on a second resource.
  const status = presence({}, 5);
  status.c('status').append('at my desk');
  bob.send(status);
  const a2 = await login(t, server, 'alice', { resource: 'a2' });
  alice.send(presence());
  a2.send(presence());
  const probed = await a2.waitFor(pres('bob@localhost/b'), 5000, 'probe answer');
  assert.equal(probed.getChildText('status'), 'at my desk');
  await a2.waitFor(pres('alice@localhost/a'), 5000, 'presence of own other resource');
  await alice.waitFor(pres('alice@localhost/a2'), 5000, 'new resource seen by the old one');
  // bob goes offline: alice's resources get unavailable; a new probe answers unavailable from the bare JID.
  await bob.close();
  await alice.waitFor(pres('bob@localhost/b', 'unavailable'), 5000, 'bob unavailable');
  const a3 = await login(t, server, 'alice', { resource: 'a3' });
  a3.send(presence());
  await a3.waitFor(pres('bob@localhost', 'unavailable'), 5000, 'probe answer for offline contact');
});

test('explicit unavailable goes to subscribers and directed-presence recipients; a session end does the same', async (t) => {
  const server = await startServer(t);
  const alice = await login(t, server, 'alice');
  const carol = await login(t, server, 'carol', { resource: 'c' });
  const bob = await login(t, server, 'bob', { resource: 'b' });
  carol.send(presence());
  bob.send(presence());
  // alice is not subscribed with anyone: directed presence only.
  alice.send(presence({ to: 'carol@localhost/c' }));
  alice.send(presence({ to: 'bob@localhost' }));
  await carol.waitFor(pres(alice.jid));
  await bob.waitFor(pres(alice.jid));
  alice.send(presence({ to: 'bob@localhost', type: 'unavailable' }));
  await bob.waitFor(pres(alice.jid, 'unavailable'));
  alice.kill();
  await carol.waitFor(
    pres(alice.jid, 'unavailable'),
    5000,
    'unavailable to directed recipient after a crash',
  );
  const before = bob.received.filter(pres(alice.jid, 'unavailable')).length;
  await assertNothingBefore(
    bob,
    () => bob.received.filter(pres(alice.jid, 'unavailable')).length > before,
    'second unavailable',
  );
});

test('subscription requests to full JIDs are handled for the bare JID; self-subscription is ignored', async (t) => {
  const server = await startServer(t);
  const alice = await login(t, server, 'alice');
  const bob = await login(t, server, 'bob', { resource: 'b' });
  bob.send(presence());
  alice.send(presence({ to: 'bob@localhost/b', type: 'subscribe' }));
  const req = await bob.waitFor(pres('alice@localhost', 'subscribe'));
  assert.equal(req.attr('to'), 'bob@localhost');
  alice.send(presence({ to: 'alice@localhost', type: 'subscribe' }));
  await assertNothingBefore(
    alice,
    (el) => el.name === 'presence' && el.attr('type') === 'subscribe',
    'self subscribe',
  );
});

test('a probe from a non-subscriber reveals nothing', async (t) => {
  const server = await startServer(t);
  const bob = await login(t, server, 'bob', { resource: 'b' });
  bob.send(presence());
  const alice = await login(t, server, 'alice');
  alice.send(presence({ to: 'bob@localhost', type: 'probe' }));
  await assertNothingBefore(
    alice,
    (el) =>
      el.name === 'presence' &&
      el.attr('from')?.startsWith('bob@') === true &&
      el.attr('type') !== 'unsubscribed',
    'presence leak',
  );
});
