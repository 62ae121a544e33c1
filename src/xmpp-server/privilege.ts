/**
 * XEP-0356 Privileged Entity (namespace urn:xmpp:privilege:2, version 0.4): what a configured
 * component may do on behalf of the server's users, the <message/> that tells it so right after its
 * handshake, and the checks on what it sends (privileged <iq/> §6.3, forwarded <message/> §5.3).
 *
 * Pure functions: the router executes what these accept and answers what they refuse.
 */
import { Element } from '../xml/index.ts';
import { type Jid, tryParseJid } from '../xmpp/jid.ts';
import { NS } from '../xmpp/ns.ts';
import type { ErrorType, StanzaErrorCondition } from '../xmpp/stanza.ts';

export const PRIVILEGE_NS = 'urn:xmpp:privilege:2';

export type RosterAccess = 'none' | 'get' | 'set' | 'both';
export type MessageAccess = 'none' | 'outgoing';
/** 'roster' (the presence of every contact of every user) is not implemented. */
export type PresenceAccess = 'none' | 'managed_entity';
export type IqAccess = 'get' | 'set' | 'both';

/** The permissions of one component (XEP-0356 §3.1, §4.1, §5.1, §6.1). */
export interface PrivilegeGrant {
  roster: RosterAccess;
  /** §3.3 roster pushes to the component; the XEP default is true when roster is get or both. */
  rosterPush: boolean;
  message: MessageAccess;
  presence: PresenceAccess;
  /** Namespace of the iq payload -> the iq types allowed. */
  iq: ReadonlyMap<string, IqAccess>;
}

export const NO_PRIVILEGES: PrivilegeGrant = Object.freeze({
  roster: 'none',
  rosterPush: false,
  message: 'none',
  presence: 'none',
  iq: new Map(),
});

/** What the project's gateway needs (PEP publishing, chat messages as the user, rosters, presence). */
export const GATEWAY_DEFAULT_GRANT: PrivilegeGrant = Object.freeze({
  roster: 'get',
  rosterPush: true,
  message: 'outgoing',
  presence: 'managed_entity',
  iq: new Map<string, IqAccess>([['http://jabber.org/protocol/pubsub', 'set']]),
});

export class PrivilegeConfigError extends Error {
  override readonly name = 'PrivilegeConfigError';
}

/**
 * A grant from configuration values. Throws PrivilegeConfigError for what the XEP or this server does
 * not allow: presence 'roster', and iq permission for the privilege namespace itself (a privileged
 * iq wrapping another one would let a component escape its own namespace list).
 */
export function makeGrant(options: {
  roster?: RosterAccess;
  rosterPush?: boolean;
  message?: MessageAccess;
  presence?: PresenceAccess | 'roster';
  iq?: Record<string, IqAccess | 'none'>;
}): PrivilegeGrant {
  if (options.presence === 'roster')
    throw new PrivilegeConfigError('presence = "roster" is not supported (use "managed_entity" or "none")');
  const roster = options.roster ?? 'none';
  const iq = new Map<string, IqAccess>();
  for (const [ns, access] of Object.entries(options.iq ?? {})) {
    if (ns === PRIVILEGE_NS)
      throw new PrivilegeConfigError(`iq permission for ${PRIVILEGE_NS} is not allowed`);
    if (ns.trim() === '') throw new PrivilegeConfigError('iq permission for an empty namespace');
    if (access !== 'none') iq.set(ns, access);
  }
  return {
    roster,
    rosterPush: (roster === 'get' || roster === 'both') && (options.rosterPush ?? true),
    message: options.message ?? 'none',
    presence: options.presence ?? 'none',
    iq,
  };
}

export function isPrivileged(grant: PrivilegeGrant): boolean {
  return (
    grant.roster !== 'none' || grant.message !== 'none' || grant.presence !== 'none' || grant.iq.size > 0
  );
}

export function allowsRoster(grant: PrivilegeGrant, type: 'get' | 'set'): boolean {
  return grant.roster === 'both' || grant.roster === type;
}

export function allowsIq(grant: PrivilegeGrant, ns: string, type: 'get' | 'set'): boolean {
  const access = grant.iq.get(ns);
  return access === 'both' || access === type;
}

