/**
 * Third-party call control for MakeCall (RFC 3725 flow I): the voice server INVITEs the calling phone
 * without SDP (with an auto-answer header when it must not ring), takes the offer from its 200, INVITEs
 * the called phone with that offer, and ACKs both legs with the other leg's SDP. The voice server is the
 * UAC of both dialogs, so BYE, CANCEL and stray 2xx retransmissions of these dialogs are handled here,
 * before the B2BUA sees them.
 */

import type { EventCause } from '../csta/index.ts';
import { Dialog, dialogId, newCallId, newTag } from '../sip/dialog.ts';
import { createResponse, SipRequest, type SipResponse } from '../sip/message.ts';
import type { SipStack } from '../sip/stack.ts';
import type {
  ClientTransactionUser,
  InviteClientTransaction,
  ServerTransaction,
} from '../sip/transaction.ts';
import type { Endpoint } from '../sip/transport.ts';
import { type DetachedLeg, hasNullAddress, isHoldOffer, withDirection } from './b2bua.ts';
import type { CallControl, CallEnd, CallModel, ModelCall } from './call-model.ts';
import type { Binding, Registrar } from './registrar.ts';
import type { UserDirectory } from './users.ts';

export interface ThirdPartyOptions {
  domain: string;
  /** How long each phone may ring (ms). Capped below 32 s: the caller's 200 waits unACKed meanwhile. */
  ringTimeoutMs?: number;
  /** Forwarding on busy / no answer: where the call goes instead (csta-interface.ts), if anywhere. */
  redirect?: (call: ModelCall, reason: 'busy' | 'no-answer') => string | undefined;
}

/** Header added to the first INVITE when MakeCall says autoOriginate doNotPrompt. */
export const AUTO_ANSWER_HEADERS: ReadonlyArray<readonly [string, string]> = [
  ['Call-Info', 'answer-after=0'],
  ['Alert-Info', '<http://127.0.0.1/>;info=alert-autoanswer'],
];

interface Leg {
  device: string;
  request: SipRequest;
  tx: InviteClientTransaction;
  destination: Endpoint | undefined;
  state: 'calling' | 'early' | 'answered' | 'failed' | 'cancelled' | 'gone';
  gotProvisional: boolean;
  cancelWanted: boolean;
  dialog?: Dialog;
  ack?: SipRequest;
  /** A caller's leg taken over from the B2BUA: we are its UAS, so no ACK of ours. */
  uas?: boolean;
}

interface ThirdPartyCall {
  model: ModelCall;
  a: Leg;
  b?: Leg;
  /** Content-Type and body of the calling phone's offer. */
  offer?: { type: string; body: Buffer };
  timer?: ReturnType<typeof setTimeout>;
  ended: boolean;
  /** The callee refuses every call (DND): Failed with this cause once the caller has answered. */
  refuse?: EventCause;
  /** The callee's SDP answer (sent to the caller in its ACK). */
  answer?: { type: string; body: Buffer };
  /** Ids of this call's dialogs in the routing table. */
  dialogIds?: Set<string>;
  /** A phone's own re-INVITE being relayed to the other phone; its 2xx repeats until the ACK. */
  relaying?: { okRetransmit?: { stop(): void } } | undefined;
  /** Hold bookkeeping: a re-INVITE pair under way, o= version bump, who holds. */
  holding?: { busy: boolean; bump: number; held: Set<string> } | undefined;
  /**
   * The offer/answer from before a phone's RFC 2543 hold (c=0.0.0.0): re-offered instead of it, since
   * the 0.0.0.0 SDP no longer says where that phone's media is.
   */
  beforeNullHold?: { offer?: { type: string; body: Buffer }; answer?: { type: string; body: Buffer } };
}

/** A = the calling phone, B = the called phone, C = a single-step transfer target (it becomes B). */
type Side = 'A' | 'B' | 'C';

const LOG_TU: ClientTransactionUser = { onResponse() {}, onTimeout() {}, onTransportError() {} };
const MAX_RING_MS = 30_000;

export class ThirdPartyCalls {
  private readonly stack: SipStack;
  private readonly registrar: Registrar;
  private readonly users: UserDirectory;
  private readonly model: CallModel;
  private readonly domain: string;
  private readonly ringTimeoutMs: number;
  private readonly redirect: ThirdPartyOptions['redirect'];
  /** Our dialogs; which side a leg is on is read from the call (a transfer moves legs around). */
  private readonly dialogs = new Map<string, { call: ThirdPartyCall; leg: Leg }>();
  private readonly calls = new Set<ThirdPartyCall>();
  private readonly lingering = new Set<ReturnType<typeof setTimeout>>();

  constructor(
    stack: SipStack,
    registrar: Registrar,
    users: UserDirectory,
    model: CallModel,
    options: ThirdPartyOptions,
  ) {
    this.stack = stack;
    this.registrar = registrar;
    this.users = users;
    this.model = model;
    this.domain = options.domain;
    this.ringTimeoutMs = Math.min(options.ringTimeoutMs ?? MAX_RING_MS, MAX_RING_MS);
    this.redirect = options.redirect;
  }

