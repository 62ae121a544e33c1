/**
 * What a phone is doing, rebuilt from the CSTA events of its device monitor (csta.md §5): its calls
 * with their local connection states, DND, forwarding and registration. This drives phone presence,
 * incoming and missed call notices, and chat commands that act on "your call".
 */
import type { ConnectionID, CstaMessage, DeviceChoice } from '../csta/index.ts';
import { normalizeDevice } from './authorization.ts';

export type LocalState = 'initiated' | 'alerting' | 'connected' | 'hold' | 'fail' | 'queued';

export interface PhoneCall {
  callID: string;
  state: LocalState;
  /** incoming: the device was called; outgoing: it called (or MakeCall made it call). */
  direction: 'incoming' | 'outgoing';
  /** The far end as a dial string, when the PBX told us. */
  otherParty: string | undefined;
  answered: boolean;
}

export interface PhonePresence {
  available: boolean;
  show: 'dnd' | 'xa' | undefined;
  status: string;
  /** The same status with the other party's number, for those allowed to see it. */
  detailedStatus: string;
}

export type DeviceNotice =
  | { kind: 'incoming'; callID: string; caller: string | undefined }
  | { kind: 'missed'; callID: string; caller: string | undefined };

function deviceOf(choice: DeviceChoice | undefined): string | undefined {
  const id = (choice as { deviceIdentifier?: string } | undefined)?.deviceIdentifier;
  return id === undefined ? undefined : normalizeDevice(id);
}

export class DeviceState {
  readonly device: string;
  readonly calls = new Map<string, PhoneCall>();
  /** undefined until a BackInService or OutOfService event says. */
  registered: boolean | undefined;
  dnd = false;
  forwardTo: string | undefined;
  /** Set once an event said so: a snapshot taken earlier must not overwrite it. */
  private dndFromEvent = false;
  private forwardFromEvent = false;

  constructor(device: string) {
    this.device = normalizeDevice(device);
  }

  private mine(connection: ConnectionID | undefined): boolean {
    return connection?.deviceID !== undefined && normalizeDevice(connection.deviceID) === this.device;
  }

  private isMe(choice: DeviceChoice | undefined): boolean {
    return deviceOf(choice) === this.device;
  }

  private upsert(
    callID: string | undefined,
    fields: Partial<PhoneCall> & { direction?: PhoneCall['direction'] },
  ): PhoneCall | undefined {
    if (callID === undefined) return undefined;
    let call = this.calls.get(callID);
    if (call === undefined) {
      call = { callID, state: 'initiated', direction: 'outgoing', otherParty: undefined, answered: false };
      this.calls.set(callID, call);
    }
    for (const [k, v] of Object.entries(fields))
      if (v !== undefined) (call as unknown as Record<string, unknown>)[k] = v;
    return call;
  }

  private end(callID: string | undefined, notices: DeviceNotice[]): void {
    if (callID === undefined) return;
    const call = this.calls.get(callID);
    if (call === undefined) return;
    this.calls.delete(callID);
    if (call.direction === 'incoming' && !call.answered)
      notices.push({ kind: 'missed', callID, caller: call.otherParty });
  }

  /** Applies one event of this device's monitor; returns the notices it gives rise to. */
  apply(event: CstaMessage): DeviceNotice[] {
    const notices: DeviceNotice[] = [];
    const e = event as CstaMessage & Record<string, unknown>;
    const lci = e.localConnectionInfo as string | undefined;
    switch (event.name) {
      case 'ServiceInitiatedEvent':
        this.upsert(event.initiatedConnection.callID, { state: 'initiated', direction: 'outgoing' });
        break;
      case 'OriginatedEvent':
        this.upsert(event.originatedConnection.callID, {
          state: 'connected',
          direction: 'outgoing',
          otherParty: deviceOf(event.calledDevice),
        });
        break;
      case 'DeliveredEvent': {
        const callID = event.connection.callID;
        if (this.isMe(event.alertingDevice)) {
          const isNew = callID !== undefined && !this.calls.has(callID);
          this.upsert(callID, {
            state: 'alerting',
            direction: 'incoming',
            otherParty: deviceOf(event.callingDevice),
          });
          if (isNew)
            notices.push({ kind: 'incoming', callID: callID!, caller: deviceOf(event.callingDevice) });
        } else {
          this.upsert(callID, { state: 'connected', otherParty: deviceOf(event.calledDevice) });
        }
        break;
      }
      case 'EstablishedEvent': {
        const incoming = this.isMe(event.answeringDevice);
        this.upsert(event.establishedConnection.callID, {
          state: 'connected',
          answered: true,
          otherParty: incoming ? deviceOf(event.callingDevice) : deviceOf(event.answeringDevice),
        });
        break;
      }
      case 'HeldEvent':
        if (this.isMe(event.holdingDevice) || lci === 'hold')
          this.upsert(event.heldConnection.callID, { state: 'hold' });
        break;
      case 'RetrievedEvent':
        if (this.isMe(event.retrievingDevice) || lci === 'connected')
          this.upsert(event.retrievedConnection.callID, { state: 'connected' });
        break;
      case 'FailedEvent':
        this.upsert(event.failedConnection.callID, { state: 'fail' });
        break;
      case 'ConnectionClearedEvent':
        if (this.mine(event.droppedConnection) || lci === 'null')
          this.end(event.droppedConnection.callID, notices);
        break;
      case 'CallClearedEvent':
        this.end(event.clearedCall.callID, notices);
        break;
      case 'TransferedEvent':
        if (this.isMe(event.transferringDevice)) {
          this.end(event.primaryOldCall.callID, notices);
          this.end(event.secondaryOldCall?.callID, notices);
        }
        break;
      case 'DivertedEvent':
        if (this.isMe(event.divertingDevice)) this.end(event.connection.callID, notices);
        break;
      case 'DoNotDisturbEvent':
        this.dnd = event.doNotDisturbOn;
        this.dndFromEvent = true;
        break;
      case 'ForwardingEvent':
        this.forwardFromEvent = true;
        this.forwardTo =
          event.forwardStatus && event.forwardTo !== undefined ? normalizeDevice(event.forwardTo) : undefined;
        break;
      case 'BackInServiceEvent':
        this.registered = true;
        break;
      case 'OutOfServiceEvent':
        this.registered = false;
        this.calls.clear();
        break;
      default:
        break;
    }
    return notices;
  }

