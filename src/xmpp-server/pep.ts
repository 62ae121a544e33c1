/**
 * XEP-0163 Personal Eventing Protocol: every account is a pubsub service (XEP-0060 subset) at its bare
 * JID. Nodes are created on first publish, default to the "presence" access model and keep their last
 * item (max_items 1 unless publish-options or the node configuration say otherwise). Notifications go
 * to the owner's available resources and to the available resources of contacts with a presence
 * subscription to the owner ("auto-subscribe"), filtered on their XEP-0115 "NODE+notify" features; a
 * resource that becomes available gets the last item of every node it is interested in.
 * Explicit subscriptions (XEP-0060 §6.1) exist too, for entities without a presence subscription
 * (open nodes) or without caps (a component).
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { Element, parseDocument, serialize } from '../xml/index.ts';
import { type Jid, tryParseJid } from '../xmpp/jid.ts';
import { NS } from '../xmpp/ns.ts';
import {
  type ErrorType,
  errorReply,
  iqResult,
  newStanzaId,
  type StanzaErrorCondition,
} from '../xmpp/stanza.ts';
import { DEFAULT_PEP_NODE_CONFIG, type PepItem, type PepNodeConfig, type Store } from './store.ts';

export const PUBSUB_NS = 'http://jabber.org/protocol/pubsub';
export const PUBSUB_OWNER_NS = 'http://jabber.org/protocol/pubsub#owner';
export const PUBSUB_EVENT_NS = 'http://jabber.org/protocol/pubsub#event';
export const PUBSUB_ERRORS_NS = 'http://jabber.org/protocol/pubsub#errors';
const DATA_FORMS_NS = 'jabber:x:data';
const ADDRESS_NS = 'http://jabber.org/protocol/address';
const NODE_CONFIG_FORM = 'http://jabber.org/protocol/pubsub#node_config';
const PUBLISH_OPTIONS_FORM = 'http://jabber.org/protocol/pubsub#publish-options';
const META_DATA_FORM = 'http://jabber.org/protocol/pubsub#meta-data';

export const PEP_LIMITS = {
  /** Nodes one account may have. */
  maxNodes: 256,
  /** Items one node may keep (what max_items "max" means). */
  maxItems: 256,
  /** Bytes of one item's payload, serialized. */
  maxPayloadBytes: 128 * 1024,
  /** Characters of a node name or an item id. */
  maxNameLength: 1024,
  /** Explicit subscriptions one node may have. */
  maxSubscriptions: 1000,
};

/** The XEP-0060 features this service implements (advertised on every account's bare JID). */
export const PEP_FEATURES = [
  PUBSUB_NS,
  ...[
    'access-open',
    'access-presence',
    'access-whitelist',
    'auto-create',
    'auto-subscribe',
    'config-node',
    'config-node-max',
    'create-and-configure',
    'create-nodes',
    'delete-items',
    'delete-nodes',
    'filtered-notifications',
    'item-ids',
    'last-published',
    'multi-items',
    'persistent-items',
    'publish',
    'publish-options',
    'purge-nodes',
    'retract-items',
    'retrieve-affiliations',
    'retrieve-items',
    'retrieve-subscriptions',
    'subscribe',
  ].map((f) => `${PUBSUB_NS}#${f}`),
];

/** What the PEP service needs from the server around it. */
export interface PepHost {
  readonly domain: string;
  readonly store: Store;
  readonly log: Logger;
  /** Full JIDs of the available resources of a local account. */
  availableResources(local: string): Jid[];
  /** Did this resource ask for notifications of this node (XEP-0115 "+notify")? */
  wantsNotify(resource: Jid, node: string): boolean;
  route(stanza: Element): void;
}

class PubsubError {
  readonly type: ErrorType;
  readonly condition: StanzaErrorCondition;
  readonly pubsubCondition: string | undefined;
  readonly text: string | undefined;
  readonly feature: string | undefined;
  constructor(
    type: ErrorType,
    condition: StanzaErrorCondition,
    pubsubCondition?: string,
    text?: string,
    feature?: string,
  ) {
    this.type = type;
    this.condition = condition;
    this.pubsubCondition = pubsubCondition;
    this.text = text;
    this.feature = feature;
  }
}

