/**
 * The text server's core: bound sessions and connected components, stanza routing (RFC 6120 §10,
 * RFC 6121 §8.5), presence broadcast and probes (RFC 6121 §4), rosters and subscriptions (RFC 6121
 * §2-3), offline messages, and the iq services the server answers itself (XEP-0030, XEP-0092,
 * XEP-0199).
 *
 * Transport-agnostic: a session is anything with `deliver()`; the TCP c2s code, and later WebSocket and
 * stream-management, plug in through the ClientSession interface.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { Element, parseDocument, serialize } from '../xml/index.ts';
import { type Jid, tryParseJid } from '../xmpp/jid.ts';
import { NS } from '../xmpp/ns.ts';
import {
  type ErrorType,
  errorReply,
  iqResult,
  mayAnswerWithError,
  newStanzaId,
  type StanzaErrorCondition,
  type StreamErrorCondition,
} from '../xmpp/stanza.ts';
import { CapsTracker } from './caps.ts';
import { PEP_FEATURES, PepService, PUBSUB_NS, PUBSUB_OWNER_NS } from './pep.ts';
import {
  advertisement,
  allowsRoster,
  checkPrivilegedIq,
  checkPrivilegedMessage,
  forwardedResponse,
  isPrivileged,
  isPrivilegedIq,
  isPrivilegedMessage,
  PRIVILEGE_NS,
  type PrivilegeGrant,
} from './privilege.ts';
import type { RosterItem, Store } from './store.ts';
import {
  inbound,
  isSubscriptionType,
  outbound,
  type SubscriptionType,
  type Transition,
} from './subscription.ts';

/** A bound client session, as the router sees it. */
export interface ClientSession {
  /** The full JID it is bound to. */
  readonly jid: Jid;
  /** Sent initial presence and not yet unavailable. */
  available: boolean;
  priority: number;
  /** The last available presence it broadcast (from = its full JID, no to). */
  presence: Element | undefined;
  /** Asked for the roster, so it gets roster pushes (RFC 6121 §2.1.6 "interested resource"). */
  rosterRequested: boolean;
  /** JIDs it sent directed available presence to (RFC 6121 §4.6): they get unavailable when it leaves. */
  readonly directed: Set<string>;
  /** Enabled XEP-0280 message carbons. */
  carbons: boolean;
  deliver(stanza: Element): void;
  close(condition: StreamErrorCondition, text?: string): void;
}

/** A connected XEP-0114 component, owner of its domain. */
export interface ComponentLink {
  readonly domain: string;
  deliver(stanza: Element): void;
}

export interface RouterOptions {
  domain: string;
  store: Store;
  log: Logger;
  /** Domains that belong to components (connected or not). */
  componentDomains: Iterable<string>;
  /** Offline messages kept per user. */
  offlineLimit?: number;
  /** XEP-0356 permissions per component domain. */
  privileges?: ReadonlyMap<string, PrivilegeGrant>;
  /** How long a privileged iq waits for its answer before the component gets remote-server-timeout. */
  privilegedIqTimeoutMs?: number;
}

/** Privileged iqs (XEP-0356 §6) waiting for their answer, per component. */
const MAX_PENDING_PRIVILEGED_IQS = 256;

interface PendingPrivilegedIq {
  component: string;
  /** The component's request, answered with the forwarded response. */
  outer: Element;
  /** The encapsulated iq's own id (replaced by a unique one while it travels). */
  id: string;
  /** Who must answer: the encapsulated iq's to. */
  target: string;
  timer: NodeJS.Timeout;
}

const PACKAGE_VERSION: string = (() => {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? '0';
  } catch {
    return '0';
  }
})();

export const SERVER_FEATURES = [
  NS.discoInfo,
  NS.discoItems,
  NS.ping,
  NS.version,
  NS.carbons,
  'msgoffline',
  // Not required by XEP-0356; tells a component before it authenticates that privileges exist here.
  PRIVILEGE_NS,
];

/** Features of every account's bare JID (XEP-0030, XEP-0199, and the PEP service of XEP-0163). */
export const ACCOUNT_FEATURES = [NS.discoInfo, NS.discoItems, NS.ping, ...PEP_FEATURES];

/** XEP-0280 §6: chat messages, and normal ones with a body, unless marked private or already a carbon. */
function carbonEligible(message: Element): boolean {
  const type = message.attr('type') ?? 'normal';
  if (type !== 'chat' && !(type === 'normal' && message.getChild('body') !== undefined)) return false;
  return (
    message.getChild('private', NS.carbons) === undefined &&
    message.getChild('no-copy', NS.hints) === undefined &&
    message.getChild('received', NS.carbons) === undefined &&
    message.getChild('sent', NS.carbons) === undefined
  );
}

/** A carbon copy (`sent` or `received`) of a message for one of the user's own resources. */
function carbon(kind: 'sent' | 'received', message: Element, bare: string, to: string): Element {
  const forwarded = new Element('forwarded', NS.forward, {}, [message]);
  return new Element('message', NS.client, { from: bare, to, type: message.attr('type') }, [
    new Element(kind, NS.carbons, {}, [forwarded]),
  ]);
}

const hasFrom = (item: RosterItem | undefined) =>
  item !== undefined && (item.subscription === 'from' || item.subscription === 'both');
const hasTo = (item: RosterItem | undefined) =>
  item !== undefined && (item.subscription === 'to' || item.subscription === 'both');

/** A copy of a stanza with new addresses; children are shared (they are never mutated after parsing). */
function readdress(stanza: Element, from: string | undefined, to: string | undefined): Element {
  return new Element(stanza.name, stanza.ns, { ...stanza.attrs, from, to }, stanza.children);
}

