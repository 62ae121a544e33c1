import assert from 'node:assert/strict';
import { describe, it, type TestContext } from 'node:test';
import {
  CstaLink,
  type CstaMessage,
  CstaServer,
  type CstaServerConnection,
  EDITION_NAMESPACES,
  type IncomingRequest,
} from '../../src/csta/index.ts';
import { DeviceAuthorization } from '../../src/gateway/authorization.ts';
import { COMPONENT_NS } from '../../src/gateway/component.ts';
import { Gateway } from '../../src/gateway/gateway.ts';
import { type Element, parseDocument, serialize } from '../../src/xml/index.ts';
import { waitUntil } from '../helpers/net.ts';

const ED4 = EDITION_NAMESPACES.ed4;
const ED3 = EDITION_NAMESPACES.ed3;
const GW = 'cti.localhost';
const ALICE = 'alice@localhost/desk';
const ALICE2 = 'alice@localhost/phone-app';
const BOB = 'bob@localhost/laptop';

/** A scripted voice server: answers MonitorStart/Stop and MakeCall, records what it received. */
class ScriptedPbx {
  readonly server = new CstaServer();
  readonly received: CstaMessage[] = [];
  readonly rawReceived: string[] = [];
  connection: CstaServerConnection | undefined;
  port = 0;
  private nextXref = 100;
  readonly monitors = new Map<string, string>(); // xref → device
  /** Send a DeliveredEvent in the same breath as the MonitorStartResponse. */
  eventRightAfterStart = false;

  async start(t: TestContext, port = 0): Promise<void> {
    const server = port === 0 ? this.server : new CstaServer({ port });
    if (port !== 0) (this as { server: CstaServer }).server = server;
    server.on('connection', (c) => {
      // Monitors belong to a connection: a PBX forgets them when its client goes.
      this.monitors.clear();
      this.connection = c;
      c.session.on('received', (_id, root) => this.rawReceived.push(root));
      c.socket.on('data', (d) => this.rawReceived.push(d.toString('utf8')));
      c.on('request', (r) => this.handle(r));
    });
    this.port = (await server.listen()).port;
    t.after(() => server.close());
  }

  private handle(r: IncomingRequest): void {
    const m = r.message!;
    this.received.push(m);
    if (m.name === 'MonitorStart') {
      const device = (m.monitorObject as { deviceObject: string }).deviceObject;
      if (device === '9999') {
        r.fail({ operation: 'invalidDeviceID' } as never);
        return;
      }
      const xref = `pbx${this.nextXref++}`;
      this.monitors.set(xref, device);
      r.reply({ name: 'MonitorStartResponse', monitorCrossRefID: xref });
      if (this.eventRightAfterStart) this.connection!.sendEvent(this.delivered(xref));
    } else if (m.name === 'MonitorStop') {
      this.monitors.delete(m.monitorCrossRefID);
      r.reply({ name: 'MonitorStopResponse' });
    } else if (m.name === 'MakeCall') {
      if (m.calledDirectoryNumber === '486') r.fail({ systemResourceAvailibility: 'resourceBusy' } as never);
      else r.reply({ name: 'MakeCallResponse', callingDevice: { callID: 'c1', deviceID: m.callingDevice } });
    } else if (m.name === 'ClearCall') {
      r.reply({ name: 'ClearCallResponse' });
    } else {
      r.fail({ operation: 'serviceNotSupported' } as never);
    }
  }

  xrefFor(device: string): string | undefined {
    for (const [x, d] of this.monitors) if (d === device) return x;
    return undefined;
  }

  delivered(xref: string, callID = 'c1'): CstaMessage {
    return {
      name: 'DeliveredEvent',
      monitorCrossRefID: xref,
      connection: { callID, deviceID: '1002' },
      alertingDevice: { deviceIdentifier: '1002' },
      callingDevice: { deviceIdentifier: '1001' },
      calledDevice: { deviceIdentifier: '1002' },
      lastRedirectionDevice: { notKnown: true },
      localConnectionInfo: 'alerting',
      cause: 'newCall',
    } as CstaMessage;
  }
}

/** The XMPP side: records what the gateway sends, and lets a test play the clients. */
class FakeXmpp {
  readonly sent: Element[] = [];
  online = true;
  send(stanza: Element): boolean {
    if (!this.online) return false;
    // Round-trip through the wire format so the test sees exactly what a server would.
    this.sent.push(parseDocument(serialize(stanza, null)));
    return true;
  }
  to(jid: string): Element[] {
    return this.sent.filter((s) => s.attr('to') === jid);
  }
  async answer(id: string, timeoutMs = 3000): Promise<Element> {
    let found: Element | undefined;
    await waitUntil(
      () => {
        found = this.sent.find((s) => s.name === 'iq' && s.attr('id') === id && s.attr('type') !== 'set');
        return found !== undefined;
      },
      timeoutMs,
      `answer to ${id}`,
    );
    return found!;
  }
}

let iqCounter = 0;
function iq(from: string, type: 'get' | 'set', payloadXml: string, to = GW): { el: Element; id: string } {
  const id = `q${++iqCounter}`;
  const el = parseDocument(
    `<iq xmlns='${COMPONENT_NS}' type='${type}' id='${id}' from='${from}' to='${to}'>${payloadXml}</iq>`,
  );
  return { el, id };
}

function errorOf(reply: Element): { type?: string; condition?: string; csta?: string } {
  const error = reply.getChild('error')!;
  const condition = error
    .elements()
    .find((e) => e.ns === 'urn:ietf:params:xml:ns:xmpp-stanzas' && e.name !== 'text');
  const csta = error.getChild('CSTAErrorCode')?.elements()[0];
  return {
    ...(error.attr('type') === undefined ? {} : { type: error.attr('type')! }),
    ...(condition === undefined ? {} : { condition: condition.name }),
    ...(csta === undefined ? {} : { csta: `${csta.name}/${csta.text()}` }),
  };
}

async function setup(t: TestContext, options: { ackTimeoutS?: number } = {}) {
  const pbx = new ScriptedPbx();
  await pbx.start(t);
  const link = new CstaLink({
    host: '127.0.0.1',
    port: pbx.port,
    awaitSystemStatusMs: 500,
    keepAliveIntervalMs: 0,
    requestTimeoutMs: 2000,
    reconnect: { initialDelayMs: 20, maxDelayMs: 100, jitter: 0 },
  });
  const xmpp = new FakeXmpp();
  const authorization = new DeviceAuthorization([
    { jid: 'alice@localhost', devices: ['1001'] },
    { jid: 'bob@localhost', devices: ['1002'] },
  ]);
  const gateway = new Gateway({
    jid: GW,
    xmpp,
    pbx: link,
    authorization,
    eventAckTimeoutS: options.ackTimeoutS ?? 5,
  });
  t.after(async () => {
    await gateway.close();
    await link.stop();
  });
  link.start();
  await waitUntil(() => link.isUp, 5000, 'CSTA link up');
  return { pbx, link, xmpp, gateway };
}

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
