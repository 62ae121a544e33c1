/**
 * XEP-0356 Privileged Entity (urn:xmpp:privilege:2): the permission advertisement after the handshake,
 * privileged iq (§6), forwarded messages (§5), roster access and pushes (§3), managed-entity presence
 * (§7), and every refusal.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Element, serialize } from '../../src/xml/index.ts';
import { parseJid } from '../../src/xmpp/jid.ts';
import { NS } from '../../src/xmpp/ns.ts';
import { PUBSUB_NS } from '../../src/xmpp-server/pep.ts';
import {
  advertisement,
  checkPrivilegedIq,
  checkPrivilegedMessage,
  GATEWAY_DEFAULT_GRANT,
  makeGrant,
  PRIVILEGE_NS,
  PrivilegeConfigError,
  type PrivilegeGrant,
} from '../../src/xmpp-server/privilege.ts';
import type { XmppServer } from '../../src/xmpp-server/server.ts';
import { waitUntil } from '../helpers/net.ts';
import {
  assertNothingBefore,
  DOMAIN,
  errorCondition,
  GATEWAY,
  GATEWAY_SECRET,
  iq,
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
  subscribe,
} from './pep-helpers.ts';

const OTHER = 'other.localhost';
const OTHER_SECRET = 'othersecret';

async function privilegedServer(
  t: import('node:test').TestContext,
  grant: PrivilegeGrant = GATEWAY_DEFAULT_GRANT,
  extra: { privilegedIqTimeoutMs?: number } = {},
): Promise<XmppServer> {
  return startServer(t, undefined, {
    components: new Map([
      [GATEWAY, GATEWAY_SECRET],
      [OTHER, OTHER_SECRET],
    ]),
    privileges: new Map([[GATEWAY, grant]]),
    ...extra,
  });
}

/** <iq from=component to=managed><privileged_iq><iq xmlns=jabber:client …>payload</iq></privileged_iq></iq> */
function privilegedIq(
  to: string,
  inner: Element | undefined,
  type = 'set',
  id = 'priv1',
  from = GATEWAY,
): Element {
  const outer = new Element('iq', NS.component, { type, id, from, to });
  const wrapper = outer.c('privileged_iq', {}, PRIVILEGE_NS);
  if (inner !== undefined) wrapper.append(inner);
  return outer;
}

function innerPublish(attrs: Record<string, string | undefined>, text = 'On the phone with 1002'): Element {
  const inner = publishIq(ACTIVITY, onThePhone(text));
  for (const [k, v] of Object.entries({ type: 'set', id: 'pub1', ...attrs })) inner.setAttr(k, v);
  return inner;
}

test('grants from configuration values; what the XEP or this server does not allow is refused', () => {
  const g = makeGrant({ roster: 'both', message: 'outgoing', iq: { [PUBSUB_NS]: 'set', 'urn:x': 'none' } });
  assert.equal(g.rosterPush, true, 'push defaults to true for get/both (§3.1)');
  assert.deepEqual([...g.iq], [[PUBSUB_NS, 'set']]);
  assert.equal(makeGrant({ roster: 'set' }).rosterPush, false, 'no pushes for set only');
  assert.equal(makeGrant({ roster: 'get', rosterPush: false }).rosterPush, false);
  assert.throws(() => makeGrant({ presence: 'roster' }), PrivilegeConfigError);
  assert.throws(() => makeGrant({ iq: { [PRIVILEGE_NS]: 'both' } }), PrivilegeConfigError);
  assert.equal(
    serialize(advertisement(DOMAIN, GATEWAY, GATEWAY_DEFAULT_GRANT, 'a1'), NS.client),
    `<message from='localhost' to='cti.localhost' id='a1'><privilege xmlns='${PRIVILEGE_NS}'>` +
      `<perm access='roster' type='get' push='true'/><perm access='message' type='outgoing'/>` +
      `<perm access='presence' type='managed_entity'/>` +
      `<perm access='iq'><namespace ns='${PUBSUB_NS}' type='set'/></perm></privilege></message>`,
  );
});