const fail = (
  type: ErrorType,
  condition: StanzaErrorCondition,
  pubsubCondition?: string,
  text?: string,
): never => {
  throw new PubsubError(type, condition, pubsubCondition, text);
};

const unsupported = (feature: string): never => {
  throw new PubsubError('cancel', 'feature-not-implemented', 'unsupported', undefined, feature);
};

function parseBool(value: string | undefined): boolean | undefined {
  if (value === '1' || value === 'true') return true;
  if (value === '0' || value === 'false') return false;
  return undefined;
}

/** The fields of a submitted data form (XEP-0004), with its FORM_TYPE. */
function readForm(
  x: Element | undefined,
): { formType: string | undefined; fields: Map<string, string[]> } | undefined {
  if (x === undefined) return undefined;
  const fields = new Map<string, string[]>();
  let formType: string | undefined;
  for (const field of x.getChildren('field', DATA_FORMS_NS)) {
    const name = field.attr('var');
    if (name === undefined) continue;
    const values = field.getChildren('value', DATA_FORMS_NS).map((v) => v.text());
    if (name === 'FORM_TYPE') formType = values[0];
    else fields.set(name, values);
  }
  return { formType, fields };
}

/**
 * Applies node configuration fields to a configuration. `strict` (publish-options) refuses fields
 * it does not know; node configuration ignores them, as XEP-0060 §8.2.5 allows for unsupported
 * options that keep their default.
 */
function applyConfig(base: PepNodeConfig, fields: Map<string, string[]>, strict: boolean): PepNodeConfig {
  const config = { ...base };
  const bad = (name: string): never =>
    strict
      ? fail('cancel', 'conflict', 'precondition-not-met', `Unsupported value for ${name}`)
      : fail('modify', 'not-acceptable', undefined, `Unsupported value for ${name}`);
  for (const [name, values] of fields) {
    const value = values[0];
    switch (name) {
      case 'pubsub#access_model':
        if (value === 'open' || value === 'presence' || value === 'whitelist') config.accessModel = value;
        else bad(name);
        break;
      case 'pubsub#max_items': {
        if (value === 'max') {
          config.maxItems = PEP_LIMITS.maxItems;
          break;
        }
        const n = Number(value);
        if (value !== undefined && /^[0-9]{1,9}$/.test(value) && n >= 1 && n <= PEP_LIMITS.maxItems)
          config.maxItems = n;
        else bad(name);
        break;
      }
      case 'pubsub#persist_items': {
        const b = parseBool(value);
        if (b === undefined) bad(name);
        else config.persistItems = b;
        break;
      }
      case 'pubsub#notify_retract': {
        const b = parseBool(value);
        if (b === undefined) bad(name);
        else config.notifyRetract = b;
        break;
      }
      case 'pubsub#send_last_published_item':
        if (value === 'never' || value === 'on_sub' || value === 'on_sub_and_presence')
          config.sendLastPublishedItem = value;
        else bad(name);
        break;
      case 'pubsub#deliver_payloads':
      case 'pubsub#deliver_notifications':
      case 'pubsub#presence_based_delivery':
        // Always on here; asking for anything else cannot be honoured.
        if (parseBool(value) !== true) bad(name);
        break;
      case 'pubsub#title':
        config.title = value;
        break;
      case 'pubsub#type':
        config.type = value;
        break;
      default:
        if (strict) fail('cancel', 'conflict', 'precondition-not-met', `Unknown publish option ${name}`);
    }
  }
  return config;
}

/** Does `config` already satisfy every precondition (XEP-0060 §7.1.5)? */
function meetsPreconditions(config: PepNodeConfig, fields: Map<string, string[]>): boolean {
  const wanted = applyConfig(config, fields, true);
  return JSON.stringify(wanted) === JSON.stringify(config);
}

