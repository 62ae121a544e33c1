/**
 * Back-to-back user agent for calls between extensions. The caller's INVITE (leg A) is answered by us;
 * we place a new INVITE (leg B) to every registered contact of the callee in parallel. The first 2xx
 * wins and the other forks are cancelled; provisional responses and SDP pass through; BYE and CANCEL
 * work from either side; re-INVITE and other in-dialog requests are relayed to the other leg.
 */
import { EventEmitter } from 'node:events';
import { Dialog, dialogId, newCallId, newTag } from '../sip/dialog.ts';
import { createResponse, SipRequest, type SipResponse } from '../sip/message.ts';
import type { SipStack } from '../sip/stack.ts';
import type {
  ClientTransaction,
  ClientTransactionUser,
  InviteClientTransaction,
  InviteServerTransaction,
  ServerTransaction,
} from '../sip/transaction.ts';
import type { Endpoint } from '../sip/transport.ts';
import { isSipUri, unescapeUri } from '../sip/uri.ts';
import type { DigestAuthenticator } from './auth.ts';
import { Call, type ReleaseCause } from './call.ts';
import type { Binding, Registrar } from './registrar.ts';
import type { PbxUser, UserDirectory } from './users.ts';

export interface B2buaOptions {
  domain: string;
  /** An unanswered call is ended after this time (ms); the caller gets 480. */
  ringTimeoutMs?: number;
  isLocal: (host: string, port?: number) => boolean;
}

interface ALeg {
  request: SipRequest;
  tx: InviteServerTransaction;
  toTag: string;
  source: Endpoint;
  contact: string;
  dialog?: Dialog;
  okRetransmit?: { stop(): void } | undefined;
}

interface BLeg {
  binding: Binding;
  request: SipRequest;
  tx: InviteClientTransaction;
  state: 'calling' | 'early' | 'answered' | 'failed' | 'cancelled';
  gotProvisional: boolean;
  cancelWanted: boolean;
  dialog?: Dialog;
  ack?: SipRequest;
  destination?: Endpoint;
  status?: number;
}

/** A request relayed from one leg to the other, waiting for the other leg's final response. */
interface PendingAck {
  dialog: Dialog;
  seq: number;
  destination: Endpoint | undefined;
}

interface Bridge {
  call: Call;
  a: ALeg;
  forks: BLeg[];
  winner?: BLeg;
  ringTimer?: ReturnType<typeof setTimeout>;
  /** ACK to B held back until A's ACK brings the SDP answer (A sent an offerless INVITE). */
  ackToB?: PendingAck | undefined;
  /** ACK to the other side of a relayed re-INVITE, held for the SDP answer when it had no offer. */
  reinvite?: { from: 'A' | 'B'; pendingAck?: PendingAck; okRetransmit?: { stop(): void } } | undefined;
  ended: boolean;
  /** Keys of this bridge's entries in the dialog table. */
  dialogIds: string[];
  /** Latest SDP of each side and whether it holds the call (for CSTA Held/Retrieved and HoldCall). */
  media?: MediaState;
}

interface MediaState {
  sdp: { A?: { type: string; body: Buffer }; B?: { type: string; body: Buffer } };
  /** A side's latest SDP with a real address: an RFC 2543 hold (c=0.0.0.0) must not be re-offered. */
  usable: { A?: { type: string; body: Buffer }; B?: { type: string; body: Buffer } };
  held: { A: boolean; B: boolean };
  /** Added to the o= session version of SDP we re-offer on a side's behalf. */
  bump: number;
  busy: boolean;
}

/**
 * What the CSTA interface decides for a new call (DND, forwarding): ring `forwardTo` instead of the
 * dialled extension, and/or refuse the call with `reject` as the final status.
 */
export interface RouteDecision {
  forwardTo?: string;
  reject?: number;
  reason?: string;
}

/** A leg taken out of a bridge by detach(). */
export interface DetachedLeg {
  dialog: Dialog;
  destination: Endpoint | undefined;
  /** The phone's latest SDP. */
  sdp: { type: string; body: Buffer } | undefined;
  /** True for the caller's leg (we are its UAS: no ACK of ours to repeat). */
  uas: boolean;
  ack: SipRequest | undefined;
}

export interface B2buaEvents {
  call: [call: Call];
  /** A party put the call on hold (sendonly/inactive offer) or took it off hold (csta-interface.ts). */
  hold: [call: Call, party: 'caller' | 'callee', held: boolean];
}

const LOG_TU: ClientTransactionUser = {
  onResponse() {},
  onTimeout() {},
  onTransportError() {},
};

