/**
 * A user's own phone state as PEP (XEP-0163), for contacts whose clients show XEP-0108 User Activity,
 * where the text server makes the gateway a privileged entity (XEP-0356). The phone contact's presence
 * (phone.ts) is always sent too; this only adds the user's own "on the phone" activity.
 *
 * Modes, chosen after every (re)connect from what the server grants and advertises:
 * - 'pep-iq': the iq permission for http://jabber.org/protocol/pubsub (urn:xmpp:privilege:2): the gateway
 *   publishes to the user's own PEP node through <privileged_iq>, and the server's PEP service notifies
 *   the contacts (filtered by their +notify caps, last item on login), as XEP-0356 §6 intends.
 * - 'pep-message': message permission "outgoing" and roster "get" (urn:xmpp:privilege:1 or :2, e.g.
 *   ejabberd 23): the gateway sends the PEP notifications itself, as headline messages from the user's
 *   bare JID to each contact with a presence subscription (from/both), forwarded through <privilege>,
 *   the use XEP-0356 §5 gives as its example.
 * - 'presence-only': nothing (usable) granted, [gateway] pep = "off", or a publish failed for reasons
 *   that concern every user.
 *
 * Payload (XEP-0108): ringing / talking / on hold → <talking><on_the_phone/></talking> with the state as
 * text; otherwise an empty <activity/>, which XEP-0108 §3 defines as "stopped". Never a number: every
 * contact sees it. One publish per change of that coarse state, never one per CSTA event.
 */
import { Element } from '../xml/index.ts';
import { stanza } from './component.ts';
import type { PhonePresence } from './device-state.ts';
import type { Logger, XmppSide } from './gateway.ts';

export const PRIVILEGE_NS_1 = 'urn:xmpp:privilege:1';
export const PRIVILEGE_NS_2 = 'urn:xmpp:privilege:2';
const FORWARD_NS = 'urn:xmpp:forward:0';
const CLIENT_NS = 'jabber:client';
const DISCO_INFO_NS = 'http://jabber.org/protocol/disco#info';
const PUBSUB_NS = 'http://jabber.org/protocol/pubsub';
const PUBSUB_EVENT_NS = 'http://jabber.org/protocol/pubsub#event';
export const ACTIVITY_NS = 'http://jabber.org/protocol/activity';
const ROSTER_NS = 'jabber:iq:roster';
const STANZA_ERRORS_NS = 'urn:ietf:params:xml:ns:xmpp-stanzas';

export type PepMode = 'pep-iq' | 'pep-message' | 'presence-only';
export const PEP_MODES: readonly PepMode[] = ['pep-iq', 'pep-message', 'presence-only'];
export type PepSetting = 'auto' | 'off';

/** What a user's phone is doing, as far as their contacts may know. */
export type CoarseState = 'none' | 'ringing' | 'talking' | 'held';

/** What the server advertised in its <privilege/> message (XEP-0356 §4.2, §5.2, §6.2, §7.2). */
export interface Grants {
  ns: string;
  roster: string;
  message: string;
  presence: string;
  /** iq namespace → get | set | both. */
  iq: Map<string, string>;
}

/** Reads a <privilege/> element of either namespace; undefined when the element is not one. */
export function parsePrivilege(privilege: Element): Grants | undefined {
  if (privilege.name !== 'privilege') return undefined;
  if (privilege.ns !== PRIVILEGE_NS_1 && privilege.ns !== PRIVILEGE_NS_2) return undefined;
  const grants: Grants = {
    ns: privilege.ns,
    roster: 'none',
    message: 'none',
    presence: 'none',
    iq: new Map(),
  };
  for (const perm of privilege.getChildren('perm', privilege.ns)) {
    const access = perm.attr('access');
    const type = perm.attr('type') ?? 'none';
    if (access === 'roster') grants.roster = type;
    else if (access === 'message') grants.message = type;
    else if (access === 'presence') grants.presence = type;
    else if (access === 'iq' && privilege.ns === PRIVILEGE_NS_2) {
      for (const ns of perm.getChildren('namespace', privilege.ns)) {
        const uri = ns.attr('ns');
        const nsType = ns.attr('type');
        if (uri !== undefined && nsType !== undefined) grants.iq.set(uri, nsType);
      }
    }
  }
  return grants;
}

export function coarseStateOf(presence: PhonePresence | undefined): CoarseState {
  if (presence === undefined || !presence.available || presence.show !== 'dnd') return 'none';
  if (presence.status === 'Ringing') return 'ringing';
  if (presence.status === 'On hold') return 'held';
  return 'talking';
}