test('property: whatever a component wraps, the checks never throw, and what passes is the managed user asking a granted namespace', () => {
  const managed = parseJid('alice@localhost');
  const names = ['iq', 'message', 'presence', 'pubsub', 'privileged_iq', 'forwarded', 'x'];
  const namespaces = [NS.client, PUBSUB_NS, PRIVILEGE_NS, NS.forward, NS.roster, 'urn:junk', ''];
  const attrValues = [
    undefined,
    '',
    'set',
    'get',
    'result',
    'alice@localhost',
    'alice@localhost/r',
    'bob@localhost',
    '@@',
    'x',
  ];
  const leaf = fc.record({
    name: fc.constantFrom(...names),
    ns: fc.constantFrom(...namespaces),
    type: fc.constantFrom(...attrValues),
    from: fc.constantFrom(...attrValues),
    to: fc.constantFrom(...attrValues),
    id: fc.constantFrom(...attrValues),
  });
  // Three levels deep: enough for privileged_iq / iq / payload / child.
  const level = (children: fc.Arbitrary<Element[]>) =>
    fc
      .tuple(leaf, children)
      .map(
        ([l, kids]) => new Element(l.name, l.ns, { type: l.type, from: l.from, to: l.to, id: l.id }, kids),
      );
  const tree = level(fc.array(level(fc.array(level(fc.constant([])), { maxLength: 2 })), { maxLength: 3 }));
  fc.assert(
    fc.property(tree, fc.constantFrom('get', 'set'), fc.boolean(), (inside, type, asMessage) => {
      const outer = new Element('iq', NS.client, { type, id: 'o', from: GATEWAY, to: 'alice@localhost' });
      outer.c('privileged_iq', {}, PRIVILEGE_NS).append(inside);
      const checked = checkPrivilegedIq(outer, GATEWAY_DEFAULT_GRANT, managed);
      if (!('refusal' in checked)) {
        assert.equal(checked.inner.attr('from'), 'alice@localhost');
        assert.equal(checked.inner.attr('type'), type);
        assert.equal(type, 'set');
        assert.equal(checked.payloadNs, PUBSUB_NS);
        assert.equal(checked.inner.elements().length, 1);
      }
      if (asMessage) {
        const m = new Element('message', NS.client, { from: GATEWAY, to: DOMAIN });
        m.c('privilege', {}, PRIVILEGE_NS).append(inside);
        const r = checkPrivilegedMessage(
          m,
          GATEWAY_DEFAULT_GRANT,
          (j) => j.domain === DOMAIN && j.local !== 'nobody',
        );
        if (!('refusal' in r)) {
          assert.equal(r.message.name, 'message');
          assert.ok(parseJid(r.message.attr('from')!).isBare);
        }
      }
    }),
    { numRuns: 2000 },
  );
});

test('a privileged component gets its permissions right after the handshake; an unprivileged one gets nothing', async (t) => {
  const server = await privilegedServer(t);
  const gw = await TestComponent.connect(t, server.componentPort);
  assert.ok(gw.handshakeOk);
  const adv = await gw.waitFor((el) => el.name === 'message');
  assert.equal(gw.received.indexOf(adv), 1, 'the first stanza after <handshake/>');
  assert.equal(adv.attr('from'), DOMAIN);
  assert.equal(adv.attr('to'), GATEWAY);
  const perms = adv.getChild('privilege', PRIVILEGE_NS)!.getChildren('perm', PRIVILEGE_NS);
  assert.deepEqual(
    perms.map((p) => `${p.attr('access')}=${p.attr('type') ?? ''}`),
    ['roster=get', 'message=outgoing', 'presence=managed_entity', 'iq='],
  );
  assert.equal(perms[3]!.getChild('namespace', PRIVILEGE_NS)?.attr('ns'), PUBSUB_NS);

  const other = await TestComponent.connect(t, server.componentPort, OTHER, OTHER_SECRET);
  other.send(
    new Element('iq', NS.component, { type: 'get', id: 'p', from: OTHER, to: DOMAIN }, [
      new Element('ping', NS.ping),
    ]),
  );
  await other.waitFor((el) => el.attr('id') === 'p');
  assert.equal(other.received.filter((el) => el.name === 'message').length, 0);

  // The server's disco#info says privileges exist here.
  gw.send(
    new Element('iq', NS.component, { type: 'get', id: 'd', from: GATEWAY, to: DOMAIN }, [
      new Element('query', NS.discoInfo),
    ]),
  );
  const info = await gw.waitFor((el) => el.attr('id') === 'd');
  assert.ok(
    info
      .getChild('query')!
      .getChildren('feature')
      .some((f) => f.attr('var') === PRIVILEGE_NS),
  );
});

