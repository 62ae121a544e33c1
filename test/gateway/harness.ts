/** Test harness for the gateway: a scripted voice server and a recording XMPP side. */
import type { TestContext } from 'node:test';
import {
  CstaLink,
  type CstaMessage,
  CstaServer,
  type CstaServerConnection,
  type IncomingRequest,
} from '../../src/csta/index.ts';
import { DeviceAuthorization, type DeviceGrant } from '../../src/gateway/authorization.ts';
import { COMPONENT_NS } from '../../src/gateway/component.ts';
import { Gateway } from '../../src/gateway/gateway.ts';
import { type Element, parseDocument, serialize } from '../../src/xml/index.ts';
import { waitUntil } from '../helpers/net.ts';

export const GW = 'cti.localhost';

/** A scripted voice server: answers MonitorStart/Stop and MakeCall, records what it received. */
export class ScriptedPbx {
  readonly server = new CstaServer();
  readonly received: CstaMessage[] = [];
  readonly rawReceived: string[] = [];
  connection: CstaServerConnection | undefined;
  port = 0;
  private nextXref = 100;
  readonly monitors = new Map<string, string>(); // xref → device
  /** Devices with do-not-disturb on, and calls in progress, as GetDoNotDisturb and SnapshotDevice say. */
  readonly dnd = new Set<string>();
  readonly snapshots = new Map<string, [string, string][]>();
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
    } else if (m.name === 'ClearConnection') {
      r.reply({ name: 'ClearConnectionResponse' });
    } else if (m.name === 'SetDoNotDisturb') {
      r.reply({ name: 'SetDoNotDisturbResponse' });
    } else if (m.name === 'GetDoNotDisturb') {
      r.reply({ name: 'GetDoNotDisturbResponse', doNotDisturbOn: this.dnd.has(m.device) } as CstaMessage);
    } else if (m.name === 'SnapshotDevice') {
      const calls = this.snapshots.get(m.snapshotObject) ?? [];
      r.reply({
        name: 'SnapshotDeviceResponse',
        crossRefIDorSnapshotData: {
          snapshotData: {
            snapshotDeviceResponseInfo: calls.map(([callID, state]) => ({
              connectionIdentifier: { callID, deviceID: m.snapshotObject },
              localCallState: { compoundCallState: { localConnectionState: [state] } },
            })),
          },
        },
      } as CstaMessage);
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
export class FakeXmpp {
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
export function iq(
  from: string,
  type: 'get' | 'set',
  payloadXml: string,
  to = GW,
): { el: Element; id: string } {
  const id = `q${++iqCounter}`;
  const el = parseDocument(
    `<iq xmlns='${COMPONENT_NS}' type='${type}' id='${id}' from='${from}' to='${to}'>${payloadXml}</iq>`,
  );
  return { el, id };
}

export function errorOf(reply: Element): { type?: string; condition?: string; csta?: string } {
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

export async function setup(t: TestContext, options: { ackTimeoutS?: number; grants?: DeviceGrant[] } = {}) {
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
  const authorization = new DeviceAuthorization(
    options.grants ?? [
      { jid: 'alice@localhost', devices: ['1001'] },
      { jid: 'bob@localhost', devices: ['1002'] },
    ],
  );
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