const ACTIVITY_TEXT: Record<Exclude<CoarseState, 'none'>, string> = {
  ringing: 'Ringing',
  talking: 'On the phone',
  held: 'On hold',
};

/** The XEP-0108 <activity/> for a coarse state: talking/on_the_phone with a text, or empty. */
export function activityPayload(state: CoarseState): Element {
  const activity = new Element('activity', ACTIVITY_NS);
  if (state === 'none') return activity;
  activity.c('talking').c('on_the_phone');
  activity.c('text', { 'xml:lang': 'en' }).append(ACTIVITY_TEXT[state]);
  return activity;
}

const ITEM_ID = 'current';

/** <pubsub><publish node=activity><item id=current>…</item></publish></pubsub> (XEP-0163 §4.1). */
export function publishPayload(state: CoarseState): Element {
  const pubsub = new Element('pubsub', PUBSUB_NS);
  pubsub.c('publish', { node: ACTIVITY_NS }).c('item', { id: ITEM_ID }).append(activityPayload(state));
  return pubsub;
}

/** <event><items node=activity><item id=current>…</item></items></event> (XEP-0163 §4.3). */
export function eventPayload(state: CoarseState): Element {
  const event = new Element('event', PUBSUB_EVENT_NS);
  event.c('items', { node: ACTIVITY_NS }).c('item', { id: ITEM_ID }).append(activityPayload(state));
  return event;
}

function grantsAllow(type: string | undefined, wanted: 'get' | 'set'): boolean {
  return type === 'both' || type === wanted;
}

export interface ModeChoice {
  mode: PepMode;
  reason: string;
}

/** The mode for what is known; a pure function so each case is easy to test and to explain. */
export function chooseMode(input: {
  setting: PepSetting;
  grants: Grants | undefined;
  /** true: the server domain or a user's account advertises PEP; false: neither does; undefined: unknown. */
  pepAdvertised: boolean | undefined;
  /** Why publishing stopped for everyone on this connection, if it did. */
  failure: string | undefined;
}): ModeChoice {
  const { setting, grants, pepAdvertised, failure } = input;
  if (setting === 'off') return { mode: 'presence-only', reason: '[gateway] pep = "off"' };
  if (failure !== undefined) return { mode: 'presence-only', reason: failure };
  if (grants === undefined) {
    return { mode: 'presence-only', reason: 'the text server granted no XEP-0356 privileges' };
  }
  const pubsub = grants.iq.get(PUBSUB_NS);
  if (grantsAllow(pubsub, 'set')) {
    const pep =
      pepAdvertised === true
        ? 'the server advertises PEP'
        : 'PEP is not advertised to the gateway; the first publish will tell';
    return {
      mode: 'pep-iq',
      reason: `iq permission for ${PUBSUB_NS} (${pubsub}) in ${grants.ns}; ${pep}`,
    };
  }
  if (grants.message === 'outgoing' && grantsAllow(grants.roster, 'get')) {
    return {
      mode: 'pep-message',
      reason: `no iq permission for ${PUBSUB_NS}; message "outgoing" and roster "${grants.roster}" in ${grants.ns}: the gateway sends the PEP notifications itself`,
    };
  }
  return {
    mode: 'presence-only',
    reason: `granted roster "${grants.roster}", message "${grants.message}", iq ${
      grants.iq.size === 0 ? 'none' : [...grants.iq.keys()].join(' ')
    } in ${grants.ns}: neither the pubsub iq permission nor message "outgoing" with roster "get"`,
  };
}

interface UserPep {
  jid: string;
  /** What the phone is doing now. */
  wanted: CoarseState;
  /** What the contacts were last told; undefined: nothing since the gateway started. */
  published: CoarseState | undefined;
  inFlight: boolean;
  /** Why publishing stopped for this user, if it did (until the next connection). */
  failed: string | undefined;
}

interface PendingIq {
  timer: NodeJS.Timeout;
  onResult: (iq: Element) => void;
  onError: (condition: string, text: string | undefined) => void;
}

export interface PepOptions {
  /** The gateway's JID (cti.localhost). */
  jid: string;
  /** The text server's domain: privileges come from it, and disco#info goes to it. */
  serverDomain: string;
  xmpp: XmppSide;
  setting?: PepSetting;
  /** A user's bare JID to ask for the PEP identity (disco#info), besides the server domain. */
  probeUser?: string;
  /** How long to wait for disco answers before choosing, and for each publish. */
  timeoutMs?: number;
  log: Logger;
}