  /**
   * Seeds the state from GetDoNotDisturb, GetForwarding and SnapshotDevice answers taken when watching
   * starts; whatever events have said since wins.
   */
  seed(snapshot: {
    dnd?: boolean;
    forwardTo?: string | undefined;
    calls?: { callID: string; simple?: string; local?: string }[];
  }): void {
    if (snapshot.dnd !== undefined && !this.dndFromEvent) this.dnd = snapshot.dnd;
    if ('forwardTo' in snapshot && !this.forwardFromEvent) {
      this.forwardTo = snapshot.forwardTo === undefined ? undefined : normalizeDevice(snapshot.forwardTo);
    }
    for (const c of snapshot.calls ?? []) {
      if (this.calls.has(c.callID)) continue;
      const fromSimple = (simple: string): [LocalState, PhoneCall['direction']] | undefined => {
        if (simple === 'callNull') return undefined;
        if (/Received/.test(simple)) return ['alerting', 'incoming'];
        if (/Failed/.test(simple)) return ['fail', 'outgoing'];
        if (/Queued/.test(simple)) return ['queued', 'outgoing'];
        if (/Pending/.test(simple)) return ['initiated', 'outgoing'];
        return ['connected', 'outgoing'];
      };
      const local = c.local as LocalState | 'null' | undefined;
      const mapped: [LocalState, PhoneCall['direction']] | undefined =
        local !== undefined
          ? local === 'null'
            ? undefined
            : [local, local === 'alerting' ? 'incoming' : 'outgoing']
          : c.simple !== undefined
            ? fromSimple(c.simple)
            : undefined;
      if (mapped === undefined) continue;
      this.calls.set(c.callID, {
        callID: c.callID,
        state: mapped[0],
        direction: mapped[1],
        otherParty: undefined,
        answered: mapped[0] === 'connected' || mapped[0] === 'hold',
      });
    }
  }

  /** The call a command like "hangup" or "hold" means: the connected one, else the ringing one, else any. */
  currentCall(
    preferred: LocalState[] = ['connected', 'alerting', 'initiated', 'hold', 'fail'],
  ): PhoneCall | undefined {
    for (const state of preferred)
      for (const call of this.calls.values()) if (call.state === state) return call;
    return undefined;
  }

  /** SPEC.md §4: unregistered → unavailable; idle → "Idle"; calls → dnd; DND and forwarding → xa. */
  presence(): PhonePresence {
    if (this.registered === false)
      return {
        available: false,
        show: undefined,
        status: 'Not registered',
        detailedStatus: 'Not registered',
      };
    const call = this.currentCall(['connected', 'hold', 'alerting', 'initiated']);
    if (call !== undefined) {
      const status =
        call.state === 'alerting' ? 'Ringing' : call.state === 'hold' ? 'On hold' : 'On the phone';
      const who =
        call.otherParty === undefined
          ? ''
          : call.direction === 'incoming'
            ? ` (from ${call.otherParty})`
            : ` (with ${call.otherParty})`;
      return { available: true, show: 'dnd', status, detailedStatus: status + who };
    }
    if (this.dnd)
      return { available: true, show: 'xa', status: 'Do not disturb', detailedStatus: 'Do not disturb' };
    if (this.forwardTo !== undefined) {
      const s = `Forwarded to ${this.forwardTo}`;
      return { available: true, show: 'xa', status: s, detailedStatus: s };
    }
    return { available: true, show: undefined, status: 'Idle', detailedStatus: 'Idle' };
  }
}