function configForm(config: PepNodeConfig): Element {
  const x = new Element('x', DATA_FORMS_NS, { type: 'form' });
  const field = (
    name: string,
    type: string,
    value: string | undefined,
    label?: string,
    options?: string[],
  ) => {
    const f = x.c('field', { var: name, type, label });
    for (const o of options ?? []) f.c('option').c('value').append(o);
    if (value !== undefined) f.c('value').append(value);
  };
  field('FORM_TYPE', 'hidden', NODE_CONFIG_FORM);
  field('pubsub#title', 'text-single', config.title, 'A friendly name for the node');
  field(
    'pubsub#type',
    'text-single',
    config.type,
    'The type of node data, usually specified by the namespace of the payload',
  );
  field('pubsub#access_model', 'list-single', config.accessModel, 'Who may subscribe and retrieve items', [
    'open',
    'presence',
    'whitelist',
  ]);
  field('pubsub#max_items', 'text-single', String(config.maxItems), 'Max # of items to persist');
  field('pubsub#persist_items', 'boolean', config.persistItems ? '1' : '0', 'Persist items to storage');
  field(
    'pubsub#notify_retract',
    'boolean',
    config.notifyRetract ? '1' : '0',
    'Notify subscribers when items are removed from the node',
  );
  field(
    'pubsub#send_last_published_item',
    'list-single',
    config.sendLastPublishedItem,
    'When to send the last published item',
    ['never', 'on_sub', 'on_sub_and_presence'],
  );
  field('pubsub#deliver_payloads', 'boolean', '1', 'Deliver payloads with event notifications');
  field('pubsub#deliver_notifications', 'boolean', '1', 'Deliver event notifications');
  return x;
}

function checkName(value: string | undefined, what: 'node' | 'item'): string {
  if (value === undefined || value === '')
    return fail('modify', 'bad-request', what === 'node' ? 'nodeid-required' : 'item-required');
  if (value.length > PEP_LIMITS.maxNameLength)
    return fail('modify', 'not-acceptable', undefined, `${what} name too long`);
  return value;
}

export class PepService {
  private readonly host: PepHost;

  constructor(host: PepHost) {
    this.host = host;
  }

  private bare(owner: string): string {
    return `${owner}@${this.host.domain}`;
  }

  private isOwner(owner: string, requester: Jid): boolean {
    return requester.local === owner && requester.domain === this.host.domain;
  }

  /** May `requester` see the node's items (XEP-0060 §4.5 access models; owner always)? */
  mayAccess(owner: string, config: PepNodeConfig, requester: Jid): boolean {
    if (this.isOwner(owner, requester)) return true;
    switch (config.accessModel) {
      case 'open':
        return true;
      case 'presence': {
        const item = this.host.store.getRosterItem(owner, requester.bare().toString());
        return item !== undefined && (item.subscription === 'from' || item.subscription === 'both');
      }
      case 'whitelist':
        return false;
    }
  }

  private accessError(config: PepNodeConfig): never {
    if (config.accessModel === 'presence')
      return fail('auth', 'not-authorized', 'presence-subscription-required');
    return fail('cancel', 'not-allowed', 'closed-node');
  }

  // ---- iq requests --------------------------------------------------------------------------------

  /**
   * A pubsub or pubsub#owner iq (get/set) for `owner`'s PEP service from `requester`. Returns the
   * reply (result or error) for the router to send; notifications have gone out by then.
   */
  handleIq(stanza: Element, payload: Element, owner: string, requester: Jid): Element {
    try {
      const result =
        payload.ns === PUBSUB_OWNER_NS
          ? this.ownerRequest(stanza, payload, owner, requester)
          : this.request(stanza, payload, owner, requester);
      return result;
    } catch (e) {
      if (!(e instanceof PubsubError)) throw e;
      const reply = errorReply(stanza, e.type, e.condition, e.text, NS.client);
      if (reply.attr('from') === undefined) reply.setAttr('from', this.bare(owner));
      const error = reply.getChild('error')!;
      if (e.pubsubCondition !== undefined)
        error.c(e.pubsubCondition, { feature: e.feature }, PUBSUB_ERRORS_NS);
      return reply;
    }
  }

  private result(stanza: Element, owner: string): Element {
    const reply = iqResult(stanza, NS.client);
    if (reply.attr('from') === undefined) reply.setAttr('from', this.bare(owner));
    return reply;
  }

