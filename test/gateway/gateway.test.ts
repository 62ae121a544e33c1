import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EDITION_NAMESPACES } from '../../src/csta/index.ts';
import type { DeviceAuthorization } from '../../src/gateway/authorization.ts';
import { COMPONENT_NS } from '../../src/gateway/component.ts';
import type { Gateway } from '../../src/gateway/gateway.ts';
import { parseDocument, serialize } from '../../src/xml/index.ts';
import { waitUntil } from '../helpers/net.ts';
import { errorOf, type FakeXmpp, GW, iq, setup } from './harness.ts';

const ED4 = EDITION_NAMESPACES.ed4;
const ED3 = EDITION_NAMESPACES.ed3;
const ALICE = 'alice@localhost/desk';
const ALICE2 = 'alice@localhost/phone-app';
const BOB = 'bob@localhost/laptop';

async function monitorStart(
  gateway: Gateway,
  xmpp: FakeXmpp,
  jid: string,
  device: string,
  ns = ED4,
  filter = '',
) {
  const q = iq(
    jid,
    'set',
    `<MonitorStart xmlns='${ns}'><monitorObject><deviceObject>${device}</deviceObject></monitorObject>${filter}</MonitorStart>`,
  );
  gateway.handleStanza(q.el);
  const reply = await xmpp.answer(q.id);
  return reply;
}