function parsePriority(presence: Element): number {
  const text = presence.getChildText('priority');
  if (text === undefined) return 0;
  const value = Number.parseInt(text.trim(), 10);
  if (!Number.isFinite(value)) return 0;
  return Math.max(-128, Math.min(127, value));
}

export class Router {
  readonly domain: string;
  private readonly store: Store;
  private readonly log: Logger;
  private readonly offlineLimit: number;
  private readonly componentDomains: Set<string>;
  /** localpart -> resource -> session */
  private readonly sessions = new Map<string, Map<string, ClientSession>>();
  private readonly components = new Map<string, ComponentLink>();
  private sessionCount = 0;
  private readonly privileges: ReadonlyMap<string, PrivilegeGrant>;
  private readonly privilegedIqTimeoutMs: number;
  /** `managed bare JID \n unique id` -> privileged iq waiting for its answer. */
  private readonly pendingPrivileged = new Map<string, PendingPrivilegedIq>();
  readonly caps: CapsTracker;
  readonly pep: PepService;
  /** Full JIDs that became available before their caps were known: they get PEP last items later. */
  private readonly awaitingLastItems = new Set<string>();

  constructor(options: RouterOptions) {
    this.domain = options.domain;
    this.store = options.store;
    this.log = options.log;
    this.offlineLimit = options.offlineLimit ?? 100;
    this.componentDomains = new Set(options.componentDomains);
    this.privileges = options.privileges ?? new Map();
    this.privilegedIqTimeoutMs = options.privilegedIqTimeoutMs ?? 30_000;
    this.caps = new CapsTracker({
      domain: this.domain,
      send: (stanza) => this.route(stanza),
      onResolved: (jid) => this.capsResolved(jid),
    });
    this.pep = new PepService({
      domain: this.domain,
      store: this.store,
      log: this.log,
      availableResources: (local) => this.available(local).map((s) => s.jid),
      wantsNotify: (resource, node) => this.caps.wantsNotify(resource.toString(), node),
      route: (stanza) => this.route(stanza),
    });
  }

  get sessionTotal(): number {
    return this.sessionCount;
  }

  get componentTotal(): number {
    return this.components.size;
  }

  isComponentDomain(domain: string): boolean {
    return this.componentDomains.has(domain);
  }

  // ---- sessions and components -------------------------------------------------------------------

  /** The session bound to this full JID, if any. */
  session(jid: Jid): ClientSession | undefined {
    return this.sessions.get(jid.local)?.get(jid.resource);
  }

  sessionsOf(local: string): ClientSession[] {
    const map = this.sessions.get(local);
    return map === undefined ? [] : [...map.values()];
  }

  /**
   * Binds a session. A session already bound to the same full JID is closed with `conflict`
   * (RFC 6120 §7.7.2.2, the policy of Prosody and ejabberd: the newest session wins).
   */
  bind(session: ClientSession): void {
    const old = this.session(session.jid);
    if (old !== undefined && old !== session) {
      this.unbind(old);
      old.close('conflict', 'Replaced by new connection');
    }
    let map = this.sessions.get(session.jid.local);
    if (map === undefined) {
      map = new Map();
      this.sessions.set(session.jid.local, map);
    }
    map.set(session.jid.resource, session);
    this.sessionCount++;
  }

  /** Ends a session: unavailable to subscribers, own resources and directed-presence recipients. */
  unbind(session: ClientSession): void {
    const map = this.sessions.get(session.jid.local);
    if (map === undefined || map.get(session.jid.resource) !== session) return;
    try {
      this.goUnavailable(session, undefined);
    } catch (e) {
      this.log.error({ err: e, jid: session.jid.toString() }, 'error while ending session');
    }
    map.delete(session.jid.resource);
    if (map.size === 0) this.sessions.delete(session.jid.local);
    this.sessionCount--;
  }

  /** A resumed session (XEP-0198) takes the place of the old one, with no presence change. */
  replace(old: ClientSession, session: ClientSession): void {
    const map = this.sessions.get(old.jid.local);
    if (map === undefined || map.get(old.jid.resource) !== old) return;
    map.set(session.jid.resource, session);
  }

  /** Registers a component for its domain; false when one is already connected. */
  attachComponent(link: ComponentLink): boolean {
    if (this.components.has(link.domain)) return false;
    this.components.set(link.domain, link);
    this.componentDomains.add(link.domain);
    return true;
  }

  detachComponent(link: ComponentLink): void {
    if (this.components.get(link.domain) === link) this.components.delete(link.domain);
  }

  /** The XEP-0356 permissions of a component domain (undefined: none). */
  grantOf(component: string): PrivilegeGrant | undefined {
    const grant = this.privileges.get(component);
    return grant !== undefined && isPrivileged(grant) ? grant : undefined;
  }

  /** Connected components with a grant, and the grant. */
  private privilegedComponents(): { link: ComponentLink; grant: PrivilegeGrant }[] {
    const out: { link: ComponentLink; grant: PrivilegeGrant }[] = [];
    for (const link of this.components.values()) {
      const grant = this.grantOf(link.domain);
      if (grant !== undefined) out.push({ link, grant });
    }
    return out;
  }

  /**
   * A component finished its handshake: XEP-0356 §3.2 advertisement of its permissions, then (§8
   * rule 1) the current presence of every available resource when it may see managed presence.
   */
  componentReady(link: ComponentLink): void {
    const grant = this.grantOf(link.domain);
    if (grant === undefined) return;
    link.deliver(advertisement(this.domain, link.domain, grant, newStanzaId()));
    this.log.info({ component: link.domain }, 'privileged entity connected');
    if (grant.presence !== 'managed_entity') return;
    for (const map of this.sessions.values())
      for (const s of map.values())
        if (s.available && s.presence !== undefined)
          link.deliver(readdress(s.presence, s.jid.toString(), link.domain));
  }