  private request(stanza: Element, pubsub: Element, owner: string, requester: Jid): Element {
    const type = stanza.attr('type');
    const all = pubsub.elements().filter((e) => e.ns === PUBSUB_NS);
    // publish-options, configure and options ride along with publish, create and subscribe.
    const main = all.filter((e) => !['publish-options', 'configure', 'options'].includes(e.name));
    const actions = main.length > 0 ? main : all;
    const action = actions[0];
    if (action === undefined || actions.length !== 1) return fail('modify', 'bad-request');
    switch (action.name) {
      case 'publish':
        if (type !== 'set') return fail('modify', 'bad-request');
        return this.publish(stanza, pubsub, action, owner, requester);
      case 'retract':
        if (type !== 'set') return fail('modify', 'bad-request');
        return this.retract(stanza, action, owner, requester);
      case 'items':
        if (type !== 'get') return fail('modify', 'bad-request');
        return this.items(stanza, action, owner, requester);
      case 'create':
        if (type !== 'set') return fail('modify', 'bad-request');
        return this.create(stanza, pubsub, action, owner, requester);
      case 'subscribe':
        if (type !== 'set') return fail('modify', 'bad-request');
        return this.subscribe(stanza, action, owner, requester);
      case 'unsubscribe':
        if (type !== 'set') return fail('modify', 'bad-request');
        return this.unsubscribe(stanza, action, owner, requester);
      case 'subscriptions':
        if (type !== 'get') return fail('modify', 'bad-request');
        return this.ownSubscriptions(stanza, action, owner, requester);
      case 'affiliations': {
        if (type !== 'get') return fail('modify', 'bad-request');
        // Only the owner has an affiliation here (XEP-0060 §5.7).
        const reply = this.result(stanza, owner);
        const list = reply.c('pubsub', {}, PUBSUB_NS).c('affiliations');
        const only = action.attr('node');
        if (this.isOwner(owner, requester))
          for (const { node } of this.host.store.listPepNodes(owner))
            if (only === undefined || only === node) list.c('affiliation', { node, affiliation: 'owner' });
        return reply;
      }
      case 'options':
        return unsupported('subscription-options');
      default:
        return fail('cancel', 'feature-not-implemented');
    }
  }

  private publish(
    stanza: Element,
    pubsub: Element,
    publish: Element,
    owner: string,
    requester: Jid,
  ): Element {
    if (!this.isOwner(owner, requester)) return fail('auth', 'forbidden');
    const node = checkName(publish.attr('node'), 'node');
    const items = publish.getChildren('item', PUBSUB_NS);
    if (items.length === 0) return fail('modify', 'bad-request', 'item-required');
    if (items.length > 1 || publish.elements().length !== 1)
      return fail('modify', 'bad-request', 'invalid-payload');
    const item = items[0]!;
    const payloads = item.elements();
    if (payloads.length === 0) return fail('modify', 'bad-request', 'payload-required');
    if (payloads.length > 1) return fail('modify', 'bad-request', 'invalid-payload');
    const payload = payloads[0]!;
    const xml = serialize(payload, null);
    if (Buffer.byteLength(xml) > PEP_LIMITS.maxPayloadBytes)
      return fail('modify', 'not-acceptable', 'payload-too-big');
    const id =
      item.attr('id') === undefined || item.attr('id') === ''
        ? randomBytes(8).toString('hex')
        : checkName(item.attr('id'), 'item');
    const options = readForm(pubsub.getChild('publish-options', PUBSUB_NS)?.getChild('x', DATA_FORMS_NS));
    if (options !== undefined && options.formType !== PUBLISH_OPTIONS_FORM)
      return fail('modify', 'bad-request', 'invalid-options');
    let config = this.host.store.getPepNode(owner, node);
    if (config === undefined) {
      config =
        options === undefined
          ? { ...DEFAULT_PEP_NODE_CONFIG }
          : applyConfig(DEFAULT_PEP_NODE_CONFIG, options.fields, true);
      this.createNode(owner, node, config);
    } else if (options !== undefined && !meetsPreconditions(config, options.fields)) {
      return fail('cancel', 'conflict', 'precondition-not-met');
    }
    const stamp = new Date().toISOString();
    this.host.store.putPepItem(owner, node, { id, xml, stamp }, config.maxItems);
    const reply = this.result(stanza, owner);
    reply.c('pubsub', {}, PUBSUB_NS).c('publish', { node }).c('item', { id });
    const event = new Element('event', PUBSUB_EVENT_NS);
    event.c('items', { node }).c('item', { id }).append(payload);
    this.broadcast(owner, node, config, event, requester.isBare ? undefined : requester);
    return reply;
  }