describe('gateway: requests and answers', () => {
  it('advertises the CSTA editions, ping and commands in disco#info, and answers pings', async (t) => {
    const { gateway, xmpp } = await setup(t);
    const q = iq(ALICE, 'get', "<query xmlns='http://jabber.org/protocol/disco#info'/>");
    gateway.handleStanza(q.el);
    const reply = await xmpp.answer(q.id);
    const features = reply
      .getChild('query')!
      .getChildren('feature')
      .map((f) => f.attr('var'));
    for (const ns of [
      ED4,
      ED3,
      EDITION_NAMESPACES.ed5,
      EDITION_NAMESPACES.ed6,
      'urn:xmpp:ping',
      'http://jabber.org/protocol/commands',
    ]) {
      assert.ok(features.includes(ns), ns);
    }
    const ping = iq(ALICE, 'get', "<ping xmlns='urn:xmpp:ping'/>");
    gateway.handleStanza(ping.el);
    assert.equal((await xmpp.answer(ping.id)).attr('type'), 'result');
  });

  it('relays MakeCall and answers exactly that JID and id, in the request namespace, with no JID to the PBX', async (t) => {
    const { gateway, xmpp, pbx } = await setup(t);
    const q = iq(
      ALICE,
      'set',
      `<MakeCall xmlns='${ED3}'><callingDevice>1001</callingDevice><calledDirectoryNumber>1002</calledDirectoryNumber></MakeCall>`,
    );
    gateway.handleStanza(q.el);
    const reply = await xmpp.answer(q.id);
    assert.equal(reply.attr('type'), 'result');
    assert.equal(reply.attr('to'), ALICE);
    assert.equal(reply.attr('from'), GW);
    const response = reply.getChild('MakeCallResponse')!;
    assert.equal(response.ns, ED3);
    assert.equal(response.find('callingDevice', 'callID')?.text(), 'c1');
    assert.ok(pbx.received.some((m) => m.name === 'MakeCall'));
    const wire = pbx.rawReceived.join('');
    assert.doesNotMatch(wire, /alice|localhost|q\d+/, 'no JID or iq id crosses to the PBX');
    // And no invokeID reaches the client: the answer carries nothing but the response element.
    assert.doesNotMatch(serialize(reply), /invokeID|[^0-9]000[0-9][^0-9]/);
  });

  it('maps a CSTA negative response to an XMPP error with the CSTAErrorCode', async (t) => {
    const { gateway, xmpp } = await setup(t);
    const q = iq(
      ALICE,
      'set',
      `<MakeCall xmlns='${ED4}'><callingDevice>1001</callingDevice><calledDirectoryNumber>486</calledDirectoryNumber></MakeCall>`,
    );
    gateway.handleStanza(q.el);
    const reply = await xmpp.answer(q.id);
    assert.deepEqual(errorOf(reply), {
      type: 'wait',
      condition: 'resource-constraint',
      csta: 'systemResourceAvailibility/resourceBusy',
    });
  });

  it("refuses someone else's device with forbidden + privilegeViolationSpecifiedDevice, sending nothing to the PBX", async (t) => {
    const { gateway, xmpp, pbx } = await setup(t);
    const before = pbx.received.length;
    const q = iq(
      ALICE,
      'set',
      `<MakeCall xmlns='${ED4}'><callingDevice>1002</callingDevice><calledDirectoryNumber>1003</calledDirectoryNumber></MakeCall>`,
    );
    gateway.handleStanza(q.el);
    assert.deepEqual(errorOf(await xmpp.answer(q.id)), {
      type: 'auth',
      condition: 'forbidden',
      csta: 'operation/privilegeViolationSpecifiedDevice',
    });
    const m = await monitorStart(gateway, xmpp, ALICE, '1002');
    assert.equal(errorOf(m).condition, 'forbidden');
    assert.equal(pbx.received.length, before);
  });

  it('a call named only by callID is allowed once seen on the requester’s device, refused otherwise', async (t) => {
    const { gateway, xmpp, pbx } = await setup(t);
    const clear = (from: string, callID: string) => {
      const q = iq(
        from,
        'set',
        `<ClearCall xmlns='${ED4}'><callToBeCleared><callID>${callID}</callID></callToBeCleared></ClearCall>`,
      );
      gateway.handleStanza(q.el);
      return xmpp.answer(q.id);
    };
    assert.equal(errorOf(await clear(BOB, 'c77')).condition, 'forbidden');
    await monitorStart(gateway, xmpp, BOB, '1002');
    pbx.connection!.sendEvent(pbx.delivered(pbx.xrefFor('1002')!, 'c77'));
    await waitUntil(() => xmpp.to(BOB).some((s) => s.getChild('DeliveredEvent')), 3000, 'event');
    assert.equal((await clear(BOB, 'c77')).attr('type'), 'result');
    assert.equal(errorOf(await clear(ALICE, 'c77')).condition, 'forbidden');
  });

  it('answers malformed, unknown and non-CSTA payloads with bad-request, feature-not-implemented, service-unavailable', async (t) => {
    const { gateway, xmpp } = await setup(t);
    const cases: [string, string][] = [
      [
        `<MakeCall xmlns='${ED4}'><calledDirectoryNumber>1002</calledDirectoryNumber></MakeCall>`,
        'bad-request',
      ],
      [`<FlyToTheMoon xmlns='${ED4}'/>`, 'feature-not-implemented'],
      [
        `<SystemRegister xmlns='${ED4}'><requestTypes><systemStatus>true</systemStatus></requestTypes></SystemRegister>`,
        'feature-not-implemented',
      ],
      [
        `<DeliveredEvent xmlns='${ED4}'><monitorCrossRefID>1</monitorCrossRefID></DeliveredEvent>`,
        'bad-request',
      ],
      ["<query xmlns='jabber:iq:roster'/>", 'service-unavailable'],
      [`<MakeCall xmlns='${ED4}'/><MakeCall xmlns='${ED4}'/>`, 'bad-request'],
    ];
    for (const [payload, condition] of cases) {
      const q = iq(ALICE, 'set', payload);
      gateway.handleStanza(q.el);
      assert.equal(errorOf(await xmpp.answer(q.id)).condition, condition, payload);
    }
  });

  it('never answers an iq result or error, and ignores iqs it cannot answer', async (t) => {
    const { gateway, xmpp } = await setup(t);
    const before = xmpp.sent.length;
    gateway.handleStanza(
      parseDocument(
        `<iq xmlns='${COMPONENT_NS}' type='error' id='x' from='${ALICE}' to='${GW}'><error type='cancel'/></iq>`,
      ),
    );
    gateway.handleStanza(
      parseDocument(`<iq xmlns='${COMPONENT_NS}' type='result' id='y' from='${ALICE}' to='${GW}'/>`),
    );
    gateway.handleStanza(
      parseDocument(
        `<iq xmlns='${COMPONENT_NS}' type='get' from='${ALICE}' to='${GW}'><ping xmlns='urn:xmpp:ping'/></iq>`,
      ),
    );
    assert.equal(xmpp.sent.length, before);
  });
});

