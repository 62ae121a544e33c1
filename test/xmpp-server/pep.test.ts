/**
 * XEP-0163 PEP on the text server: discovery, publish with auto-create, notifications filtered on
 * caps "+notify" to the owner and to contacts with a presence subscription, the last item to a
 * resource that comes online, retrieval and access models, retract, publish-options, node
 * configuration, delete and purge, and the error cases of XEP-0060.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Element, serialize } from '../../src/xml/index.ts';
import { NS } from '../../src/xmpp/ns.ts';
import { PEP_LIMITS, PUBSUB_EVENT_NS, PUBSUB_NS, PUBSUB_OWNER_NS } from '../../src/xmpp-server/pep.ts';
import { waitUntil } from '../helpers/net.ts';
import {
  assertNothingBefore,
  errorCondition,
  GATEWAY,
  GATEWAY_SECRET,
  login,
  presence,
  startServer,
  TestComponent,
} from './harness.ts';
import {
  ACTIVITY,
  assertNever,
  isEvent,
  onThePhone,
  pepClient,
  publishIq,
  pubsubCondition,
  subscribe,
  TUNE,
  tune,
} from './pep-helpers.ts';

function itemsIq(to: string, node: string, attrs: Record<string, string> = {}, ids: string[] = []): Element {
  const iq = new Element('iq', NS.client, { type: 'get', to });
  const items = iq.c('pubsub', {}, PUBSUB_NS).c('items', { node, ...attrs });
  for (const id of ids) items.c('item', { id });
  return iq;
}

function ownerIq(
  type: string,
  action: string,
  node: string | undefined,
  form?: Record<string, string>,
): Element {
  const iq = new Element('iq', NS.client, { type });
  const el = iq.c('pubsub', {}, PUBSUB_OWNER_NS).c(action, { node });
  if (form !== undefined) {
    const x = el.c('x', { type: 'submit' }, 'jabber:x:data');
    x.c('field', { var: 'FORM_TYPE', type: 'hidden' })
      .c('value')
      .append('http://jabber.org/protocol/pubsub#node_config');
    for (const [name, value] of Object.entries(form)) x.c('field', { var: name }).c('value').append(value);
  }
  return iq;
}

const itemIds = (reply: Element) =>
  reply
    .find('pubsub', 'items')
    ?.getChildren('item')
    .map((i) => i.attr('id'));

test('disco#info on the own bare JID: account and pep identities, the pubsub features', async (t) => {
  const server = await startServer(t);
  const alice = await login(t, server, 'alice');
  const reply = await alice.iq(
    new Element('iq', NS.client, { type: 'get', to: 'alice@localhost' }, [
      new Element('query', NS.discoInfo),
    ]),
  );
  const q = reply.getChild('query', NS.discoInfo)!;
  assert.deepEqual(
    q.getChildren('identity').map((i) => `${i.attr('category')}/${i.attr('type')}`),
    ['account/registered', 'pubsub/pep'],
  );
  const features = q.getChildren('feature').map((f) => f.attr('var'));
  for (const f of [
    'publish',
    'auto-create',
    'auto-subscribe',
    'filtered-notifications',
    'publish-options',
    'access-presence',
    'last-published',
    'retrieve-items',
  ])
    assert.ok(features.includes(`${PUBSUB_NS}#${f}`), f);
});

test('publish: auto-create, the owner and subscribed contacts that want it get the event; nobody else', async (t) => {
  const server = await startServer(t, { alice: 'alicepw', bob: 'bobpw', carol: 'carolpw', dave: 'davepw' });
  subscribe(server.store, 'alice', 'bob'); // both
  subscribe(server.store, 'alice', 'dave', 'from'); // dave sees alice, alice does not see dave
  subscribe(server.store, 'alice', 'carol', 'to'); // alice sees carol only
  const alice = await pepClient(t, server, 'alice', [TUNE], 'laptop');
  const aliceQuiet = await pepClient(t, server, 'alice', [], 'phone');
  const bob = await pepClient(t, server, 'bob', [TUNE]);
  const bobNoCaps = await login(t, server, 'bob', { resource: 'nocaps' });
  bobNoCaps.send(presence());
  const carol = await pepClient(t, server, 'carol', [TUNE]);
  const dave = await pepClient(t, server, 'dave', [TUNE]);
  // The first presence made the server ask; the others reuse the verified ver.
  await waitUntil(() => alice.discoRequests.length === 1, 5000, 'one caps request');
  await assertNothingBefore(dave.client, () => false, '');
  assert.equal(bob.discoRequests.length + carol.discoRequests.length + dave.discoRequests.length, 0);
  assert.equal(aliceQuiet.discoRequests.length, 1, 'a different ver is asked for');

  const reply = await alice.client.iq(publishIq(TUNE, tune('Gerald Finzi', 'Introduction'), 'song1'));
  assert.equal(reply.attr('type'), 'result', serialize(reply));
  assert.equal(reply.find('pubsub', 'publish')?.attr('node'), TUNE);
  assert.equal(reply.find('pubsub', 'publish', 'item')?.attr('id'), 'song1');

  for (const c of [alice.client, bob.client, dave.client]) {
    const event = await c.waitFor((el) => isEvent(el, 'alice@localhost', TUNE));
    assert.equal(event.attr('type'), 'headline');
    const item = event.find('event', 'items', 'item')!;
    assert.equal(item.attr('id'), 'song1');
    assert.equal(item.getChild('tune', TUNE)?.getChildText('artist'), 'Gerald Finzi');
    // XEP-0163 §5.3.1.3: the publishing resource as replyto.
    assert.equal(event.find('addresses', 'address')?.attr('jid'), 'alice@localhost/laptop');
  }
  for (const [c, who] of [
    [aliceQuiet.client, 'owner resource without +notify'],
    [bobNoCaps, 'resource without caps'],
    [carol.client, 'contact without a subscription to alice'],
  ] as const)
    await assertNever(c, (el) => el.getChild('event', PUBSUB_EVENT_NS) !== undefined, `event for ${who}`);
});

test('the last item reaches a contact resource that comes online later, once its caps are known (and again on the next login)', async (t) => {
  const server = await startServer(t);
  subscribe(server.store, 'alice', 'bob');
  const alice = await login(t, server, 'alice');
  await alice.iq(publishIq(ACTIVITY, onThePhone('first call')));
  await alice.iq(publishIq(ACTIVITY, onThePhone('second call')));
  await alice.iq(publishIq(TUNE, tune('a', 'b')));
  const bob = await pepClient(t, server, 'bob', [ACTIVITY]);
  const event = await bob.client.waitFor((el) => isEvent(el, 'alice@localhost', ACTIVITY));
  assert.equal(bob.discoRequests.length, 1, 'after the caps disco#info');
  assert.equal(
    event.find('event', 'items', 'item', 'activity', 'text')?.text(),
    'second call',
    'the last item only (max_items 1)',
  );
  assert.match(event.getChild('delay', NS.delay)?.attr('stamp') ?? '', /^\d{4}-\d\d-\d\dT/);
  await assertNever(
    bob.client,
    (el) => isEvent(el, 'alice@localhost', TUNE),
    'a node bob has no interest in',
  );
  // A presence update (not initial) sends nothing again.
  const update = presence();
  update.c('show').append('away');
  bob.client.send(update);
  await assertNever(
    bob.client,
    (el) => el.getChild('event', PUBSUB_EVENT_NS) !== undefined && el !== event,
    'a second last-item',
  );
  // Another resource with the same caps: known at once from the cache.
  const bob2 = await pepClient(t, server, 'bob', [ACTIVITY], 'second');
  await bob2.client.waitFor((el) => isEvent(el, 'alice@localhost', ACTIVITY));
  assert.equal(bob2.discoRequests.length, 0);
  // Own resources get the own last item too.
  const alice2 = await pepClient(t, server, 'alice', [TUNE], 'other');
  await alice2.client.waitFor((el) => isEvent(el, 'alice@localhost', TUNE));
});

test('items retrieval follows the access model; max_items and item ids select', async (t) => {
  const server = await startServer(t);
  subscribe(server.store, 'alice', 'bob');
  const alice = await login(t, server, 'alice');
  const bob = await login(t, server, 'bob');
  const carol = await login(t, server, 'carol');
  const node = 'urn:xmpp:bookmarks:1';
  for (const id of ['a', 'b', 'c'])
    assert.equal(
      (
        await alice.iq(
          publishIq(node, new Element('conference', node, { name: id }), id, { 'pubsub#max_items': 'max' }),
        )
      ).attr('type'),
      'result',
    );
  assert.deepEqual(itemIds(await alice.iq(itemsIq('alice@localhost', node))), ['a', 'b', 'c']);
  assert.deepEqual(itemIds(await bob.iq(itemsIq('alice@localhost', node, { max_items: '2' }))), ['b', 'c']);
  assert.deepEqual(itemIds(await bob.iq(itemsIq('alice@localhost', node, {}, ['c', 'a']))), ['a', 'c']);
  // Republishing an id makes it the newest.
  await alice.iq(publishIq(node, new Element('conference', node, { name: 'a2' }), 'a'));
  assert.deepEqual(itemIds(await alice.iq(itemsIq('alice@localhost', node))), ['b', 'c', 'a']);
  const denied = await carol.iq(itemsIq('alice@localhost', node));
  assert.equal(errorCondition(denied), 'not-authorized');
  assert.equal(pubsubCondition(denied), 'presence-subscription-required');
  assert.equal(errorCondition(await bob.iq(itemsIq('alice@localhost', 'nonexistent'))), 'item-not-found');
  assert.equal(
    errorCondition(await bob.iq(itemsIq('alice@localhost', node, { max_items: 'x' }))),
    'bad-request',
  );
  // disco#items lists only what the requester may see.
  const open = 'urn:xmpp:avatar:metadata';
  await alice.iq(publishIq(open, new Element('metadata', open), 'av', { 'pubsub#access_model': 'open' }));
  const discoNodes = async (c: typeof bob) =>
    (
      await c.iq(
        new Element('iq', NS.client, { type: 'get', to: 'alice@localhost' }, [
          new Element('query', NS.discoItems),
        ]),
      )
    )
      .getChild('query')!
      .getChildren('item')
      .map((i) => i.attr('node'));
  assert.deepEqual(await discoNodes(bob), [node, open]);
  assert.deepEqual(await discoNodes(carol), [open]);
  assert.deepEqual(itemIds(await carol.iq(itemsIq('alice@localhost', open))), ['av']);
  const nodeInfo = await bob.iq(
    new Element('iq', NS.client, { type: 'get', to: 'alice@localhost' }, [
      new Element('query', NS.discoInfo, { node }),
    ]),
  );
  assert.equal(nodeInfo.find('query', 'identity')?.attr('type'), 'leaf');
  const hidden = await carol.iq(
    new Element('iq', NS.client, { type: 'get', to: 'alice@localhost' }, [
      new Element('query', NS.discoInfo, { node }),
    ]),
  );
  assert.equal(errorCondition(hidden), 'item-not-found');
});

test('retract with notify, publish-options preconditions, node configuration, purge and delete', async (t) => {
  const server = await startServer(t);
  subscribe(server.store, 'alice', 'bob');
  const alice = await login(t, server, 'alice');
  const bob = await pepClient(t, server, 'bob', [TUNE]);
  await assertNothingBefore(bob.client, () => false, '');
  await alice.iq(publishIq(TUNE, tune('x', 'y'), 't1'));
  const retract = new Element('iq', NS.client, { type: 'set' });
  retract.c('pubsub', {}, PUBSUB_NS).c('retract', { node: TUNE, notify: 'true' }).c('item', { id: 't1' });
  assert.equal((await alice.iq(retract)).attr('type'), 'result');
  const retracted = await bob.client.waitFor(
    (el) => isEvent(el, 'alice@localhost', TUNE) && el.find('event', 'items', 'retract') !== undefined,
  );
  assert.equal(retracted.find('event', 'items', 'retract')?.attr('id'), 't1');
  assert.equal(errorCondition(await alice.iq(retract.clone().setAttr('id', undefined))), 'item-not-found');

  // publish-options: a new node takes them; an existing one must match.
  const omemo = 'eu.siacs.conversations.axolotl.devicelist';
  const r1 = await alice.iq(
    publishIq(omemo, new Element('list', 'eu.siacs.conversations.axolotl'), 'current', {
      'pubsub#access_model': 'open',
    }),
  );
  assert.equal(r1.attr('type'), 'result');
  const r2 = await alice.iq(
    publishIq(omemo, new Element('list', 'eu.siacs.conversations.axolotl'), 'current', {
      'pubsub#access_model': 'presence',
    }),
  );
  assert.equal(errorCondition(r2), 'conflict');
  assert.equal(pubsubCondition(r2), 'precondition-not-met');
  const r3 = await alice.iq(
    publishIq(omemo, new Element('list', 'eu.siacs.conversations.axolotl'), 'current', {
      'pubsub#unknown_thing': '1',
    }),
  );
  assert.equal(pubsubCondition(r3), 'precondition-not-met');
  // Conversations' way out: change the configuration, then publish again.
  const conf = await alice.iq(ownerIq('get', 'configure', omemo));
  const fields = conf.find('pubsub', 'configure', 'x')!.getChildren('field');
  assert.equal(fields.find((f) => f.attr('var') === 'pubsub#access_model')?.getChildText('value'), 'open');
  assert.equal(
    (
      await alice.iq(
        ownerIq('set', 'configure', omemo, { 'pubsub#access_model': 'presence', 'pubsub#max_items': '5' }),
      )
    ).attr('type'),
    'result',
  );
  assert.equal(server.store.getPepNode('alice', omemo)?.maxItems, 5);
  assert.equal(
    (
      await alice.iq(
        publishIq(omemo, new Element('list', 'eu.siacs.conversations.axolotl'), 'current', {
          'pubsub#access_model': 'presence',
        }),
      )
    ).attr('type'),
    'result',
  );
  assert.equal(
    errorCondition(await alice.iq(ownerIq('set', 'configure', omemo, { 'pubsub#access_model': 'roster' }))),
    'not-acceptable',
  );
  assert.equal(
    errorCondition(await bob.client.iq(ownerIq('get', 'configure', omemo).setAttr('to', 'alice@localhost'))),
    'forbidden',
  );

  // create: explicit, with configuration; a second create conflicts.
  const create = new Element('iq', NS.client, { type: 'set' });
  const ps = create.c('pubsub', {}, PUBSUB_NS);
  ps.c('create', { node: 'urn:example:node' });
  const x = ps.c('configure').c('x', { type: 'submit' }, 'jabber:x:data');
  x.c('field', { var: 'FORM_TYPE' }).c('value').append('http://jabber.org/protocol/pubsub#node_config');
  x.c('field', { var: 'pubsub#access_model' }).c('value').append('whitelist');
  assert.equal((await alice.iq(create)).attr('type'), 'result');
  assert.equal(server.store.getPepNode('alice', 'urn:example:node')?.accessModel, 'whitelist');
  assert.equal(errorCondition(await alice.iq(create.clone().setAttr('id', undefined))), 'conflict');
  assert.equal(
    errorCondition(await bob.client.iq(itemsIq('alice@localhost', 'urn:example:node'))),
    'not-allowed',
  );

  // purge and delete tell the interested contacts.
  await alice.iq(publishIq(TUNE, tune('p', 'q'), 't2'));
  assert.equal((await alice.iq(ownerIq('set', 'purge', TUNE))).attr('type'), 'result');
  await bob.client.waitFor((el) => el.find('event', 'purge')?.attr('node') === TUNE);
  assert.deepEqual(itemIds(await alice.iq(itemsIq('alice@localhost', TUNE))), []);
  assert.equal((await alice.iq(ownerIq('set', 'delete', TUNE))).attr('type'), 'result');
  await bob.client.waitFor((el) => el.find('event', 'delete')?.attr('node') === TUNE);
  assert.equal(errorCondition(await alice.iq(itemsIq('alice@localhost', TUNE))), 'item-not-found');
  assert.equal(errorCondition(await alice.iq(ownerIq('set', 'delete', TUNE))), 'item-not-found');
});

test('bad requests get the XEP-0060 errors; nothing is stored', async (t) => {
  const server = await startServer(t);
  subscribe(server.store, 'alice', 'bob');
  const alice = await login(t, server, 'alice');
  const bob = await login(t, server, 'bob');
  const raw = (xml: string) => {
    const iq = new Element('iq', NS.client, { type: 'set' });
    iq.append(new Element('pubsub', PUBSUB_NS));
    return { iq, ps: iq.getChild('pubsub')!, xml };
  };
  const cases: [string, (ps: Element) => void, string, string | undefined][] = [
    ['no node', (ps) => ps.c('publish').c('item').append(tune('a', 'b')), 'bad-request', 'nodeid-required'],
    ['no item', (ps) => ps.c('publish', { node: TUNE }), 'bad-request', 'item-required'],
    [
      'no payload',
      (ps) => ps.c('publish', { node: TUNE }).c('item', { id: '1' }),
      'bad-request',
      'payload-required',
    ],
    [
      'two payloads',
      (ps) => ps.c('publish', { node: TUNE }).c('item').append(tune('a', 'b'), tune('c', 'd')),
      'bad-request',
      'invalid-payload',
    ],
    [
      'two items',
      (ps) => {
        const p = ps.c('publish', { node: TUNE });
        p.c('item').append(tune('a', 'b'));
        p.c('item').append(tune('c', 'd'));
      },
      'bad-request',
      'invalid-payload',
    ],
    [
      'two actions',
      (ps) => {
        ps.c('publish', { node: TUNE }).c('item').append(tune('a', 'b'));
        ps.c('retract', { node: TUNE });
      },
      'bad-request',
      undefined,
    ],
    [
      'oversized payload',
      (ps) =>
        ps
          .c('publish', { node: TUNE })
          .c('item')
          .append(tune('a'.repeat(PEP_LIMITS.maxPayloadBytes), 'b')),
      'not-acceptable',
      'payload-too-big',
    ],
    [
      'subscription options',
      (ps) => ps.c('options', { node: TUNE, jid: 'alice@localhost' }),
      'feature-not-implemented',
      'unsupported',
    ],
    ['instant node', (ps) => ps.c('create'), 'not-acceptable', 'nodeid-required'],
    ['unknown action', (ps) => ps.c('frobnicate'), 'feature-not-implemented', undefined],
    [
      'node name too long',
      (ps) =>
        ps
          .c('publish', { node: 'n'.repeat(2000) })
          .c('item')
          .append(tune('a', 'b')),
      'not-acceptable',
      undefined,
    ],
    [
      'bad publish-options form',
      (ps) => {
        ps.c('publish', { node: TUNE }).c('item').append(tune('a', 'b'));
        ps.c('publish-options')
          .c('x', { type: 'submit' }, 'jabber:x:data')
          .c('field', { var: 'FORM_TYPE' })
          .c('value')
          .append('urn:wrong');
      },
      'bad-request',
      'invalid-options',
    ],
  ];
  for (const [what, build, condition, pubsub] of cases) {
    const { iq, ps } = raw(what);
    build(ps);
    const reply = await alice.iq(iq);
    assert.equal(errorCondition(reply), condition, `${what}: ${serialize(reply).slice(0, 300)}`);
    assert.equal(pubsubCondition(reply), pubsub, what);
  }
  // Someone else's service: publishing is the owner's alone.
  const foreign = publishIq(TUNE, tune('a', 'b')).setAttr('to', 'alice@localhost');
  assert.equal(errorCondition(await bob.iq(foreign)), 'forbidden');
  assert.equal(
    errorCondition(await bob.iq(publishIq(TUNE, tune('a', 'b')).setAttr('type', 'get'))),
    'bad-request',
  );
  assert.deepEqual(server.store.listPepNodes('alice'), []);
  // At most maxNodes nodes per account.
  for (let i = 0; i < PEP_LIMITS.maxNodes; i++)
    server.store.putPepNode(
      'bob',
      `n${i}`,
      server.store.getPepNode('bob', 'n0') ?? {
        accessModel: 'presence',
        maxItems: 1,
        persistItems: true,
        notifyRetract: true,
        sendLastPublishedItem: 'on_sub_and_presence',
        title: undefined,
        type: undefined,
      },
    );
  const full = await bob.iq(publishIq('one-too-many', tune('a', 'b')));
  assert.equal(errorCondition(full), 'policy-violation');
});

test('losing the presence subscription stops the notifications', async (t) => {
  const server = await startServer(t);
  subscribe(server.store, 'alice', 'bob');
  const alice = await login(t, server, 'alice');
  await alice.iq(new Element('iq', NS.client, { type: 'get' }, [new Element('query', NS.roster)]));
  alice.send(presence());
  const bob = await pepClient(t, server, 'bob', [TUNE]);
  await assertNothingBefore(bob.client, () => false, '');
  await alice.iq(publishIq(TUNE, tune('one', 'x')));
  await bob.client.waitFor((el) => isEvent(el, 'alice@localhost', TUNE));
  // alice cancels bob's subscription to her presence.
  alice.send(presence({ to: 'bob@localhost', type: 'unsubscribed' }));
  await waitUntil(
    () => server.store.getRosterItem('alice', 'bob@localhost')?.subscription === 'to',
    5000,
    'subscription cancelled',
  );
  const before = bob.client.received.length;
  await alice.iq(publishIq(TUNE, tune('two', 'x')));
  await assertNever(
    bob.client,
    (el) => bob.client.received.indexOf(el) >= before && isEvent(el, 'alice@localhost', TUNE),
    'event after unsubscribed',
  );
  assert.equal(errorCondition(await bob.client.iq(itemsIq('alice@localhost', TUNE))), 'not-authorized');
});

test('a contact whose subscription is approved gets the last items at once', async (t) => {
  const server = await startServer(t);
  const alice = await login(t, server, 'alice');
  await alice.iq(new Element('iq', NS.client, { type: 'get' }, [new Element('query', NS.roster)]));
  alice.send(presence());
  await alice.iq(publishIq(TUNE, tune('before', 'approval')));
  const bob = await pepClient(t, server, 'bob', [TUNE]);
  await assertNever(
    bob.client,
    (el) => isEvent(el, 'alice@localhost', TUNE),
    'event before the subscription',
  );
  bob.client.send(presence({ to: 'alice@localhost', type: 'subscribe' }));
  await alice.waitFor((el) => el.name === 'presence' && el.attr('type') === 'subscribe');
  alice.send(presence({ to: 'bob@localhost', type: 'subscribed' }));
  const event = await bob.client.waitFor((el) => isEvent(el, 'alice@localhost', TUNE));
  assert.equal(event.find('event', 'items', 'item', 'tune', 'artist')?.text(), 'before');
});

test('explicit subscriptions: a non-contact subscribes to an open node and gets items; access, jid checks, listing, unsubscribe', async (t) => {
  const server = await startServer(t, undefined, { components: new Map([[GATEWAY, GATEWAY_SECRET]]) });
  const alice = await login(t, server, 'alice');
  const carol = await login(t, server, 'carol', { resource: 'web' });
  const open = 'urn:example:open';
  await alice.iq(
    publishIq(open, new Element('status', open, {}, ['first']), 'i1', { 'pubsub#access_model': 'open' }),
  );
  await alice.iq(publishIq(TUNE, tune('private', 'x')));
  const sub = (node: string, jid: string) => {
    const iq = new Element('iq', NS.client, { type: 'set', to: 'alice@localhost' });
    iq.c('pubsub', {}, PUBSUB_NS).c('subscribe', { node, jid });
    return iq;
  };
  const ok = await carol.iq(sub(open, carol.jid));
  assert.equal(ok.attr('type'), 'result');
  const subscription = ok.find('pubsub', 'subscription')!;
  assert.equal(subscription.attr('subscription'), 'subscribed');
  assert.equal(subscription.attr('jid'), carol.jid);
  // The last item at once, then every new one (no caps needed for an explicit subscription).
  const last = await carol.waitFor((el) => isEvent(el, 'alice@localhost', open));
  assert.equal(last.find('event', 'items', 'item')?.attr('id'), 'i1');
  await alice.iq(publishIq(open, new Element('status', open, {}, ['second']), 'i2'));
  await carol.waitFor(
    (el) => isEvent(el, 'alice@localhost', open) && el.find('event', 'items', 'item')?.attr('id') === 'i2',
  );
  const denied = await carol.iq(sub(TUNE, carol.jid));
  assert.equal(errorCondition(denied), 'not-authorized');
  assert.equal(pubsubCondition(denied), 'presence-subscription-required');
  const wrongJid = await carol.iq(sub(open, 'bob@localhost'));
  assert.equal(pubsubCondition(wrongJid), 'invalid-jid');
  assert.equal(errorCondition(await carol.iq(sub('urn:none', carol.jid))), 'item-not-found');
  // Listing: the subscriber sees its own, the owner sees all.
  const mine = await carol.iq(
    new Element('iq', NS.client, { type: 'get', to: 'alice@localhost' }, [
      new Element('pubsub', PUBSUB_NS, {}, [new Element('subscriptions', PUBSUB_NS)]),
    ]),
  );
  assert.deepEqual(
    mine
      .find('pubsub', 'subscriptions')!
      .getChildren('subscription')
      .map((s) => s.attr('node')),
    [open],
  );
  const all = await alice.iq(ownerIq('get', 'subscriptions', open));
  assert.deepEqual(
    all
      .find('pubsub', 'subscriptions')!
      .getChildren('subscription')
      .map((s) => s.attr('jid')),
    [carol.jid],
  );
  const affiliations = await alice.iq(
    new Element('iq', NS.client, { type: 'get' }, [
      new Element('pubsub', PUBSUB_NS, {}, [new Element('affiliations', PUBSUB_NS)]),
    ]),
  );
  assert.deepEqual(
    affiliations
      .find('pubsub', 'affiliations')!
      .getChildren('affiliation')
      .map((a) => `${a.attr('node')}=${a.attr('affiliation')}`),
    [`${open}=owner`, `${TUNE}=owner`],
  );
  // A component subscribes its bare domain JID: one notification there.
  const gw = await TestComponent.connect(t, server.componentPort);
  const gwSub = new Element('iq', NS.component, {
    type: 'set',
    id: 'gs',
    from: GATEWAY,
    to: 'alice@localhost',
  });
  gwSub.c('pubsub', {}, PUBSUB_NS).c('subscribe', { node: open, jid: GATEWAY });
  gw.send(gwSub);
  assert.equal((await gw.waitFor((el) => el.attr('id') === 'gs')).attr('type'), 'result');
  await alice.iq(publishIq(open, new Element('status', open, {}, ['third']), 'i3'));
  const atGateway = await gw.waitFor(
    (el) => el.name === 'message' && el.find('event', 'items', 'item')?.attr('id') === 'i3',
  );
  assert.equal(atGateway.attr('to'), GATEWAY);
  // Access lost (node no longer open): no more notifications; unsubscribe; twice is not-subscribed.
  await alice.iq(ownerIq('set', 'configure', open, { 'pubsub#access_model': 'presence' }));
  await alice.iq(publishIq(open, new Element('status', open, {}, ['fourth']), 'i4'));
  await assertNever(
    carol,
    (el) => el.find('event', 'items', 'item')?.attr('id') === 'i4',
    'event after access was lost',
  );
  const unsub = new Element('iq', NS.client, { type: 'set', to: 'alice@localhost' });
  unsub.c('pubsub', {}, PUBSUB_NS).c('unsubscribe', { node: open, jid: carol.jid });
  assert.equal((await carol.iq(unsub)).attr('type'), 'result');
  const again = await carol.iq(unsub.clone().setAttr('id', undefined));
  assert.equal(errorCondition(again), 'unexpected-request');
  assert.equal(pubsubCondition(again), 'not-subscribed');
  assert.deepEqual(
    server.store.listPepSubscriptions('alice').map((s) => s.jid),
    [GATEWAY],
  );
  // Deleting the node ends its subscriptions.
  await alice.iq(ownerIq('set', 'delete', open));
  assert.deepEqual(server.store.listPepSubscriptions('alice'), []);
});
