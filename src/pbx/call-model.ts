/**
 * CSTA call model of the voice server: one CSTA call per bridged call (B2BUA or third-party), with
 * one connection per device, and the events of reference/csta.md §5 that each step produces for each
 * device. It knows nothing about SIP or about monitors: the SIP side calls the step methods, and the
 * CSTA interface fans the 'event' emissions out to the monitors of the device named with each event.
 */
import { EventEmitter } from 'node:events';
import type { CstaMessage, EventCause, LocalConnectionState } from '../csta/index.ts';

/** Who may clear a call: the SIP side that owns it (B2BUA bridge or third-party call). */
export interface CallControl {
  /** Ends the call as if `device` had hung up (BYE, CANCEL or a rejection, by state). */
  clearConnection(device: string): void;
  /** Ends the whole call. */
  clearCall(): void;
  /**
   * Puts `device`'s side of an answered call on hold (or takes it off); false when the SIP side cannot
   * now. Absent when the call kind has no hold.
   */
  hold?(device: string, held: boolean): boolean;
  /** Sends the ringing call to `target` instead; false when the SIP side cannot. */
  deflect?(target: string): boolean;
  /**
   * Single-step transfer of an answered call by `device` to `target`; `accepted` runs before any
   * event (for the response). False when the SIP side cannot.
   */
  singleStepTransfer?(device: string, target: string, accepted: () => void): boolean;
  /** ConsultationCall: hold this call for `device` and call `target`; `accepted` gets the new call. */
  consult?(device: string, target: string, accepted: (consultation: ModelCall) => void): boolean;
  /** TransferCall: `device` joins this held call's other party with `active`'s other party. */
  transfer?(device: string, active: ModelCall, accepted: () => void): boolean;
}

/** How a call ended, seen from the connections (csta.md §5.1, §5.3). */
export type CallEnd =
  /** The caller hung up or cancelled: its connection clears first. */
  | 'caller-released'
  /** The callee hung up: its connection clears first. */
  | 'callee-released'
  /** The callee never answered before the ring timeout. */
  | 'no-answer'
  /** The caller's phone never answered a MakeCall prompt (third-party call). */
  | 'caller-not-answered'
  /** The call could not reach the callee (busy, rejected, unreachable): Failed, then the caller clears. */
  | { failed: EventCause }
  /** Something else ended the call (no ACK, shutdown): both connections clear normally. */
  | 'cleared';

export interface ModelCall {
  readonly id: string;
  caller: string;
  callee: string;
  /** The device the caller dialled: the callee, or the device that forwarded the call to it. */
  called: string;
  /** Why the call reached `callee` instead of `called` (callForwardImmediate, …). */
  redirectCause: EventCause | undefined;
  /** The device that last sent the call on (lastRedirectionDevice); `called` when unset. */
  redirectedBy?: string | undefined;
  /** The caller's connection (initiated, connected, fail, null). */
  callerState: LocalConnectionState;
  /** The callee's connection (null until Delivered). */
  calleeState: LocalConnectionState;
  ended: boolean;
  /** Replaced when the call changes hands (a B2BUA call taken over for a transfer). */
  control: CallControl;
}

export interface CallModelEvents {
  /** An event for the monitors of `device` (monitorCrossRefID is filled in per monitor). */
  event: [device: string, message: CstaMessage];
  ended: [call: ModelCall];
}

const MON = '';
const dev = (d: string) => ({ deviceIdentifier: d });
const NOT_REQUIRED = { notRequired: true as const };

export class CallModel extends EventEmitter<CallModelEvents> {
  private readonly calls = new Map<string, ModelCall>();
  private counter = 0;

  get size(): number {
    return this.calls.size;
  }

  get(callId: string): ModelCall | undefined {
    return this.calls.get(callId);
  }

  /** The device's calls, with its own connection state, oldest first. */
  callsOf(device: string): Array<{ call: ModelCall; state: LocalConnectionState }> {
    const out: Array<{ call: ModelCall; state: LocalConnectionState }> = [];
    for (const call of this.calls.values()) {
      const state = this.stateOf(call, device);
      if (state !== undefined && state !== 'null') out.push({ call, state });
    }
    return out;
  }