describe('gateway: shared monitors', () => {
  it('two clients on one device share one PBX monitor; each gets its own cross-ref and events', async (t) => {
    const { gateway, xmpp, pbx } = await setup(t);
    const r1 = await monitorStart(gateway, xmpp, ALICE, '1001');
    const r2 = await monitorStart(gateway, xmpp, ALICE2, '1001', ED3);
    const x1 = r1.getChild('MonitorStartResponse')!.getChildText('monitorCrossRefID')!;
    const x2 = r2.getChild('MonitorStartResponse')!.getChildText('monitorCrossRefID')!;
    assert.notEqual(x1, x2);
    assert.equal(r2.getChild('MonitorStartResponse')!.ns, ED3);
    assert.equal(pbx.received.filter((m) => m.name === 'MonitorStart').length, 1);
    assert.equal(gateway.deviceMonitorCount, 1);
    assert.equal(gateway.clientMonitorCount, 2);
    const pbxXref = pbx.xrefFor('1001')!;
    assert.notEqual(pbxXref, x1, 'the PBX cross-ref never reaches a client');

    pbx.connection!.sendEvent(pbx.delivered(pbxXref));
    await waitUntil(
      () =>
        xmpp.to(ALICE).some((s) => s.getChild('DeliveredEvent')) &&
        xmpp.to(ALICE2).some((s) => s.getChild('DeliveredEvent')),
      3000,
      'fan-out',
    );
    const e1 = xmpp.to(ALICE).find((s) => s.getChild('DeliveredEvent'))!;
    const e2 = xmpp.to(ALICE2).find((s) => s.getChild('DeliveredEvent'))!;
    assert.equal(e1.attr('type'), 'set');
    assert.equal(e1.getChild('DeliveredEvent')!.getChildText('monitorCrossRefID'), x1);
    assert.equal(e2.getChild('DeliveredEvent')!.getChildText('monitorCrossRefID'), x2);
    assert.equal(e2.getChild('DeliveredEvent')!.ns, ED3);
    // Clients acknowledge.
    for (const e of [e1, e2]) {
      gateway.handleStanza(
        parseDocument(
          `<iq xmlns='${COMPONENT_NS}' type='result' id='${e.attr('id')}' from='${e.attr('to')}' to='${GW}'/>`,
        ),
      );
    }

    // One client goes away: the other keeps its events and the PBX monitor stays.
    gateway.handleStanza(
      parseDocument(`<presence xmlns='${COMPONENT_NS}' type='unavailable' from='${ALICE}' to='${GW}'/>`),
    );
    assert.equal(gateway.clientMonitorCount, 1);
    assert.equal(pbx.monitors.size, 1);
    const sentToAlice = xmpp.to(ALICE).length;
    pbx.connection!.sendEvent(pbx.delivered(pbxXref, 'c2'));
    await waitUntil(
      () => xmpp.to(ALICE2).filter((s) => s.getChild('DeliveredEvent')).length === 2,
      3000,
      'second event',
    );
    assert.equal(xmpp.to(ALICE).length, sentToAlice, 'nothing more is sent to a client that left');
    assert.equal(gateway.counters.monitorsEnded.unavailable, 1);

    // The last client stops: the PBX monitor stops.
    const stop = iq(
      ALICE2,
      'set',
      `<MonitorStop xmlns='${ED3}'><monitorCrossRefID>${x2}</monitorCrossRefID></MonitorStop>`,
    );
    gateway.handleStanza(stop.el);
    assert.equal((await xmpp.answer(stop.id)).getChild('MonitorStopResponse')?.ns, ED3);
    await waitUntil(() => pbx.monitors.size === 0, 3000, 'PBX MonitorStop');
    assert.equal(gateway.deviceMonitorCount, 0);
    assert.equal(gateway.counters.monitorsEnded.stop, 1);
  });

  it('an event that arrives together with the MonitorStartResponse is not lost', async (t) => {
    const { gateway, xmpp, pbx } = await setup(t);
    pbx.eventRightAfterStart = true;
    const r = await monitorStart(gateway, xmpp, ALICE, '1001');
    const x = r.getChild('MonitorStartResponse')!.getChildText('monitorCrossRefID')!;
    await waitUntil(
      () => xmpp.to(ALICE).some((s) => s.getChild('DeliveredEvent')),
      3000,
      'early event delivered',
    );
    const ev = xmpp.to(ALICE).find((s) => s.getChild('DeliveredEvent'))!;
    assert.equal(ev.getChild('DeliveredEvent')!.getChildText('monitorCrossRefID'), x);
    // The answer to MonitorStart went out before the event.
    assert.ok(xmpp.sent.indexOf(r) < xmpp.sent.indexOf(ev));
  });

  it('an event answered with an error ends all the client’s monitors', async (t) => {
    const { gateway, xmpp, pbx } = await setup(t);
    await monitorStart(gateway, xmpp, ALICE, '1001');
    pbx.connection!.sendEvent(pbx.delivered(pbx.xrefFor('1001')!));
    await waitUntil(() => xmpp.to(ALICE).some((s) => s.getChild('DeliveredEvent')), 3000, 'event');
    const ev = xmpp.to(ALICE).find((s) => s.getChild('DeliveredEvent'))!;
    gateway.handleStanza(
      parseDocument(
        `<iq xmlns='${COMPONENT_NS}' type='error' id='${ev.attr('id')}' from='${ALICE}' to='${GW}'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`,
      ),
    );
    assert.equal(gateway.clientMonitorCount, 0);
    assert.equal(gateway.counters.monitorsEnded.error, 1);
    await waitUntil(() => pbx.monitors.size === 0, 3000, 'PBX MonitorStop');
  });

  it('an event not answered within event_ack_timeout_s ends the monitors; nothing more is sent', async (t) => {
    const { gateway, xmpp, pbx } = await setup(t, { ackTimeoutS: 0.2 });
    await monitorStart(gateway, xmpp, ALICE, '1001');
    const xref = pbx.xrefFor('1001')!;
    pbx.connection!.sendEvent(pbx.delivered(xref));
    await waitUntil(() => gateway.counters.monitorsEnded.timeout === 1, 3000, 'timeout');
    await waitUntil(() => pbx.monitors.size === 0, 3000, 'PBX MonitorStop');
    const count = xmpp.to(ALICE).length;
    pbx.connection!.sendEvent(pbx.delivered(xref, 'c9'));
    // The monitor is gone on both sides; a late event for the old cross-ref goes nowhere.
    await new Promise((r) => setImmediate(r));
    assert.equal(xmpp.to(ALICE).length, count);
  });

  it('applies each client’s own filter (true = do not send)', async (t) => {
    const { gateway, xmpp, pbx } = await setup(t);
    await monitorStart(
      gateway,
      xmpp,
      ALICE,
      '1001',
      ED4,
      '<requestedMonitorFilter><callcontrol><delivered>true</delivered></callcontrol></requestedMonitorFilter>',
    );
    await monitorStart(gateway, xmpp, ALICE2, '1001');
    pbx.connection!.sendEvent(pbx.delivered(pbx.xrefFor('1001')!));
    await waitUntil(
      () => xmpp.to(ALICE2).some((s) => s.getChild('DeliveredEvent')),
      3000,
      'event to unfiltered client',
    );
    assert.equal(xmpp.to(ALICE).filter((s) => s.getChild('DeliveredEvent')).length, 0);
  });

  it('a MonitorStart on a device the PBX refuses returns its error and leaves no monitor', async (t) => {
    const { gateway, xmpp } = await setup(t);
    const auth = (gateway as unknown as { auth: DeviceAuthorization }).auth;
    auth.grant('alice@localhost', '9999');
    const reply = await monitorStart(gateway, xmpp, ALICE, '9999');
    assert.deepEqual(errorOf(reply), {
      type: 'cancel',
      condition: 'item-not-found',
      csta: 'operation/invalidDeviceID',
    });
    assert.equal(gateway.deviceMonitorCount, 0);
  });

  it('a phone watcher that leaves while its MonitorStart is in flight leaves no voice-server monitor', async (t) => {
    const { gateway, pbx } = await setup(t);
    const stop = gateway.watch('1001', () => {});
    stop(); // the MonitorStart is on its way; its answer finds nobody wanting the monitor
    await waitUntil(
      () => pbx.received.some((m) => m.name === 'MonitorStop') && pbx.monitors.size === 0,
      3000,
      'MonitorStop at the PBX',
    );
    assert.equal(gateway.deviceMonitorCount, 0);
    // A watcher that comes back during the start keeps it.
    const stop2 = gateway.watch('1002', () => {});
    stop2();
    const stop3 = gateway.watch('1002', () => {});
    t.after(stop3);
    await waitUntil(
      () => gateway.deviceMonitorCount === 1 && pbx.monitors.size === 1,
      3000,
      'monitor of 1002',
    );
    await new Promise((r) => setImmediate(r));
    assert.equal(pbx.monitors.size, 1);
  });

  it('a MonitorStop for another client’s cross-ref is item-not-found and stops nothing', async (t) => {
    const { gateway, xmpp } = await setup(t);
    const r = await monitorStart(gateway, xmpp, ALICE, '1001');
    const x = r.getChild('MonitorStartResponse')!.getChildText('monitorCrossRefID')!;
    const stop = iq(
      BOB,
      'set',
      `<MonitorStop xmlns='${ED4}'><monitorCrossRefID>${x}</monitorCrossRefID></MonitorStop>`,
    );
    gateway.handleStanza(stop.el);
    assert.deepEqual(errorOf(await xmpp.answer(stop.id)), {
      type: 'cancel',
      condition: 'item-not-found',
      csta: 'operation/invalidMonitorCrossRefID',
    });
    assert.equal(gateway.clientMonitorCount, 1);
  });

  it('after the component reconnects, clients that do not answer a ping lose their monitors', async (t) => {
    const { gateway, xmpp } = await setup(t, { ackTimeoutS: 0.2 });
    await monitorStart(gateway, xmpp, ALICE, '1001');
    await monitorStart(gateway, xmpp, ALICE2, '1001');
    gateway.probeClients();
    const probe = xmpp.to(ALICE2).find((s) => s.getChild('ping'))!;
    gateway.handleStanza(
      parseDocument(
        `<iq xmlns='${COMPONENT_NS}' type='result' id='${probe.attr('id')}' from='${ALICE2}' to='${GW}'/>`,
      ),
    );
    await waitUntil(() => gateway.counters.monitorsEnded.unavailable === 1, 3000, 'silent client dropped');
    assert.equal(gateway.clientMonitorCount, 1);
  });
});