  get activeCalls(): number {
    return this.calls.size;
  }

  /**
   * Starts a call from `caller` (who must be registered) to `callee`. `onCreated` runs before any
   * event or SIP message, so the MakeCallResponse goes out before ServiceInitiated. `routing` says
   * where the call really goes (forwarding) and whether the callee refuses it (DND).
   */
  makeCall(
    caller: string,
    callee: string,
    autoOriginate: 'prompt' | 'doNotPrompt',
    onCreated: (call: ModelCall) => void,
    routing: { divertedFrom?: string; refuse?: EventCause } = {},
  ): void {
    const call = this.prepare(caller, callee, routing);
    onCreated(call.model);
    this.start(call, autoOriginate, 'makeCall');
  }

  /** A call in the model and here, before any event or SIP message. */
  private prepare(
    caller: string,
    callee: string,
    routing: { divertedFrom?: string; refuse?: EventCause } = {},
  ): ThirdPartyCall {
    if (this.newestBinding(caller) === undefined) throw new Error(`${caller} is not registered`);
    const holder: { call?: ThirdPartyCall } = {};
    const model = this.model.create(
      caller,
      callee,
      this.controlFor(holder, caller),
      routing.divertedFrom === undefined
        ? undefined
        : { from: routing.divertedFrom, cause: 'callForwardImmediate' },
    );
    const partial: Partial<ThirdPartyCall> = { model, ended: false };
    if (routing.refuse !== undefined) partial.refuse = routing.refuse;
    const call = partial as ThirdPartyCall;
    holder.call = call;
    return call;
  }

  /**
   * SingleStepTransferCall on a phone-dialled call: the B2BUA has handed over the leg that stays
   * (`kept`); from here on the call is one of ours, and the transfer goes on as for a MakeCall call.
   */
  adoptForTransfer(
    model: ModelCall,
    kept: DetachedLeg,
    transferring: string,
    target: string,
    accepted: () => void,
  ): boolean {
    const binding = this.newestBinding(target);
    const stayingDevice = transferring === model.caller ? model.callee : model.caller;
    if (binding === undefined) return false;
    const holder: { call?: ThirdPartyCall } = {};
    const staying = {
      device: stayingDevice,
      destination: kept.destination,
      state: 'answered',
      gotProvisional: true,
      cancelWanted: false,
      dialog: kept.dialog,
      uas: kept.uas,
      ...(kept.ack === undefined ? {} : { ack: kept.ack }),
    } as Leg;
    const call: ThirdPartyCall = { model, a: staying, ended: false };
    if (kept.sdp !== undefined) call.offer = kept.sdp;
    holder.call = call;
    model.control = this.controlFor(holder, stayingDevice);
    this.calls.add(call);
    this.remember(call, staying);
    accepted();
    this.model.transferred(model, transferring, target);
    call.b = this.invite(call, 'C', binding, target, stayingDevice, undefined, []);
    this.armCallee(call);
    return true;
  }

  /**
   * A phone-dialled call taken over from the B2BUA with both legs (for a consultation): from here on
   * it is one of ours, with the same CSTA call.
   */
  adopt(model: ModelCall, legs: { caller: DetachedLeg; callee: DetachedLeg }): void {
    const holder: { call?: ThirdPartyCall } = {};
    const leg = (d: DetachedLeg, device: string): Leg =>
      ({
        device,
        destination: d.destination,
        state: 'answered',
        gotProvisional: true,
        cancelWanted: false,
        dialog: d.dialog,
        uas: d.uas,
        ...(d.ack === undefined ? {} : { ack: d.ack }),
      }) as Leg;
    const call: ThirdPartyCall = {
      model,
      a: leg(legs.caller, model.caller),
      b: leg(legs.callee, model.callee),
      ended: false,
    };
    if (legs.caller.sdp !== undefined) call.offer = legs.caller.sdp;
    if (legs.callee.sdp !== undefined) call.answer = legs.callee.sdp;
    holder.call = call;
    model.control = this.controlFor(holder, model.caller);
    this.calls.add(call);
    for (const l of [call.a, call.b!]) this.remember(call, l);
  }

  private controlFor(holder: { call?: ThirdPartyCall }, caller: string): CallControl {
    return {
      clearConnection: (device) => holder.call && this.clearConnection(holder.call, device),
      clearCall: () => holder.call && this.clearConnection(holder.call, caller, 'cleared'),
      hold: (device, held) => holder.call !== undefined && this.setHold(holder.call, device, held),
      singleStepTransfer: (device, target, accepted) =>
        holder.call !== undefined && this.singleStepTransfer(holder.call, device, target, accepted),
      deflect: (target) => holder.call !== undefined && this.deflect(holder.call, target),
      consult: (device, target, accepted) =>
        holder.call !== undefined && this.consult(holder.call, device, target, accepted),
      transfer: (device, active, accepted) =>
        holder.call !== undefined && this.transfer(holder.call, device, active, accepted),
    };
  }