  // ---- entry points --------------------------------------------------------------------------------

  /** A stanza from a bound client session (from is stamped here: RFC 6120 §8.1.2.1). */
  fromClient(session: ClientSession, stanza: Element): void {
    stanza.setAttr('from', session.jid.toString());
    const toAttr = stanza.attr('to');
    let to: Jid | undefined;
    if (toAttr !== undefined) {
      to = tryParseJid(toAttr);
      if (to === undefined) {
        if (mayAnswerWithError(stanza)) {
          const reply = errorReply(stanza, 'modify', 'jid-malformed');
          reply.setAttr('from', undefined);
          session.deliver(reply);
        }
        return;
      }
      stanza.setAttr('to', to.toString());
    }
    switch (stanza.name) {
      case 'presence':
        this.presenceFromClient(session, stanza, to);
        return;
      case 'message':
        if (to === undefined) stanza.setAttr('to', session.jid.bare().toString());
        this.sentCarbons(session, stanza);
        this.route(stanza);
        return;
      case 'iq':
        if (to === undefined || to.equals(session.jid.bare())) {
          // An answer to a privileged iq that was sent as this user to one of the user's own resources.
          const type = stanza.attr('type');
          if (
            to !== undefined &&
            (type === 'result' || type === 'error') &&
            this.privilegedResponse(stanza, to)
          )
            return;
          this.accountIq(stanza, session.jid.local, session.jid);
        } else if (to.isDomain && to.domain === this.domain) {
          this.serverIq(stanza);
        } else {
          this.route(stanza);
        }
        return;
    }
  }

  /** A stanza from a component; `from` was checked against its domain by the caller. */
  fromComponent(stanza: Element): void {
    if (this.privilegedRequest(stanza)) return;
    if (stanza.attr('to') === undefined) {
      if (stanza.name === 'iq') this.serverIq(stanza);
      else this.drop(stanza, 'component stanza without to');
      return;
    }
    this.route(stanza);
  }

  // ---- XEP-0356 privileged entity ------------------------------------------------------------------

  /** Handles a component's privileged iq, forwarded message or roster request; false for anything else. */
  private privilegedRequest(stanza: Element): boolean {
    const from = tryParseJid(stanza.attr('from'));
    if (from === undefined) return false;
    const toAttr = stanza.attr('to');
    const to = toAttr === undefined ? undefined : tryParseJid(toAttr);
    // A stanza for another component is that component's business.
    if (to !== undefined && to.domain !== this.domain && this.componentDomains.has(to.domain)) return false;
    const grant = this.grantOf(from.domain);
    if (isPrivilegedIq(stanza)) {
      const managed =
        to?.isBare && to.local !== '' && to.domain === this.domain && this.store.hasAccount(to.local)
          ? to
          : undefined;
      const checked = checkPrivilegedIq(stanza, grant, managed);
      if ('refusal' in checked) {
        const { type, condition, text } = checked.refusal;
        this.log.info({ component: from.domain, to: toAttr, condition, text }, 'privileged iq refused');
        this.bounce(stanza, type, condition, text);
      } else {
        this.executePrivilegedIq(from.domain, stanza, checked.inner, managed!);
      }
      return true;
    }
    if (isPrivilegedMessage(stanza) && to?.isDomain && to.domain === this.domain) {
      const checked = checkPrivilegedMessage(
        stanza,
        grant,
        (jid) => jid.domain === this.domain && (jid.local === '' || this.store.hasAccount(jid.local)),
      );
      if ('refusal' in checked) {
        const { type, condition, text } = checked.refusal;
        this.log.info({ component: from.domain, condition, text }, 'privileged message refused');
        this.bounce(stanza, type, condition, text);
      } else {
        this.route(checked.message);
      }
      return true;
    }
    const type = stanza.attr('type');
    const query = stanza.getChild('query', NS.roster);
    if (
      stanza.name === 'iq' &&
      (type === 'get' || type === 'set') &&
      query !== undefined &&
      stanza.elements().length === 1 &&
      to?.isBare &&
      to.local !== '' &&
      to.domain === this.domain &&
      this.store.hasAccount(to.local)
    ) {
      // §3.3: a component reads or edits a user's roster as the user would.
      if (grant !== undefined && allowsRoster(grant, type)) this.rosterIq(stanza, query, to.local, from);
      else this.bounce(stanza, 'auth', 'forbidden', `No roster ${type} privilege granted to this component`);
      return true;
    }
    return false;
  }

  /** §6.3: sends the encapsulated iq as the managed entity; its answer goes back to the component. */
  private executePrivilegedIq(component: string, outer: Element, inner: Element, managed: Jid): void {
    let waiting = 0;
    for (const p of this.pendingPrivileged.values()) if (p.component === component) waiting++;
    if (waiting >= MAX_PENDING_PRIVILEGED_IQS) {
      this.bounce(outer, 'wait', 'resource-constraint', 'Too many privileged iqs waiting for an answer');
      return;
    }
    const id = `priv-${newStanzaId()}`;
    const key = `${managed.toString()}\n${id}`;
    const timer = setTimeout(() => {
      if (this.pendingPrivileged.delete(key))
        this.bounce(outer, 'wait', 'remote-server-timeout', 'No answer to the encapsulated iq');
    }, this.privilegedIqTimeoutMs);
    timer.unref();
    const target = inner.attr('to')!;
    this.pendingPrivileged.set(key, { component, outer, id: inner.attr('id')!, target, timer });
    inner.setAttr('id', id);
    const to = tryParseJid(target)!;
    if (to.equals(managed)) this.accountIq(inner, managed.local, managed);
    else if (to.isDomain && to.domain === this.domain) this.serverIq(inner);
    else this.route(inner);
  }