/** Conditions that say publishing cannot work for anybody, rather than for one user. */
const GLOBAL_CONDITIONS = new Set([
  'forbidden',
  'not-allowed',
  'service-unavailable',
  'feature-not-implemented',
  'bad-request',
  'not-authorized',
  'timeout',
]);

export class PepPublisher {
  private readonly jid: string;
  private readonly serverDomain: string;
  private readonly xmpp: XmppSide;
  private readonly setting: PepSetting;
  private readonly probeUser: string | undefined;
  private readonly timeoutMs: number;
  private readonly log: Logger;
  private readonly users = new Map<string, UserPep>();
  private readonly pending = new Map<string, PendingIq>();
  private grants: Grants | undefined;
  private pepAdvertised: boolean | undefined;
  private failure: string | undefined;
  private modeValue: PepMode = 'presence-only';
  private decided = false;
  private discoOutstanding = 0;
  private decideTimer: NodeJS.Timeout | undefined;
  private online = false;
  private nextId = 1;
  /** Message stanza ids of our forwarded notifications (pep-message), to match error bounces. */
  private readonly sentMessages = new Set<string>();
  readonly counters = { published: 0, failed: 0 };

  constructor(options: PepOptions) {
    this.jid = options.jid;
    this.serverDomain = options.serverDomain;
    this.xmpp = options.xmpp;
    this.setting = options.setting ?? 'auto';
    this.probeUser = options.probeUser;
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.log = options.log;
  }

  get mode(): PepMode {
    return this.modeValue;
  }

  /** The component link is up: ask the server what it supports, then choose (and log) the mode. */
  onOnline(): void {
    this.reset();
    this.online = true;
    if (this.setting === 'off') {
      this.decide();
      return;
    }
    const targets = [this.serverDomain];
    if (this.probeUser !== undefined) targets.push(this.probeUser);
    for (const to of targets) {
      this.discoOutstanding++;
      const iq = stanza('iq', { type: 'get', id: this.id('pepdisco'), from: this.jid, to });
      iq.c('query', {}, DISCO_INFO_NS);
      this.sendIq(
        iq,
        (result) => {
          const query = result.getChild('query', DISCO_INFO_NS);
          const pep = query
            ?.getChildren('identity')
            .some((i) => i.attr('category') === 'pubsub' && i.attr('type') === 'pep');
          if (pep === true) this.pepAdvertised = true;
          else if (this.pepAdvertised === undefined && to === this.serverDomain) this.pepAdvertised = false;
          this.discoAnswered();
        },
        () => this.discoAnswered(),
      );
    }
    // Privileges may come after the disco answers; choose anyway once they are in or the time is up.
    this.decideTimer = setTimeout(() => this.decide(), this.timeoutMs);
    this.decideTimer.unref?.();
  }

  /** The link is down: what the server granted was for that session only. */
  onOffline(): void {
    this.online = false;
    this.reset();
    this.modeValue = 'presence-only';
  }

  /** Stops timers (shutdown). */
  close(): void {
    this.onOffline();
  }

  /** Privilege messages, answers to our iqs and bounces of our messages; false when not ours. */
  handleStanza(el: Element): boolean {
    try {
      return this.onStanza(el);
    } catch (e) {
      this.log.warn({ err: (e as Error).message, stanza: el.name }, 'PEP: stanza handling failed');
      return false;
    }
  }

  /** A user's phone state changed (or is no longer known: undefined); publishes it if it matters. */
  phoneState(jid: string, presence: PhonePresence | undefined): void {
    const bare = jid.toLowerCase();
    let user = this.users.get(bare);
    if (user === undefined) {
      user = { jid: bare, wanted: 'none', published: undefined, inFlight: false, failed: undefined };
      this.users.set(bare, user);
    }
    user.wanted = coarseStateOf(presence);
    this.publishIfNeeded(user);
  }

  // ---- mode ------------------------------------------------------------------------------------------

  private reset(): void {
    clearTimeout(this.decideTimer);
    this.decideTimer = undefined;
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
    this.sentMessages.clear();
    this.grants = undefined;
    this.pepAdvertised = undefined;
    this.failure = undefined;
    this.decided = false;
    this.discoOutstanding = 0;
    // `published` stays: PEP items (and what contacts were told) outlive our connection.
    for (const user of this.users.values()) {
      user.inFlight = false;
      user.failed = undefined;
    }
  }

  private discoAnswered(): void {
    this.discoOutstanding--;
    if (this.discoOutstanding <= 0 && this.grants !== undefined) this.decide();
  }

