/**
 * Phones for people with ordinary chat clients (SPEC.md §4): phone contacts `EXT@cti.<domain>` whose
 * presence follows the phone, incoming and missed call messages, and chat commands sent to the gateway.
 * Every user's own device is watched through the gateway's shared device monitors.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { type CstaErrorCode, type CstaMessage, CstaRequestError, describeErrorCode } from '../csta/index.ts';
import { type Element, serialize } from '../xml/index.ts';
import { bareOf } from '../xmpp/jid.ts';
import { normalizeDevice } from './authorization.ts';
import { stanza } from './component.ts';
import { type DeviceNotice, DeviceState, type PhoneCall, type PhonePresence } from './device-state.ts';
import type { Gateway, Logger, XmppSide } from './gateway.ts';
import {
  LEVEL_MEANING,
  parseShareArgument,
  SHARE_USAGE,
  type ShareLevel,
  SharingPolicy,
  sharedPresence,
} from './sharing.ts';

export interface PhoneUser {
  /** Bare JID. */
  jid: string;
  /** Display name (the account name). */
  name: string;
  extension: string;
}

export interface PhoneServiceOptions {
  gateway: Gateway;
  xmpp: XmppSide;
  /** The gateway's JID (cti.localhost): phone contacts are EXT@ this. */
  jid: string;
  users: PhoneUser[];
  /** Where phone-contact subscriptions are kept across restarts; undefined keeps them in memory. */
  subscriptionsFile?: string;
  /** Who may see others' phones: 'domain' (any JID of the users' domain) or 'users' (configured users only). */
  visibility?: 'domain' | 'users';
  /** What subscribers who do not own a phone see of it: the administrator's default and per-device levels. */
  sharing?: { default?: ShareLevel; devices?: Record<string, ShareLevel> };
  /** Where owners' per-subscriber sharing settings are kept across restarts; undefined: in memory. */
  sharingFile?: string;
  /** Older option: true is `sharing.default = 'numbers'` (ignored when that is given). */
  shareNumbers?: boolean;
  /**
   * Told the owner's phone state whenever it may have changed (PEP, pep.ts); undefined when the phone
   * is no longer watched, so its state is no longer known.
   */
  onPhoneState?: (owner: PhoneUser, presence: PhonePresence | undefined) => void;
  log: Logger;
}

const HELP = `Phone commands (send them to me; case does not matter):
  call <number|name|JID>   call from your phone (it rings first, then the other side)
  answer                   answer the ringing call (if your phone allows it)
  hangup                   end your call
  hold / retrieve          put your call on hold / take it back
  transfer <target>        transfer your call (or join your held and active calls: transfer)
  consult <target>         put your call on hold and call someone
  deflect <target>         send a ringing call elsewhere
  dnd on|off               do not disturb
  forward <target>|off     forward all calls
  status                   what your phone is doing
  share <contact> none|state|numbers
                           how much of your phone a contact sees: nothing, its state,
                           or its state with the other party's number ("share" lists)
  help                     this text
Add a phone to your contacts as EXTENSION@GATEWAY to see its state; message it "call" to call it.`;

/** The bare JID as this service keys users and subscribers: lower case (ASCII nodeprep/nameprep). */
function bareKey(jid: string): string {
  return bareOf(jid).toLowerCase();
}

function domainOf(jid: string): string {
  return bareKey(jid).split('@').pop()!;
}