  private createNode(owner: string, node: string, config: PepNodeConfig): void {
    if (this.host.store.listPepNodes(owner).length >= PEP_LIMITS.maxNodes)
      fail('wait', 'policy-violation', undefined, `At most ${PEP_LIMITS.maxNodes} nodes per account`);
    this.host.store.putPepNode(owner, node, config);
  }

  private retract(stanza: Element, retract: Element, owner: string, requester: Jid): Element {
    if (!this.isOwner(owner, requester)) return fail('auth', 'forbidden');
    const node = checkName(retract.attr('node'), 'node');
    const item = retract.getChild('item', PUBSUB_NS);
    const id = checkName(item?.attr('id'), 'item');
    const config = this.host.store.getPepNode(owner, node);
    if (config === undefined) return fail('cancel', 'item-not-found');
    if (!this.host.store.deletePepItem(owner, node, id)) return fail('cancel', 'item-not-found');
    const notify = parseBool(retract.attr('notify')) ?? false;
    if (notify) {
      const event = new Element('event', PUBSUB_EVENT_NS);
      event.c('items', { node }).c('retract', { id });
      this.broadcast(owner, node, config, event, undefined);
    }
    return this.result(stanza, owner);
  }

  private items(stanza: Element, request: Element, owner: string, requester: Jid): Element {
    const node = checkName(request.attr('node'), 'node');
    const config = this.host.store.getPepNode(owner, node);
    if (config === undefined) return fail('cancel', 'item-not-found');
    if (!this.mayAccess(owner, config, requester)) return this.accessError(config);
    const ids = request
      .getChildren('item', PUBSUB_NS)
      .map((i) => i.attr('id'))
      .filter((id): id is string => id !== undefined);
    const maxAttr = request.attr('max_items');
    let max: number | undefined;
    if (maxAttr !== undefined) {
      if (!/^[0-9]{1,9}$/.test(maxAttr) || Number(maxAttr) < 1) return fail('modify', 'bad-request');
      max = Number(maxAttr);
    }
    const found = this.host.store.getPepItems(
      owner,
      node,
      ids.length > 0 ? { ids } : max === undefined ? {} : { max },
    );
    const reply = this.result(stanza, owner);
    const items = reply.c('pubsub', {}, PUBSUB_NS).c('items', { node });
    for (const item of found) items.append(this.itemElement(item, PUBSUB_NS));
    return reply;
  }

  /** XEP-0060 §6.1: an explicit subscription, for the requester's own bare or full JID. */
  private subscribe(stanza: Element, subscribe: Element, owner: string, requester: Jid): Element {
    const node = checkName(subscribe.attr('node'), 'node');
    const jid = tryParseJid(subscribe.attr('jid'));
    if (jid === undefined || !jid.bare().equals(requester.bare()))
      return fail('modify', 'bad-request', 'invalid-jid');
    const config = this.host.store.getPepNode(owner, node);
    if (config === undefined) return fail('cancel', 'item-not-found');
    if (!this.mayAccess(owner, config, requester)) return this.accessError(config);
    const existing = this.host.store.listPepSubscriptions(owner, node);
    const current = existing.find((s) => s.jid === jid.toString());
    if (current === undefined && existing.length >= PEP_LIMITS.maxSubscriptions)
      return fail(
        'wait',
        'policy-violation',
        undefined,
        `At most ${PEP_LIMITS.maxSubscriptions} subscriptions per node`,
      );
    const subid = current?.subid ?? randomBytes(8).toString('hex');
    this.host.store.putPepSubscription(owner, { node, jid: jid.toString(), subid });
    const reply = this.result(stanza, owner);
    reply
      .c('pubsub', {}, PUBSUB_NS)
      .c('subscription', { node, jid: jid.toString(), subid, subscription: 'subscribed' });
    // §6.1.7: the last item to the new subscriber.
    if (config.sendLastPublishedItem !== 'never') {
      const last = this.host.store.getPepItems(owner, node, { max: 1 })[0];
      if (last !== undefined) this.sendItem(owner, node, last, jid);
    }
    return reply;
  }