  /** An iq result or error for a managed bare JID: the answer to a privileged iq? */
  private privilegedResponse(stanza: Element, to: Jid): boolean {
    const key = `${to.bare().toString()}\n${stanza.attr('id') ?? ''}`;
    const pending = this.pendingPrivileged.get(key);
    if (pending === undefined || stanza.attr('from') !== pending.target) return false;
    this.pendingPrivileged.delete(key);
    clearTimeout(pending.timer);
    const response = new Element('iq', NS.client, { ...stanza.attrs, id: pending.id }, stanza.children);
    this.route(forwardedResponse(pending.outer, response));
    return true;
  }

  /** §3.3 roster pushes for components with roster get permission and push on. */
  private privilegedRosterPush(local: string, query: Element): void {
    for (const { link, grant } of this.privilegedComponents()) {
      if (!grant.rosterPush) continue;
      link.deliver(
        new Element(
          'iq',
          NS.client,
          { type: 'set', id: newStanzaId(), from: `${local}@${this.domain}`, to: link.domain },
          [query],
        ),
      );
    }
  }

  /** §7.1 managed entity presence: initial and unavailable presence of every resource. */
  private managedPresence(local: string, presence: Element, me: string): void {
    for (const { link, grant } of this.privilegedComponents()) {
      if (grant.presence !== 'managed_entity') continue;
      // §8 rule 2: a component in the user's roster already got it.
      if (hasFrom(this.store.getRosterItem(local, link.domain))) continue;
      link.deliver(readdress(presence, me, link.domain));
    }
  }

  // ---- XEP-0115 caps and XEP-0163 last items -------------------------------------------------------

  private capsResolved(jid: string): void {
    if (!this.awaitingLastItems.delete(jid)) return;
    const parsed = tryParseJid(jid);
    const session = parsed === undefined ? undefined : this.session(parsed);
    if (session?.available && this.caps.hasInterests(jid)) this.pep.sendLastItems(session.jid);
  }

  /** Routes a stanza with valid from and to. */
  route(stanza: Element): void {
    const to = tryParseJid(stanza.attr('to'));
    if (to === undefined) {
      this.log.warn({ to: stanza.attr('to') }, 'dropping stanza with an invalid to');
      return;
    }
    if (to.domain === this.domain) {
      this.routeLocal(stanza, to);
      return;
    }
    const component = this.components.get(to.domain);
    if (component !== undefined) {
      component.deliver(stanza);
      return;
    }
    if (this.componentDomains.has(to.domain)) {
      this.bounce(stanza, 'wait', 'service-unavailable', 'Component unavailable');
      return;
    }
    // No server-to-server: every other domain is unreachable.
    this.bounce(stanza, 'cancel', 'remote-server-not-found');
  }

  // ---- local delivery (RFC 6121 §8.5) --------------------------------------------------------------

  private routeLocal(stanza: Element, to: Jid): void {
    if (to.local === '') {
      if (to.resource !== '') {
        if (stanza.name === 'iq') this.bounce(stanza, 'cancel', 'service-unavailable');
        else this.drop(stanza, 'domain resource');
        return;
      }
      // Messages and presence addressed to the server itself are not for anyone: ignored (§8.5.1 analogue).
      if (stanza.name === 'iq') this.serverIq(stanza);
      else this.drop(stanza, 'addressed to the server');
      return;
    }
    if (!this.sessions.has(to.local) && !this.store.hasAccount(to.local)) {
      // §8.5.1: no such account. Presence is ignored (no presence leaks); message and iq get an error.
      if (stanza.name !== 'presence') this.bounce(stanza, 'cancel', 'service-unavailable');
      else this.drop(stanza, 'no such account');
      return;
    }
    if (to.isBare) this.toBare(stanza, to);
    else this.toFull(stanza, to);
  }

  /** §8.5.2: addressed to the bare JID of an existing account. */
  private toBare(stanza: Element, to: Jid): void {
    const from = tryParseJid(stanza.attr('from'));
    if (from === undefined) return;
    switch (stanza.name) {
      case 'message':
        this.messageToBare(stanza, to);
        return;
      case 'presence': {
        const type = stanza.attr('type');
        if (isSubscriptionType(type)) this.inboundSubscription(to.local, stanza, from, type);
        else if (type === 'probe') this.probe(to.local, from);
        else
          for (const s of this.available(to.local))
            s.deliver(readdress(stanza, stanza.attr('from'), s.jid.toString()));
        return;
      }
      case 'iq': {
        const type = stanza.attr('type');
        if ((type === 'result' || type === 'error') && this.privilegedResponse(stanza, to)) return;
        this.accountIq(stanza, to.local, from);
        return;
      }
    }
  }

  /** §8.5.3: addressed to a full JID of an existing account. */
  private toFull(stanza: Element, to: Jid): void {
    const type = stanza.attr('type');
    if (stanza.name === 'presence' && (isSubscriptionType(type) || type === 'probe')) {
      // Subscription stanzas and probes are always handled for the bare JID (RFC 6121 §3.1.3, §4.3).
      stanza.setAttr('to', to.bare().toString());
      this.toBare(stanza, to.bare());
      return;
    }
    const session = this.session(to);
    if (session !== undefined) {
      session.deliver(stanza);
      if (stanza.name === 'message') this.receivedCarbons(to.local, stanza, [session]);
      return;
    }
    switch (stanza.name) {
      case 'message':
        if (type === undefined || type === 'normal' || type === 'chat') this.messageToBare(stanza, to.bare());
        else if (type === 'groupchat') this.bounce(stanza, 'cancel', 'service-unavailable');
        // headline and error to an unavailable resource: ignored (§8.5.3.2.1).
        else this.drop(stanza, 'resource unavailable');
        return;
      case 'iq':
        this.bounce(stanza, 'cancel', 'service-unavailable');
        return;
      default:
        // Available/unavailable/error presence to a resource that is not there: ignored (§8.5.3.2.3).
        this.drop(stanza, 'resource unavailable');
        return;
    }
  }