  /** Chooses the mode from what is known now, logs it when it changes, and publishes what is due. */
  private decide(): void {
    if (!this.online) return;
    clearTimeout(this.decideTimer);
    this.decideTimer = undefined;
    const choice = chooseMode({
      setting: this.setting,
      grants: this.grants,
      pepAdvertised: this.pepAdvertised,
      failure: this.failure,
    });
    const changed = !this.decided || choice.mode !== this.modeValue;
    this.decided = true;
    this.modeValue = choice.mode;
    if (changed) {
      this.log.info(
        { pepMode: choice.mode, reason: choice.reason },
        `phone state for contacts: ${choice.mode} (${choice.reason})`,
      );
    }
    // States known before the choice: tell the contacts about calls in progress (an idle phone needs no
    // "stopped" publish after a connect).
    for (const user of this.users.values()) this.publishIfNeeded(user);
  }

  private failGlobally(reason: string): void {
    if (this.failure !== undefined) return;
    this.failure = reason;
    this.log.warn({ reason }, `PEP publishing failed; falling back to presence-only: ${reason}`);
    this.decide();
  }

  private failUser(user: UserPep, reason: string): void {
    if (user.failed !== undefined) return;
    user.failed = reason;
    this.log.warn(
      { user: user.jid, reason },
      `PEP publishing failed for ${user.jid}; presence-only for this user: ${reason}`,
    );
  }

  private onStanza(el: Element): boolean {
    const from = el.attr('from');
    if (el.name === 'message') {
      const privilege = el.getChild('privilege', PRIVILEGE_NS_2) ?? el.getChild('privilege', PRIVILEGE_NS_1);
      if (privilege !== undefined && el.attr('type') !== 'error') {
        if (from !== this.serverDomain) {
          this.log.warn({ from }, 'PEP: ignoring a privilege message not from the text server');
          return true;
        }
        const grants = parsePrivilege(privilege);
        if (grants === undefined) return true;
        this.grants = grants;
        this.log.debug(
          {
            ns: grants.ns,
            roster: grants.roster,
            message: grants.message,
            presence: grants.presence,
            iq: Object.fromEntries(grants.iq),
          },
          'XEP-0356 privileges granted',
        );
        if (this.decided || this.discoOutstanding <= 0) this.decide();
        return true;
      }
      const id = el.attr('id');
      if (el.attr('type') === 'error' && id !== undefined && this.sentMessages.delete(id)) {
        const { condition, text } = errorOf(el);
        this.counters.failed++;
        this.failGlobally(
          `the server refused a forwarded notification: ${condition}${text ? ` (${text})` : ''}`,
        );
        return true;
      }
      return false;
    }
    if (el.name === 'iq') {
      const type = el.attr('type');
      const id = el.attr('id');
      if ((type !== 'result' && type !== 'error') || id === undefined) return false;
      const pending = this.pending.get(id);
      if (pending === undefined) return false;
      clearTimeout(pending.timer);
      this.pending.delete(id);
      if (type === 'result') pending.onResult(el);
      else {
        const { condition, text } = errorOf(el);
        pending.onError(condition, text);
      }
      return true;
    }
    return false;
  }

  // ---- publishing ------------------------------------------------------------------------------------

  private publishIfNeeded(user: UserPep): void {
    if (!this.decided || user.inFlight || user.failed !== undefined) return;
    if (this.modeValue === 'presence-only') return;
    // Nothing published yet since the gateway started: an idle phone has nothing to stop.
    if (user.wanted === (user.published ?? 'none')) return;
    const state = user.wanted;
    user.inFlight = true;
    const done = (ok: boolean) => {
      user.inFlight = false;
      if (!ok) {
        this.counters.failed++;
        return;
      }
      user.published = state;
      this.counters.published++;
      // The phone may have moved on meanwhile: publish its latest state.
      this.publishIfNeeded(user);
    };
    if (this.modeValue === 'pep-iq') this.publishByIq(user, state, done);
    else this.publishByMessages(user, state, done);
  }

  private failureFor(user: UserPep, condition: string, text: string | undefined, what: string): void {
    const reason = `${what}: ${condition}${text ? ` (${text})` : ''}`;
    if (GLOBAL_CONDITIONS.has(condition)) this.failGlobally(reason);
    else this.failUser(user, reason);
  }