/** §3.2, §4.2, §5.2, §6.2: the <message/> advertising a component's permissions. */
export function advertisement(
  serverDomain: string,
  component: string,
  grant: PrivilegeGrant,
  id: string,
): Element {
  const privilege = new Element('privilege', PRIVILEGE_NS);
  privilege.c('perm', {
    access: 'roster',
    type: grant.roster,
    push: grant.roster === 'get' || grant.roster === 'both' ? String(grant.rosterPush) : undefined,
  });
  privilege.c('perm', { access: 'message', type: grant.message });
  privilege.c('perm', { access: 'presence', type: grant.presence });
  if (grant.iq.size > 0) {
    const perm = privilege.c('perm', { access: 'iq' });
    for (const [ns, type] of [...grant.iq].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      perm.c('namespace', { ns, type });
  }
  return new Element('message', NS.client, { from: serverDomain, to: component, id }, [privilege]);
}

export interface Refusal {
  type: ErrorType;
  condition: StanzaErrorCondition;
  text: string;
}

const refuse = (condition: StanzaErrorCondition, text: string, type: ErrorType = 'auth'): Refusal => ({
  type,
  condition,
  text,
});

/** Is `stanza` an iq request whose payload is a <privileged_iq/>? */
export function isPrivilegedIq(stanza: Element): boolean {
  const type = stanza.attr('type');
  return (
    stanza.name === 'iq' &&
    (type === 'get' || type === 'set') &&
    stanza.getChild('privileged_iq', PRIVILEGE_NS) !== undefined
  );
}

/**
 * §6.3 checks on a privileged iq, in the order of the XEP's list. `managed` is the bare JID of an
 * existing account on this server that the outer iq is addressed to (undefined when it is not).
 * On success, returns the encapsulated iq, detached and addressed: from = the managed bare JID, to =
 * its target (the managed bare JID itself when it had none).
 */
export function checkPrivilegedIq(
  outer: Element,
  grant: PrivilegeGrant | undefined,
  managed: Jid | undefined,
): { inner: Element; payloadNs: string } | { refusal: Refusal } {
  const type = outer.attr('type') as 'get' | 'set';
  if (grant === undefined || grant.iq.size === 0)
    return { refusal: refuse('forbidden', 'No iq privilege granted to this component') };
  if (managed === undefined)
    return {
      refusal: refuse('forbidden', 'The outer iq must be addressed to the bare JID of a user of this server'),
    };
  const wrapper = outer.getChild('privileged_iq', PRIVILEGE_NS)!;
  const children = wrapper.elements();
  if (children.length !== 1 || children[0]!.name !== 'iq')
    return { refusal: refuse('bad-request', '<privileged_iq/> must contain exactly one <iq/>', 'modify') };
  const encapsulated = children[0]!;
  if (encapsulated.ns !== NS.client)
    return { refusal: refuse('forbidden', 'The encapsulated iq must be in the jabber:client namespace') };
  const payloads = encapsulated.elements();
  if (payloads.length !== 1)
    return { refusal: refuse('bad-request', 'The encapsulated iq must have exactly one payload', 'modify') };
  const payloadNs = payloads[0]!.ns;
  if (payloadNs === PRIVILEGE_NS)
    return { refusal: refuse('forbidden', 'A privileged iq cannot encapsulate another one') };
  if (!allowsIq(grant, payloadNs, type))
    return { refusal: refuse('forbidden', `No ${type} privilege for ${payloadNs}`) };
  const innerFrom = encapsulated.attr('from');
  if (innerFrom !== undefined && !tryParseJid(innerFrom)?.equals(managed))
    return { refusal: refuse('forbidden', "The encapsulated iq's from must be the managed bare JID") };
  if (encapsulated.attr('type') !== type)
    return { refusal: refuse('forbidden', 'The encapsulated iq must have the type of the outer iq') };
  const id = encapsulated.attr('id');
  if (id === undefined || id === '')
    return { refusal: refuse('bad-request', 'The encapsulated iq has no id', 'modify') };
  const toAttr = encapsulated.attr('to');
  const to = toAttr === undefined ? managed : tryParseJid(toAttr);
  if (to === undefined)
    return { refusal: refuse('jid-malformed', 'Bad to on the encapsulated iq', 'modify') };
  const inner = new Element(
    'iq',
    NS.client,
    { ...encapsulated.attrs, from: managed.toString(), to: to.toString() },
    [...encapsulated.children],
  );
  return { inner, payloadNs };
}

/** Is `stanza` a message carrying a <privilege/> (a §5.3 request when addressed to the server)? */
export function isPrivilegedMessage(stanza: Element): boolean {
  return stanza.name === 'message' && stanza.getChild('privilege', PRIVILEGE_NS) !== undefined;
}

/**
 * §5.3 checks on a forwarded message. `isManaged` says whether a bare JID is the server or one of its
 * users. On success, returns the message to route, detached from the wrapper.
 */
export function checkPrivilegedMessage(
  outer: Element,
  grant: PrivilegeGrant | undefined,
  isManaged: (jid: Jid) => boolean,
): { message: Element } | { refusal: Refusal } {
  if (grant === undefined || grant.message !== 'outgoing')
    return { refusal: refuse('forbidden', 'No message privilege granted to this component') };
  const privilege = outer.getChild('privilege', PRIVILEGE_NS)!;
  const children = privilege.elements();
  if (children.length !== 1 || children[0]!.name !== 'forwarded' || children[0]!.ns !== NS.forward)
    return { refusal: refuse('bad-request', '<privilege/> must contain exactly one <forwarded/>', 'modify') };
  const messages = children[0]!.elements().filter((e) => e.name !== 'delay' || e.ns !== NS.delay);
  if (messages.length !== 1 || messages[0]!.name !== 'message' || messages[0]!.ns !== NS.client)
    return {
      refusal: refuse('bad-request', '<forwarded/> must contain one <message/> in jabber:client', 'modify'),
    };
  const forwarded = messages[0]!;
  const from = tryParseJid(forwarded.attr('from'));
  if (from === undefined || !from.isBare || !isManaged(from))
    return {
      refusal: refuse(
        'forbidden',
        "The forwarded message's from must be the bare JID of this server or of one of its users",
      ),
    };
  const to = tryParseJid(forwarded.attr('to'));
  if (to === undefined)
    return { refusal: refuse('bad-request', 'The forwarded message needs a valid to', 'modify') };
  const message = new Element(
    'message',
    NS.client,
    { ...forwarded.attrs, from: from.toString(), to: to.toString() },
    [...forwarded.children],
  );
  return { message };
}

/** §6.3: the answer to a privileged iq, forwarded back inside <privilege/>. */
export function forwardedResponse(outer: Element, response: Element): Element {
  return new Element(
    'iq',
    NS.client,
    { type: 'result', id: outer.attr('id'), from: outer.attr('to'), to: outer.attr('from') },
    [new Element('privilege', PRIVILEGE_NS, {}, [new Element('forwarded', NS.forward, {}, [response])])],
  );
}