  /** ServiceInitiated, then the INVITE to the calling phone. */
  private start(
    call: ThirdPartyCall,
    autoOriginate: 'prompt' | 'doNotPrompt',
    cause: 'makeCall' | 'consultation',
  ): void {
    const { caller, callee } = call.model;
    const binding = this.newestBinding(caller);
    if (binding === undefined) {
      this.model.end(call.model, 'cleared');
      return;
    }
    const extra = autoOriginate === 'doNotPrompt' ? AUTO_ANSWER_HEADERS : [];
    this.calls.add(call);
    this.model.initiated(call.model, cause);
    // The calling phone shows whom it is about to call.
    call.a = this.invite(call, 'A', binding, caller, callee, undefined, extra);
    this.arm(call, () => this.cancelLeg(call.a, () => this.finish(call, 'caller-not-answered')));
  }

  /**
   * CSTA DeflectCall while the called phone rings: it is CANCELled and `target` is INVITEd with the
   * caller's offer instead, with a full ring time.
   */
  private deflect(call: ThirdPartyCall, target: string): boolean {
    const b = call.b;
    const binding = this.newestBinding(target);
    if (call.ended || b === undefined || binding === undefined || call.offer === undefined) return false;
    if (b.state !== 'calling' && b.state !== 'early') return false;
    return this.ringInstead(call, target);
  }

  /** Rings `target` (newest registration) with the caller's offer instead of the current callee. */
  private ringInstead(call: ThirdPartyCall, target: string): boolean {
    const binding = this.newestBinding(target);
    if (binding === undefined || call.offer === undefined) return false;
    if (call.b !== undefined) this.cancelLeg(call.b);
    call.b = this.invite(call, 'B', binding, target, call.model.caller, call.offer, []);
    this.armCallee(call);
    return true;
  }

  /** Forwarding on busy / no answer (one hop, decided by the CSTA interface). */
  private forwarded(call: ThirdPartyCall, reason: 'busy' | 'no-answer'): boolean {
    const target = this.redirect?.(call.model, reason);
    if (target === undefined || !this.ringInstead(call, target)) return false;
    this.model.redirected(call.model, target, reason === 'busy' ? 'callForwardBusy' : 'callForwardNoAnswer');
    return true;
  }

  /** The called phone may ring for the ring time; then forwarding on no answer, or the call ends. */
  private armCallee(call: ThirdPartyCall): void {
    this.arm(call, () => {
      const b = call.b!;
      if (b.gotProvisional && this.forwarded(call, 'no-answer')) return;
      this.cancelLeg(b);
      this.ackAndBye(call.a);
      this.finish(call, b.gotProvisional ? 'no-answer' : { failed: 'destNotObtainable' });
    });
  }

  /**
   * CSTA ConsultationCall: `device` holds this call (cause consultation) and a second call from its
   * phone (auto-answered, a second line) to `target` starts; `accepted` gets that call for the response.
   */
  private consult(
    call: ThirdPartyCall,
    device: string,
    target: string,
    accepted: (consultation: ModelCall) => void,
  ): boolean {
    if (this.newestBinding(device) === undefined || this.newestBinding(target) === undefined) return false;
    const second = this.prepare(device, target);
    const started = this.setHold(call, device, true, 'consultation', (ok) => {
      if (ok) this.start(second, 'doNotPrompt', 'consultation');
      else this.model.end(second.model, 'cleared');
    });
    if (!started) {
      this.model.end(second.model, 'cleared');
      return false;
    }
    accepted(second.model);
    return true;
  }

  /**
   * CSTA TransferCall: `device` leaves this (held) call and `active` (the consultation); the other
   * party of `active` takes its place here, both remaining phones are re-INVITEd with each other's SDP
   * and `active` ends without events of its own (csta.md §5.5).
   */
  private transfer(
    held: ThirdPartyCall,
    device: string,
    activeModel: ModelCall,
    accepted: () => void,
  ): boolean {
    const active = [...this.calls].find((c) => c.model === activeModel);
    if (active === undefined || active === held || held.ended || active.ended) return false;
    const hb = held.b;
    const ab = active.b;
    if (hb === undefined || ab === undefined) return false;
    if ([held.a, hb, active.a, ab].some((l) => l.state !== 'answered')) return false;
    if (held.holding?.busy || active.holding?.busy) return false;
    const heldCallerLeaves = device === held.model.caller;
    const activeCallerLeaves = device === active.model.caller;
    const staying = heldCallerLeaves ? hb : held.a;
    const joining = activeCallerLeaves ? ab : active.a;
    const stayingSdp = heldCallerLeaves ? held.answer : held.offer;
    const joiningSdp = activeCallerLeaves ? active.answer : active.offer;
    if (stayingSdp === undefined || joiningSdp === undefined || joining.dialog === undefined) return false;
    const joiningDevice = activeCallerLeaves ? active.model.callee : active.model.caller;
    accepted();
    this.ackAndBye(heldCallerLeaves ? held.a : hb);
    this.ackAndBye(activeCallerLeaves ? active.a : ab);
    // the consultation call ends here without events: its surviving party moves to the held call
    active.ended = true;
    if (active.timer !== undefined) clearTimeout(active.timer);
    this.calls.delete(active);
    this.model.transferredInto(held.model, active.model, device, joiningDevice);
    if (heldCallerLeaves) {
      held.a = joining;
      held.offer = joiningSdp;
    } else {
      held.b = joining;
      held.answer = joiningSdp;
    }
    this.remember(held, joining);
    this.forget(active);
    const bump = (held.holding?.bump ?? 0) + (active.holding?.bump ?? 0) + 1;
    held.holding = { busy: false, bump, held: new Set() };
    this.reoffer(staying, withDirection(joiningSdp, 'sendrecv', bump), () => undefined);
    this.reoffer(joining, withDirection(stayingSdp, 'sendrecv', bump), () => undefined);
    return true;
  }

