/** Helpers for PEP and privilege tests: clients with XEP-0115 caps, subscriptions seeded in the store. */
import type { TestContext } from 'node:test';
import { Element, serialize } from '../../src/xml/index.ts';
import type { XmppClient } from '../../src/xmpp/client.ts';
import { NS } from '../../src/xmpp/ns.ts';
import { CAPS_NS, capsHash, verificationString } from '../../src/xmpp-server/caps.ts';
import { PUBSUB_EVENT_NS, PUBSUB_NS } from '../../src/xmpp-server/pep.ts';
import type { XmppServer } from '../../src/xmpp-server/server.ts';
import type { Store, Subscription } from '../../src/xmpp-server/store.ts';
import { DOMAIN, login } from './harness.ts';

export const TUNE = 'http://jabber.org/protocol/tune';
export const ACTIVITY = 'http://jabber.org/protocol/activity';
export const CAPS_NODE = 'https://switchboard.test/client';

/** Puts a subscription straight into both rosters (as if the RFC 6121 handshake had happened). */
export function subscribe(store: Store, a: string, b: string, ab: Subscription = 'both'): void {
  const reverse: Record<Subscription, Subscription> = { both: 'both', from: 'to', to: 'from', none: 'none' };
  const item = (jid: string, subscription: Subscription) => ({
    jid,
    name: undefined,
    subscription,
    ask: false,
    pendingIn: false,
    approved: false,
    listed: true,
    groups: [],
  });
  store.putRosterItem(a, item(`${b}@${DOMAIN}`, ab));
  store.putRosterItem(b, item(`${a}@${DOMAIN}`, reverse[ab]));
}

/** The disco#info a client with these "+notify" interests answers, and its caps ver. */
export function clientInfo(notify: string[]): { query: Element; ver: string } {
  const query = new Element('query', NS.discoInfo);
  query.c('identity', { category: 'client', type: 'pc', name: 'switchboard test' });
  for (const f of [NS.discoInfo, CAPS_NS, ...notify.flatMap((n) => [n, `${n}+notify`])])
    query.c('feature', { var: f });
  return { query, ver: capsHash(verificationString(query)!, 'sha-1')! };
}

export interface PepClient {
  client: XmppClient;
  /** disco#info requests the server made to this client. */
  discoRequests: Element[];
}

/**
 * Logs in, answers the server's caps disco#info, and sends initial presence with caps for these
 * interests (no presence when `interests` is undefined).
 */
export async function pepClient(
  t: TestContext,
  server: XmppServer,
  username: string,
  interests: string[] | undefined,
  resource?: string,
): Promise<PepClient> {
  const client = await login(t, server, username, resource === undefined ? {} : { resource });
  const discoRequests: Element[] = [];
  if (interests === undefined) return { client, discoRequests };
  const { query, ver } = clientInfo(interests);
  client.on('stanza', (el: Element) => {
    const q = el.getChild('query', NS.discoInfo);
    if (el.name !== 'iq' || el.attr('type') !== 'get' || q === undefined) return;
    discoRequests.push(el);
    const reply = new Element('iq', NS.client, { type: 'result', id: el.attr('id'), to: el.attr('from') });
    const answer = query.clone();
    answer.setAttr('node', q.attr('node'));
    reply.append(answer);
    client.send(reply);
  });
  const presence = new Element('presence', NS.client);
  presence.c('c', { hash: 'sha-1', node: CAPS_NODE, ver }, CAPS_NS);
  client.send(presence);
  return { client, discoRequests };
}

export function publishIq(
  node: string,
  payload: Element,
  id?: string,
  options?: Record<string, string>,
): Element {
  const iq = new Element('iq', NS.client, { type: 'set' });
  const pubsub = iq.c('pubsub', {}, PUBSUB_NS);
  pubsub.c('publish', { node }).c('item', { id }).append(payload);
  if (options !== undefined) {
    const x = pubsub.c('publish-options').c('x', { type: 'submit' }, 'jabber:x:data');
    x.c('field', { var: 'FORM_TYPE', type: 'hidden' })
      .c('value')
      .append('http://jabber.org/protocol/pubsub#publish-options');
    for (const [name, value] of Object.entries(options)) x.c('field', { var: name }).c('value').append(value);
  }
  return iq;
}

export function tune(artist: string, title: string): Element {
  const t = new Element('tune', TUNE);
  t.c('artist').append(artist);
  t.c('title').append(title);
  return t;
}

export function onThePhone(text: string): Element {
  const a = new Element('activity', ACTIVITY);
  a.c('talking').c('on_the_phone');
  a.c('text').append(text);
  return a;
}

/** Is this a pubsub#event message for `node` from `from`? */
export function isEvent(el: Element, from: string, node: string): boolean {
  return (
    el.name === 'message' &&
    el.attr('from') === from &&
    el.getChild('event', PUBSUB_EVENT_NS)?.elements()[0]?.attr('node') === node
  );
}

export function pubsubCondition(el: Element): string | undefined {
  return el
    .getChild('error')
    ?.elements()
    .find((e) => e.ns === 'http://jabber.org/protocol/pubsub#errors')?.name;
}

/**
 * Proves that nothing matching `predicate` was ever received: a ping round trip first (the server
 * keeps order), then a look at everything the client got.
 */
export async function assertNever(
  client: XmppClient,
  predicate: (el: Element) => boolean,
  what: string,
): Promise<void> {
  await client.iq(new Element('iq', NS.client, { type: 'get', to: DOMAIN }, [new Element('ping', NS.ping)]));
  const hit = client.received.find(predicate);
  if (hit !== undefined) throw new Error(`unexpected ${what}: ${serialize(hit)}`);
}