test('privileged iq: the component publishes PEP on behalf of alice; bob and alice get the event, the component the forwarded result', async (t) => {
  const server = await privilegedServer(t);
  subscribe(server.store, 'alice', 'bob');
  const bob = await pepClient(t, server, 'bob', [ACTIVITY]);
  const alice = await pepClient(t, server, 'alice', [ACTIVITY]);
  const carol = await pepClient(t, server, 'carol', [ACTIVITY]);
  await waitUntil(
    () => bob.discoRequests.length + alice.discoRequests.length + carol.discoRequests.length >= 1,
    5000,
    'caps disco',
  );
  // Everyone's caps known (the same ver: one request, then the cache).
  await assertNothingBefore(carol.client, () => false, '');
  const gw = await TestComponent.connect(t, server.componentPort);
  await gw.waitFor((el) => el.name === 'message');

  gw.send(privilegedIq('alice@localhost', innerPublish({ from: 'alice@localhost', to: 'alice@localhost' })));
  const answer = await gw.waitFor((el) => el.name === 'iq' && el.attr('id') === 'priv1');
  assert.equal(answer.attr('type'), 'result');
  assert.equal(answer.attr('from'), 'alice@localhost');
  assert.equal(answer.attr('to'), GATEWAY);
  const forwarded = answer
    .getChild('privilege', PRIVILEGE_NS)
    ?.getChild('forwarded', NS.forward)
    ?.getChild('iq', NS.client);
  assert.ok(forwarded, serialize(answer));
  assert.equal(forwarded.attr('type'), 'result');
  assert.equal(forwarded.attr('id'), 'pub1', 'the encapsulated id comes back');
  assert.equal(forwarded.attr('from'), 'alice@localhost');
  assert.equal(forwarded.attr('to'), 'alice@localhost');
  const itemId = forwarded.getChild('pubsub', PUBSUB_NS)?.getChild('publish')?.getChild('item')?.attr('id');
  assert.ok(itemId !== undefined && itemId !== '');

  for (const c of [bob, alice]) {
    const event = await c.client.waitFor((el) => isEvent(el, 'alice@localhost', ACTIVITY));
    assert.equal(event.attr('type'), 'headline');
    const activity = event
      .getChild('event')!
      .getChild('items')!
      .getChild('item')!
      .getChild('activity', ACTIVITY)!;
    assert.ok(activity.getChild('talking')?.getChild('on_the_phone'));
    assert.equal(activity.getChildText('text'), 'On the phone with 1002');
  }
  await assertNever(
    carol.client,
    (el) => isEvent(el, 'alice@localhost', ACTIVITY),
    'event for a non-contact',
  );

  // Without a 'from' on the encapsulated iq and without 'to' it is the same (§6.3).
  gw.send(privilegedIq('alice@localhost', innerPublish({ id: 'pub2' }, 'Idle'), 'set', 'priv2'));
  const second = await gw.waitFor((el) => el.attr('id') === 'priv2');
  assert.equal(second.attr('type'), 'result', serialize(second));
  await bob.client.waitFor(
    (el) =>
      isEvent(el, 'alice@localhost', ACTIVITY) &&
      el.find('event', 'items', 'item', 'activity', 'text')?.text() === 'Idle',
  );
});