  /** XEP-0356 §6 (iq permission): the publish the user's own client would send, wrapped. */
  private publishByIq(user: UserPep, state: CoarseState, done: (ok: boolean) => void): void {
    const id = this.id('pep');
    const outer = stanza('iq', { type: 'set', id, from: this.jid, to: user.jid });
    const inner = new Element('iq', CLIENT_NS, { type: 'set', id, from: user.jid, to: user.jid });
    inner.append(publishPayload(state));
    outer.c('privileged_iq', {}, PRIVILEGE_NS_2).append(inner);
    this.sendIq(
      outer,
      (result) => {
        // The inner answer comes back forwarded; an inner error means the publish did not happen.
        const forwarded = result
          .getChild('privilege', PRIVILEGE_NS_2)
          ?.getChild('forwarded', FORWARD_NS)
          ?.getChild('iq', CLIENT_NS);
        if (forwarded?.attr('type') === 'error') {
          const { condition, text } = errorOf(forwarded);
          this.failureFor(user, condition, text, 'PEP publish refused');
          done(false);
          return;
        }
        this.log.debug({ user: user.jid, state }, 'PEP: activity published');
        done(true);
      },
      (condition, text) => {
        this.failureFor(user, condition, text, 'privileged PEP publish refused');
        done(false);
      },
    );
  }

  /**
   * XEP-0356 §5 (message permission): the notification the user's PEP service would send, from the
   * user's bare JID to every contact with a presence subscription to them, and to the user.
   */
  private publishByMessages(user: UserPep, state: CoarseState, done: (ok: boolean) => void): void {
    const grants = this.grants;
    if (grants === undefined) {
      done(false);
      return;
    }
    const rosterGet = stanza('iq', { type: 'get', id: this.id('peproster'), from: this.jid, to: user.jid });
    rosterGet.c('query', {}, ROSTER_NS);
    this.sendIq(
      rosterGet,
      (result) => {
        const recipients = new Set<string>([user.jid]);
        for (const item of result.getChild('query', ROSTER_NS)?.getChildren('item', ROSTER_NS) ?? []) {
          const contact = item.attr('jid')?.toLowerCase();
          const subscription = item.attr('subscription');
          // Bare JIDs only (RFC 7622: no resource, nothing empty or blank).
          if (contact === undefined || contact === '' || /[\s/]/.test(contact)) continue;
          // Our own phone contacts are no audience for this.
          if (contact === this.jid || contact.endsWith(`@${this.jid}`)) continue;
          if (subscription === 'from' || subscription === 'both') recipients.add(contact);
        }
        for (const to of recipients) {
          const id = this.id('pepm');
          const outer = stanza('message', { from: this.jid, to: this.serverDomain, id });
          const notification = new Element('message', CLIENT_NS, {
            from: user.jid,
            to,
            type: 'headline',
            id,
          });
          notification.append(eventPayload(state));
          outer.c('privilege', {}, grants.ns).c('forwarded', {}, FORWARD_NS).append(notification);
          if (this.xmpp.send(outer)) this.rememberMessage(id);
        }
        this.log.debug({ user: user.jid, state, recipients: recipients.size }, 'PEP: notifications sent');
        done(true);
      },
      (condition, text) => {
        this.failureFor(user, condition, text, 'roster get refused');
        done(false);
      },
    );
  }

  private rememberMessage(id: string): void {
    this.sentMessages.add(id);
    // Bounces come at once or never; keep only the recent ones.
    if (this.sentMessages.size > 1000) {
      const oldest = this.sentMessages.values().next().value;
      if (oldest !== undefined) this.sentMessages.delete(oldest);
    }
  }

  private sendIq(
    iq: Element,
    onResult: (iq: Element) => void,
    onError: (condition: string, text: string | undefined) => void,
  ): void {
    const id = iq.attr('id')!;
    // The link is down: the connection's reset forgets everything in flight, so nothing to do here.
    if (!this.xmpp.send(iq)) return;
    const timer = setTimeout(() => {
      if (this.pending.delete(id)) onError('timeout', `no answer within ${this.timeoutMs} ms`);
    }, this.timeoutMs);
    timer.unref?.();
    this.pending.set(id, { timer, onResult, onError });
  }

  private id(prefix: string): string {
    return `${prefix}${(this.nextId++).toString(36)}`;
  }
}

function errorOf(stanzaEl: Element): { condition: string; text: string | undefined } {
  const error = stanzaEl.getChild('error');
  const condition =
    error?.elements().find((e) => e.ns === STANZA_ERRORS_NS && e.name !== 'text')?.name ??
    'undefined-condition';
  const text = error?.getChildText('text', STANZA_ERRORS_NS);
  return { condition, text };
}