export class PhoneService {
  private readonly gateway: Gateway;
  private readonly xmpp: XmppSide;
  private readonly jid: string;
  private readonly log: Logger;
  private readonly byJid = new Map<string, PhoneUser>();
  private readonly byExtension = new Map<string, PhoneUser>();
  private readonly byName = new Map<string, PhoneUser>();
  private readonly states = new Map<string, DeviceState>();
  /** extension → bare JIDs subscribed to that phone contact. */
  private readonly subscribers = new Map<string, Set<string>>();
  private readonly subscriptionsFile: string | undefined;
  private readonly visibility: 'domain' | 'users';
  private readonly onPhoneState: PhoneServiceOptions['onPhoneState'];
  /** How much of each phone its subscribers see (sharing.ts). */
  readonly sharing: SharingPolicy;
  /** "extension subscriber" → the presence last sent, so a change a subscriber may not see sends nothing. */
  private readonly lastSent = new Map<string, string>();
  /** extension → stop watching it; present while the phone is watched. */
  private readonly watching = new Map<string, () => void>();
  /** bare JID → full JIDs known to be online ('*' when only a probe told us). */
  private readonly online = new Map<string, Set<string>>();
  private nextId = 1;

  constructor(options: PhoneServiceOptions) {
    this.gateway = options.gateway;
    this.xmpp = options.xmpp;
    this.jid = options.jid;
    this.log = options.log;
    this.subscriptionsFile = options.subscriptionsFile;
    this.visibility = options.visibility ?? 'domain';
    this.onPhoneState = options.onPhoneState;
    this.sharing = new SharingPolicy({
      default: options.sharing?.default ?? (options.shareNumbers === true ? 'numbers' : 'state'),
      ...(options.sharing?.devices === undefined ? {} : { devices: options.sharing.devices }),
      ...(options.sharingFile === undefined ? {} : { file: options.sharingFile }),
      log: options.log,
    });
    for (const u of options.users) {
      const user = { ...u, jid: bareKey(u.jid), extension: normalizeDevice(u.extension) };
      this.byJid.set(user.jid, user);
      this.byExtension.set(user.extension, user);
      this.byName.set(user.name.toLowerCase(), user);
    }
    this.loadSubscriptions();
    for (const user of this.byExtension.values())
      this.states.set(user.extension, new DeviceState(user.extension));
  }

  close(): void {
    for (const stop of this.watching.values()) stop();
    this.watching.clear();
  }

  /** Extensions currently watched (a voice-server monitor held for the phone features). */
  get watchedExtensions(): string[] {
    return [...this.watching.keys()];
  }

  /**
   * A phone is watched only while somebody it concerns is online: its owner (incoming-call messages)
   * or a subscriber of its phone contact (presence). So no event is fetched for nobody (SPEC.md §3).
   */
  private updateWatch(extension: string): void {
    const owner = this.byExtension.get(extension);
    if (owner === undefined) return;
    const needed =
      this.online.has(owner.jid) ||
      [...(this.subscribers.get(extension) ?? [])].some(
        (j) => this.online.has(j) && this.levelFor(extension, j) !== 'none',
      );
    const stop = this.watching.get(extension);
    if (needed && stop === undefined) {
      // The state is rebuilt from the events that follow; what happened meanwhile is unknown.
      const state = new DeviceState(extension);
      this.states.set(extension, state);
      this.watching.set(
        extension,
        this.gateway.watch(extension, (event) => this.onEvent(owner, state, event)),
      );
      void this.seed(extension, state);
    } else if (!needed && stop !== undefined) {
      stop();
      this.watching.delete(extension);
      this.onPhoneState?.(owner, undefined);
    }
  }

