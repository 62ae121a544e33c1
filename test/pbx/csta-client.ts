/**
 * A CSTA test client for the voice server's CSTA interface: a CstaLink over TCP that starts device
 * monitors and records the events of each monitor, written compactly for exact sequence assertions.
 */
import assert from 'node:assert/strict';
import { CstaLink, type CstaMessage, CstaRequestError, type Edition } from '../../src/csta/index.ts';
import { waitEvent, waitUntil } from '../helpers/net.ts';

/** `Name(deviceOfConnection) lci cause`, e.g. `Delivered(1002) alerting newCall`. */
export function describe(message: CstaMessage): string {
  const m = message as Record<string, unknown> & { name: string };
  const connection = (m.initiatedConnection ??
    m.originatedConnection ??
    m.connection ??
    m.establishedConnection ??
    m.droppedConnection ??
    m.failedConnection ??
    m.heldConnection ??
    m.retrievedConnection ??
    m.primaryOldCall) as { deviceID?: string } | undefined;
  const device = (m.device as { deviceIdentifier?: string } | undefined)?.deviceIdentifier;
  const parts = [`${m.name.replace(/Event$/, '')}(${connection?.deviceID ?? device ?? ''})`];
  if (m.localConnectionInfo !== undefined) parts.push(String(m.localConnectionInfo));
  if (m.cause !== undefined) parts.push(String(m.cause));
  if (m.doNotDisturbOn !== undefined) parts.push(m.doNotDisturbOn ? 'on' : 'off');
  if (m.forwardStatus !== undefined)
    parts.push(
      `${String(m.forwardingType)} ${m.forwardStatus ? 'on' : 'off'}${m.forwardTo === undefined ? '' : ` ${String(m.forwardTo)}`}`,
    );
  const newDestination = (m.newDestination as { deviceIdentifier?: string } | undefined)?.deviceIdentifier;
  if (newDestination !== undefined) parts.push(`to ${newDestination}`);
  return parts.join(' ');
}

/** The callID an event is about (undefined for device events). */
export function callIdOf(message: CstaMessage): string | undefined {
  const m = message as Record<string, unknown>;
  const connection = (m.initiatedConnection ??
    m.originatedConnection ??
    m.connection ??
    m.establishedConnection ??
    m.droppedConnection ??
    m.failedConnection ??
    m.heldConnection ??
    m.retrievedConnection ??
    m.primaryOldCall) as { callID?: string } | undefined;
  return connection?.callID;
}

export class CstaTestClient {
  readonly link: CstaLink;
  /** Events per monitorCrossRefID, in arrival order. */
  readonly events = new Map<string, CstaMessage[]>();

  constructor(port: number, edition: Edition = 'ed4') {
    this.link = new CstaLink({
      host: '127.0.0.1',
      port,
      edition,
      reconnect: false,
      keepAliveIntervalMs: 0,
      awaitSystemStatusMs: 2000,
    });
    this.link.on('event', (message) => {
      const id = (message as { monitorCrossRefID?: string }).monitorCrossRefID ?? '';
      let list = this.events.get(id);
      if (list === undefined) {
        list = [];
        this.events.set(id, list);
      }
      list.push(message);
    });
  }

  async connect(): Promise<void> {
    const up = waitEvent(this.link, 'up', 5000);
    this.link.start();
    await up;
  }

  async monitor(device: string): Promise<string> {
    const r = await this.link.request({
      name: 'MonitorStart',
      monitorObject: { deviceObject: device },
      monitorType: 'device',
    });
    this.events.set(r.monitorCrossRefID, []);
    return r.monitorCrossRefID;
  }

  eventsOf(monitor: string): CstaMessage[] {
    return this.events.get(monitor) ?? [];
  }

  /** Forgets what a monitor has received so far (between scenarios). */
  reset(monitor: string): void {
    this.events.set(monitor, []);
  }

  /**
   * Waits for `expected.length` events on the monitor, then for a round trip on the link (everything
   * the server wrote before it is in), and compares the whole sequence.
   */
  async expect(monitor: string, expected: string[], timeoutMs = 5000): Promise<CstaMessage[]> {
    await waitUntil(
      () => this.eventsOf(monitor).length >= expected.length,
      timeoutMs,
      `${expected.length} events on ${monitor}, got ${JSON.stringify(this.eventsOf(monitor).map(describe))}`,
    );
    await this.link.request({ name: 'RequestSystemStatus' });
    const got = this.eventsOf(monitor);
    assert.deepEqual(got.map(describe), expected, `events on ${monitor}`);
    return got;
  }

  /** The CSTAErrorCode a request is refused with, as `group/value`. */
  async refusal(message: Parameters<CstaLink['request']>[0]): Promise<string> {
    try {
      await this.link.request(message);
    } catch (e) {
      if (e instanceof CstaRequestError && e.response.name === 'CSTAErrorCode') {
        const { name: _n, ...rest } = e.response as unknown as Record<string, unknown>;
        const [group, value] = Object.entries(rest).find(([k]) => !k.startsWith('$')) ?? ['?', '?'];
        return `${group}/${value === true || typeof value === 'object' ? '' : String(value)}`;
      }
      throw e;
    }
    assert.fail(`${message.name} was accepted`);
  }

  async close(): Promise<void> {
    await this.link.stop();
  }
}
