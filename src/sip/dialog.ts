/**
 * Dialogs (RFC 3261 §12): the state shared by the two ends of a call leg, and the rules for building
 * requests inside it (CSeq, tags, remote target, route set with loose and strict routing).
 */
import { SipParseError } from './errors.ts';
import { SipRequest, type SipResponse } from './message.ts';
import { randomHex } from './random.ts';
import { formatNameAddr, isSipUri, parseNameAddr, type Uri } from './uri.ts';

export function newTag(): string {
  return randomHex(6);
}

export function newCallId(host: string): string {
  return `${randomHex(12)}@${host}`;
}

export type DialogRole = 'uac' | 'uas';

export class Dialog {
  readonly callId: string;
  readonly localTag: string;
  remoteTag: string;
  /** Local URI and remote URI as full header values (From/To of requests we send, without tags). */
  readonly localUri: string;
  readonly remoteUri: string;
  localSeq: number;
  /** Undefined until the peer sends a request in the dialog (UAC side). */
  remoteSeq: number | undefined;
  remoteTarget: Uri;
  /** Route set as header values, in the order requests must carry them. */
  routeSet: string[];
  readonly role: DialogRole;
  /** Contact we put in requests and responses of this dialog. */
  readonly localContact: string;
  early: boolean;

  private constructor(init: {
    callId: string;
    localTag: string;
    remoteTag: string;
    localUri: string;
    remoteUri: string;
    localSeq: number;
    remoteSeq: number | undefined;
    remoteTarget: Uri;
    routeSet: string[];
    role: DialogRole;
    localContact: string;
    early: boolean;
  }) {
    this.callId = init.callId;
    this.localTag = init.localTag;
    this.remoteTag = init.remoteTag;
    this.localUri = init.localUri;
    this.remoteUri = init.remoteUri;
    this.localSeq = init.localSeq;
    this.remoteSeq = init.remoteSeq;
    this.remoteTarget = init.remoteTarget;
    this.routeSet = init.routeSet;
    this.role = init.role;
    this.localContact = init.localContact;
    this.early = init.early;
  }

  get id(): string {
    return dialogId(this.callId, this.localTag, this.remoteTag);
  }

  /** §12.1.1: the UAS side, from the request and the response (with our To tag) that creates it. */
  static asUas(request: SipRequest, response: SipResponse, localContact: string): Dialog {
    const contact = request.contacts[0];
    if (contact === undefined || contact === '*')
      throw new SipParseError('dialog-creating request without Contact');
    const to = response.to;
    const localTag = to.params.get('tag');
    if (typeof localTag !== 'string') throw new Error('response has no To tag');
    const from = request.from;
    return new Dialog({
      callId: request.callId,
      localTag,
      remoteTag: typeof from.params.get('tag') === 'string' ? (from.params.get('tag') as string) : '',
      localUri: stripTag(request.get('To')!),
      remoteUri: stripTag(request.get('From')!),
      localSeq: 0,
      remoteSeq: request.cseq.seq,
      remoteTarget: contact.uri,
      routeSet: request.getAll('Record-Route'),
      role: 'uas',
      localContact,
      early: response.status < 200,
    });
  }

  /** §12.1.2: the UAC side, from our request and a response with a To tag. */
  static asUac(request: SipRequest, response: SipResponse): Dialog {
    const contact = response.contacts[0];
    const remoteTag = response.to.params.get('tag');
    if (typeof remoteTag !== 'string') throw new SipParseError('response without To tag');
    const localTag = request.from.params.get('tag');
    if (typeof localTag !== 'string') throw new Error('request without From tag');
    return new Dialog({
      callId: request.callId,
      localTag,
      remoteTag,
      localUri: stripTag(request.get('From')!),
      remoteUri: stripTag(request.get('To')!),
      localSeq: request.cseq.seq,
      remoteSeq: undefined,
      remoteTarget: contact !== undefined && contact !== '*' ? contact.uri : request.uri,
      routeSet: response.getAll('Record-Route').reverse(),
      role: 'uac',
      localContact: request.get('Contact') ?? '',
      early: response.status < 200,
    });
  }

  /** Updates the dialog from a 2xx (it may change the target and confirms an early dialog). */
  confirm(response: SipResponse): void {
    const contact = response.contacts[0];
    if (contact !== undefined && contact !== '*') this.remoteTarget = contact.uri;
    if (this.role === 'uac') this.routeSet = response.getAll('Record-Route').reverse();
    this.early = false;
  }

  /**
   * §12.2.1.1: a request inside the dialog. ACK and CANCEL reuse `seq`; other methods take the
   * next local sequence number.
   */
  createRequest(method: string, seq?: number): SipRequest {
    const cseq = seq ?? (method === 'ACK' || method === 'CANCEL' ? this.localSeq : ++this.localSeq);
    let target: Uri = this.remoteTarget;
    let routes = this.routeSet;
    const first = routes[0];
    if (first !== undefined) {
      const firstUri = parseNameAddr(first).uri;
      if (isSipUri(firstUri) && !firstUri.params.has('lr')) {
        // strict routing: the first route becomes the Request-URI, the remote target the last route
        target = firstUri;
        routes = [
          ...routes.slice(1),
          formatNameAddr({ uri: this.remoteTarget, params: parseNameAddr(first).params }),
        ];
      }
    }
    const request = new SipRequest(method, target);
    for (const r of routes) request.append('Route', r);
    request.append('From', `${this.localUri};tag=${this.localTag}`);
    request.append('To', this.remoteTag !== '' ? `${this.remoteUri};tag=${this.remoteTag}` : this.remoteUri);
    request.append('Call-ID', this.callId);
    request.append('CSeq', `${cseq} ${method}`);
    request.append('Max-Forwards', '70');
    if (method !== 'ACK' && method !== 'CANCEL' && method !== 'BYE' && this.localContact !== '') {
      request.append('Contact', this.localContact);
    }
    return request;
  }

  /**
   * §12.2.2: checks the CSeq of a request the peer sent in this dialog. Returns false for an
   * out-of-order request (to be answered 500).
   */
  acceptRemoteSeq(request: SipRequest): boolean {
    if (request.method === 'ACK' || request.method === 'CANCEL') return true;
    const seq = request.cseq.seq;
    if (this.remoteSeq !== undefined && seq <= this.remoteSeq) return false;
    this.remoteSeq = seq;
    return true;
  }
}

export function dialogId(callId: string, localTag: string, remoteTag: string): string {
  return `${callId}|${localTag}|${remoteTag}`;
}

/** Removes the tag parameter from a From/To header value. */
export function stripTag(value: string): string {
  const na = parseNameAddr(value);
  na.params.delete('tag');
  return formatNameAddr(na);
}
