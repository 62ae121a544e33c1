/**
 * One bridged call between two extensions. It will carry the CSTA callID; its state changes are the
 * source of CSTA events (Delivered = alerting, Established = connected, ConnectionCleared = released).
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';

export type CallState = 'initiated' | 'alerting' | 'connected' | 'released';

export type ReleaseCause =
  | 'caller-hangup'
  | 'callee-hangup'
  | 'caller-cancel'
  | 'busy'
  | 'unavailable'
  | 'no-answer'
  | 'not-found'
  | 'rejected'
  | 'no-ack'
  | 'error'
  | 'shutdown'
  /** The B2BUA handed the remaining leg to the CSTA interface (single-step transfer): not an end. */
  | 'transferred';

export interface CallEvents {
  state: [state: CallState, previous: CallState];
  released: [cause: ReleaseCause, status: number | undefined];
}

export class Call extends EventEmitter<CallEvents> {
  /** Stable id for the bridged call (the CSTA callID later). */
  readonly id = randomUUID();
  readonly callerExtension: string;
  readonly calleeExtension: string;
  readonly startedAt = Date.now();
  state: CallState = 'initiated';
  answeredAt: number | undefined;
  releasedAt: number | undefined;
  releaseCause: ReleaseCause | undefined;
  /** The extension that was dialled when the call was forwarded (set by the B2BUA's route hook). */
  divertedFrom: string | undefined;

  constructor(callerExtension: string, calleeExtension: string) {
    super();
    this.callerExtension = callerExtension;
    this.calleeExtension = calleeExtension;
  }

  /** Moves forward only: initiated -> alerting -> connected -> released. */
  setState(next: CallState): void {
    const order: CallState[] = ['initiated', 'alerting', 'connected', 'released'];
    if (order.indexOf(next) <= order.indexOf(this.state)) return;
    const previous = this.state;
    this.state = next;
    if (next === 'connected') this.answeredAt = Date.now();
    this.emit('state', next, previous);
  }

  release(cause: ReleaseCause, status?: number): void {
    if (this.state === 'released') return;
    this.releaseCause = cause;
    this.releasedAt = Date.now();
    this.setState('released');
    this.emit('released', cause, status);
  }
}