  private unsubscribe(stanza: Element, unsubscribe: Element, owner: string, requester: Jid): Element {
    const node = checkName(unsubscribe.attr('node'), 'node');
    const jid = tryParseJid(unsubscribe.attr('jid'));
    if (jid === undefined || !jid.bare().equals(requester.bare()))
      return fail('modify', 'bad-request', 'invalid-jid');
    if (this.host.store.getPepNode(owner, node) === undefined) return fail('cancel', 'item-not-found');
    if (!this.host.store.deletePepSubscription(owner, node, jid.toString()))
      return fail('cancel', 'unexpected-request', 'not-subscribed');
    return this.result(stanza, owner);
  }

  /** XEP-0060 §5.6: the requester's subscriptions at this service. */
  private ownSubscriptions(stanza: Element, request: Element, owner: string, requester: Jid): Element {
    const only = request.attr('node');
    const reply = this.result(stanza, owner);
    const list = reply.c('pubsub', {}, PUBSUB_NS).c('subscriptions', { node: only });
    for (const sub of this.host.store.listPepSubscriptions(owner, only)) {
      if (tryParseJid(sub.jid)?.bare().equals(requester.bare()))
        list.c('subscription', {
          node: sub.node,
          jid: sub.jid,
          subid: sub.subid,
          subscription: 'subscribed',
        });
    }
    return reply;
  }

  private create(stanza: Element, pubsub: Element, create: Element, owner: string, requester: Jid): Element {
    if (!this.isOwner(owner, requester)) return fail('auth', 'forbidden');
    if (create.attr('node') === undefined) return fail('modify', 'not-acceptable', 'nodeid-required');
    const node = checkName(create.attr('node'), 'node');
    if (this.host.store.getPepNode(owner, node) !== undefined) return fail('cancel', 'conflict');
    const form = readForm(pubsub.getChild('configure', PUBSUB_NS)?.getChild('x', DATA_FORMS_NS));
    const config =
      form === undefined || (form.formType !== undefined && form.formType !== NODE_CONFIG_FORM)
        ? { ...DEFAULT_PEP_NODE_CONFIG }
        : applyConfig(DEFAULT_PEP_NODE_CONFIG, form.fields, false);
    this.createNode(owner, node, config);
    return this.result(stanza, owner);
  }