  private available(local: string): ClientSession[] {
    const map = this.sessions.get(local);
    if (map === undefined) return [];
    const out: ClientSession[] = [];
    for (const s of map.values()) if (s.available) out.push(s);
    return out;
  }

  /** §8.5.2.1.1 message to a bare JID. */
  private messageToBare(stanza: Element, to: Jid): void {
    const type = stanza.attr('type') ?? 'normal';
    if (type === 'error') {
      this.drop(stanza, 'error message to a bare JID');
      return;
    }
    if (type === 'groupchat') {
      this.bounce(stanza, 'cancel', 'service-unavailable');
      return;
    }
    const candidates = this.available(to.local).filter((s) => s.priority >= 0);
    if (type === 'headline') {
      for (const s of candidates) s.deliver(stanza);
      if (candidates.length === 0) this.drop(stanza, 'headline with no available resource');
      return;
    }
    if (candidates.length === 0) {
      this.storeOffline(stanza, to);
      return;
    }
    const top = Math.max(...candidates.map((s) => s.priority));
    const targets = type === 'chat' ? candidates : candidates.filter((s) => s.priority === top);
    for (const s of targets) s.deliver(stanza);
    this.receivedCarbons(to.local, stanza, targets);
  }

  /** XEP-0280: copies of a message a session sent, for the user's other carbons-enabled resources. */
  private sentCarbons(sender: ClientSession, message: Element): void {
    const others = this.sessionsOf(sender.jid.local).filter((s) => s !== sender && s.carbons);
    if (others.length === 0 || !carbonEligible(message)) return;
    const bare = sender.jid.bare().toString();
    for (const s of others) s.deliver(carbon('sent', message, bare, s.jid.toString()));
  }

  /** XEP-0280: copies of a delivered message for the recipient's other carbons-enabled resources. */
  private receivedCarbons(local: string, message: Element, deliveredTo: ClientSession[]): void {
    const others = this.available(local).filter((s) => s.carbons && !deliveredTo.includes(s));
    if (others.length === 0 || !carbonEligible(message)) return;
    const bare = `${local}@${this.domain}`;
    for (const s of others) s.deliver(carbon('received', message, bare, s.jid.toString()));
  }

  private storeOffline(stanza: Element, to: Jid): void {
    if (stanza.getChild('body') === undefined && stanza.getChild('subject') === undefined) {
      this.drop(stanza, 'no body to keep offline');
      return;
    }
    const copy = new Element('message', NS.client, { ...stanza.attrs, to: to.toString() }, [
      ...stanza.children,
    ]);
    const stamp = new Date().toISOString();
    copy.append(new Element('delay', NS.delay, { from: this.domain, stamp }, ['Offline storage']));
    let stored = false;
    try {
      stored = this.store.pushOffline(to.local, { xml: serialize(copy, null), stamp }, this.offlineLimit);
    } catch (e) {
      this.log.error({ err: e }, 'offline storage failed');
    }
    if (!stored) this.bounce(stanza, 'cancel', 'service-unavailable', 'Offline storage is full');
  }

  private deliverOffline(session: ClientSession): void {
    for (const message of this.store.takeOffline(session.jid.local)) {
      try {
        session.deliver(parseDocument(message.xml));
      } catch (e) {
        this.log.error({ err: e }, 'dropping unreadable offline message');
      }
    }
  }

  /** Stanzas the RFCs say to ignore: not answered, but logged (SPEC.md §5: no silent loss). */
  private drop(stanza: Element, reason: string): void {
    this.log.debug(
      {
        reason,
        stanza: stanza.name,
        type: stanza.attr('type'),
        from: stanza.attr('from'),
        to: stanza.attr('to'),
        id: stanza.attr('id'),
      },
      'stanza ignored',
    );
  }

  /** Answers a stanza with an error, unless it is itself an error or an iq result (RFC 6120 §8.3.1). */
  bounce(stanza: Element, type: ErrorType, condition: StanzaErrorCondition, text?: string): void {
    if (!mayAnswerWithError(stanza)) return;
    if (stanza.attr('from') === undefined) return;
    const reply = errorReply(stanza, type, condition, text, NS.client);
    if (reply.attr('from') === undefined) reply.setAttr('from', this.domain);
    this.route(reply);
  }

  // ---- presence (RFC 6121 §4) ----------------------------------------------------------------------

  private presenceFromClient(session: ClientSession, stanza: Element, to: Jid | undefined): void {
    const type = stanza.attr('type');
    if (to === undefined) {
      if (type === undefined) this.broadcastAvailable(session, stanza);
      else if (type === 'unavailable') this.goUnavailable(session, stanza);
      // Other types without a 'to' mean nothing: ignored.
      return;
    }
    if (isSubscriptionType(type)) {
      this.outboundSubscription(session, stanza, to, type);
      return;
    }
    if (type === undefined) session.directed.add(to.toString());
    else if (type === 'unavailable') session.directed.delete(to.toString());
    this.route(stanza);
  }