  /**
   * What the phone is doing right now, asked once when watching starts (events only tell changes).
   * A voice server that lacks one of these services simply leaves that part unknown.
   */
  private async seed(extension: string, state: DeviceState): Promise<void> {
    const before = JSON.stringify(state.presence());
    const ask = async (message: CstaMessage): Promise<Record<string, unknown> | undefined> => {
      try {
        return (await this.gateway.request(message)) as unknown as Record<string, unknown>;
      } catch (e) {
        this.log.debug(
          { extension, request: message.name, err: (e as Error).message },
          'phone state query failed',
        );
        return undefined;
      }
    };
    const [dnd, forwarding, snapshot] = await Promise.all([
      ask({ name: 'GetDoNotDisturb', device: extension } as CstaMessage),
      ask({ name: 'GetForwarding', device: extension } as CstaMessage),
      ask({ name: 'SnapshotDevice', snapshotObject: extension } as CstaMessage),
    ]);
    if (this.states.get(extension) !== state) return;
    const seed: Parameters<DeviceState['seed']>[0] = {};
    if (typeof dnd?.doNotDisturbOn === 'boolean') seed.dnd = dnd.doNotDisturbOn;
    if (forwarding !== undefined) {
      const items = (forwarding.forwardingList ?? []) as {
        forwardingType?: string;
        forwardStatus: boolean;
        forwardDN?: string;
      }[];
      const active = items.find(
        (i) => i.forwardStatus && (i.forwardingType ?? 'forwardImmediate') === 'forwardImmediate',
      );
      seed.forwardTo = active?.forwardDN;
    }
    const data = (
      snapshot?.crossRefIDorSnapshotData as
        | { snapshotData?: { snapshotDeviceResponseInfo?: unknown[] } }
        | undefined
    )?.snapshotData?.snapshotDeviceResponseInfo;
    if (Array.isArray(data)) {
      seed.calls = [];
      for (const info of data as {
        connectionIdentifier: { callID?: string };
        localCallState: Record<string, unknown>;
      }[]) {
        const callID = info.connectionIdentifier.callID;
        if (callID === undefined) continue;
        const compound = info.localCallState.compoundCallState as
          | { localConnectionState?: string[] }
          | undefined;
        const local = compound?.localConnectionState?.[0];
        const simple = info.localCallState.simpleCallState as string | undefined;
        seed.calls.push({
          callID,
          ...(local === undefined ? {} : { local }),
          ...(simple === undefined ? {} : { simple }),
        });
      }
    }
    state.seed(seed);
    if (JSON.stringify(state.presence()) !== before) this.broadcast(extension);
    else this.reportState(extension);
  }

  /** Extensions whose watching may change when `bare` comes or goes. */
  private concerning(bare: string): string[] {
    const out: string[] = [];
    const own = this.byJid.get(bare)?.extension;
    if (own !== undefined) out.push(own);
    for (const [ext, subs] of this.subscribers) if (subs.has(bare) && ext !== own) out.push(ext);
    return out;
  }

  private trackAvailability(presence: Element): void {
    const from = presence.attr('from');
    if (from === undefined) return;
    const bare = bareKey(from);
    const type = presence.attr('type');
    const full = from.includes('/') ? from : '*';
    const before = this.online.has(bare);
    if (type === undefined || type === 'probe') {
      let set = this.online.get(bare);
      if (set === undefined) {
        set = new Set();
        this.online.set(bare, set);
      }
      set.add(type === 'probe' ? '*' : full);
    } else if (type === 'unavailable' || type === 'error') {
      const set = this.online.get(bare);
      if (set !== undefined) {
        set.delete(full);
        set.delete('*');
        if (full === '*' || set.size === 0) this.online.delete(bare);
      }
    } else {
      return;
    }
    if (before !== this.online.has(bare)) for (const ext of this.concerning(bare)) this.updateWatch(ext);
  }

  /** Handles a stanza for the phone side; false when it is not ours (the CSTA side takes it). */
  handleStanza(el: Element): boolean {
    const to = el.attr('to') ?? '';
    if (el.name === 'message') {
      this.onMessage(el);
      return true;
    }
    if (el.name === 'presence') {
      // Directed presence to the gateway, and presence to phone contacts, tell who is online.
      this.trackAvailability(el);
      if (to.endsWith(`@${this.jid}`)) {
        this.onPresence(el);
        return true;
      }
    }
    return false;
  }

  // ---- events → presence and notices ---------------------------------------------------------