describe('gateway: voice-server link', () => {
  it('fails requests with service-unavailable (wait) while the link is down, and restores monitors after it', async (t) => {
    const { gateway, xmpp, pbx, link } = await setup(t);
    const r = await monitorStart(gateway, xmpp, ALICE, '1001');
    const clientXref = r.getChild('MonitorStartResponse')!.getChildText('monitorCrossRefID')!;
    // The voice server goes away.
    pbx.connection!.socket.destroy();
    await waitUntil(() => !link.isUp, 3000, 'link down');
    assert.equal(gateway.linkUp, false);
    const q = iq(
      ALICE,
      'set',
      `<MakeCall xmlns='${ED4}'><callingDevice>1001</callingDevice><calledDirectoryNumber>1002</calledDirectoryNumber></MakeCall>`,
    );
    gateway.handleStanza(q.el);
    assert.deepEqual(errorOf(await xmpp.answer(q.id)), {
      type: 'wait',
      condition: 'service-unavailable',
      csta: 'systemResourceAvailibility/resourceOutOfService',
    });
    // It comes back (the link reconnects by itself); the monitor is restored without client action.
    await waitUntil(() => link.isUp && gateway.deviceMonitorCount === 1, 5000, 'monitor restored');
    const newPbxXref = pbx.xrefFor('1001')!;
    assert.notEqual(newPbxXref, undefined);
    pbx.connection!.sendEvent(pbx.delivered(newPbxXref));
    await waitUntil(
      () => xmpp.to(ALICE).some((s) => s.getChild('DeliveredEvent')),
      3000,
      'event after restore',
    );
    const ev = xmpp.to(ALICE).find((s) => s.getChild('DeliveredEvent'))!;
    assert.equal(
      ev.getChild('DeliveredEvent')!.getChildText('monitorCrossRefID'),
      clientXref,
      'the client keeps its cross-ref',
    );
  });

  it('a MonitorStop from the PBX is passed to each client in its own terms and ends the monitors', async (t) => {
    const { gateway, xmpp, pbx } = await setup(t);
    const r = await monitorStart(gateway, xmpp, ALICE, '1001');
    const x = r.getChild('MonitorStartResponse')!.getChildText('monitorCrossRefID')!;
    await pbx.connection!.request({ name: 'MonitorStop', monitorCrossRefID: pbx.xrefFor('1001')! });
    const stop = xmpp.to(ALICE).find((s) => s.getChild('MonitorStop'))!;
    assert.equal(stop.getChild('MonitorStop')!.getChildText('monitorCrossRefID'), x);
    assert.equal(gateway.clientMonitorCount, 0);
  });
});