test('privileged iq refusals: each gets forbidden (or bad-request for a malformed wrapper), and nothing is published', async (t) => {
  const server = await privilegedServer(t);
  subscribe(server.store, 'alice', 'bob');
  const gw = await TestComponent.connect(t, server.componentPort);
  await gw.waitFor((el) => el.name === 'message');
  const other = await TestComponent.connect(t, server.componentPort, OTHER, OTHER_SECRET);

  const cases: { what: string; stanza: Element; condition: string; via?: TestComponent }[] = [
    {
      what: 'unprivileged component',
      stanza: privilegedIq('alice@localhost', innerPublish({}), 'set', 'x', OTHER),
      condition: 'forbidden',
      via: other,
    },
    {
      what: 'to a full JID',
      stanza: privilegedIq('alice@localhost/res', innerPublish({})),
      condition: 'forbidden',
    },
    { what: 'to the server', stanza: privilegedIq(DOMAIN, innerPublish({})), condition: 'forbidden' },
    {
      what: 'to an unknown user',
      stanza: privilegedIq('nobody@localhost', innerPublish({})),
      condition: 'forbidden',
    },
    {
      what: 'to another domain',
      stanza: privilegedIq('alice@example.org', innerPublish({})),
      condition: 'forbidden',
    },
    {
      what: 'encapsulated from another user',
      stanza: privilegedIq('alice@localhost', innerPublish({ from: 'bob@localhost' })),
      condition: 'forbidden',
    },
    {
      what: 'encapsulated from a full JID',
      stanza: privilegedIq('alice@localhost', innerPublish({ from: 'alice@localhost/res' })),
      condition: 'forbidden',
    },
    {
      what: 'type mismatch',
      stanza: privilegedIq('alice@localhost', innerPublish({ type: 'get' })),
      condition: 'forbidden',
    },
    {
      what: 'get not granted',
      stanza: privilegedIq('alice@localhost', innerPublish({ type: 'get' }), 'get'),
      condition: 'forbidden',
    },
    {
      what: 'namespace not granted',
      stanza: privilegedIq('alice@localhost', iq({ type: 'get', id: 'r' }, 'query', NS.roster), 'get'),
      condition: 'forbidden',
    },
    {
      what: 'nested privileged iq',
      stanza: privilegedIq(
        'alice@localhost',
        new Element('iq', NS.client, { type: 'set', id: 'n' }, [
          privilegedIq('bob@localhost', innerPublish({})).getChild('privileged_iq', PRIVILEGE_NS)!,
        ]),
      ),
      condition: 'forbidden',
    },
    {
      what: 'encapsulated iq not in jabber:client',
      stanza: privilegedIq(
        'alice@localhost',
        new Element('iq', PRIVILEGE_NS, { type: 'set', id: 'w' }, [innerPublish({}).getChild('pubsub')!]),
      ),
      condition: 'forbidden',
    },
    {
      what: 'no encapsulated iq',
      stanza: privilegedIq('alice@localhost', undefined),
      condition: 'bad-request',
    },
    {
      what: 'a message instead of an iq',
      stanza: privilegedIq('alice@localhost', new Element('message', NS.client, { to: 'bob@localhost' })),
      condition: 'bad-request',
    },
    {
      what: 'two payloads',
      stanza: privilegedIq('alice@localhost', innerPublish({}).append(new Element('pubsub', PUBSUB_NS))),
      condition: 'bad-request',
    },
    {
      what: 'no id',
      stanza: privilegedIq('alice@localhost', innerPublish({ id: undefined })),
      condition: 'bad-request',
    },
  ];
  for (const [i, c] of cases.entries()) {
    const via = c.via ?? gw;
    c.stanza.setAttr('id', `case${i}`);
    via.send(c.stanza);
    const reply = await via.waitFor((el) => el.attr('id') === `case${i}`, 5000, c.what);
    assert.equal(reply.attr('type'), 'error', c.what);
    assert.equal(errorCondition(reply), c.condition, `${c.what}: ${serialize(reply)}`);
  }
  // Nothing reached alice's PEP service.
  assert.deepEqual(server.store.listPepNodes('alice'), []);
  assert.deepEqual(server.store.listPepNodes('bob'), []);
  // The stream is still fine.
  gw.send(privilegedIq('alice@localhost', innerPublish({}), 'set', 'fine'));
  assert.equal((await gw.waitFor((el) => el.attr('id') === 'fine')).attr('type'), 'result');
});

