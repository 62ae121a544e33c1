/**
 * A small SIP phone for tests, built on the project's own stack: registers with digest, places calls
 * (answering 407 challenges), and answers incoming calls according to a chosen behaviour.
 */
import { EventEmitter } from 'node:events';
import { Dialog, newCallId, newTag } from '../../src/sip/dialog.ts';
import { authorize, parseAuthHeader } from '../../src/sip/digest.ts';
import { createResponse, SipRequest, type SipResponse } from '../../src/sip/message.ts';
import { SipStack } from '../../src/sip/stack.ts';
import type { InviteClientTransaction, InviteServerTransaction } from '../../src/sip/transaction.ts';
import { TcpTransport, UdpTransport } from '../../src/sip/transport.ts';
import { formatUri, parseUri } from '../../src/sip/uri.ts';

export type AnswerMode = 'answer' | 'ring' | 'busy' | 'decline' | 'ring-then-answer';

export const SDP = (port: number) =>
  `v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n`;

export class TestPhone extends EventEmitter {
  readonly extension: string;
  readonly password: string;
  readonly server: { host: string; port: number; domain: string };
  mode: AnswerMode = 'answer';
  /** When true, a 2xx to our INVITE is not ACKed (to test the far end's no-ACK handling). */
  skipAck = false;
  stack!: SipStack;
  dialog: Dialog | undefined;
  incoming: { request: SipRequest; tx: InviteServerTransaction; toTag: string } | undefined;
  received: SipRequest[] = [];
  private cseq = 1;
  private transport: UdpTransport | TcpTransport;
  readonly protocol: 'UDP' | 'TCP';

  constructor(
    extension: string,
    password: string,
    server: { host: string; port: number; domain: string },
    protocol: 'UDP' | 'TCP' = 'UDP',
  ) {
    super();
    this.extension = extension;
    this.password = password;
    this.server = server;
    this.protocol = protocol;
    this.transport = protocol === 'UDP' ? new UdpTransport() : new TcpTransport();
  }

  async start(): Promise<void> {
    await this.transport.listen(0, '127.0.0.1');
    this.stack = new SipStack({
      transports: [this.transport],
      allow: ['INVITE', 'ACK', 'CANCEL', 'BYE', 'OPTIONS'],
    });
    this.stack.handlers = {
      onRequest: (request, tx) => {
        this.received.push(request);
        if (request.method === 'INVITE' && !request.to.params.has('tag'))
          this.ring(request, tx as InviteServerTransaction);
        else if (request.method === 'BYE') {
          tx.reply(200);
          this.emit('bye', request);
        } else if (request.method === 'INVITE') {
          // re-INVITE: accept with our SDP
          const r = createResponse(request, 200);
          r.append('Contact', this.contact);
          r.set('Content-Type', 'application/sdp');
          r.body = Buffer.from(SDP(40000));
          tx.respond(r);
          this.emit('reinvite', request);
        } else tx.reply(200);
      },
      onAck: (ack) => this.emit('ack', ack),
      onCancel: (invite, cancel) => {
        invite.reply(487, undefined, this.incoming?.toTag);
        this.emit('cancelled', cancel);
      },
    };
  }

  get port(): number {
    return this.transport.local.port;
  }

  get contact(): string {
    return `<sip:${this.extension}@127.0.0.1:${this.port}${this.protocol === 'TCP' ? ';transport=tcp' : ''}>`;
  }

  get aor(): string {
    return `sip:${this.extension}@${this.server.domain}`;
  }

  private serverUri(user?: string) {
    return parseUri(`sip:${user !== undefined ? `${user}@` : ''}${this.server.domain}`);
  }

  private destination() {
    return { protocol: this.protocol, address: this.server.host, port: this.server.port };
  }

  /** Sends a non-INVITE request; answers one digest challenge. */
  async request(build: () => SipRequest, password = this.password): Promise<SipResponse> {
    let request = build();
    let response = await this.send(request);
    if (response.status === 401 || response.status === 407) {
      const header = response.status === 401 ? 'WWW-Authenticate' : 'Proxy-Authenticate';
      const challenge = parseAuthHeader(response.getAll(header)[0] ?? '');
      if (challenge === undefined) return response;
      request = build();
      request.append(
        response.status === 401 ? 'Authorization' : 'Proxy-Authorization',
        authorize(challenge, { username: this.extension, password }, request.method, formatUri(request.uri)),
      );
      response = await this.send(request);
    }
    return response;
  }

  private send(request: SipRequest): Promise<SipResponse> {
    return new Promise((resolve, reject) => {
      this.stack.sendRequest(
        request,
        {
          onResponse: (r) => {
            if (r.status >= 200) resolve(r);
          },
          onTimeout: () => reject(new Error(`${request.method} timed out`)),
          onTransportError: (_tx, e) => reject(e),
        },
        this.destination(),
      );
    });
  }