  private broadcastAvailable(session: ClientSession, stanza: Element): void {
    const local = session.jid.local;
    const me = session.jid.toString();
    const presence = readdress(stanza, me, undefined);
    const initial = !session.available;
    session.available = true;
    session.priority = parsePriority(stanza);
    session.presence = presence;
    const capsKnown = this.caps.observe(me, presence);
    const roster = this.store.getRoster(local);
    for (const item of roster) if (hasFrom(item)) this.route(readdress(presence, me, item.jid));
    for (const s of this.available(local)) s.deliver(readdress(presence, me, s.jid.toString()));
    if (!initial) return;
    const bare = session.jid.bare().toString();
    for (const item of roster) {
      if (hasTo(item))
        this.route(new Element('presence', NS.client, { type: 'probe', from: bare, to: item.jid }));
    }
    for (const s of this.available(local)) {
      if (s !== session && s.presence !== undefined)
        session.deliver(readdress(s.presence, s.jid.toString(), me));
    }
    for (const item of roster) {
      if (item.pendingIn)
        session.deliver(new Element('presence', NS.client, { type: 'subscribe', from: item.jid, to: bare }));
    }
    if (session.priority >= 0) this.deliverOffline(session);
    this.managedPresence(local, presence, me);
    // XEP-0163 §5.3.4: the last items, once the server knows what this resource wants.
    if (!capsKnown) this.awaitingLastItems.add(me);
    else if (this.caps.hasInterests(me)) this.pep.sendLastItems(session.jid);
  }

  /** Unavailable presence from a session (sent by the client, or generated when it ends). */
  private goUnavailable(session: ClientSession, stanza: Element | undefined): void {
    const me = session.jid.toString();
    const presence =
      stanza === undefined
        ? new Element('presence', NS.client, { type: 'unavailable', from: me })
        : readdress(stanza, me, undefined);
    const covered = new Set<string>();
    this.caps.forget(me);
    this.awaitingLastItems.delete(me);
    if (session.available) {
      this.managedPresence(session.jid.local, presence, me);
      for (const item of this.store.getRoster(session.jid.local)) {
        if (!hasFrom(item)) continue;
        covered.add(item.jid);
        this.route(readdress(presence, me, item.jid));
      }
      for (const s of this.available(session.jid.local)) {
        if (s !== session || stanza !== undefined) s.deliver(readdress(presence, me, s.jid.toString()));
      }
    }
    for (const target of session.directed) {
      const jid = tryParseJid(target);
      if (jid === undefined || (jid.isBare && covered.has(target))) continue;
      this.route(readdress(presence, me, target));
    }
    session.directed.clear();
    session.available = false;
    session.presence = undefined;
  }

  /** RFC 6121 §4.3.2: a probe for `local`'s presence. */
  private probe(local: string, from: Jid): void {
    const bare = `${local}@${this.domain}`;
    const item = this.store.getRosterItem(local, from.bare().toString());
    const to = from.toString();
    if (!hasFrom(item)) {
      if (from.bare().toString() !== bare)
        this.route(
          new Element('presence', NS.client, {
            type: 'unsubscribed',
            from: bare,
            to: from.bare().toString(),
          }),
        );
      return;
    }
    const available = this.available(local);
    if (available.length === 0) {
      this.route(new Element('presence', NS.client, { type: 'unavailable', from: bare, to }));
      return;
    }
    for (const s of available)
      if (s.presence !== undefined) this.route(readdress(s.presence, s.jid.toString(), to));
  }

  // ---- subscriptions (RFC 6121 §3) -----------------------------------------------------------------

  private outboundSubscription(
    session: ClientSession,
    stanza: Element,
    to: Jid,
    type: SubscriptionType,
  ): void {
    const local = session.jid.local;
    const bare = session.jid.bare().toString();
    const contact = to.bare().toString();
    if (contact === bare) return;
    const t = outbound(this.store.getRosterItem(local, contact), contact, type);
    this.apply(local, contact, t);
    if (t.forward)
      this.route(
        new Element(
          'presence',
          NS.client,
          { ...stanza.attrs, type, from: bare, to: contact },
          stanza.children,
        ),
      );
    this.presenceSideEffects(local, contact, t);
  }

  private inboundSubscription(local: string, stanza: Element, from: Jid, type: SubscriptionType): void {
    const contact = from.bare().toString();
    const bare = `${local}@${this.domain}`;
    if (contact === bare) return;
    const t = inbound(this.store.getRosterItem(local, contact), contact, type);
    this.apply(local, contact, t);
    if (t.forward) {
      for (const s of this.available(local)) s.deliver(readdress(stanza, contact, bare));
    }
    if (t.autoApprove)
      this.route(new Element('presence', NS.client, { type: 'subscribed', from: bare, to: contact }));
    this.presenceSideEffects(local, contact, t);
  }

  private presenceSideEffects(local: string, contact: string, t: Transition): void {
    for (const s of this.available(local)) {
      const me = s.jid.toString();
      if (t.sendPresence && s.presence !== undefined) this.route(readdress(s.presence, me, contact));
      if (t.sendUnavailable)
        this.route(new Element('presence', NS.client, { type: 'unavailable', from: me, to: contact }));
    }
    // XEP-0163 §5.3.4: a new (implicit) PEP subscriber gets the last items of `local` at once.
    const subscriber = t.sendPresence ? tryParseJid(contact) : undefined;
    if (subscriber !== undefined && subscriber.domain === this.domain && subscriber.local !== '')
      for (const s of this.available(subscriber.local)) this.pep.sendLastItems(s.jid, local);
  }

  private apply(local: string, contact: string, t: Transition): void {
    if (t.changed) {
      if (t.item === undefined) this.store.deleteRosterItem(local, contact);
      else this.store.putRosterItem(local, t.item);
    }
    if (t.push) this.rosterPush(local, t.item?.listed ? t.item : undefined, contact);
  }