test('privileged iq to others: the answer of another user, of the server and of an unreachable domain comes back forwarded; no answer times out', async (t) => {
  const grant = {
    ...GATEWAY_DEFAULT_GRANT,
    iq: new Map([
      [PUBSUB_NS, 'both' as const],
      [NS.ping, 'get' as const],
    ]),
  };
  const server = await privilegedServer(t, grant, { privilegedIqTimeoutMs: 300 });
  subscribe(server.store, 'alice', 'bob');
  const gw = await TestComponent.connect(t, server.componentPort);
  await gw.waitFor((el) => el.name === 'message');
  // bob has published something alice may read.
  gw.send(privilegedIq('bob@localhost', innerPublish({ id: 'b1' }, 'bob busy'), 'set', 'bpub'));
  assert.equal((await gw.waitFor((el) => el.attr('id') === 'bpub')).attr('type'), 'result');

  const items = new Element('iq', NS.client, { type: 'get', id: 'items1', to: 'bob@localhost' });
  items.c('pubsub', {}, PUBSUB_NS).c('items', { node: ACTIVITY });
  gw.send(privilegedIq('alice@localhost', items, 'get', 'p1'));
  const p1 = await gw.waitFor((el) => el.attr('id') === 'p1');
  const fwd = p1.find('privilege', 'forwarded', 'iq')!;
  assert.equal(fwd.attr('type'), 'result');
  assert.equal(fwd.attr('from'), 'bob@localhost');
  assert.equal(fwd.attr('id'), 'items1');
  assert.equal(fwd.find('pubsub', 'items', 'item', 'activity', 'text')?.text(), 'bob busy');

  // carol is not subscribed to bob: bob's PEP service says not-authorized, forwarded as such.
  gw.send(privilegedIq('carol@localhost', items.clone(), 'get', 'p2'));
  const p2 = await gw.waitFor((el) => el.attr('id') === 'p2');
  assert.equal(p2.attr('type'), 'result');
  assert.equal(errorCondition(p2.find('privilege', 'forwarded', 'iq')!), 'not-authorized');

  gw.send(
    privilegedIq(
      'alice@localhost',
      iq({ type: 'get', id: 'ping', to: DOMAIN }, 'ping', NS.ping),
      'get',
      'p3',
    ),
  );
  const p3 = await gw.waitFor((el) => el.attr('id') === 'p3');
  assert.equal(p3.find('privilege', 'forwarded', 'iq')?.attr('from'), DOMAIN);

  gw.send(
    privilegedIq(
      'alice@localhost',
      iq({ type: 'get', id: 'r', to: 'x@example.org' }, 'ping', NS.ping),
      'get',
      'p4',
    ),
  );
  const p4 = await gw.waitFor((el) => el.attr('id') === 'p4');
  assert.equal(errorCondition(p4.find('privilege', 'forwarded', 'iq')!), 'remote-server-not-found');

  // To one of alice's own resources: her client answers her bare JID, and that comes back too.
  const aliceClient = await login(t, server, 'alice', { resource: 'own' });
  gw.send(
    privilegedIq(
      'alice@localhost',
      iq({ type: 'get', id: 'own1', to: aliceClient.jid }, 'ping', NS.ping),
      'get',
      'p3b',
    ),
  );
  const ownPing = await aliceClient.waitFor(
    (el) => el.name === 'iq' && el.getChild('ping', NS.ping) !== undefined,
  );
  assert.equal(ownPing.attr('from'), 'alice@localhost');
  aliceClient.send(
    new Element('iq', NS.client, { type: 'result', id: ownPing.attr('id'), to: 'alice@localhost' }),
  );
  const p3b = await gw.waitFor((el) => el.attr('id') === 'p3b');
  assert.equal(p3b.find('privilege', 'forwarded', 'iq')?.attr('from'), aliceClient.jid);
  assert.equal(p3b.find('privilege', 'forwarded', 'iq')?.attr('id'), 'own1');

  // A client that never answers: the component hears remote-server-timeout.
  const bob = await login(t, server, 'bob', { resource: 'mute' });
  gw.send(
    privilegedIq(
      'alice@localhost',
      iq({ type: 'get', id: 'q', to: `${bob.jid}` }, 'pubsub', PUBSUB_NS),
      'get',
      'p6',
    ),
  );
  const toBob = await bob.waitFor((el) => el.name === 'iq' && el.attr('from') === 'alice@localhost');
  assert.notEqual(toBob.attr('id'), 'q', 'a unique id while it travels');
  const p6 = await gw.waitFor((el) => el.attr('id') === 'p6', 5000);
  assert.equal(p6.attr('type'), 'error');
  assert.equal(errorCondition(p6), 'remote-server-timeout');
  // A late answer, or an answer from someone else, is not forwarded.
  bob.send(new Element('iq', NS.client, { type: 'result', id: toBob.attr('id'), to: 'alice@localhost' }));
  gw.send(
    new Element('iq', NS.component, { type: 'get', id: 'last', from: GATEWAY, to: DOMAIN }, [
      new Element('ping', NS.ping),
    ]),
  );
  await gw.waitFor((el) => el.attr('id') === 'last');
  assert.equal(gw.received.filter((el) => el.attr('id') === 'p6').length, 1);
});