  private ownerRequest(stanza: Element, pubsub: Element, owner: string, requester: Jid): Element {
    if (!this.isOwner(owner, requester)) return fail('auth', 'forbidden');
    const type = stanza.attr('type');
    const action = pubsub.elements()[0];
    if (action === undefined || pubsub.elements().length !== 1) return fail('modify', 'bad-request');
    if (action.name === 'default' && type === 'get') {
      const reply = this.result(stanza, owner);
      reply.c('pubsub', {}, PUBSUB_OWNER_NS).c('default').append(configForm(DEFAULT_PEP_NODE_CONFIG));
      return reply;
    }
    const node = checkName(action.attr('node'), 'node');
    const config = this.host.store.getPepNode(owner, node);
    if (config === undefined) return fail('cancel', 'item-not-found');
    switch (`${action.name} ${type}`) {
      case 'configure get': {
        const reply = this.result(stanza, owner);
        reply.c('pubsub', {}, PUBSUB_OWNER_NS).c('configure', { node }).append(configForm(config));
        return reply;
      }
      case 'configure set': {
        const form = readForm(action.getChild('x', DATA_FORMS_NS));
        if (form === undefined || form.formType !== NODE_CONFIG_FORM)
          return fail('modify', 'bad-request', 'invalid-options');
        this.host.store.putPepNode(owner, node, applyConfig(config, form.fields, false));
        return this.result(stanza, owner);
      }
      case 'delete set': {
        this.host.store.deletePepNode(owner, node);
        const event = new Element('event', PUBSUB_EVENT_NS);
        event.c('delete', { node });
        this.broadcast(owner, node, config, event, undefined);
        return this.result(stanza, owner);
      }
      case 'purge set': {
        this.host.store.purgePepNode(owner, node);
        const event = new Element('event', PUBSUB_EVENT_NS);
        event.c('purge', { node });
        this.broadcast(owner, node, config, event, undefined);
        return this.result(stanza, owner);
      }
      case 'subscriptions get': {
        const reply = this.result(stanza, owner);
        const list = reply.c('pubsub', {}, PUBSUB_OWNER_NS).c('subscriptions', { node });
        for (const sub of this.host.store.listPepSubscriptions(owner, node))
          list.c('subscription', { jid: sub.jid, subscription: 'subscribed', subid: sub.subid });
        return reply;
      }
      case 'subscriptions set':
        return unsupported('manage-subscriptions');
      case 'affiliations get':
      case 'affiliations set':
        return unsupported('modify-affiliations');
      default:
        return fail('modify', 'bad-request');
    }
  }

  // ---- notifications ------------------------------------------------------------------------------

  private itemElement(item: PepItem, ns: string): Element {
    const el = new Element('item', ns, { id: item.id });
    try {
      el.append(parseDocument(item.xml));
    } catch (e) {
      this.host.log.error({ err: e, id: item.id }, 'unreadable stored PEP item');
    }
    return el;
  }

  /** The resources that get notifications of `owner`'s node: own and contacts', filtered on +notify. */
  recipients(owner: string, node: string, config: PepNodeConfig): Jid[] {
    const out: Jid[] = [];
    for (const jid of this.host.availableResources(owner))
      if (this.host.wantsNotify(jid, node)) out.push(jid);
    this.explicitRecipients(owner, node, config, out);
    if (config.accessModel === 'whitelist') return out;
    for (const item of this.host.store.getRoster(owner)) {
      if (item.subscription !== 'from' && item.subscription !== 'both') continue;
      const contact = tryParseJid(item.jid);
      if (
        contact === undefined ||
        contact.domain !== this.host.domain ||
        contact.local === '' ||
        contact.local === owner
      )
        continue;
      for (const jid of this.host.availableResources(contact.local))
        if (this.host.wantsNotify(jid, node) && !out.some((o) => o.equals(jid))) out.push(jid);
    }
    return out;
  }

  /**
   * XEP-0163 §5.3.2 for explicit subscribers still allowed to see the node: a full JID gets one
   * notification; a local bare JID one per available resource that wants the node; any other bare JID
   * one at the bare JID.
   */
  private explicitRecipients(owner: string, node: string, config: PepNodeConfig, out: Jid[]): void {
    for (const sub of this.host.store.listPepSubscriptions(owner, node)) {
      const jid = tryParseJid(sub.jid);
      if (jid === undefined || !this.mayAccess(owner, config, jid)) continue;
      const targets =
        jid.isBare && jid.domain === this.host.domain && jid.local !== ''
          ? this.host.availableResources(jid.local).filter((r) => this.host.wantsNotify(r, node))
          : [jid];
      for (const target of targets) if (!out.some((o) => o.equals(target))) out.push(target);
    }
  }

  /** One item as a notification to one JID, with the time it was published. */
  private sendItem(owner: string, node: string, item: PepItem, to: Jid): void {
    const event = new Element('event', PUBSUB_EVENT_NS);
    event.c('items', { node }).append(this.itemElement(item, PUBSUB_EVENT_NS));
    const message = new Element('message', NS.client, {
      from: this.bare(owner),
      to: to.toString(),
      type: 'headline',
      id: newStanzaId(),
    });
    message.append(event);
    message.c('delay', { stamp: item.stamp, from: this.bare(owner) }, NS.delay);
    this.host.route(message);
  }