  // ---- rosters (RFC 6121 §2) -----------------------------------------------------------------------

  /**
   * RFC 6121 §2.6 roster version: a digest of the visible roster, so it needs no storage and is the
   * same for the same roster whatever happened in between.
   */
  private rosterVersion(items: RosterItem[]): string {
    const hash = createHash('sha1');
    for (const item of items) {
      if (!item.listed) continue;
      hash.update(JSON.stringify([item.jid, item.name ?? null, item.subscription, item.ask, item.groups]));
    }
    return hash.digest('base64url').slice(0, 20);
  }

  private rosterPush(local: string, item: RosterItem | undefined, jid: string): void {
    this.privilegedRosterPush(
      local,
      new Element('query', NS.roster, {}, [
        item === undefined
          ? new Element('item', NS.roster, { jid, subscription: 'remove' })
          : itemElement(item),
      ]),
    );
    const interested = this.sessionsOf(local).filter((s) => s.rosterRequested);
    if (interested.length === 0) return;
    const ver = this.rosterVersion(this.store.getRoster(local));
    for (const s of interested) {
      const iq = new Element('iq', NS.client, { type: 'set', id: newStanzaId(), to: s.jid.toString() });
      const query = iq.c('query', { ver }, NS.roster);
      query.append(
        item === undefined
          ? new Element('item', NS.roster, { jid, subscription: 'remove' })
          : itemElement(item),
      );
      s.deliver(iq);
    }
  }

  private rosterIq(stanza: Element, query: Element, local: string, requester: Jid): void {
    const type = stanza.attr('type');
    const session = this.session(requester);
    if (type === 'get') {
      if (session !== undefined) session.rosterRequested = true;
      const items = this.store.getRoster(local);
      const ver = this.rosterVersion(items);
      const reply = iqResult(stanza, NS.client);
      // Unchanged since the client's cached version: an empty result (RFC 6121 §2.6.3).
      if (query.attr('ver') !== ver) {
        const q = reply.c('query', query.attr('ver') === undefined ? {} : { ver }, NS.roster);
        for (const item of items) if (item.listed) q.append(itemElement(item));
      }
      this.reply(reply, requester);
      return;
    }
    const items = query.getChildren('item', NS.roster);
    if (items.length !== 1) {
      this.replyError(stanza, requester, 'modify', 'bad-request', 'A roster set carries exactly one item');
      return;
    }
    const el = items[0]!;
    const jid = tryParseJid(el.attr('jid'));
    if (jid === undefined) {
      this.replyError(stanza, requester, 'modify', 'jid-malformed');
      return;
    }
    const contact = jid.toString();
    const current = this.store.getRosterItem(local, contact);
    if (el.attr('subscription') === 'remove') {
      if (current === undefined || !current.listed) {
        this.replyError(stanza, requester, 'cancel', 'item-not-found');
        return;
      }
      this.removeRosterItem(local, current);
      this.reply(iqResult(stanza, NS.client), requester);
      this.rosterPush(local, undefined, contact);
      return;
    }
    const name = el.attr('name');
    const groups = el.getChildren('group', NS.roster).map((g) => g.text());
    if (
      groups.some((g) => g.length === 0 || Buffer.byteLength(g) > 1023) ||
      (name !== undefined && Buffer.byteLength(name) > 1023)
    ) {
      this.replyError(stanza, requester, 'modify', 'not-acceptable');
      return;
    }
    if (new Set(groups).size !== groups.length) {
      this.replyError(stanza, requester, 'modify', 'bad-request', 'Duplicate group');
      return;
    }
    const item: RosterItem = {
      jid: contact,
      name: name === '' ? undefined : name,
      subscription: current?.subscription ?? 'none',
      ask: current?.ask ?? false,
      pendingIn: current?.pendingIn ?? false,
      approved: current?.approved ?? false,
      listed: true,
      groups,
    };
    this.store.putRosterItem(local, item);
    this.reply(iqResult(stanza, NS.client), requester);
    this.rosterPush(local, item, contact);
  }

  /** RFC 6121 §2.5.2: removing an item cancels both subscription directions. */
  private removeRosterItem(local: string, item: RosterItem): void {
    const bare = `${local}@${this.domain}`;
    if (hasTo(item) || item.ask)
      this.route(new Element('presence', NS.client, { type: 'unsubscribe', from: bare, to: item.jid }));
    if (hasFrom(item) || item.pendingIn) {
      this.route(new Element('presence', NS.client, { type: 'unsubscribed', from: bare, to: item.jid }));
      if (hasFrom(item)) {
        for (const s of this.available(local))
          this.route(
            new Element('presence', NS.client, { type: 'unavailable', from: s.jid.toString(), to: item.jid }),
          );
      }
    }
    this.store.deleteRosterItem(local, item.jid);
  }

  // ---- iq services ---------------------------------------------------------------------------------

  private reply(reply: Element, to: Jid): void {
    reply.setAttr('to', to.toString());
    this.route(reply);
  }

  private replyError(
    stanza: Element,
    to: Jid,
    type: ErrorType,
    condition: StanzaErrorCondition,
    text?: string,
  ): void {
    const reply = errorReply(stanza, type, condition, text, NS.client);
    this.reply(reply, to);
  }

