/** XEP-0280 message carbons: sent and received copies for the user's other enabled resources. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Element } from '../../src/xml/index.ts';
import type { XmppClient } from '../../src/xmpp/client.ts';
import { NS } from '../../src/xmpp/ns.ts';
import { assertNothingBefore, DOMAIN, iq, login, message, presence, startServer } from './harness.ts';

async function enable(c: XmppClient, to?: string): Promise<void> {
  const reply = await c.iq(
    new Element('iq', NS.client, { type: 'set', to }, [new Element('enable', NS.carbons)]),
  );
  assert.equal(reply.attr('type'), 'result');
}

const carbonOf = (kind: 'sent' | 'received', body: string) => (el: Element) =>
  el.name === 'message' &&
  el
    .getChild(kind, NS.carbons)
    ?.getChild('forwarded', NS.forward)
    ?.getChild('message')
    ?.getChildText('body') === body;

test('carbons: advertised; received and sent copies go to the other enabled resources only', async (t) => {
  const server = await startServer(t);
  const one = await login(t, server, 'alice', { resource: 'one' });
  const two = await login(t, server, 'alice', { resource: 'two' });
  const off = await login(t, server, 'alice', { resource: 'off' });
  const bob = await login(t, server, 'bob', { resource: 'b' });
  const info = await one.iq(iq({ type: 'get', to: DOMAIN }, 'query', NS.discoInfo));
  assert.ok(
    info
      .getChild('query')
      ?.getChildren('feature')
      .some((f) => f.attr('var') === NS.carbons),
  );
  await enable(one);
  await enable(two, DOMAIN);
  for (const c of [one, two, off, bob]) c.send(presence());
  bob.send(message({ to: 'alice@localhost/one', type: 'chat' }, 'to one'));
  await one.waitFor((el) => el.getChildText('body') === 'to one');
  const received = await two.waitFor(carbonOf('received', 'to one'));
  assert.equal(received.attr('from'), 'alice@localhost');
  assert.equal(received.attr('to'), 'alice@localhost/two');
  const inner = received.find('received', 'forwarded', 'message')!;
  assert.equal(inner.attr('from'), bob.jid);
  assert.equal(inner.ns, NS.client);
  await assertNothingBefore(off, carbonOf('received', 'to one'), 'carbon for a resource without carbons');
  one.send(message({ to: 'bob@localhost', type: 'chat' }, 'from one'));
  const sent = await two.waitFor(carbonOf('sent', 'from one'));
  assert.equal(sent.find('sent', 'forwarded', 'message')?.attr('from'), 'alice@localhost/one');
  await bob.waitFor((el) => el.getChildText('body') === 'from one');
  // Private messages and headlines are not copied; disabling stops copies.
  const secret = message({ to: 'bob@localhost', type: 'chat' }, 'private one');
  secret.append(new Element('private', NS.carbons));
  one.send(secret);
  one.send(message({ to: 'bob@localhost', type: 'headline' }, 'headline'));
  await bob.waitFor((el) => el.getChildText('body') === 'headline');
  await assertNothingBefore(
    two,
    (el) => carbonOf('sent', 'private one')(el) || carbonOf('sent', 'headline')(el),
    'carbon of a private message',
  );
  const disable = await two.iq(
    new Element('iq', NS.client, { type: 'set' }, [new Element('disable', NS.carbons)]),
  );
  assert.equal(disable.attr('type'), 'result');
  bob.send(message({ to: 'alice@localhost/one', type: 'chat' }, 'after disable'));
  await one.waitFor((el) => el.getChildText('body') === 'after disable');
  await assertNothingBefore(two, carbonOf('received', 'after disable'), 'carbon after disable');
});

test('carbons for a message to the bare JID reach the enabled resources that did not get it', async (t) => {
  const server = await startServer(t);
  const high = await login(t, server, 'alice', { resource: 'high' });
  const low = await login(t, server, 'alice', { resource: 'low' });
  const bob = await login(t, server, 'bob');
  await enable(low);
  high.send(presence({}, 5));
  low.send(presence({}, 1));
  await low.waitFor((el) => el.name === 'presence' && el.attr('from') === 'alice@localhost/high');
  bob.send(message({ to: 'alice@localhost' }, 'normal to bare'));
  await high.waitFor((el) => el.getChildText('body') === 'normal to bare');
  await low.waitFor(carbonOf('received', 'normal to bare'));
});