test('privileged message: a message as alice reaches bob; refusals get forbidden or bad-request', async (t) => {
  const server = await privilegedServer(t);
  const bob = await login(t, server, 'bob');
  bob.send(presence());
  const gw = await TestComponent.connect(t, server.componentPort);
  await gw.waitFor((el) => el.name === 'message');
  const other = await TestComponent.connect(t, server.componentPort, OTHER, OTHER_SECRET);

  const wrapped = (from: string | undefined, id: string, sender = GATEWAY) => {
    const m = new Element('message', NS.component, { from: sender, to: DOMAIN, id });
    const inner = new Element('message', NS.client, {
      from,
      to: 'bob@localhost',
      type: 'chat',
      id: `in-${id}`,
    });
    inner.c('body').append(`hello ${id}`);
    m.c('privilege', {}, PRIVILEGE_NS).c('forwarded', {}, NS.forward).append(inner);
    return m;
  };
  gw.send(wrapped('alice@localhost', 'ok1'));
  const got = await bob.waitFor((el) => el.name === 'message' && el.getChildText('body') === 'hello ok1');
  assert.equal(got.attr('from'), 'alice@localhost');
  assert.equal(got.attr('id'), 'in-ok1');
  assert.equal(got.getChild('privilege'), undefined);
  gw.send(wrapped(DOMAIN, 'ok2'));
  assert.equal((await bob.waitFor((el) => el.getChildText('body') === 'hello ok2')).attr('from'), DOMAIN);

  const refusals: [Element, string, TestComponent?][] = [
    [wrapped('alice@localhost/res', 'full'), 'forbidden'],
    [wrapped('bob@example.org', 'foreign'), 'forbidden'],
    [wrapped('nobody@localhost', 'nobody'), 'forbidden'],
    [wrapped(undefined, 'nofrom'), 'forbidden'],
    [wrapped('alice@localhost', 'unprivileged', OTHER), 'forbidden', other],
    [
      new Element('message', NS.component, { from: GATEWAY, to: DOMAIN, id: 'empty' }, [
        new Element('privilege', PRIVILEGE_NS),
      ]),
      'bad-request',
    ],
  ];
  for (const [stanza, condition, via] of refusals) {
    (via ?? gw).send(stanza);
    const reply = await (via ?? gw).waitFor(
      (el) => el.name === 'message' && el.attr('id') === stanza.attr('id'),
    );
    assert.equal(reply.attr('type'), 'error');
    assert.equal(errorCondition(reply), condition, stanza.attr('id'));
    assert.equal(reply.attr('from'), DOMAIN);
  }
  await assertNever(
    bob,
    (el) =>
      el.name === 'message' &&
      el.getChildText('body') !== 'hello ok1' &&
      el.getChildText('body') !== 'hello ok2',
    'refused message',
  );
});