  private broadcast(
    owner: string,
    node: string,
    config: PepNodeConfig,
    event: Element,
    publisher: Jid | undefined,
  ): void {
    const from = this.bare(owner);
    for (const to of this.recipients(owner, node, config)) {
      const message = new Element(
        'message',
        NS.client,
        { from, to: to.toString(), type: 'headline', id: newStanzaId() },
        [event],
      );
      if (publisher !== undefined) {
        // XEP-0163 §5.3.1.3: which of the owner's resources published.
        message.c('addresses', {}, ADDRESS_NS).c('address', { type: 'replyto', jid: publisher.toString() });
      }
      this.host.route(message);
    }
  }

  /**
   * XEP-0163 §5.3.3 / §5.3.4: a resource just became available (and its caps are known): it gets the
   * last item of every node it may see and is interested in, its own account's and its contacts'
   * (or only `owner`'s, for a subscription that just started).
   */
  sendLastItems(resource: Jid, owner?: string): void {
    const local = resource.local;
    const owners = new Set<string>(owner === undefined ? [local] : [owner]);
    if (owner === undefined)
      for (const item of this.host.store.getRoster(local)) {
        if (item.subscription !== 'to' && item.subscription !== 'both') continue;
        const contact = tryParseJid(item.jid);
        if (
          contact !== undefined &&
          contact.domain === this.host.domain &&
          contact.local !== '' &&
          contact.isBare
        )
          owners.add(contact.local);
      }
    // On presence only for on_sub_and_presence; for a new subscription on_sub too.
    const when = owner === undefined ? ['on_sub_and_presence'] : ['on_sub', 'on_sub_and_presence'];
    for (const publisher of owners) {
      for (const { node, config } of this.host.store.listPepNodes(publisher)) {
        if (!when.includes(config.sendLastPublishedItem)) continue;
        if (!this.host.wantsNotify(resource, node) || !this.mayAccess(publisher, config, resource)) continue;
        const last = this.host.store.getPepItems(publisher, node, { max: 1 })[0];
        if (last !== undefined) this.sendItem(publisher, node, last, resource);
      }
    }
  }

  // ---- service discovery (XEP-0030 on the account's bare JID) ------------------------------------

  /** Nodes of `owner` that `requester` may see, as disco#items. */
  discoItems(owner: string, requester: Jid, query: Element): void {
    for (const { node, config } of this.host.store.listPepNodes(owner)) {
      if (this.mayAccess(owner, config, requester))
        query.c('item', { jid: this.bare(owner), node, name: config.title }, NS.discoItems);
    }
  }

  /** disco#items on a node: its items by id. False when the node does not exist or may not be seen. */
  discoNodeItems(owner: string, node: string, requester: Jid, query: Element): boolean {
    const config = this.host.store.getPepNode(owner, node);
    if (config === undefined || !this.mayAccess(owner, config, requester)) return false;
    for (const item of this.host.store.getPepItems(owner, node))
      query.c('item', { jid: this.bare(owner), name: item.id }, NS.discoItems);
    return true;
  }

  /** disco#info on a node (XEP-0060 §5.4). False when the node does not exist or may not be seen. */
  discoNodeInfo(owner: string, node: string, requester: Jid, query: Element): boolean {
    const config = this.host.store.getPepNode(owner, node);
    if (config === undefined || !this.mayAccess(owner, config, requester)) return false;
    query.c('identity', { category: 'pubsub', type: 'leaf' }, NS.discoInfo);
    query.c('feature', { var: PUBSUB_NS }, NS.discoInfo);
    const x = query.c('x', { type: 'result' }, DATA_FORMS_NS);
    const field = (name: string, value: string | undefined) => {
      if (value !== undefined) x.c('field', { var: name }).c('value').append(value);
    };
    x.c('field', { var: 'FORM_TYPE', type: 'hidden' }).c('value').append(META_DATA_FORM);
    field('pubsub#access_model', config.accessModel);
    field('pubsub#title', config.title);
    field('pubsub#type', config.type);
    field('pubsub#owner', this.bare(owner));
    return true;
  }
}