  /** A new call; no event yet (the first is initiated() or originated()). */
  create(
    caller: string,
    callee: string,
    control: CallControl,
    redirect?: { from: string; cause: EventCause },
  ): ModelCall {
    // Short ids, unique for the life of the process, so they cannot collide with an ended call's.
    const id = `c${(++this.counter).toString(36)}${Date.now().toString(36).slice(-4)}`;
    const call: ModelCall = {
      id,
      caller,
      callee,
      called: redirect?.from ?? callee,
      redirectCause: redirect?.cause,
      callerState: 'null',
      calleeState: 'null',
      ended: false,
      control,
    };
    this.calls.set(id, call);
    return call;
  }

  /** The caller goes off-hook (cause newCall) or is being rung for a MakeCall (cause makeCall). */
  initiated(call: ModelCall, cause: 'newCall' | 'makeCall' | 'consultation'): void {
    if (call.ended || call.callerState !== 'null') return;
    call.callerState = 'initiated';
    this.send(call.caller, {
      name: 'ServiceInitiatedEvent',
      monitorCrossRefID: MON,
      initiatedConnection: { callID: call.id, deviceID: call.caller },
      initiatingDevice: dev(call.caller),
      localConnectionInfo: 'initiated',
      cause,
    });
  }

  /** The caller has dialled (its INVITE arrived, or it answered the MakeCall prompt). */
  originated(call: ModelCall): void {
    if (call.ended || call.callerState === 'connected') return;
    if (call.callerState === 'null') this.initiated(call, 'newCall');
    call.callerState = 'connected';
    this.send(call.caller, {
      name: 'OriginatedEvent',
      monitorCrossRefID: MON,
      originatedConnection: { callID: call.id, deviceID: call.caller },
      callingDevice: dev(call.caller),
      calledDevice: dev(call.called),
      localConnectionInfo: 'connected',
      cause: 'newCall',
    });
    if (call.redirectCause !== undefined) {
      // the forwarding device never had a connection: it hears once that the call went elsewhere
      this.send(call.called, {
        name: 'DivertedEvent',
        monitorCrossRefID: MON,
        connection: { callID: call.id, deviceID: call.called },
        divertingDevice: dev(call.called),
        newDestination: dev(call.callee),
        callingDevice: dev(call.caller),
        calledDevice: dev(call.called),
        lastRedirectionDevice: NOT_REQUIRED,
        localConnectionInfo: 'null',
        cause: call.redirectCause,
      });
    }
  }

  /** The callee is alerting. */
  delivered(call: ModelCall): void {
    if (call.ended || call.calleeState !== 'null') return;
    call.calleeState = 'alerting';
    this.toParties(call, (lci) => ({
      name: 'DeliveredEvent',
      monitorCrossRefID: MON,
      connection: { callID: call.id, deviceID: call.callee },
      alertingDevice: dev(call.callee),
      ...this.redirection(call),
      localConnectionInfo: lci,
    }));
  }

  /** The callee answered. A 200 without a provisional response still gives Delivered first. */
  established(call: ModelCall): void {
    if (call.ended || call.calleeState === 'connected') return;
    if (call.calleeState === 'null') this.delivered(call);
    call.calleeState = 'connected';
    this.toParties(call, (lci) => ({
      name: 'EstablishedEvent',
      monitorCrossRefID: MON,
      establishedConnection: { callID: call.id, deviceID: call.callee },
      answeringDevice: dev(call.callee),
      ...this.redirection(call),
      localConnectionInfo: lci,
    }));
  }

  /**
   * The call goes from its callee to `target` (DeflectCall, forwarding on busy or no answer; csta.md
   * §5.6, §5.7): Diverted to the callee, which leaves the call, then Delivered to the caller and the
   * new callee.
   */
  redirected(call: ModelCall, target: string, cause: EventCause): void {
    if (call.ended || (call.calleeState !== 'alerting' && call.calleeState !== 'null')) return;
    const from = call.callee;
    this.send(from, {
      name: 'DivertedEvent',
      monitorCrossRefID: MON,
      connection: { callID: call.id, deviceID: from },
      divertingDevice: dev(from),
      newDestination: dev(target),
      callingDevice: dev(call.caller),
      calledDevice: dev(call.called),
      lastRedirectionDevice: NOT_REQUIRED,
      localConnectionInfo: 'null',
      cause,
    });
    call.called = from;
    call.callee = target;
    call.redirectCause = cause;
    call.calleeState = 'null';
    this.delivered(call);
  }