  /** An iq for an account's bare JID (or with no 'to' from the account's own session). */
  private accountIq(stanza: Element, local: string, from: Jid): void {
    const type = stanza.attr('type');
    if (type !== 'get' && type !== 'set') return;
    const self = from.local === local && from.domain === this.domain;
    const payload = stanza.elements()[0];
    if (payload === undefined) {
      this.replyError(stanza, from, 'modify', 'bad-request');
      return;
    }
    if (stanza.attr('to') === undefined && !self) return;
    if (payload.ns === NS.roster && payload.name === 'query') {
      if (self) this.rosterIq(stanza, payload, local, from);
      else this.replyError(stanza, from, 'cancel', 'service-unavailable');
      return;
    }
    if (
      payload.ns === NS.carbons &&
      self &&
      type === 'set' &&
      (payload.name === 'enable' || payload.name === 'disable')
    ) {
      const session = this.session(from);
      if (session !== undefined) session.carbons = payload.name === 'enable';
      this.reply(iqResult(stanza, NS.client), from);
      return;
    }
    if (payload.ns === NS.session && self) {
      this.reply(iqResult(stanza, NS.client), from);
      return;
    }
    if (payload.ns === NS.ping && type === 'get') {
      this.reply(iqResult(stanza, NS.client), from);
      return;
    }
    if (payload.ns === PUBSUB_NS || payload.ns === PUBSUB_OWNER_NS) {
      this.reply(this.pep.handleIq(stanza, payload, local, from), from);
      return;
    }
    if ((payload.ns === NS.discoInfo || payload.ns === NS.discoItems) && type === 'get') {
      this.accountDisco(stanza, payload, local, from);
      return;
    }
    this.replyError(stanza, from, 'cancel', 'service-unavailable');
  }

  /** XEP-0030 on an account's bare JID: the account, its PEP service (XEP-0163 §8.1) and its nodes. */
  private accountDisco(stanza: Element, payload: Element, local: string, from: Jid): void {
    const node = payload.attr('node');
    const reply = iqResult(stanza, NS.client);
    const q = reply.c('query', { node }, payload.ns);
    if (payload.ns === NS.discoInfo) {
      if (node === undefined) {
        q.c('identity', { category: 'account', type: 'registered' });
        q.c('identity', { category: 'pubsub', type: 'pep' });
        for (const f of ACCOUNT_FEATURES) q.c('feature', { var: f });
      } else if (!this.pep.discoNodeInfo(local, node, from, q)) {
        this.replyError(stanza, from, 'cancel', 'item-not-found');
        return;
      }
    } else if (node === undefined) {
      this.pep.discoItems(local, from, q);
    } else if (!this.pep.discoNodeItems(local, node, from, q)) {
      this.replyError(stanza, from, 'cancel', 'item-not-found');
      return;
    }
    this.reply(reply, from);
  }

  /** An iq for the server's own domain. */
  private serverIq(stanza: Element): void {
    const type = stanza.attr('type');
    if (type === 'result' || type === 'error') {
      // Answers to the server's own requests (XEP-0115 disco#info); anything else is dropped.
      if (!this.caps.handleResponse(stanza)) this.drop(stanza, 'unexpected iq answer');
      return;
    }
    if (type !== 'get' && type !== 'set') return;
    const from = tryParseJid(stanza.attr('from'));
    if (from === undefined) return;
    const payload = stanza.elements()[0];
    if (payload === undefined) {
      this.replyError(stanza, from, 'modify', 'bad-request');
      return;
    }
    const reply = iqResult(stanza, NS.client);
    reply.setAttr('from', this.domain);
    if (payload.ns === NS.ping && type === 'get') {
      this.reply(reply, from);
      return;
    }
    if (payload.ns === NS.session) {
      this.reply(reply, from);
      return;
    }
    if (payload.ns === NS.discoInfo && type === 'get') {
      if (payload.attr('node') !== undefined) {
        this.replyError(stanza, from, 'cancel', 'item-not-found');
        return;
      }
      const q = reply.c('query', {}, NS.discoInfo);
      q.c('identity', { category: 'server', type: 'im', name: 'Switchboard' });
      for (const f of SERVER_FEATURES) q.c('feature', { var: f });
      this.reply(reply, from);
      return;
    }
    if (payload.ns === NS.discoItems && type === 'get') {
      const q = reply.c('query', {}, NS.discoItems);
      if (payload.attr('node') === undefined)
        for (const d of [...this.componentDomains].sort()) q.c('item', { jid: d });
      this.reply(reply, from);
      return;
    }
    if (payload.ns === NS.version && type === 'get') {
      const q = reply.c('query', {}, NS.version);
      q.c('name').append('Switchboard');
      q.c('version').append(PACKAGE_VERSION);
      this.reply(reply, from);
      return;
    }
    if (
      (payload.ns === NS.roster || payload.ns === NS.carbons) &&
      from.domain === this.domain &&
      from.local !== ''
    ) {
      // A client that addressed its roster or carbons request to the domain: treat as its own account.
      this.accountIq(stanza, from.local, from);
      return;
    }
    this.replyError(stanza, from, 'cancel', 'service-unavailable');
  }

  /** Closes every session (server shutdown). */
  closeAll(condition: StreamErrorCondition, text?: string): void {
    for (const map of [...this.sessions.values()])
      for (const s of [...map.values()]) s.close(condition, text);
  }

  /** Stops the router's timers (pending privileged iqs, caps requests). */
  close(): void {
    for (const p of this.pendingPrivileged.values()) clearTimeout(p.timer);
    this.pendingPrivileged.clear();
    this.caps.close();
  }
}

function itemElement(item: RosterItem): Element {
  const el = new Element('item', NS.roster, {
    jid: item.jid,
    name: item.name,
    subscription: item.subscription,
    ask: item.ask ? 'subscribe' : undefined,
  });
  for (const g of item.groups) el.append(new Element('group', NS.roster, {}, [g]));
  return el;
}