  private onEvent(user: PhoneUser, state: DeviceState, event: CstaMessage): void {
    const before = JSON.stringify(state.presence());
    const notices = state.apply(event);
    for (const notice of notices) this.notify(user, notice);
    if (JSON.stringify(state.presence()) !== before) this.broadcast(user.extension);
  }

  private describeParty(number: string | undefined): string {
    if (number === undefined) return 'an unknown number';
    const user = this.byExtension.get(normalizeDevice(number));
    return user === undefined ? number : `${number} (${user.name})`;
  }

  private notify(user: PhoneUser, notice: DeviceNotice): void {
    const caller = notice.caller === undefined ? undefined : this.byExtension.get(notice.caller);
    const what = notice.kind === 'incoming' ? 'Incoming call' : 'Missed call';
    let body = `${what} from ${this.describeParty(notice.caller)}`;
    if (caller !== undefined) body += `\n${caller.jid}`;
    this.sendMessage(user.jid, body, `${user.extension}@${this.jid}`);
  }

  private presenceFor(extension: string, subscriber: string): Element {
    const state = this.states.get(extension);
    const from = `${extension}@${this.jid}`;
    if (state === undefined) return stanza('presence', { from, to: subscriber, type: 'unavailable' });
    const p = sharedPresence(state.presence(), this.levelFor(extension, subscriber));
    const el = stanza('presence', { from, to: subscriber, ...(p.available ? {} : { type: 'unavailable' }) });
    if (p.show !== undefined) el.c('show').append(p.show);
    if (p.status !== undefined) el.c('status').append(p.status);
    return el;
  }

  private reportState(extension: string): void {
    const owner = this.byExtension.get(extension);
    if (owner === undefined) return;
    // PEP reaches all the owner's contacts at once, so a device the administrator does not share at all
    // is reported as not watched (nothing to show) rather than by its state.
    const shared = this.sharing.deviceLevel(extension) !== 'none';
    this.onPhoneState?.(owner, shared ? this.states.get(extension)?.presence() : undefined);
  }

  /** The owner sees everything; others what the sharing settings say. */
  private levelFor(extension: string, subscriber: string): ShareLevel {
    return this.byExtension.get(extension)?.jid === subscriber
      ? 'numbers'
      : this.sharing.level(extension, subscriber);
  }

  /** Whether `subscriber` may have a subscription to the phone at all. */
  private maySubscribe(extension: string, subscriber: string): boolean {
    if (this.byExtension.get(extension)?.jid === subscriber) return true;
    return this.mayWatch(subscriber) && !this.sharing.refuses(extension, subscriber);
  }

  private broadcast(extension: string): void {
    this.reportState(extension);
    for (const subscriber of this.subscribers.get(extension) ?? []) {
      this.sendPresence(extension, subscriber, false);
    }
  }

  /** Sends a subscriber the phone's presence as they may see it; unless `always`, only when it changed. */
  private sendPresence(extension: string, subscriber: string, always: boolean): void {
    const el = this.presenceFor(extension, subscriber);
    const key = `${extension} ${subscriber}`;
    const text = serialize(el);
    if (!always && this.lastSent.get(key) === text) return;
    this.lastSent.set(key, text);
    this.xmpp.send(el);
  }

  // ---- phone contacts: subscriptions (RFC 6121 §3) -----------------------------------------------

  private mayWatch(subscriber: string): boolean {
    if (this.byJid.has(subscriber)) return true;
    if (this.visibility === 'users') return false;
    const domains = new Set([...this.byJid.keys()].map(domainOf));
    return domains.has(domainOf(subscriber));
  }