test('roster permission: get as the user, set refused with get only, pushes to the component; none for others', async (t) => {
  const server = await privilegedServer(t);
  subscribe(server.store, 'alice', 'bob');
  const gw = await TestComponent.connect(t, server.componentPort);
  await gw.waitFor((el) => el.name === 'message');
  const other = await TestComponent.connect(t, server.componentPort, OTHER, OTHER_SECRET);

  gw.send(
    new Element('iq', NS.component, { type: 'get', id: 'r1', from: GATEWAY, to: 'alice@localhost' }, [
      new Element('query', NS.roster),
    ]),
  );
  const r1 = await gw.waitFor((el) => el.attr('id') === 'r1');
  assert.equal(r1.attr('type'), 'result');
  assert.equal(r1.attr('from'), 'alice@localhost');
  assert.deepEqual(
    r1
      .getChild('query', NS.roster)!
      .getChildren('item')
      .map((i) => `${i.attr('jid')} ${i.attr('subscription')}`),
    ['bob@localhost both'],
  );
  const set = new Element('iq', NS.component, {
    type: 'set',
    id: 'r2',
    from: GATEWAY,
    to: 'alice@localhost',
  });
  set.c('query', {}, NS.roster).c('item', { jid: '1001@cti.localhost', name: 'Desk phone' });
  gw.send(set);
  assert.equal(errorCondition(await gw.waitFor((el) => el.attr('id') === 'r2')), 'forbidden');
  other.send(
    new Element('iq', NS.component, { type: 'get', id: 'r3', from: OTHER, to: 'alice@localhost' }, [
      new Element('query', NS.roster),
    ]),
  );
  assert.equal(errorCondition(await other.waitFor((el) => el.attr('id') === 'r3')), 'forbidden');

  // alice edits her roster: the component gets the push from her bare JID (§3.3).
  const alice = await login(t, server, 'alice');
  const edit = new Element('iq', NS.client, { type: 'set' });
  edit.c('query', {}, NS.roster).c('item', { jid: 'carol@localhost', name: 'Carol' });
  await alice.iq(edit);
  const push = await gw.waitFor(
    (el) => el.name === 'iq' && el.attr('type') === 'set' && el.attr('from') === 'alice@localhost',
  );
  assert.equal(push.attr('to'), GATEWAY);
  assert.equal(push.getChild('query', NS.roster)?.getChild('item')?.attr('jid'), 'carol@localhost');
  assert.equal(other.received.filter((el) => el.name === 'iq' && el.attr('type') === 'set').length, 0);
});

test('roster set permission edits the roster like the user would (and pushes to the user)', async (t) => {
  const server = await privilegedServer(t, { ...GATEWAY_DEFAULT_GRANT, roster: 'both' });
  const alice = await login(t, server, 'alice');
  await alice.iq(new Element('iq', NS.client, { type: 'get' }, [new Element('query', NS.roster)]));
  const gw = await TestComponent.connect(t, server.componentPort);
  await gw.waitFor((el) => el.name === 'message');
  const set = new Element('iq', NS.component, {
    type: 'set',
    id: 'r2',
    from: GATEWAY,
    to: 'alice@localhost',
  });
  set
    .c('query', {}, NS.roster)
    .c('item', { jid: '1001@cti.localhost', name: 'Desk phone', subscription: 'both' });
  gw.send(set);
  assert.equal((await gw.waitFor((el) => el.attr('id') === 'r2')).attr('type'), 'result');
  const push = await alice.waitFor(
    (el) => el.name === 'iq' && el.attr('type') === 'set' && el.getChild('query', NS.roster) !== undefined,
  );
  const item = push.getChild('query')!.getChild('item')!;
  assert.equal(item.attr('jid'), '1001@cti.localhost');
  assert.equal(
    item.attr('subscription'),
    'none',
    'a component cannot grant itself a subscription (§9 rule 4)',
  );
});