export class B2bua extends EventEmitter<B2buaEvents> {
  private readonly stack: SipStack;
  private readonly users: UserDirectory;
  private readonly registrar: Registrar;
  private readonly auth: DigestAuthenticator;
  private readonly options: Required<B2buaOptions>;
  private readonly dialogs = new Map<string, { bridge: Bridge; side: 'A' | 'B' }>();
  private readonly bridges = new Set<Bridge>();
  /**
   * Optional hook for forwarding on busy / no answer (csta-interface.ts): true when it sent the call
   * elsewhere (with deflect()), so the call goes on instead of ending.
   */
  redirect: ((call: Call, reason: 'busy' | 'no-answer') => boolean) | undefined;
  /** Optional routing hook (csta-interface.ts: DND and immediate forwarding). */
  route: ((caller: string, callee: string) => RouteDecision | undefined) | undefined;

  constructor(
    stack: SipStack,
    users: UserDirectory,
    registrar: Registrar,
    auth: DigestAuthenticator,
    options: B2buaOptions,
  ) {
    super();
    this.stack = stack;
    this.users = users;
    this.registrar = registrar;
    this.auth = auth;
    this.options = { ringTimeoutMs: options.ringTimeoutMs ?? 60_000, ...options } as Required<B2buaOptions>;
  }

  get activeCalls(): Call[] {
    return [...this.bridges].map((b) => b.call);
  }

  // ---- new calls ------------------------------------------------------------------------------

  handleInvite(request: SipRequest, tx: InviteServerTransaction, source: Endpoint): void {
    const toTag = newTag();
    const reply = (status: number, reason?: string) =>
      tx.respond(createResponse(request, status, reason, toTag));
    const ruri = request.uri;
    if (!isSipUri(ruri) || ruri.user === undefined || !this.options.isLocal(ruri.host, ruri.port)) {
      reply(404, 'Not Found (unknown domain)');
      return;
    }
    const auth = this.auth.verify(request, toTag, source.address);
    if (!auth.ok) {
      tx.respond(auth.response);
      return;
    }
    const caller = auth.user;
    const fromUri = request.from.uri;
    if (
      !isSipUri(fromUri) ||
      fromUri.user === undefined ||
      this.users.findUser(unescapeUri(fromUri.user))?.extension !== caller.extension
    ) {
      reply(403, 'Forbidden (From does not match the credentials)');
      return;
    }
    const dialled = this.users.findUser(unescapeUri(ruri.user));
    if (dialled === undefined) {
      reply(404);
      return;
    }
    const decision = this.route?.(caller.extension, dialled.extension);
    const forwarded = decision?.forwardTo === undefined ? undefined : this.users.findUser(decision.forwardTo);
    const callee = forwarded ?? dialled;
    const contentType = request.get('Content-Type');
    if (request.body.length > 0 && contentType?.split(';')[0]?.trim().toLowerCase() !== 'application/sdp') {
      const r = createResponse(request, 415, undefined, toTag);
      r.append('Accept', 'application/sdp');
      tx.respond(r);
      return;
    }
    const maxForwards = request.maxForwards ?? 70;
    if (maxForwards <= 0) {
      reply(483);
      return;
    }
    const contact = request.contacts[0];
    if (contact === undefined || contact === '*') {
      reply(400, 'Bad Request (missing Contact)');
      return;
    }
    const bindings = this.registrar.lookup(callee.extension);
    const call = new Call(caller.extension, callee.extension);
    if (forwarded !== undefined) call.divertedFrom = dialled.extension;
    const bridge: Bridge = {
      call,
      a: { request, tx, toTag, source, contact: this.stack.contact(callee.extension, source.protocol) },
      forks: [],
      ended: false,
      dialogIds: [],
    };
    this.emit('call', call);
    if (decision?.reject !== undefined) {
      reply(decision.reject, decision.reason);
      call.release(decision.reject === 486 ? 'busy' : 'rejected', decision.reject);
      return;
    }
    if (bindings.length === 0) {
      reply(480, 'Temporarily Unavailable (not registered)');
      call.release('unavailable', 480);
      return;
    }
    this.bridges.add(bridge);
    bridge.ringTimer = setTimeout(() => this.ringTimeout(bridge), this.options.ringTimeoutMs);
    bridge.ringTimer.unref?.();
    const callId = newCallId(this.stack.advertisedHost);
    const fromTag = newTag();
    for (const binding of bindings)
      this.fork(bridge, binding, caller, callee, callId, fromTag, maxForwards - 1);
  }