  private newestBinding(extension: string): Binding | undefined {
    const all = this.registrar.lookup(extension);
    return all[all.length - 1];
  }

  private invite(
    call: ThirdPartyCall,
    side: Side,
    binding: Binding,
    target: string,
    shownAs: string,
    offer: { type: string; body: Buffer } | undefined,
    extra: ReadonlyArray<readonly [string, string]>,
  ): Leg {
    const invite = new SipRequest('INVITE', binding.uri);
    const user = this.users.findUser(shownAs);
    const name = (user?.displayName ?? user?.name ?? shownAs).replace(/["\\]/g, '');
    invite.append('From', `"${name}" <sip:${shownAs}@${this.domain}>;tag=${newTag()}`);
    invite.append('To', `<sip:${target}@${this.domain}>`);
    invite.append('Call-ID', newCallId(this.stack.advertisedHost));
    invite.append('CSeq', '1 INVITE');
    invite.append('Contact', this.stack.contact(shownAs, binding.source.protocol));
    invite.append('Allow', this.stack.allow.join(', '));
    for (const [header, value] of extra)
      invite.append(header, header === 'Call-Info' ? `<sip:${this.domain}>;${value}` : value);
    if (offer !== undefined) {
      invite.append('Content-Type', offer.type);
      invite.body = offer.body;
    }
    const destination = binding.source.protocol === 'UDP' ? undefined : binding.source;
    const leg: Partial<Leg> = {
      device: target,
      request: invite,
      destination,
      state: 'calling',
      gotProvisional: false,
      cancelWanted: false,
    };
    const tu: ClientTransactionUser = {
      onResponse: (r) => this.safely(() => this.onResponse(call, side, leg as Leg, r)),
      onTimeout: () => this.safely(() => this.onFailure(call, side, leg as Leg, 408)),
      onTransportError: () => this.safely(() => this.onFailure(call, side, leg as Leg, 503)),
    };
    leg.tx = this.stack.sendRequest(invite, tu, destination) as InviteClientTransaction;
    return leg as Leg;
  }

  private safely(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.stack.logger.error({ err: e instanceof Error ? (e.stack ?? e.message) : String(e) }, '3PCC error');
    }
  }

  private onResponse(call: ThirdPartyCall, side: Side, leg: Leg, response: SipResponse): void {
    const status = response.status;
    if (status < 200) {
      if (status === 100) return;
      leg.gotProvisional = true;
      if (leg.cancelWanted) {
        this.cancelLeg(leg);
        return;
      }
      if (leg.state === 'calling') leg.state = 'early';
      if (side !== 'A' && !call.ended) this.model.delivered(call.model);
      return;
    }
    if (status >= 300) {
      this.onFailure(call, side, leg, status);
      return;
    }
    if (leg.dialog !== undefined) {
      // a retransmitted 2xx: the ACK was lost (or not sent yet, while the caller waits for B)
      if (leg.ack !== undefined)
        this.stack.sendStateless(this.copyAck(leg.ack), leg.destination).catch(() => undefined);
      return;
    }
    leg.dialog = Dialog.asUac(leg.request, response);
    this.remember(call, leg);
    if (call.ended || leg.state === 'cancelled' || leg.cancelWanted) {
      leg.state = 'answered';
      this.ackAndBye(leg);
      return;
    }
    leg.state = 'answered';
    if (call.timer !== undefined) clearTimeout(call.timer);
    if (side === 'A') this.callerAnswered(call, response);
    else if (side === 'B') this.calleeAnswered(call, response);
    else this.transferTargetAnswered(call, response);
  }

  private callerAnswered(call: ThirdPartyCall, response: SipResponse): void {
    const type = response.get('Content-Type');
    if (response.body.length === 0 || type === undefined) {
      // a 200 to an offerless INVITE must hold the offer (RFC 3264 §4); without it nothing can be bridged
      this.ackAndBye(call.a);
      this.finish(call, 'caller-not-answered');
      return;
    }
    call.offer = { type, body: response.body };
    this.model.originated(call.model);
    if (call.refuse !== undefined) {
      this.ackAndBye(call.a);
      this.finish(call, { failed: call.refuse });
      return;
    }
    const binding = this.newestBinding(call.model.callee);
    if (binding === undefined) {
      this.ackAndBye(call.a);
      this.finish(call, { failed: 'destOutOfOrder' });
      return;
    }
    call.b = this.invite(call, 'B', binding, call.model.callee, call.model.caller, call.offer, []);
    this.armCallee(call);
  }

  private calleeAnswered(call: ThirdPartyCall, response: SipResponse): void {
    const b = call.b!;
    const a = call.a;
    b.ack = b.dialog!.createRequest('ACK', b.request.cseq.seq);
    this.stack.sendStateless(this.copyAck(b.ack), b.destination).catch(() => undefined);
    a.ack = a.dialog!.createRequest('ACK', a.request.cseq.seq);
    const type = response.get('Content-Type');
    if (type !== undefined && response.body.length > 0) {
      a.ack.set('Content-Type', type);
      a.ack.body = response.body;
      call.answer = { type, body: response.body };
    }
    this.stack.sendStateless(this.copyAck(a.ack), a.destination).catch(() => undefined);
    this.model.established(call.model);
  }

  private onFailure(call: ThirdPartyCall, side: Side, leg: Leg, status: number): void {
    if (leg.state === 'answered' || leg.state === 'failed' || leg.state === 'gone') return;
    const wasCancelled = leg.state === 'cancelled' || leg.cancelWanted;
    leg.state = 'failed';
    if (call.ended || wasCancelled) return;
    if (side === 'A') {
      this.finish(call, 'caller-not-answered');
      return;
    }
    if ((status === 486 || status === 600) && side === 'B' && this.forwarded(call, 'busy')) return;
    this.ackAndBye(call.a);
    if (leg.gotProvisional && (status === 408 || status === 480 || status === 487)) {
      this.finish(call, 'no-answer');
      return;
    }
    this.finish(call, { failed: failureCause(status) });
  }

  /** ACKs a leg's 2xx (without an answer when there is none yet) and hangs it up. */
  private ackAndBye(leg: Leg): void {
    const dialog = leg.dialog;
    if (dialog === undefined || leg.state === 'gone') return;
    if (leg.ack === undefined && leg.uas !== true) {
      leg.ack = dialog.createRequest('ACK', leg.request.cseq.seq);
      this.stack.sendStateless(this.copyAck(leg.ack), leg.destination).catch(() => undefined);
    }
    leg.state = 'gone';
    this.stack.sendRequest(dialog.createRequest('BYE'), LOG_TU, leg.destination);
  }

  /** CANCELs a leg still ringing (once a provisional response allows it, §9.1). */
  private cancelLeg(leg: Leg, then?: () => void): void {
    if (leg.state === 'answered') {
      this.ackAndBye(leg);
    } else if (leg.state === 'calling' || leg.state === 'early') {
      leg.cancelWanted = true;
      if (leg.gotProvisional) {
        leg.state = 'cancelled';
        this.stack.cancel(leg.tx, LOG_TU, leg.destination);
      }
    }
    then?.();
  }

  /**
   * CSTA HoldCall/RetrieveCall: re-INVITE the other phone with the holder's SDP made sendonly and the
   * holder with the other's SDP made inactive (sendrecv both to retrieve); Held/Retrieved follow once
   * both answered 2xx.
   */
  private setHold(
    call: ThirdPartyCall,
    device: string,
    held: boolean,
    cause: 'normal' | 'consultation' = 'normal',
    then?: (ok: boolean) => void,
  ): boolean {
    const a = call.a;
    const b = call.b;
    if (call.ended || b === undefined || a.state !== 'answered' || b.state !== 'answered') return false;
    if (call.offer === undefined || call.answer === undefined) return false;
    call.holding ??= { busy: false, bump: 0, held: new Set() };
    const h = call.holding;
    if (h.busy) return false;
    h.busy = true;
    h.bump++;
    const callerHolds = device === call.model.caller;
    // only while the current SDP is still the 0.0.0.0 one (a transfer may have replaced it since)
    const real = (sdp: { type: string; body: Buffer }, before: { type: string; body: Buffer } | undefined) =>
      hasNullAddress(sdp.body) ? (before ?? sdp) : sdp;
    const offer = real(call.offer, call.beforeNullHold?.offer);
    const answer = real(call.answer, call.beforeNullHold?.answer);
    const holderSdp = callerHolds ? offer : answer;
    const otherSdp = callerHolds ? answer : offer;
    let pending = 2;
    let allOk = true;
    const finish = (ok: boolean) => {
      allOk &&= ok;
      if (--pending > 0) return;
      h.busy = false;
      if (allOk && !call.ended && h.held.has(device) !== held) {
        if (held) {
          h.held.add(device);
          this.model.held(call.model, device, cause);
        } else {
          h.held.delete(device);
          this.model.retrieved(call.model, device);
        }
      }
      then?.(allOk && !call.ended);
    };
    const [holderLeg, otherLeg] = callerHolds ? [a, b] : [b, a];
    this.reoffer(otherLeg, withDirection(holderSdp, held ? 'sendonly' : 'sendrecv', h.bump), finish);
    this.reoffer(holderLeg, withDirection(otherSdp, held ? 'inactive' : 'sendrecv', h.bump), finish);
    return true;
  }

  private reoffer(leg: Leg, offer: { type: string; body: Buffer }, done: (ok: boolean) => void): void {
    const dialog = leg.dialog;
    if (dialog === undefined) {
      done(false);
      return;
    }
    const invite = dialog.createRequest('INVITE');
    invite.set('Content-Type', offer.type);
    invite.body = offer.body;
    let answered = false;
    const settle = (ok: boolean) => {
      if (answered) return;
      answered = true;
      done(ok);
    };
    this.stack.sendRequest(
      invite,
      {
        onResponse: (response) =>
          this.safely(() => {
            if (response.status < 200) return;
            if (response.status < 300)
              this.stack
                .sendStateless(dialog.createRequest('ACK', invite.cseq.seq), leg.destination)
                .catch(() => undefined);
            settle(response.status < 300);
          }),
        onTimeout: () => this.safely(() => settle(false)),
        onTransportError: () => this.safely(() => settle(false)),
      },
      leg.destination,
    );
  }

  /**
   * CSTA SingleStepTransferCall: `transferring` leaves an answered call and `target` is rung in its
   * place (RFC 3725 style: offerless INVITE to the target, its offer re-offered to the party that
   * stays, whose answer goes into the target's ACK). False when the call is not answered or busy.
   */
  private singleStepTransfer(
    call: ThirdPartyCall,
    transferring: string,
    target: string,
    accepted: () => void,
  ): boolean {
    const model = call.model;
    const binding = this.newestBinding(target);
    if (call.ended || binding === undefined) return false;
    const b = call.b;
    if (b === undefined || call.a.state !== 'answered' || b.state !== 'answered' || call.holding?.busy)
      return false;
    const callerLeaves = transferring === model.caller;
    const leaving = callerLeaves ? call.a : b;
    const staying = callerLeaves ? b : call.a;
    const stayingDevice = callerLeaves ? model.callee : model.caller;
    accepted();
    this.ackAndBye(leaving);
    this.model.transferred(model, transferring, target);
    call.a = staying;
    call.b = this.invite(call, 'C', binding, target, stayingDevice, undefined, []);
    call.holding = undefined;
    this.armCallee(call);
    return true;
  }

  /** The transfer target answered with its offer: re-offer it to the staying party, then ACK both. */
  private transferTargetAnswered(call: ThirdPartyCall, response: SipResponse): void {
    const target = call.b!;
    const staying = call.a;
    const type = response.get('Content-Type');
    if (response.body.length === 0 || type === undefined || staying.dialog === undefined) {
      this.ackAndBye(target);
      this.ackAndBye(staying);
      this.finish(call, 'cleared');
      return;
    }
    const offer = { type, body: response.body };
    const invite = staying.dialog.createRequest('INVITE');
    invite.set('Content-Type', offer.type);
    invite.body = offer.body;
    const dialog = staying.dialog;
    let settled = false;
    const fail = () => {
      if (settled) return;
      settled = true;
      this.ackAndBye(target);
      this.ackAndBye(staying);
      this.finish(call, 'cleared');
    };
    this.stack.sendRequest(
      invite,
      {
        onResponse: (r) =>
          this.safely(() => {
            if (r.status < 200 || settled) return;
            if (r.status >= 300) {
              fail();
              return;
            }
            settled = true;
            this.stack
              .sendStateless(dialog.createRequest('ACK', invite.cseq.seq), staying.destination)
              .catch(() => undefined);
            target.ack = target.dialog!.createRequest('ACK', target.request.cseq.seq);
            const answerType = r.get('Content-Type');
            if (answerType !== undefined && r.body.length > 0) {
              target.ack.set('Content-Type', answerType);
              target.ack.body = r.body;
              call.offer = { type: answerType, body: r.body };
            }
            call.answer = offer;
            this.stack.sendStateless(this.copyAck(target.ack), target.destination).catch(() => undefined);
            if (!call.ended) this.model.established(call.model);
          }),
        onTimeout: () => this.safely(fail),
        onTransportError: () => this.safely(fail),
      },
      staying.destination,
    );
  }

  /** ClearConnection / ClearCall from CSTA. */
  private clearConnection(call: ThirdPartyCall, device: string, how?: CallEnd): void {
    if (call.ended) return;
    const callerSide = device === call.model.caller;
    // a consultation call not started yet (its hold re-INVITEs under way) has no leg
    if ((call.a as Leg | undefined) !== undefined) this.cancelLeg(call.a);
    if (call.b !== undefined) this.cancelLeg(call.b);
    this.finish(call, how ?? (callerSide ? 'caller-released' : 'callee-released'));
  }

  private arm(call: ThirdPartyCall, onTimeout: () => void): void {
    if (call.timer !== undefined) clearTimeout(call.timer);
    call.timer = setTimeout(
      () =>
        this.safely(() => {
          if (!call.ended) onTimeout();
        }),
      this.ringTimeoutMs,
    );
    call.timer.unref?.();
  }

  private finish(call: ThirdPartyCall, how: CallEnd): void {
    if (call.ended) return;
    call.ended = true;
    if (call.timer !== undefined) clearTimeout(call.timer);
    this.calls.delete(call);
    this.forget(call);
    this.model.end(call.model, how);
  }

  /** Routes requests of `leg`'s dialog to `call`. */
  private remember(call: ThirdPartyCall, leg: Leg): void {
    const d = leg.dialog;
    if (d === undefined) return;
    const id = dialogId(d.callId, d.localTag, d.remoteTag);
    this.dialogs.set(id, { call, leg });
    call.dialogIds ??= new Set();
    call.dialogIds.add(id);
  }

  /**
   * Forgets an ended call's dialogs, after a while: late BYEs and 2xx retransmissions still match
   * meanwhile. A dialog that moved to another call (transfer) stays.
   */
  private forget(call: ThirdPartyCall): void {
    const ids = [...(call.dialogIds ?? [])];
    const timer = setTimeout(() => {
      this.lingering.delete(timer);
      for (const id of ids) if (this.dialogs.get(id)?.call === call) this.dialogs.delete(id);
    }, 32_000);
    timer.unref?.();
    this.lingering.add(timer);
  }

  // ---- SIP requests and stray responses in our dialogs ----------------------------------------------

  /** Requests inside a 3PCC dialog; false when the request belongs to someone else. */
  handleRequest(request: SipRequest, tx: ServerTransaction): boolean {
    const localTag = request.to.params.get('tag');
    const remoteTag = request.from.params.get('tag');
    if (typeof localTag !== 'string' || typeof remoteTag !== 'string') return false;
    const entry = this.dialogs.get(dialogId(request.callId, localTag, remoteTag));
    if (entry === undefined) return false;
    const { call, leg } = entry;
    const side = leg === call.a ? 'A' : leg === call.b ? 'B' : undefined;
    if (side === undefined) {
      // a leg that left the call (transferred away): its BYE is fine, anything else is over
      tx.reply(request.method === 'BYE' ? 200 : 481);
      return true;
    }
    if (leg.dialog === undefined || !leg.dialog.acceptRemoteSeq(request)) {
      tx.reply(leg.dialog === undefined ? 481 : 500);
      return true;
    }
    switch (request.method) {
      case 'BYE': {
        tx.reply(200);
        if (leg.state === 'gone' || call.ended) return true;
        leg.state = 'gone';
        const other = side === 'A' ? call.b : call.a;
        if (other !== undefined) this.cancelLeg(other);
        this.finish(call, side === 'A' ? 'caller-released' : 'callee-released');
        return true;
      }
      case 'OPTIONS':
        tx.respond(this.stack.optionsResponse(request));
        return true;
      case 'INFO':
        tx.reply(200);
        return true;
      case 'INVITE':
        this.relayReinvite(call, side, leg, request, tx);
        return true;
      case 'UPDATE': {
        // An UPDATE without a body is a session refresh (RFC 4028), answered here; an offer in an
        // UPDATE is not relayed on third-party calls.
        if (request.body.length > 0) {
          tx.reply(488);
          return true;
        }
        const ok = createResponse(request, 200);
        ok.append('Contact', leg.dialog.localContact);
        tx.respond(ok);
        return true;
      }
      default:
        tx.reply(501);
        return true;
    }
  }

  /**
   * A phone's own re-INVITE (hold, session refresh, codec change): its offer goes to the other phone
   * and the answer comes back; sendonly/inactive gives Held, sendrecv Retrieved. An offerless
   * re-INVITE is answered with the other phone's last SDP.
   */
  private relayReinvite(
    call: ThirdPartyCall,
    side: 'A' | 'B',
    leg: Leg,
    request: SipRequest,
    tx: ServerTransaction,
  ): void {
    const other = side === 'A' ? call.b : call.a;
    const otherSdp = side === 'A' ? call.answer : call.offer;
    if (call.ended || other?.dialog === undefined || other.state !== 'answered' || leg.dialog === undefined) {
      tx.reply(call.ended ? 481 : 491);
      return;
    }
    if (call.relaying !== undefined || call.holding?.busy) {
      tx.reply(491);
      return;
    }
    const ownDialog = leg.dialog;
    const answer = (status: number, sdp: { type: string; body: Buffer } | undefined) => {
      const r = createResponse(request, status);
      if (status < 300) {
        r.append('Contact', ownDialog.localContact);
        if (sdp !== undefined) {
          r.set('Content-Type', sdp.type);
          r.body = sdp.body;
        }
        const relaying: { okRetransmit?: { stop(): void } } = {};
        call.relaying = relaying;
        tx.respond(r);
        relaying.okRetransmit = this.stack.retransmit2xx(tx, r, () => {
          if (call.relaying === relaying) call.relaying = undefined;
        });
      } else tx.respond(r);
    };
    const type = request.get('Content-Type');
    if (request.body.length === 0 || type === undefined) {
      answer(200, otherSdp);
      return;
    }
    const offer = { type, body: request.body };
    const out = other.dialog.createRequest('INVITE');
    out.set('Content-Type', type);
    out.body = request.body;
    const otherDialog = other.dialog;
    call.relaying = {};
    let done = false;
    this.stack.sendRequest(
      out,
      {
        onResponse: (r) =>
          this.safely(() => {
            if (r.status < 200 || done) return;
            done = true;
            call.relaying = undefined;
            if (r.status >= 300) {
              answer(r.status, undefined);
              return;
            }
            this.stack
              .sendStateless(otherDialog.createRequest('ACK', out.cseq.seq), other.destination)
              .catch(() => undefined);
            const rType = r.get('Content-Type');
            const got =
              rType === undefined || r.body.length === 0 ? undefined : { type: rType, body: r.body };
            const key = side === 'A' ? 'offer' : 'answer';
            const previous = call[key];
            call.beforeNullHold ??= {};
            if (!hasNullAddress(offer.body)) delete call.beforeNullHold[key];
            else if (previous !== undefined && !hasNullAddress(previous.body))
              call.beforeNullHold[key] = previous;
            if (side === 'A') {
              call.offer = offer;
              if (got !== undefined) call.answer = got;
            } else {
              call.answer = offer;
              if (got !== undefined) call.offer = got;
            }
            answer(200, got);
            this.noteDirection(call, leg.device, offer.body);
          }),
        onTimeout: () =>
          this.safely(() => {
            if (done) return;
            done = true;
            call.relaying = undefined;
            answer(408, undefined);
          }),
        onTransportError: () =>
          this.safely(() => {
            if (done) return;
            done = true;
            call.relaying = undefined;
            answer(503, undefined);
          }),
      },
      other.destination,
    );
  }

  /** A phone's own offer: a hold offer holds the call for it (isHoldOffer), any other takes it off hold. */
  private noteDirection(call: ThirdPartyCall, device: string, sdp: Buffer): void {
    const held = isHoldOffer(sdp);
    call.holding ??= { busy: false, bump: 0, held: new Set() };
    if (call.holding.held.has(device) === held) return;
    if (held) {
      call.holding.held.add(device);
      this.model.held(call.model, device);
    } else {
      call.holding.held.delete(device);
      this.model.retrieved(call.model, device);
    }
  }

  /** The ACK for a relayed re-INVITE's 2xx: stop repeating it. */
  handleAck(ack: SipRequest): boolean {
    const localTag = ack.to.params.get('tag');
    const remoteTag = ack.from.params.get('tag');
    if (typeof localTag !== 'string' || typeof remoteTag !== 'string') return false;
    const entry = this.dialogs.get(dialogId(ack.callId, localTag, remoteTag));
    if (entry === undefined) return false;
    const relaying = entry.call.relaying;
    if (relaying?.okRetransmit !== undefined) {
      relaying.okRetransmit.stop();
      entry.call.relaying = undefined;
    }
    return true;
  }

  /** A 2xx retransmitted after its transaction ended: ACK it again. */
  handleStrayResponse(response: SipResponse): boolean {
    if (response.status < 200 || response.status >= 300 || response.cseq.method !== 'INVITE') return false;
    const localTag = response.from.params.get('tag');
    const remoteTag = response.to.params.get('tag');
    if (typeof localTag !== 'string' || typeof remoteTag !== 'string') return false;
    const entry = this.dialogs.get(dialogId(response.callId, localTag, remoteTag));
    if (entry === undefined) return false;
    const leg = entry.leg;
    if (leg.ack !== undefined)
      this.stack.sendStateless(this.copyAck(leg.ack), leg.destination).catch(() => undefined);
    return true;
  }

  private copyAck(ack: SipRequest): SipRequest {
    const copy = new SipRequest('ACK', ack.uri);
    copy.headers = ack.headers.filter((h) => h.name !== 'Via').map((h) => ({ ...h }));
    copy.body = ack.body;
    return copy;
  }

  /** Ends every call (shutdown). */
  close(): void {
    for (const call of [...this.calls]) this.clearConnection(call, call.model.caller, 'cleared');
    for (const t of this.lingering) clearTimeout(t);
    this.lingering.clear();
    this.dialogs.clear();
  }
}

function failureCause(status: number) {
  if (status === 486 || status === 600 || status === 603) return 'busy' as const;
  if (status === 404 || status === 604) return 'destNotObtainable' as const;
  return 'destOutOfOrder' as const;
}