  /**
   * `transferring` left the answered call and `target` is being rung in its place (single-step
   * transfer, csta.md §5.5): Transfered to both parties (null for the one leaving); the party that
   * stays becomes the caller of the call, and Delivered/Established follow as the target rings.
   */
  transferred(call: ModelCall, transferring: string, target: string): void {
    if (call.ended) return;
    const staying = transferring === call.caller ? call.callee : call.caller;
    const stayingState = this.stateOf(call, staying) ?? 'connected';
    this.setState(call, transferring, 'null');
    this.toParties(
      call,
      (lci) => ({
        name: 'TransferedEvent',
        monitorCrossRefID: MON,
        primaryOldCall: { callID: call.id, deviceID: transferring },
        transferringDevice: dev(transferring),
        transferredToDevice: dev(target),
        transferredConnections: [
          {
            newConnection: { callID: call.id, deviceID: staying },
            oldConnection: { callID: call.id, deviceID: staying },
          },
          { newConnection: { callID: call.id, deviceID: target } },
        ],
        localConnectionInfo: lci,
        cause: 'singleStepTransfer',
      }),
      transferring,
    );
    call.caller = staying;
    call.callerState = stayingState;
    call.callee = target;
    call.calleeState = 'null';
    call.called = target;
    call.redirectCause = 'singleStepTransfer';
    call.redirectedBy = transferring;
  }

  /**
   * TransferCall (csta.md §5.5): `transferring` leaves `held` and `active`; `joining` (the other party
   * of `active`) takes its place in `held`, which keeps its callID. Transfered goes to all three (null
   * for the transferring device); `active` ends without events of its own.
   */
  transferredInto(held: ModelCall, active: ModelCall, transferring: string, joining: string): void {
    if (held.ended || active.ended) return;
    const staying = transferring === held.caller ? held.callee : held.caller;
    const message = (lci: LocalConnectionState): CstaMessage => ({
      name: 'TransferedEvent',
      monitorCrossRefID: MON,
      primaryOldCall: { callID: held.id, deviceID: transferring },
      secondaryOldCall: { callID: active.id, deviceID: transferring },
      transferringDevice: dev(transferring),
      transferredToDevice: dev(joining),
      transferredConnections: [
        {
          newConnection: { callID: held.id, deviceID: staying },
          oldConnection: { callID: held.id, deviceID: staying },
        },
        {
          newConnection: { callID: held.id, deviceID: joining },
          oldConnection: { callID: active.id, deviceID: joining },
        },
      ],
      localConnectionInfo: lci,
      cause: 'transfer',
    });
    this.send(transferring, message('null'));
    this.send(staying, message('connected'));
    if (joining !== staying) this.send(joining, message('connected'));
    if (transferring === held.caller) {
      held.caller = joining;
      held.callerState = 'connected';
    } else {
      held.callee = joining;
      held.calleeState = 'connected';
    }
    if (held.callerState === 'hold') held.callerState = 'connected';
    if (held.calleeState === 'hold') held.calleeState = 'connected';
    active.ended = true;
    this.calls.delete(active.id);
    this.emit('ended', active);
  }

  /** `device` put the call on hold: its connection goes to hold (csta.md §5.4). */
  held(call: ModelCall, device: string, cause: 'normal' | 'consultation' = 'normal'): void {
    if (call.ended || this.stateOf(call, device) !== 'connected') return;
    this.setState(call, device, 'hold');
    this.toParties(call, (lci) => ({
      name: 'HeldEvent',
      monitorCrossRefID: MON,
      heldConnection: { callID: call.id, deviceID: device },
      holdingDevice: dev(device),
      localConnectionInfo: lci,
      cause,
    }));
  }