  private fork(
    bridge: Bridge,
    binding: Binding,
    caller: PbxUser,
    callee: PbxUser,
    callId: string,
    fromTag: string,
    maxForwards: number,
  ): void {
    const a = bridge.a.request;
    const invite = new SipRequest('INVITE', binding.uri);
    const name = (caller.displayName ?? caller.name).replace(/["\\]/g, '');
    invite.append('From', `"${name}" <sip:${caller.extension}@${this.options.domain}>;tag=${fromTag}`);
    invite.append('To', `<sip:${callee.extension}@${this.options.domain}>`);
    invite.append('Call-ID', callId);
    invite.append('CSeq', '1 INVITE');
    invite.append('Max-Forwards', String(maxForwards));
    const destination = binding.source.protocol === 'UDP' ? undefined : binding.source;
    invite.append('Contact', this.stack.contact(caller.extension, binding.source.protocol));
    invite.append('Allow', this.stack.allow.join(', '));
    const contentType = a.get('Content-Type');
    if (a.body.length > 0 && contentType !== undefined) invite.append('Content-Type', contentType);
    invite.body = a.body;
    const leg: Partial<BLeg> = {
      binding,
      request: invite,
      state: 'calling',
      gotProvisional: false,
      cancelWanted: false,
    };
    if (destination !== undefined) leg.destination = destination;
    const tu: ClientTransactionUser = {
      onResponse: (response) => this.safely(() => this.forkResponse(bridge, leg as BLeg, response)),
      onTimeout: () => this.safely(() => this.forkFailed(bridge, leg as BLeg, 408)),
      onTransportError: () => this.safely(() => this.forkFailed(bridge, leg as BLeg, 503)),
    };
    leg.tx = this.stack.sendRequest(invite, tu, destination) as InviteClientTransaction;
    bridge.forks.push(leg as BLeg);
  }

  private safely(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.stack.logger.error(
        { err: e instanceof Error ? (e.stack ?? e.message) : String(e) },
        'B2BUA error',
      );
    }
  }

  private forkResponse(bridge: Bridge, leg: BLeg, response: SipResponse): void {
    const status = response.status;
    if (status < 200) {
      if (status === 100) return;
      leg.gotProvisional = true;
      if (leg.cancelWanted) {
        this.cancelFork(leg);
        return;
      }
      if (bridge.ended || bridge.winner !== undefined) return;
      if (leg.state === 'calling') leg.state = 'early';
      if (
        leg.dialog === undefined &&
        typeof response.to.params.get('tag') === 'string' &&
        response.contacts.length > 0
      ) {
        leg.dialog = Dialog.asUac(leg.request, response);
      }
      const relay = createResponse(bridge.a.request, status, response.reason, bridge.a.toTag);
      relay.append('Contact', bridge.a.contact);
      this.copyBody(response, relay);
      bridge.a.tx.respond(relay);
      bridge.call.setState('alerting');
      return;
    }
    if (status < 300) {
      this.forkAnswered(bridge, leg, response);
      return;
    }
    this.forkFailed(bridge, leg, status);
  }

  private forkAnswered(bridge: Bridge, leg: BLeg, response: SipResponse): void {
    // retransmitted 2xx: the ACK was lost
    if (leg.ack !== undefined) {
      this.stack.sendStateless(this.cloneAck(leg.ack), leg.destination).catch(() => undefined);
      return;
    }
    if (leg.dialog === undefined || leg.dialog.remoteTag !== response.to.params.get('tag')) {
      leg.dialog = Dialog.asUac(leg.request, response);
    } else leg.dialog.confirm(response);
    const dialog = leg.dialog;
    const ack = dialog.createRequest('ACK', leg.request.cseq.seq);
    if (bridge.ended || bridge.winner !== undefined || leg.cancelWanted) {
      // a second fork or a call already over: ACK, then hang up that leg
      leg.state = 'cancelled';
      leg.ack = ack;
      this.stack.sendStateless(this.cloneAck(ack), leg.destination).catch(() => undefined);
      this.stack.sendRequest(dialog.createRequest('BYE'), LOG_TU, leg.destination);
      return;
    }
    leg.state = 'answered';
    bridge.winner = leg;
    this.addDialog(bridge, dialog, 'B');
    for (const other of bridge.forks) if (other !== leg) this.cancelFork(other);
    if (bridge.ringTimer !== undefined) clearTimeout(bridge.ringTimer);

    if (bridge.a.request.body.length > 0) {
      leg.ack = ack;
      this.stack.sendStateless(this.cloneAck(ack), leg.destination).catch(() => undefined);
    } else {
      // offerless INVITE: B's 2xx holds the offer, A's ACK will carry the answer for B
      bridge.ackToB = { dialog, seq: leg.request.cseq.seq, destination: leg.destination };
    }
    const ok = createResponse(bridge.a.request, 200, response.reason, bridge.a.toTag);
    ok.append('Contact', bridge.a.contact);
    ok.append('Allow', this.stack.allow.join(', '));
    this.copyBody(response, ok);
    const a = bridge.a;
    a.tx.respond(ok);
    a.dialog = Dialog.asUas(a.request, ok, a.contact);
    this.addDialog(bridge, a.dialog, 'A');
    a.okRetransmit = this.stack.retransmit2xx(a.tx, ok, () => this.safely(() => this.noAck(bridge)));
    this.noteSdp(bridge, 'A', bridge.a.request);
    this.noteSdp(bridge, 'B', response);
    bridge.call.setState('connected');
  }

  private forkFailed(bridge: Bridge, leg: BLeg, status: number): void {
    if (leg.state === 'failed' || leg.state === 'answered') return;
    leg.state = leg.state === 'cancelled' || leg.cancelWanted ? 'cancelled' : 'failed';
    leg.status = status;
    if (bridge.ended || bridge.winner !== undefined) return;
    if (!bridge.forks.every((f) => f.state === 'failed' || f.state === 'cancelled')) return;
    // every fork failed: pick what the caller hears (§16.7 in spirit: busy wins, then not found)
    const statuses = bridge.forks.map((f) => f.status ?? 480);
    let final = 480;
    let cause: ReleaseCause = 'unavailable';
    if (statuses.some((s) => s === 486 || s === 600)) {
      final = 486;
      cause = 'busy';
    } else if (statuses.some((s) => s === 603)) {
      final = 603;
      cause = 'rejected';
    } else if (statuses.every((s) => s === 404 || s === 604)) {
      final = 404;
      cause = 'not-found';
    }
    if (cause === 'busy' && this.redirect?.(bridge.call, 'busy') === true) return;
    this.endBridge(bridge, cause, final);
    bridge.a.tx.respond(createResponse(bridge.a.request, final, undefined, bridge.a.toTag));
  }

  private cancelFork(leg: BLeg): void {
    if (leg.state === 'answered' || leg.state === 'failed') return;
    leg.cancelWanted = true;
    // §9.1: no CANCEL before a provisional response; it goes out when one arrives
    if (!leg.gotProvisional) return;
    if (leg.state === 'cancelled') return;
    leg.state = 'cancelled';
    this.stack.cancel(leg.tx, LOG_TU, leg.destination);
  }

  private ringTimeout(bridge: Bridge): void {
    if (bridge.ended || bridge.winner !== undefined) return;
    if (this.redirect?.(bridge.call, 'no-answer') === true) return;
    for (const f of bridge.forks) this.cancelFork(f);
    this.endBridge(bridge, 'no-answer', 480);
    bridge.a.tx.respond(
      createResponse(bridge.a.request, 480, 'Temporarily Unavailable (no answer)', bridge.a.toTag),
    );
  }

  /** The caller cancelled; the stack has answered the CANCEL with 200. */
  handleCancel(invite: InviteServerTransaction): void {
    const bridge = [...this.bridges].find((b) => b.a.tx === invite);
    if (bridge === undefined) {
      invite.reply(487);
      return;
    }
    invite.respond(createResponse(bridge.a.request, 487, undefined, bridge.a.toTag));
    if (bridge.winner !== undefined) return; // CANCEL raced the 200: the caller will BYE
    for (const f of bridge.forks) this.cancelFork(f);
    this.endBridge(bridge, 'caller-cancel', 487);
  }

  private noAck(bridge: Bridge): void {
    if (bridge.ended) return;
    this.stack.logger.warn({ call: bridge.call.id }, 'no ACK for 200 OK; ending the call');
    this.hangUp(bridge, 'A');
    this.hangUp(bridge, 'B');
    this.endBridge(bridge, 'no-ack', undefined);
  }

  private addDialog(bridge: Bridge, dialog: Dialog, side: 'A' | 'B'): void {
    const id = dialogId(dialog.callId, dialog.localTag, dialog.remoteTag);
    this.dialogs.set(id, { bridge, side });
    bridge.dialogIds.push(id);
  }

  private endBridge(bridge: Bridge, cause: ReleaseCause, status: number | undefined): void {
    if (bridge.ended) return;
    bridge.ended = true;
    if (bridge.ringTimer !== undefined) clearTimeout(bridge.ringTimer);
    bridge.a.okRetransmit?.stop();
    bridge.reinvite?.okRetransmit?.stop();
    this.bridges.delete(bridge);
    // the bridge's own dialog ids: walking the whole table made ending a call cost O(calls up)
    for (const id of bridge.dialogIds) if (this.dialogs.get(id)?.bridge === bridge) this.dialogs.delete(id);
    bridge.call.release(cause, status);
  }

  /** Sends BYE on one side of a connected bridge. */
  private hangUp(bridge: Bridge, side: 'A' | 'B'): void {
    if (side === 'A') {
      const d = bridge.a.dialog;
      if (d !== undefined)
        this.stack.sendRequest(d.createRequest('BYE'), LOG_TU, this.flowOf(bridge.a.source));
    } else {
      const w = bridge.winner;
      if (w?.dialog !== undefined) {
        if (bridge.ackToB !== undefined) {
          // B still waits for its ACK: send it (without answer) so the BYE is valid
          this.stack
            .sendStateless(bridge.ackToB.dialog.createRequest('ACK', bridge.ackToB.seq), w.destination)
            .catch(() => undefined);
          bridge.ackToB = undefined;
        }
        this.stack.sendRequest(w.dialog.createRequest('BYE'), LOG_TU, w.destination);
      }
    }
  }

  private flowOf(source: Endpoint): Endpoint | undefined {
    return source.protocol === 'UDP' ? undefined : source;
  }

  // ---- in-dialog ------------------------------------------------------------------------------

  /** ACK for a 2xx (no transaction matched). */
  handleAck(ack: SipRequest): void {
    const entry = this.findDialog(ack);
    if (entry === undefined) return;
    const { bridge, side } = entry;
    if (side === 'A' && bridge.a.okRetransmit !== undefined && ack.cseq.seq === bridge.a.request.cseq.seq) {
      bridge.a.okRetransmit.stop();
      bridge.a.okRetransmit = undefined;
      const pending = bridge.ackToB;
      if (pending !== undefined) {
        bridge.ackToB = undefined;
        const toB = pending.dialog.createRequest('ACK', pending.seq);
        this.copyBody(ack, toB);
        this.noteSdp(bridge, 'A', ack);
        if (bridge.winner !== undefined) bridge.winner.ack = toB;
        this.stack.sendStateless(this.cloneAck(toB), pending.destination).catch(() => undefined);
      }
      return;
    }
    const re = bridge.reinvite;
    if (re !== undefined && re.from === side) {
      re.okRetransmit?.stop();
      if (re.pendingAck !== undefined) {
        const toOther = re.pendingAck.dialog.createRequest('ACK', re.pendingAck.seq);
        this.copyBody(ack, toOther);
        this.stack.sendStateless(toOther, re.pendingAck.destination).catch(() => undefined);
      }
      bridge.reinvite = undefined;
    }
  }

  handleInDialog(request: SipRequest, tx: ServerTransaction, source: Endpoint): void {
    const entry = this.findDialog(request);
    if (entry === undefined) {
      tx.reply(481);
      return;
    }
    const { bridge, side } = entry;
    const own = side === 'A' ? bridge.a.dialog : bridge.winner?.dialog;
    if (own === undefined) {
      tx.reply(481);
      return;
    }
    if (!own.acceptRemoteSeq(request)) {
      tx.reply(500, 'Server Internal Error (CSeq out of order)');
      return;
    }
    if (request.method === 'BYE') {
      tx.reply(200);
      this.hangUp(bridge, side === 'A' ? 'B' : 'A');
      this.endBridge(bridge, side === 'A' ? 'caller-hangup' : 'callee-hangup', undefined);
      return;
    }
    if (request.method === 'OPTIONS') {
      tx.respond(this.stack.optionsResponse(request));
      return;
    }
    this.relay(bridge, side, request, tx, source);
  }

  /** Relays re-INVITE, UPDATE, INFO and the like to the other leg and its final response back. */
  private relay(
    bridge: Bridge,
    side: 'A' | 'B',
    request: SipRequest,
    tx: ServerTransaction,
    _source: Endpoint,
  ): void {
    const otherDialog = side === 'A' ? bridge.winner?.dialog : bridge.a.dialog;
    const otherDestination = side === 'A' ? bridge.winner?.destination : this.flowOf(bridge.a.source);
    if (otherDialog === undefined) {
      tx.reply(481);
      return;
    }
    const isInvite = request.method === 'INVITE';
    if (isInvite && bridge.reinvite !== undefined) {
      tx.reply(491);
      return;
    }
    const out = otherDialog.createRequest(request.method);
    this.copyBody(request, out);
    if (isInvite) bridge.reinvite = { from: side };
    const tu: ClientTransactionUser = {
      onResponse: (response: SipResponse, ctx: ClientTransaction) =>
        this.safely(() => {
          if (response.status < 200) {
            if (response.status > 100) {
              const r = createResponse(request, response.status, response.reason);
              this.copyBody(response, r);
              tx.respond(r);
            }
            return;
          }
          const r = createResponse(request, response.status, response.reason);
          const ownDialog = side === 'A' ? bridge.a.dialog : bridge.winner?.dialog;
          if (ownDialog !== undefined && response.status < 300) r.append('Contact', ownDialog.localContact);
          this.copyBody(response, r);
          if (isInvite && response.status < 300) {
            if (tx.finalResponse !== undefined) {
              // retransmitted 2xx of the relayed re-INVITE: re-ACK as before
              return;
            }
            this.noteSdp(bridge, side === 'A' ? 'B' : 'A', response);
            if (this.noteSdp(bridge, side, request)) this.noteDirection(bridge, side, request.body);
            const re = bridge.reinvite;
            if (request.body.length > 0) {
              this.stack
                .sendStateless(otherDialog.createRequest('ACK', ctx.request.cseq.seq), otherDestination)
                .catch(() => undefined);
            } else if (re !== undefined) {
              re.pendingAck = {
                dialog: otherDialog,
                seq: ctx.request.cseq.seq,
                destination: otherDestination,
              };
            }
            tx.respond(r);
            if (re !== undefined) re.okRetransmit = this.stack.retransmit2xx(tx, r, () => undefined);
            return;
          }
          if (isInvite) bridge.reinvite = undefined;
          tx.respond(r);
        }),
      onTimeout: () =>
        this.safely(() => {
          if (isInvite) bridge.reinvite = undefined;
          tx.reply(408);
        }),
      onTransportError: () =>
        this.safely(() => {
          if (isInvite) bridge.reinvite = undefined;
          tx.reply(503);
        }),
    };
    this.stack.sendRequest(out, tu, otherDestination);
  }

  /** Responses no transaction matched: a 2xx retransmitted by B after its transaction ended. */
  handleStrayResponse(response: SipResponse): void {
    if (response.status < 200 || response.status >= 300 || response.cseq.method !== 'INVITE') return;
    const localTag = response.from.params.get('tag');
    const remoteTag = response.to.params.get('tag');
    if (typeof localTag !== 'string' || typeof remoteTag !== 'string') return;
    const entry = this.dialogs.get(dialogId(response.callId, localTag, remoteTag));
    const ack = entry?.bridge.winner?.ack;
    if (entry !== undefined && ack !== undefined) {
      this.stack.sendStateless(this.cloneAck(ack), entry.bridge.winner?.destination).catch(() => undefined);
    }
  }

  private findDialog(request: SipRequest): { bridge: Bridge; side: 'A' | 'B' } | undefined {
    const localTag = request.to.params.get('tag');
    const remoteTag = request.from.params.get('tag');
    if (typeof localTag !== 'string' || typeof remoteTag !== 'string') return undefined;
    return this.dialogs.get(dialogId(request.callId, localTag, remoteTag));
  }

  private copyBody(from: SipRequest | SipResponse, to: SipRequest | SipResponse): void {
    const type = from.get('Content-Type');
    if (from.body.length === 0 || type === undefined) return;
    to.set('Content-Type', type);
    to.body = from.body;
  }

  /** A fresh copy of an ACK (each send gets its own Via branch). */
  private cloneAck(ack: SipRequest): SipRequest {
    const copy = new SipRequest('ACK', ack.uri);
    copy.headers = ack.headers.filter((h) => h.name !== 'Via').map((h) => ({ ...h }));
    copy.body = ack.body;
    return copy;
  }

  // ---- CSTA ClearConnection / ClearCall (used by csta-interface.ts) ----------------------------

  /**
   * Ends `call` as if `side` had hung up: BYE to both legs once answered; while ringing, CANCEL to
   * the callee's forks and 487 (caller cleared) or 603 (callee cleared) to the caller.
   * False when the call is already over.
   */
  clearCall(call: Call, side: 'caller' | 'callee'): boolean {
    const bridge = [...this.bridges].find((b) => b.call === call);
    if (bridge === undefined || bridge.ended) return false;
    if (bridge.winner !== undefined) {
      this.hangUp(bridge, 'A');
      this.hangUp(bridge, 'B');
      this.endBridge(bridge, side === 'caller' ? 'caller-hangup' : 'callee-hangup', undefined);
      return true;
    }
    for (const f of bridge.forks) this.cancelFork(f);
    const status = side === 'caller' ? 487 : 603;
    this.endBridge(bridge, side === 'caller' ? 'caller-cancel' : 'rejected', status);
    bridge.a.tx.respond(createResponse(bridge.a.request, status, undefined, bridge.a.toTag));
    return true;
  }

  // ---- hold (CSTA HoldCall/RetrieveCall and Held/Retrieved; used by csta-interface.ts) ------------

  private mediaOf(bridge: Bridge): MediaState {
    bridge.media ??= { sdp: {}, usable: {}, held: { A: false, B: false }, bump: 0, busy: false };
    return bridge.media;
  }

  /** Remembers a side's latest SDP; true when the message had one. */
  private noteSdp(bridge: Bridge, side: 'A' | 'B', message: SipRequest | SipResponse): boolean {
    const type = message.get('Content-Type');
    if (message.body.length === 0 || type === undefined) return false;
    const media = this.mediaOf(bridge);
    media.sdp[side] = { type, body: message.body };
    if (!hasNullAddress(message.body)) media.usable[side] = media.sdp[side];
    return true;
  }

  /** A side's own re-INVITE offer: a hold offer holds the call (isHoldOffer), any other takes it off hold. */
  private noteDirection(bridge: Bridge, side: 'A' | 'B', sdp: Buffer): void {
    const held = isHoldOffer(sdp);
    const media = this.mediaOf(bridge);
    if (media.held[side] === held) return;
    media.held[side] = held;
    this.emit('hold', bridge.call, side === 'A' ? 'caller' : 'callee', held);
  }

  /**
   * Holds (or retrieves) an answered call for `party`: re-INVITEs the other phone with the holder's SDP
   * made sendonly and the holder's phone with the other's SDP made inactive (sendrecv both to
   * retrieve). `done` gets the outcome; the 'hold' event follows success.
   */
  setHold(call: Call, party: 'caller' | 'callee', held: boolean, done: (ok: boolean) => void): boolean {
    const bridge = [...this.bridges].find((b) => b.call === call);
    if (bridge === undefined || bridge.ended || bridge.winner?.dialog === undefined) return false;
    const media = this.mediaOf(bridge);
    if (bridge.reinvite !== undefined || media.busy || bridge.ackToB !== undefined) return false;
    const holder: 'A' | 'B' = party === 'caller' ? 'A' : 'B';
    const other: 'A' | 'B' = holder === 'A' ? 'B' : 'A';
    const holderSdp = media.usable[holder] ?? media.sdp[holder];
    const otherSdp = media.usable[other] ?? media.sdp[other];
    if (holderSdp === undefined || otherSdp === undefined) return false;
    media.busy = true;
    media.bump++;
    let pending = 2;
    let allOk = true;
    const finish = (ok: boolean) => {
      allOk &&= ok;
      if (--pending > 0) return;
      media.busy = false;
      if (allOk && media.held[holder] !== held) {
        media.held[holder] = held;
        this.emit('hold', call, party, held);
      }
      done(allOk);
    };
    this.reoffer(bridge, other, withDirection(holderSdp, held ? 'sendonly' : 'sendrecv', media.bump), finish);
    this.reoffer(bridge, holder, withDirection(otherSdp, held ? 'inactive' : 'sendrecv', media.bump), finish);
    return true;
  }

  /** Sends a re-INVITE with `offer` to one side and ACKs its 2xx. */
  private reoffer(
    bridge: Bridge,
    to: 'A' | 'B',
    offer: { type: string; body: Buffer },
    done: (ok: boolean) => void,
  ): void {
    const dialog = to === 'A' ? bridge.a.dialog : bridge.winner?.dialog;
    const destination = to === 'A' ? this.flowOf(bridge.a.source) : bridge.winner?.destination;
    if (dialog === undefined) {
      done(false);
      return;
    }
    const invite = dialog.createRequest('INVITE');
    invite.set('Content-Type', offer.type);
    invite.body = offer.body;
    let answered = false;
    const failed = () => {
      if (answered) return;
      answered = true;
      done(false);
    };
    this.stack.sendRequest(
      invite,
      {
        onResponse: (response) =>
          this.safely(() => {
            if (response.status < 200) return;
            if (response.status < 300) {
              this.stack
                .sendStateless(dialog.createRequest('ACK', invite.cseq.seq), destination)
                .catch(() => undefined);
            }
            if (answered) return;
            answered = true;
            done(response.status < 300);
          }),
        onTimeout: () => this.safely(() => failed()),
        onTransportError: () => this.safely(() => failed()),
      },
      destination,
    );
  }

  // ---- CSTA transfers of phone-dialled calls (used by csta-interface.ts) --------------------------

  /**
   * Takes one answered leg out of the B2BUA (for a single-step transfer): the other phone gets a BYE,
   * the call is released with cause 'transferred', and the kept dialog is returned so that the CSTA
   * side can re-INVITE it. Undefined when the call is not in a quiet answered state.
   */
  detach(call: Call, keep: 'caller' | 'callee'): DetachedLeg | undefined {
    const legs = this.takeOver(call);
    if (legs === undefined) return undefined;
    const gone = keep === 'caller' ? legs.callee : legs.caller;
    this.stack.sendRequest(gone.dialog.createRequest('BYE'), LOG_TU, gone.destination);
    return keep === 'caller' ? legs.caller : legs.callee;
  }

  /**
   * Takes both answered legs out of the B2BUA (for consultation and transfer, which the CSTA side runs
   * as third-party calls): the call is released with cause 'transferred' and nothing is sent.
   */
  takeOver(call: Call): { caller: DetachedLeg; callee: DetachedLeg } | undefined {
    const bridge = [...this.bridges].find((b) => b.call === call);
    const winner = bridge?.winner;
    if (bridge === undefined || bridge.ended || winner?.dialog === undefined) return undefined;
    if (bridge.a.dialog === undefined || bridge.a.okRetransmit !== undefined) return undefined;
    if (bridge.ackToB !== undefined || bridge.reinvite !== undefined || bridge.media?.busy) return undefined;
    const legs = {
      caller: {
        dialog: bridge.a.dialog,
        destination: this.flowOf(bridge.a.source),
        sdp: bridge.media?.sdp.A,
        uas: true,
        ack: undefined,
      },
      callee: {
        dialog: winner.dialog,
        destination: winner.destination,
        sdp: bridge.media?.sdp.B,
        uas: false,
        ack: winner.ack,
      },
    };
    this.endBridge(bridge, 'transferred', undefined);
    return legs;
  }

  // ---- CSTA DeflectCall (used by csta-interface.ts) -------------------------------------------

  /**
   * Sends a call that is still ringing to another extension: the current forks are cancelled and the
   * target's registered contacts are rung instead (the caller's transaction stays as it is).
   * False when the call is answered or over, or the target has no registration.
   */
  deflect(call: Call, target: string): boolean {
    const bridge = [...this.bridges].find((b) => b.call === call);
    if (bridge === undefined || bridge.ended || bridge.winner !== undefined) return false;
    const to = this.users.findUser(target);
    const caller = this.users.findUser(call.callerExtension);
    const bindings = to === undefined ? [] : this.registrar.lookup(to.extension);
    if (to === undefined || caller === undefined || bindings.length === 0) return false;
    // the old forks leave the bridge: their late failures must not decide the caller's final status
    for (const f of bridge.forks) this.cancelFork(f);
    bridge.forks = [];
    const callId = newCallId(this.stack.advertisedHost);
    const fromTag = newTag();
    const maxForwards = (bridge.a.request.maxForwards ?? 70) - 1;
    for (const binding of bindings) this.fork(bridge, binding, caller, to, callId, fromTag, maxForwards);
    // the new destination gets a full ring time
    if (bridge.ringTimer !== undefined) clearTimeout(bridge.ringTimer);
    bridge.ringTimer = setTimeout(
      () => this.safely(() => this.ringTimeout(bridge)),
      this.options.ringTimeoutMs,
    );
    bridge.ringTimer.unref?.();
    return true;
  }

  /** Ends every call (shutdown): BYE to connected legs, 503 to callers still ringing. */
  close(): void {
    for (const bridge of [...this.bridges]) {
      if (bridge.winner !== undefined) {
        this.hangUp(bridge, 'A');
        this.hangUp(bridge, 'B');
      } else {
        for (const f of bridge.forks) this.cancelFork(f);
        bridge.a.tx.respond(createResponse(bridge.a.request, 503, undefined, bridge.a.toTag));
      }
      this.endBridge(bridge, 'shutdown', undefined);
    }
  }
}

/**
 * Whether a phone's own offer puts the call on hold: `a=sendonly` or `a=inactive` (RFC 3264 §8.4), or
 * the RFC 2543 way that older phones still use, a connection address of 0.0.0.0.
 */
export function isHoldOffer(sdp: Buffer): boolean {
  const text = sdp.toString('latin1');
  return /^a=(sendonly|inactive)\s*$/m.test(text) || NULL_ADDRESS.test(text);
}

const NULL_ADDRESS = /^c=IN IP4 0\.0\.0\.0\s*$/m;

/**
 * Whether the SDP's connection address is 0.0.0.0 (the RFC 2543 hold): such SDP says nothing about where
 * the phone's media is, so it is never re-offered to take a call off hold.
 */
export function hasNullAddress(sdp: Buffer): boolean {
  return NULL_ADDRESS.test(sdp.toString('latin1'));
}

/** The SDP with every media direction replaced by `direction` and the o= session version raised. */
export function withDirection(
  sdp: { type: string; body: Buffer },
  direction: 'sendonly' | 'inactive' | 'sendrecv',
  bump: number,
): { type: string; body: Buffer } {
  const lines = sdp.body
    .toString('latin1')
    .split(/\r?\n/)
    .filter((l) => l !== '' && !/^a=(sendrecv|sendonly|recvonly|inactive)\s*$/.test(l));
  const out: string[] = [];
  for (const line of lines) {
    const o = /^o=(\S+) (\S+) (\d+)(.*)$/.exec(line);
    out.push(o ? `o=${o[1]} ${o[2]} ${BigInt(o[3]!) + BigInt(bump)}${o[4]}` : line);
    if (line.startsWith('m=')) out.push(`a=${direction}`);
  }
  return { type: sdp.type, body: Buffer.from(`${out.join('\r\n')}\r\n`, 'latin1') };
}