  private onPresence(p: Element): void {
    const from = p.attr('from');
    const to = p.attr('to');
    if (from === undefined || to === undefined) return;
    const subscriber = bareKey(from);
    const extension = normalizeDevice(bareKey(to).split('@')[0]!);
    const contact = `${extension}@${this.jid}`;
    const known = this.states.has(extension);
    switch (p.attr('type')) {
      case 'subscribe':
        if (known && this.maySubscribe(extension, subscriber)) {
          this.addSubscriber(extension, subscriber);
          this.xmpp.send(stanza('presence', { from: contact, to: subscriber, type: 'subscribed' }));
          this.sendPresence(extension, subscriber, true);
          // Ask for the subscriber's presence in return, as XEP-0100 gateways do: it tells the gateway
          // when they go offline, so the phone is watched only while someone is there to see it.
          this.xmpp.send(stanza('presence', { from: contact, to: subscriber, type: 'subscribe' }));
          this.online.set(subscriber, this.online.get(subscriber) ?? new Set(['*']));
          this.updateWatch(extension);
        } else {
          // A subscription kept from before the policy changed ends here too.
          this.removeSubscriber(extension, subscriber);
          this.xmpp.send(stanza('presence', { from: contact, to: subscriber, type: 'unsubscribed' }));
        }
        return;
      case 'unsubscribe':
      case 'unsubscribed':
        this.removeSubscriber(extension, subscriber);
        this.updateWatch(extension);
        if (p.attr('type') === 'unsubscribe') {
          this.xmpp.send(stanza('presence', { from: contact, to: subscriber, type: 'unsubscribed' }));
        }
        return;
      case 'probe':
        // A probe means the server holds a subscription to this contact (RFC 6121 §4.3).
        if (known && this.maySubscribe(extension, subscriber)) {
          this.addSubscriber(extension, subscriber);
          this.sendPresence(extension, subscriber, true);
          this.updateWatch(extension);
        } else {
          // A subscription kept from before the policy changed ends here too.
          this.removeSubscriber(extension, subscriber);
          this.xmpp.send(stanza('presence', { from: contact, to: subscriber, type: 'unsubscribed' }));
        }
        return;
      default:
        return;
    }
  }

  private addSubscriber(extension: string, subscriber: string): void {
    let set = this.subscribers.get(extension);
    if (set === undefined) {
      set = new Set();
      this.subscribers.set(extension, set);
    }
    if (set.has(subscriber)) return;
    set.add(subscriber);
    this.saveSubscriptions();
  }

  private removeSubscriber(extension: string, subscriber: string): void {
    this.lastSent.delete(`${extension} ${subscriber}`);
    if (this.subscribers.get(extension)?.delete(subscriber)) this.saveSubscriptions();
  }

  private loadSubscriptions(): void {
    if (this.subscriptionsFile === undefined || !existsSync(this.subscriptionsFile)) return;
    try {
      const data = JSON.parse(readFileSync(this.subscriptionsFile, 'utf8')) as Record<string, string[]>;
      for (const [ext, jids] of Object.entries(data)) this.subscribers.set(ext, new Set(jids));
    } catch (e) {
      this.log.warn(
        { file: this.subscriptionsFile, err: (e as Error).message },
        'ignoring unreadable subscriptions file',
      );
    }
  }

  private saveSubscriptions(): void {
    if (this.subscriptionsFile === undefined) return;
    const data: Record<string, string[]> = {};
    for (const [ext, jids] of this.subscribers) if (jids.size > 0) data[ext] = [...jids].sort();
    const tmp = `${this.subscriptionsFile}.tmp`;
    writeFileSync(tmp, JSON.stringify(data, null, 1), { mode: 0o600 });
    renameSync(tmp, this.subscriptionsFile);
  }

  // ---- chat commands (SPEC.md §4) -------------------------------------------------------------------

  private sendMessage(to: string, body: string, from = this.jid): void {
    const m = stanza('message', { from, to, type: 'chat', id: `ph${(this.nextId++).toString(36)}` });
    m.c('body').append(body);
    this.xmpp.send(m);
  }