  /** `device` took the call off hold. */
  retrieved(call: ModelCall, device: string): void {
    if (call.ended || this.stateOf(call, device) !== 'hold') return;
    this.setState(call, device, 'connected');
    this.toParties(call, (lci) => ({
      name: 'RetrievedEvent',
      monitorCrossRefID: MON,
      retrievedConnection: { callID: call.id, deviceID: device },
      retrievingDevice: dev(device),
      localConnectionInfo: lci,
      cause: 'normal',
    }));
  }

  /** The call is over: the ConnectionCleared (and Failed) events in the order of csta.md §5. */
  end(call: ModelCall, how: CallEnd): void {
    if (call.ended) return;
    if (typeof how === 'object') {
      this.failed(call, how.failed);
      this.clear(call, call.caller, 'normalClearing');
    } else if (how === 'callee-released') {
      this.clear(call, call.callee, 'normalClearing');
      this.clear(call, call.caller, 'normalClearing');
    } else if (how === 'no-answer') {
      this.clear(call, call.callee, 'callNotAnswered');
      this.clear(call, call.caller, 'callNotAnswered');
    } else if (how === 'caller-not-answered') {
      this.clear(call, call.caller, 'callNotAnswered');
    } else {
      this.clear(call, call.caller, 'normalClearing');
      this.clear(call, call.callee, 'normalClearing');
    }
    call.ended = true;
    this.calls.delete(call.id);
    this.emit('ended', call);
  }

  /** The callee's connection could not be completed: the caller's connection goes to fail. */
  private failed(call: ModelCall, cause: EventCause): void {
    if (call.calleeState !== 'null') {
      // the callee was alerting and then refused: its own connection clears
      this.clear(call, call.callee, cause);
    }
    if (call.callerState === 'null') return;
    call.callerState = 'fail';
    this.send(call.caller, {
      name: 'FailedEvent',
      monitorCrossRefID: MON,
      failedConnection: { callID: call.id, deviceID: call.callee },
      failingDevice: dev(call.callee),
      callingDevice: dev(call.caller),
      calledDevice: dev(call.called),
      lastRedirectionDevice: NOT_REQUIRED,
      localConnectionInfo: 'fail',
      cause,
    });
  }

  /** One connection goes to null: every party whose connection is still up hears about it. */
  private clear(call: ModelCall, device: string, cause: EventCause): void {
    const own = this.stateOf(call, device);
    if (own === undefined || own === 'null') return;
    this.setState(call, device, 'null');
    this.toParties(
      call,
      (lci) => ({
        name: 'ConnectionClearedEvent',
        monitorCrossRefID: MON,
        droppedConnection: { callID: call.id, deviceID: device },
        releasingDevice: dev(device),
        localConnectionInfo: lci,
        cause,
      }),
      device,
    );
  }

  /**
   * Sends an event to each party still in the call, with that party's own connection state as
   * localConnectionInfo. `alsoTo` gets it even though its connection just went to null.
   */
  private toParties(
    call: ModelCall,
    build: (lci: LocalConnectionState) => CstaMessage,
    alsoTo?: string,
  ): void {
    const parties = call.caller === call.callee ? [call.caller] : [call.caller, call.callee];
    for (const device of parties) {
      const state = this.stateOf(call, device)!;
      if (state === 'null' && device !== alsoTo) continue;
      this.send(device, build(state));
    }
  }

  /** calling/called/lastRedirection/cause of Delivered and Established (csta.md §5.7). */
  private redirection(call: ModelCall) {
    return {
      callingDevice: dev(call.caller),
      calledDevice: dev(call.called),
      lastRedirectionDevice:
        call.redirectCause === undefined ? NOT_REQUIRED : { numberDialed: call.redirectedBy ?? call.called },
      cause: call.redirectCause ?? ('newCall' as const),
    };
  }

  private stateOf(call: ModelCall, device: string): LocalConnectionState | undefined {
    if (device === call.caller) return call.callerState;
    if (device === call.callee) return call.calleeState;
    return undefined;
  }

  private setState(call: ModelCall, device: string, state: LocalConnectionState): void {
    if (device === call.caller) call.callerState = state;
    else if (device === call.callee) call.calleeState = state;
  }

  private send(device: string, message: CstaMessage): void {
    this.emit('event', device, message);
  }
}