  /** REGISTER with the given expiry (and Contact override, e.g. '*'). */
  register(
    expires = 3600,
    options: { contact?: string; password?: string; callId?: string } = {},
  ): Promise<SipResponse> {
    const callId = options.callId ?? `reg-${this.extension}-${this.port}@test`;
    return this.request(() => {
      const r = new SipRequest('REGISTER', this.serverUri());
      r.append('From', `<${this.aor}>;tag=${newTag()}`);
      r.append('To', `<${this.aor}>`);
      r.append('Call-ID', callId);
      r.append('CSeq', `${this.cseq++} REGISTER`);
      r.append('Contact', options.contact ?? this.contact);
      r.append('Expires', String(expires));
      return r;
    }, options.password);
  }

  /**
   * Calls an extension. Resolves with the final response; on 2xx the ACK is sent and `dialog` set.
   * `onProvisional` sees 18x responses; the returned `cancel` sends a CANCEL.
   */
  call(
    target: string,
    onProvisional?: (r: SipResponse) => void,
    options: { contentType?: string; maxForwards?: number } = {},
  ): { done: Promise<SipResponse>; cancel: () => void } {
    const callId = newCallId('127.0.0.1');
    const fromTag = newTag();
    let current: InviteClientTransaction | undefined;
    let cancelled = false;
    let sawProvisional = false;
    const build = (seq: number) => {
      const r = new SipRequest('INVITE', this.serverUri(target));
      r.append('From', `<${this.aor}>;tag=${fromTag}`);
      r.append('To', `<sip:${target}@${this.server.domain}>`);
      r.append('Call-ID', callId);
      r.append('CSeq', `${seq} INVITE`);
      r.append('Contact', this.contact);
      r.append('Content-Type', options.contentType ?? 'application/sdp');
      if (options.maxForwards !== undefined) r.append('Max-Forwards', String(options.maxForwards));
      r.body = Buffer.from(SDP(30000));
      return r;
    };
    const attempt = (request: SipRequest): Promise<SipResponse> =>
      new Promise((resolve, reject) => {
        current = this.stack.sendRequest(
          request,
          {
            onResponse: (r) => {
              if (r.status < 200) {
                if (r.status > 100) {
                  sawProvisional = true;
                  onProvisional?.(r);
                  if (cancelled && current !== undefined)
                    this.stack.cancel(current, NOOP, this.destination());
                }
                return;
              }
              if (r.status < 300) {
                if (this.dialog === undefined && !this.skipAck) {
                  this.dialog = Dialog.asUac(request, r);
                  const ack = this.dialog.createRequest('ACK', request.cseq.seq);
                  this.stack.sendStateless(ack, this.destination()).catch(() => undefined);
                }
              }
              resolve(r);
            },
            onTimeout: () => reject(new Error('INVITE timed out')),
            onTransportError: (_tx, e) => reject(e),
          },
          this.destination(),
        ) as InviteClientTransaction;
      });
    const done = (async () => {
      const first = build(1);
      let r = await attempt(first);
      if (r.status === 407) {
        const challenge = parseAuthHeader(r.getAll('Proxy-Authenticate')[0] ?? '');
        const second = build(2);
        second.append(
          'Proxy-Authorization',
          authorize(
            challenge!,
            { username: this.extension, password: this.password },
            'INVITE',
            `sip:${target}@${this.server.domain}`,
          ),
        );
        r = await attempt(second);
      }
      return r;
    })();
    return {
      done,
      cancel: () => {
        cancelled = true;
        if (current !== undefined && sawProvisional) this.stack.cancel(current, NOOP, this.destination());
      },
    };
  }

  /** Sends BYE in the current dialog. */
  async hangup(): Promise<SipResponse> {
    const d = this.dialog;
    if (d === undefined) throw new Error('no dialog');
    this.dialog = undefined;
    return this.send(d.createRequest('BYE'));
  }

  private ring(request: SipRequest, tx: InviteServerTransaction): void {
    const toTag = newTag();
    this.incoming = { request, tx, toTag };
    this.emit('incoming', request);
    const respond = (status: number) => {
      const r = createResponse(request, status, undefined, toTag);
      r.append('Contact', this.contact);
      if (status === 200) {
        r.append('Content-Type', 'application/sdp');
        r.body = Buffer.from(SDP(31000));
        this.dialog = Dialog.asUas(request, r, this.contact);
      }
      tx.respond(r);
    };
    switch (this.mode) {
      case 'answer':
        respond(180);
        respond(200);
        break;
      case 'ring':
        respond(180);
        break;
      case 'busy':
        respond(486);
        break;
      case 'decline':
        respond(603);
        break;
      case 'ring-then-answer':
        respond(180);
        break;
    }
  }

  /** Answers a call that is ringing ('ring-then-answer'). */
  answer(): void {
    const inc = this.incoming;
    if (inc === undefined) throw new Error('no incoming call');
    const r = createResponse(inc.request, 200, undefined, inc.toTag);
    r.append('Contact', this.contact);
    r.append('Content-Type', 'application/sdp');
    r.body = Buffer.from(SDP(31000));
    this.dialog = Dialog.asUas(inc.request, r, this.contact);
    inc.tx.respond(r);
  }

  async stop(): Promise<void> {
    await this.stack.close();
  }
}

const NOOP = { onResponse() {}, onTimeout() {}, onTransportError() {} };