test('managed entity presence: initial and unavailable presence go to the component; a late component gets current presence', async (t) => {
  const server = await privilegedServer(t);
  const bob = await login(t, server, 'bob', { resource: 'desk' });
  const status = presence();
  status.c('status').append('at my desk');
  bob.send(status);
  await assertNothingBefore(bob, () => false, '');
  const gw = await TestComponent.connect(t, server.componentPort);
  const late = await gw.waitFor((el) => el.name === 'presence' && el.attr('from') === 'bob@localhost/desk');
  assert.equal(late.attr('to'), GATEWAY);
  assert.equal(late.getChildText('status'), 'at my desk');
  const alice = await login(t, server, 'alice', { resource: 'phone' });
  alice.send(presence());
  await gw.waitFor(
    (el) =>
      el.name === 'presence' && el.attr('from') === 'alice@localhost/phone' && el.attr('type') === undefined,
  );
  // A later presence change is not sent (only initial and unavailable, §7.1).
  const away = presence();
  away.c('show').append('away');
  alice.send(away);
  alice.kill();
  await gw.waitFor(
    (el) =>
      el.name === 'presence' &&
      el.attr('from') === 'alice@localhost/phone' &&
      el.attr('type') === 'unavailable',
  );
  assert.equal(
    gw.received.filter((el) => el.name === 'presence' && el.getChildText('show') === 'away').length,
    0,
  );

  // Without presence permission: nothing.
  const other = await TestComponent.connect(t, server.componentPort, OTHER, OTHER_SECRET);
  const carol = await login(t, server, 'carol');
  carol.send(presence());
  await assertNothingBefore(carol, () => false, '');
  other.send(
    new Element('iq', NS.component, { type: 'get', id: 'p', from: OTHER, to: DOMAIN }, [
      new Element('ping', NS.ping),
    ]),
  );
  await other.waitFor((el) => el.attr('id') === 'p');
  assert.equal(other.received.filter((el) => el.name === 'presence').length, 0);
});

test('hostile input: an oversized privileged iq ends only that component stream; the server keeps working', async (t) => {
  const server = await privilegedServer(t);
  const gw = await TestComponent.connect(t, server.componentPort);
  await gw.waitFor((el) => el.name === 'message');
  const huge = innerPublish({}, 'x'.repeat(300 * 1024));
  gw.send(privilegedIq('alice@localhost', huge, 'set', 'huge'));
  await gw.waitClosed();
  assert.equal(gw.streamError, 'policy-violation');
  assert.deepEqual(server.store.listPepNodes('alice'), []);
  const again = await TestComponent.connect(t, server.componentPort);
  await again.waitFor((el) => el.name === 'message');
  // Sent from a JID outside its domain: refused by the component link before any privilege check.
  again.send(privilegedIq('alice@localhost', innerPublish({}), 'set', 'spoof', 'evil.localhost'));
  const spoof = await again.waitFor((el) => el.attr('id') === 'spoof');
  assert.equal(errorCondition(spoof), 'not-allowed');
  assert.deepEqual(server.store.listPepNodes('alice'), []);
  // A payload under the stanza limit but over the PEP item limit: not-acceptable, forwarded.
  again.send(privilegedIq('alice@localhost', innerPublish({}, 'y'.repeat(200 * 1024)), 'set', 'big'));
  const big = await again.waitFor((el) => el.attr('id') === 'big');
  assert.equal(errorCondition(big.find('privilege', 'forwarded', 'iq')!), 'not-acceptable');
  // Random junk inside <privileged_iq/> never crashes the server.
  for (let i = 0; i < 20; i++) {
    const outer = new Element('iq', NS.component, {
      type: i % 2 ? 'get' : 'set',
      id: `j${i}`,
      from: GATEWAY,
      to: 'alice@localhost',
    });
    const w = outer.c('privileged_iq', {}, PRIVILEGE_NS);
    const junk = new Element(['iq', 'x', 'message'][i % 3]!, [NS.client, 'urn:junk', PRIVILEGE_NS][i % 3]!, {
      type: ['set', 'get', 'result', 'error'][i % 4],
      id: i % 5 ? `i${i}` : undefined,
      to: ['', '@@', 'alice@localhost', 'a@b/c'][i % 4],
    });
    if (i % 2) junk.c('pubsub', {}, PUBSUB_NS).c('publish', { node: '' });
    w.append(junk);
    again.send(outer);
    const reply = await again.waitFor((el) => el.attr('id') === `j${i}`);
    assert.ok(reply.attr('type') === 'error' || reply.getChild('privilege') !== undefined, serialize(reply));
  }
});
