/**
 * The presence subscription state machine of RFC 6121 §3 and Appendix A, as pure functions over one
 * roster item. The router applies the result: store the item, push it, route or deliver the stanza,
 * answer on the user's behalf.
 *
 * States are (subscription, Pending Out = ask, Pending In, pre-approved). An item that only remembers a
 * Pending In request is unlisted: it is not part of the user's roster until the user acts on it.
 */
import type { RosterItem, Subscription } from './store.ts';

export type SubscriptionType = 'subscribe' | 'subscribed' | 'unsubscribe' | 'unsubscribed';

export function isSubscriptionType(type: string | undefined): type is SubscriptionType {
  return type === 'subscribe' || type === 'subscribed' || type === 'unsubscribe' || type === 'unsubscribed';
}

export interface Transition {
  /** The new item; undefined means "delete it" when `changed`. */
  item: RosterItem | undefined;
  /** The stored item changed. */
  changed: boolean;
  /** The roster change is visible to the user (send a roster push). */
  push: boolean;
  /** Outbound: route the stanza to the contact. Inbound: deliver it to the user's available resources. */
  forward: boolean;
  /** Inbound subscribe approved by the server on the user's behalf: answer `subscribed`. */
  autoApprove: boolean;
  /** Send the user's current presence to the contact (a subscription from the contact just started). */
  sendPresence: boolean;
  /** Send unavailable presence from the user's resources to the contact (that subscription ended). */
  sendUnavailable: boolean;
}

export function newItem(jid: string, listed: boolean): RosterItem {
  return {
    jid,
    name: undefined,
    subscription: 'none',
    ask: false,
    pendingIn: false,
    approved: false,
    listed,
    groups: [],
  };
}

const hasFrom = (s: Subscription) => s === 'from' || s === 'both';
const hasTo = (s: Subscription) => s === 'to' || s === 'both';
const addFrom = (s: Subscription): Subscription => (s === 'none' ? 'from' : s === 'to' ? 'both' : s);
const addTo = (s: Subscription): Subscription => (s === 'none' ? 'to' : s === 'from' ? 'both' : s);
const dropFrom = (s: Subscription): Subscription => (s === 'from' ? 'none' : s === 'both' ? 'to' : s);
const dropTo = (s: Subscription): Subscription => (s === 'to' ? 'none' : s === 'both' ? 'from' : s);

function same(a: RosterItem | undefined, b: RosterItem | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return (
    a.subscription === b.subscription &&
    a.ask === b.ask &&
    a.pendingIn === b.pendingIn &&
    a.approved === b.approved &&
    a.listed === b.listed
  );
}

/** What the user sees in a roster push: subscription and ask, and whether the item is listed at all. */
function visible(item: RosterItem | undefined): string {
  return item === undefined || !item.listed ? '' : `${item.subscription}/${item.ask}`;
}

function finish(
  before: RosterItem | undefined,
  after: RosterItem | undefined,
  flags: Partial<Pick<Transition, 'forward' | 'autoApprove' | 'sendPresence' | 'sendUnavailable'>>,
): Transition {
  // An unlisted item with nothing left to remember is deleted.
  if (after !== undefined && !after.listed && !after.pendingIn && after.subscription === 'none' && !after.ask)
    after = undefined;
  return {
    item: after,
    changed: !same(before, after),
    push: visible(before) !== visible(after),
    forward: flags.forward ?? false,
    autoApprove: flags.autoApprove ?? false,
    sendPresence: flags.sendPresence ?? false,
    sendUnavailable: flags.sendUnavailable ?? false,
  };
}

/** The user sent a subscription stanza to `contact` (RFC 6121 §3.1.2, §3.1.5, §3.2.2, §3.3.2, §3.4). */
export function outbound(
  current: RosterItem | undefined,
  contact: string,
  type: SubscriptionType,
): Transition {
  const item = current === undefined ? undefined : { ...current, groups: [...current.groups] };
  switch (type) {
    case 'subscribe': {
      const next = item ?? newItem(contact, true);
      next.listed = true;
      if (!hasTo(next.subscription)) next.ask = true;
      return finish(current, next, { forward: true });
    }
    case 'subscribed': {
      if (item?.pendingIn) {
        item.subscription = addFrom(item.subscription);
        item.pendingIn = false;
        item.approved = false;
        item.listed = true;
        return finish(current, item, { forward: true, sendPresence: true });
      }
      if (item !== undefined && hasFrom(item.subscription)) return finish(current, item, {});
      // Pre-approval: remembered, not routed (RFC 6121 §3.4.2).
      const next = item ?? newItem(contact, true);
      next.approved = true;
      next.listed = true;
      return finish(current, next, {});
    }
    case 'unsubscribe': {
      if (item === undefined) return finish(current, item, { forward: true });
      item.subscription = dropTo(item.subscription);
      item.ask = false;
      return finish(current, item, { forward: true });
    }
    case 'unsubscribed': {
      if (item === undefined) return finish(current, item, {});
      const hadFrom = hasFrom(item.subscription);
      const hadPending = item.pendingIn;
      const hadApproval = item.approved;
      item.subscription = dropFrom(item.subscription);
      item.pendingIn = false;
      item.approved = false;
      return finish(current, item, {
        forward: hadFrom || hadPending || hadApproval,
        sendUnavailable: hadFrom,
      });
    }
  }
}

/** A subscription stanza from `contact` reached the user's server (RFC 6121 §3.1.3, §3.1.6, §3.2.3, §3.3.3). */
export function inbound(
  current: RosterItem | undefined,
  contact: string,
  type: SubscriptionType,
): Transition {
  const item = current === undefined ? undefined : { ...current, groups: [...current.groups] };
  switch (type) {
    case 'subscribe': {
      if (item !== undefined && hasFrom(item.subscription))
        return finish(current, item, { autoApprove: true });
      if (item?.approved) {
        item.subscription = addFrom(item.subscription);
        item.approved = false;
        item.pendingIn = false;
        return finish(current, item, { autoApprove: true, sendPresence: true });
      }
      const next = item ?? newItem(contact, false);
      next.pendingIn = true;
      return finish(current, next, { forward: true });
    }
    case 'subscribed': {
      if (item === undefined || !item.ask) return finish(current, item, {});
      item.subscription = addTo(item.subscription);
      item.ask = false;
      return finish(current, item, { forward: true });
    }
    case 'unsubscribe': {
      if (item === undefined || (!hasFrom(item.subscription) && !item.pendingIn))
        return finish(current, item, {});
      const hadFrom = hasFrom(item.subscription);
      item.subscription = dropFrom(item.subscription);
      item.pendingIn = false;
      item.approved = false;
      return finish(current, item, { forward: true, sendUnavailable: hadFrom });
    }
    case 'unsubscribed': {
      if (item === undefined || (!hasTo(item.subscription) && !item.ask)) return finish(current, item, {});
      item.subscription = dropTo(item.subscription);
      item.ask = false;
      return finish(current, item, { forward: true });
    }
  }
}