  /** A target as a dial string: a number, a user's name, a user's JID, or a phone contact JID. */
  resolveTarget(target: string): { number: string; label: string } | undefined {
    const t = target.trim().replace(/^xmpp:/i, '');
    if (/^[0-9*#+]{1,32}$/.test(t)) return { number: t, label: this.describeParty(t) };
    if (t.includes('@')) {
      const bare = bareKey(t);
      const [local, domain] = bare.split('@') as [string, string];
      if (domain === this.jid && /^[0-9*#+]{1,32}$/.test(local))
        return { number: local, label: this.describeParty(local) };
      const user = this.byJid.get(bare);
      return user === undefined
        ? undefined
        : { number: user.extension, label: `${user.name} (${user.extension})` };
    }
    const user = this.byName.get(t.toLowerCase());
    return user === undefined
      ? undefined
      : { number: user.extension, label: `${user.name} (${user.extension})` };
  }

  private onMessage(m: Element): void {
    const type = m.attr('type');
    if (type === 'error' || type === 'groupchat' || type === 'headline') return;
    const from = m.attr('from');
    const body = m.getChildText('body')?.trim();
    if (from === undefined || body === undefined || body === '') return;
    const to = bareKey(m.attr('to') ?? this.jid);
    const replyFrom = to === this.jid ? this.jid : to;
    const reply = (text: string) => this.sendMessage(from, text, replyFrom);
    const user = this.byJid.get(bareKey(from));
    let text = body;
    // "call" (or any command without a target) sent to a phone contact acts on that phone's number.
    if (to !== this.jid && to.endsWith(`@${this.jid}`)) {
      const ext = to.split('@')[0]!;
      if (/^call$/i.test(body)) text = `call ${ext}`;
    }
    const [word = '', ...rest] = text.split(/\s+/);
    const command = word.toLowerCase();
    const argument = rest.join(' ');
    if (command === 'help' || command === '?') {
      reply(HELP.replace('GATEWAY', this.jid));
      return;
    }
    if (user === undefined) {
      reply('You have no phone here: ask your administrator to give your account an extension.');
      return;
    }
    const state = this.states.get(user.extension)!;
    this.runCommand(user, state, command, argument, reply).catch((e: unknown) => {
      reply(`That did not work: ${this.explain(e)}`);
    });
  }

  /**
   * Runs a command for a JID and collects what it says (the ad-hoc command path). `ok` is false when
   * the voice server refused or the user has no phone; "nothing to act on" answers are notes too.
   */
  async execute(from: string, command: string, argument: string): Promise<{ notes: string[]; ok: boolean }> {
    const notes: string[] = [];
    const user = this.byJid.get(bareKey(from));
    if (user === undefined) {
      return {
        notes: ['You have no phone here: ask your administrator to give your account an extension.'],
        ok: false,
      };
    }
    try {
      await this.runCommand(user, this.states.get(user.extension)!, command, argument, (t) => notes.push(t));
      return { notes, ok: true };
    } catch (e) {
      notes.push(`That did not work: ${this.explain(e)}`);
      return { notes, ok: false };
    }
  }

  /** `share …`: the owner's per-subscriber sharing settings (sharing.ts), applied at once; the answer. */
  private share(user: PhoneUser, argument: string): string {
    const ext = user.extension;
    const request = parseShareArgument(argument);
    if (request.kind === 'usage') return SHARE_USAGE;
    if (request.kind === 'list') {
      const lines = [
        `Your phone ${ext}: others see ${this.sharing.deviceLevel(ext)} unless you set otherwise (your administrator's setting).`,
      ];
      const subscribed = this.subscribers.get(ext) ?? new Set<string>();
      const settings = new Map(this.sharing.settingsFor(ext));
      const contacts = [...new Set([...subscribed, ...settings.keys()])].filter((j) => j !== user.jid).sort();
      for (const jid of contacts) {
        const notes = [settings.has(jid) ? 'your setting' : 'default'];
        if (subscribed.has(jid)) notes.push('subscribed');
        lines.push(`${jid}: ${this.levelFor(ext, jid)} (${notes.join(', ')})`);
      }
      if (contacts.length === 0) lines.push('Nobody has your phone contact yet and you have no settings.');
      return lines.join('\n');
    }
    const contact = this.contactJid(request.contact);
    if (contact === undefined)
      return `I do not know who "${request.contact}" is: give a user name, a number or a JID.`;
    if (contact === user.jid) return 'That is you: you always see your own phone in full.';
    if (!this.mayWatch(contact)) return `${contact} may not see phones here (your administrator's setting).`;
    if (!this.sharing.set(ext, contact, request.level))
      return 'You have too many sharing settings: clear some with "share <contact> default".';
    const level = this.levelFor(ext, contact);
    let text = `${contact} now sees ${level}: ${LEVEL_MEANING[level]}.`;
    if (this.subscribers.get(ext)?.has(contact)) {
      this.sendPresence(ext, contact, false);
      this.updateWatch(ext);
    } else if (level !== 'none') {
      text += ` (They can add ${ext}@${this.jid} to their contacts.)`;
    }
    return text;
  }

  /** A contact for `share`: a user's name or number, a JID, or a phone contact (its owner). */
  private contactJid(text: string): string | undefined {
    const t = text.trim().replace(/^xmpp:/i, '');
    if (/^[0-9*#+]{1,32}$/.test(t)) return this.byExtension.get(normalizeDevice(t))?.jid;
    if (t.includes('@')) {
      const bare = bareKey(t);
      if (bare.length > 1023 || !/^[^@/\s]+@[^@/\s]+$/.test(bare)) return undefined;
      const [local, domain] = bare.split('@') as [string, string];
      if (domain === this.jid) return this.byExtension.get(normalizeDevice(local))?.jid;
      return bare;
    }
    return this.byName.get(t.toLowerCase())?.jid;
  }

  private explain(e: unknown): string {
    if (e instanceof CstaRequestError && e.response.name === 'CSTAErrorCode') {
      return describeErrorCode(e.response as CstaErrorCode);
    }
    return (e as Error).message;
  }

  private connection(call: PhoneCall, user: PhoneUser) {
    return { callID: call.callID, deviceID: user.extension };
  }

  private async runCommand(
    user: PhoneUser,
    state: DeviceState,
    command: string,
    argument: string,
    reply: (text: string) => void,
  ): Promise<void> {
    const target = () => {
      if (argument === '') return undefined;
      const resolved = this.resolveTarget(argument);
      if (resolved === undefined)
        reply(`I do not know who "${argument}" is: give a number, a user name or a JID.`);
      return resolved;
    };
    switch (command) {
      case 'call': {
        if (argument === '') return reply('Call whom? For example: call bob, call 1002');
        const t = target();
        if (t === undefined) return;
        reply(`Calling ${t.label} from your phone ${user.extension} …`);
        await this.gateway.request({
          name: 'MakeCall',
          callingDevice: user.extension,
          calledDirectoryNumber: t.number,
          autoOriginate: 'prompt',
        } as CstaMessage);
        return;
      }
      case 'answer': {
        const call = state.currentCall(['alerting']);
        if (call === undefined || call.direction !== 'incoming')
          return reply('You have no ringing call to answer.');
        await this.gateway.request({
          name: 'AnswerCall',
          callToBeAnswered: this.connection(call, user),
        } as CstaMessage);
        return reply('Answered.');
      }
      case 'hangup': {
        const call = state.currentCall();
        if (call === undefined) return reply('You have no call to hang up.');
        await this.gateway.request({
          name: 'ClearConnection',
          connectionToBeCleared: this.connection(call, user),
        } as CstaMessage);
        return reply('Hung up.');
      }
      case 'hold': {
        const call = state.currentCall(['connected']);
        if (call === undefined) return reply('You have no call to hold.');
        await this.gateway.request({
          name: 'HoldCall',
          callToBeHeld: this.connection(call, user),
        } as CstaMessage);
        return reply('Your call is on hold.');
      }
      case 'retrieve': {
        const call = state.currentCall(['hold']);
        if (call === undefined) return reply('You have no call on hold.');
        await this.gateway.request({
          name: 'RetrieveCall',
          callToBeRetrieved: this.connection(call, user),
        } as CstaMessage);
        return reply('Your call is back.');
      }
      case 'transfer': {
        const held = state.currentCall(['hold']);
        const active = state.currentCall(['connected']);
        if (argument === '' && held !== undefined && active !== undefined) {
          await this.gateway.request({
            name: 'TransferCall',
            heldCall: this.connection(held, user),
            activeCall: this.connection(active, user),
          } as CstaMessage);
          return reply('Transferred.');
        }
        if (argument === '') return reply('Transfer to whom? For example: transfer carol');
        const t = target();
        if (t === undefined) return;
        const call = active ?? state.currentCall(['alerting']);
        if (call === undefined) return reply('You have no call to transfer.');
        await this.gateway.request({
          name: 'SingleStepTransferCall',
          activeCall: this.connection(call, user),
          transferredTo: t.number,
        } as CstaMessage);
        return reply(`Transferred to ${t.label}.`);
      }
      case 'consult': {
        if (argument === '') return reply('Consult whom? For example: consult carol');
        const t = target();
        if (t === undefined) return;
        const call = state.currentCall(['connected']);
        if (call === undefined) return reply('You have no call to consult from.');
        await this.gateway.request({
          name: 'ConsultationCall',
          existingCall: this.connection(call, user),
          consultedDevice: t.number,
        } as CstaMessage);
        return reply(`Your call is on hold; calling ${t.label} …`);
      }
      case 'deflect': {
        if (argument === '') return reply('Deflect to whom? For example: deflect carol');
        const t = target();
        if (t === undefined) return;
        const call = state.currentCall(['alerting']);
        if (call === undefined || call.direction !== 'incoming')
          return reply('You have no ringing call to deflect.');
        await this.gateway.request({
          name: 'DeflectCall',
          callToBeDiverted: this.connection(call, user),
          newDestination: t.number,
        } as CstaMessage);
        return reply(`Sent to ${t.label}.`);
      }
      case 'dnd': {
        const on = argument.toLowerCase();
        if (on !== 'on' && on !== 'off') return reply('Say "dnd on" or "dnd off".');
        await this.gateway.request({
          name: 'SetDoNotDisturb',
          device: user.extension,
          doNotDisturbOn: on === 'on',
        } as CstaMessage);
        return reply(on === 'on' ? 'Do not disturb is on.' : 'Do not disturb is off.');
      }
      case 'forward': {
        if (argument === '') return reply('Forward to whom? For example: forward 1003, or forward off');
        if (argument.toLowerCase() === 'off') {
          await this.gateway.request({
            name: 'SetForwarding',
            device: user.extension,
            forwardingType: 'forwardImmediate',
            activateForward: false,
          } as CstaMessage);
          return reply('Forwarding is off.');
        }
        const t = target();
        if (t === undefined) return;
        await this.gateway.request({
          name: 'SetForwarding',
          device: user.extension,
          forwardingType: 'forwardImmediate',
          activateForward: true,
          forwardDN: t.number,
        } as CstaMessage);
        return reply(`Your calls go to ${t.label}.`);
      }
      case 'status': {
        const p = state.presence();
        const calls = [...state.calls.values()].map(
          (c) =>
            `${c.direction === 'incoming' ? 'from' : 'to'} ${this.describeParty(c.otherParty)}: ${c.state}`,
        );
        return reply(
          `Your phone ${user.extension}: ${p.detailedStatus}${calls.length > 0 ? `\n${calls.join('\n')}` : ''}`,
        );
      }
      case 'share':
        return reply(this.share(user, argument));
      default:
        return reply(`I do not know "${command}". Send "help" for the list of commands.`);
    }
  }
}
