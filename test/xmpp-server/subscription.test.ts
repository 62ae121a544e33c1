/** RFC 6121 Appendix A state tables, as unit tests of the pure state machine. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RosterItem } from '../../src/xmpp-server/store.ts';
import { inbound, newItem, outbound } from '../../src/xmpp-server/subscription.ts';

const C = 'contact@localhost';
const state = (s: Partial<RosterItem>): RosterItem => ({ ...newItem(C, true), ...s });
const brief = (i: RosterItem | undefined) =>
  i === undefined
    ? 'deleted'
    : `${i.subscription}${i.ask ? '+out' : ''}${i.pendingIn ? '+in' : ''}${i.approved ? '+pre' : ''}`;

test('A.2.1 outbound subscribe', () => {
  assert.equal(brief(outbound(undefined, C, 'subscribe').item), 'none+out');
  assert.equal(brief(outbound(state({ subscription: 'from' }), C, 'subscribe').item), 'from+out');
  const to = outbound(state({ subscription: 'to' }), C, 'subscribe');
  assert.equal(brief(to.item), 'to');
  assert.equal(to.changed, false);
  assert.ok(to.forward);
});

test('A.2.2 outbound unsubscribe', () => {
  assert.equal(brief(outbound(state({ subscription: 'both' }), C, 'unsubscribe').item), 'from');
  assert.equal(brief(outbound(state({ subscription: 'to' }), C, 'unsubscribe').item), 'none');
  assert.equal(brief(outbound(state({ ask: true }), C, 'unsubscribe').item), 'none');
});

test('A.2.3 outbound subscribed: approval, pre-approval, no-op', () => {
  const approve = outbound(state({ pendingIn: true, listed: false }), C, 'subscribed');
  assert.equal(brief(approve.item), 'from');
  assert.ok(approve.forward && approve.sendPresence && approve.item?.listed);
  const pre = outbound(undefined, C, 'subscribed');
  assert.equal(brief(pre.item), 'none+pre');
  assert.equal(pre.forward, false, 'pre-approval is not routed');
  const again = outbound(state({ subscription: 'both' }), C, 'subscribed');
  assert.equal(again.forward, false);
  assert.equal(brief(outbound(state({ subscription: 'to', pendingIn: true }), C, 'subscribed').item), 'both');
});

test('A.2.4 outbound unsubscribed: cancel or deny', () => {
  const cancel = outbound(state({ subscription: 'both' }), C, 'unsubscribed');
  assert.equal(brief(cancel.item), 'to');
  assert.ok(cancel.forward && cancel.sendUnavailable);
  const deny = outbound(state({ pendingIn: true, listed: false }), C, 'unsubscribed');
  assert.equal(brief(deny.item), 'deleted');
  assert.ok(deny.forward);
  assert.equal(outbound(state({}), C, 'unsubscribed').forward, false);
});

test('A.3.1 inbound subscribe: pending in, auto-reply, pre-approved', () => {
  const fresh = inbound(undefined, C, 'subscribe');
  assert.equal(brief(fresh.item), 'none+in');
  assert.equal(fresh.item?.listed, false);
  assert.equal(fresh.push, false, 'no roster push for an unlisted request');
  assert.ok(fresh.forward);
  const subscribed = inbound(state({ subscription: 'from' }), C, 'subscribe');
  assert.ok(subscribed.autoApprove && !subscribed.forward);
  const pre = inbound(state({ approved: true }), C, 'subscribe');
  assert.equal(brief(pre.item), 'from');
  assert.ok(pre.autoApprove && pre.sendPresence && pre.push);
});

test('A.3.2 inbound unsubscribe', () => {
  const t = inbound(state({ subscription: 'both' }), C, 'unsubscribe');
  assert.equal(brief(t.item), 'to');
  assert.ok(t.forward && t.sendUnavailable);
  assert.equal(brief(inbound(state({ pendingIn: true }), C, 'unsubscribe').item), 'none');
  assert.equal(inbound(state({ subscription: 'to' }), C, 'unsubscribe').forward, false);
});

test('A.3.3 inbound subscribed only with a pending request', () => {
  assert.equal(brief(inbound(state({ ask: true }), C, 'subscribed').item), 'to');
  assert.equal(brief(inbound(state({ subscription: 'from', ask: true }), C, 'subscribed').item), 'both');
  const unsolicited = inbound(state({}), C, 'subscribed');
  assert.equal(unsolicited.forward, false);
  assert.equal(unsolicited.changed, false);
});

test('A.3.4 inbound unsubscribed', () => {
  assert.equal(brief(inbound(state({ subscription: 'both' }), C, 'unsubscribed').item), 'from');
  assert.equal(brief(inbound(state({ ask: true }), C, 'unsubscribed').item), 'none');
  assert.equal(inbound(state({ subscription: 'from' }), C, 'unsubscribed').forward, false);
});
