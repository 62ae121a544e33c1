/**
 * Who may monitor and control which device (SPEC.md §3 "Authorization"), and the devices each CSTA
 * request acts on. A request naming a call only by callID is allowed when that call was seen on one of
 * the requester's devices.
 */
import { type ConnectionID, type CstaMessage, plainNumber } from '../csta/index.ts';

/** Device identifiers compared as dial strings: `N<1001>`, `tel:1001`, `sip:1001@host` → 1001. */
export function normalizeDevice(device: string): string {
  let d = plainNumber(device.trim());
  if (d.startsWith('tel:')) d = d.slice(4);
  else if (d.startsWith('sip:') || d.startsWith('sips:')) d = d.slice(d.indexOf(':') + 1).split('@')[0]!;
  const semicolon = d.indexOf(';');
  return semicolon >= 0 ? d.slice(0, semicolon) : d;
}

export interface DeviceGrant {
  /** Bare JID, e.g. alice@localhost. */
  jid: string;
  devices: string[];
}

export class DeviceAuthorization {
  private readonly byJid = new Map<string, Set<string>>();

  constructor(grants: DeviceGrant[] = []) {
    for (const g of grants) this.grant(g.jid, ...g.devices);
  }

  grant(bareJid: string, ...devices: string[]): void {
    const key = bareJid.toLowerCase();
    let set = this.byJid.get(key);
    if (set === undefined) {
      set = new Set();
      this.byJid.set(key, set);
    }
    for (const d of devices) set.add(normalizeDevice(d));
  }

  allows(bareJid: string, device: string): boolean {
    return this.byJid.get(bareJid.toLowerCase())?.has(normalizeDevice(device)) ?? false;
  }

  devicesOf(bareJid: string): ReadonlySet<string> {
    return this.byJid.get(bareJid.toLowerCase()) ?? new Set();
  }
}

/** What a request acts on: devices named outright, and connections (callID and maybe deviceID). */
export interface RequestTargets {
  devices: string[];
  connections: ConnectionID[];
}

/**
 * The services a client may send through the gateway, with what each acts on. A service that is not
 * listed is answered feature-not-implemented: the gateway cannot authorise what it does not understand.
 */
export function targetsOf(message: CstaMessage): RequestTargets | undefined {
  const m = message as Record<string, unknown> & CstaMessage;
  const dev = (...keys: string[]) => keys.map((k) => m[k]).filter((v): v is string => typeof v === 'string');
  const con = (...keys: string[]) =>
    keys.map((k) => m[k]).filter((v): v is ConnectionID => typeof v === 'object' && v !== null);
  switch (message.name) {
    case 'MonitorStart': {
      const object = message.monitorObject as { deviceObject?: string; callObject?: ConnectionID };
      if (object.deviceObject !== undefined) return { devices: [object.deviceObject], connections: [] };
      return { devices: [], connections: object.callObject ? [object.callObject] : [] };
    }
    case 'MakeCall':
      return { devices: dev('callingDevice'), connections: [] };
    case 'AnswerCall':
      return { devices: [], connections: con('callToBeAnswered') };
    case 'ClearConnection':
      return { devices: [], connections: con('connectionToBeCleared') };
    case 'ClearCall':
      return { devices: [], connections: con('callToBeCleared') };
    case 'HoldCall':
      return { devices: [], connections: con('callToBeHeld') };
    case 'RetrieveCall':
      return { devices: [], connections: con('callToBeRetrieved') };
    case 'ConsultationCall':
      return { devices: [], connections: con('existingCall') };
    case 'TransferCall':
    case 'ConferenceCall':
      return { devices: [], connections: con('heldCall', 'activeCall') };
    case 'SingleStepTransferCall':
      return { devices: [], connections: con('activeCall') };
    case 'DeflectCall':
      return { devices: [], connections: con('callToBeDiverted') };
    case 'SetForwarding':
    case 'GetForwarding':
    case 'SetDoNotDisturb':
    case 'GetDoNotDisturb':
    case 'GetLogicalDeviceInformation':
    case 'GetPhysicalDeviceInformation':
      return { devices: dev('device'), connections: [] };
    case 'SnapshotDevice':
      return { devices: dev('snapshotObject'), connections: [] };
    case 'SnapshotCall':
      return { devices: [], connections: con('snapshotObject') };
    default:
      return undefined;
  }
}

/**
 * callID → devices it was seen on, from events of monitored devices and MakeCall responses. Bounded:
 * the oldest calls are forgotten first.
 */
export class CallRegistry {
  private readonly calls = new Map<string, Set<string>>();
  private readonly limit: number;

  constructor(limit = 50_000) {
    this.limit = limit;
  }

  note(callID: string, device: string): void {
    let devices = this.calls.get(callID);
    if (devices === undefined) {
      devices = new Set();
      this.calls.set(callID, devices);
      if (this.calls.size > this.limit) this.calls.delete(this.calls.keys().next().value!);
    }
    devices.add(normalizeDevice(device));
  }

  devicesOf(callID: string): ReadonlySet<string> {
    return this.calls.get(callID) ?? new Set();
  }

  get size(): number {
    return this.calls.size;
  }
}

/** True when every target of the request belongs to the requester. */
export function isAuthorized(
  auth: DeviceAuthorization,
  calls: CallRegistry,
  bareJid: string,
  targets: RequestTargets,
): boolean {
  if (targets.devices.length === 0 && targets.connections.length === 0) return false;
  for (const device of targets.devices) if (!auth.allows(bareJid, device)) return false;
  for (const connection of targets.connections) {
    if (connection.deviceID !== undefined) {
      if (!auth.allows(bareJid, connection.deviceID)) return false;
    } else if (connection.callID !== undefined) {
      let ok = false;
      for (const device of calls.devicesOf(connection.callID)) if (auth.allows(bareJid, device)) ok = true;
      if (!ok) return false;
    } else {
      return false;
    }
  }
  return true;
}
