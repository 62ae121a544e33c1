/**
 * SIP over WebSocket (RFC 7118): the "sip" subprotocol is required; a WebSocket phone registers with
 * digest and receives a call on the connection it registered over; a bad request gets 400 on the socket.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, it } from 'node:test';
import { WebSocket } from 'ws';
import type { Call } from '../../src/pbx/call.ts';
import { VoiceServer } from '../../src/pbx/server.ts';
import { InMemoryUserDirectory } from '../../src/pbx/users.ts';
import { authorize, parseAuthHeader } from '../../src/sip/digest.ts';
import { createResponse, type SipMessage, SipRequest, SipResponse } from '../../src/sip/message.ts';
import { parseMessage } from '../../src/sip/parser.ts';
import { parseUri } from '../../src/sip/uri.ts';
import { waitEvent } from '../helpers/net.ts';
import { TestPhone } from '../helpers/sip-phone.ts';

const users = new InMemoryUserDirectory([
  { name: 'alice', extension: '1001', sipPassword: 'alice-secret' },
  { name: 'web', extension: '1005', sipPassword: 'web-secret' },
]);
let server: VoiceServer;
const sockets: WebSocket[] = [];
const phones: TestPhone[] = [];

before(async () => {
  server = new VoiceServer({ users, host: '127.0.0.1', sipPort: 0, wsPort: 0 });
  await server.start();
});

after(async () => {
  for (const s of sockets) s.terminate();
  for (const p of phones) await p.stop();
  await server.stop();
});

class WsClient {
  readonly ws: WebSocket;
  private readonly inbox: SipMessage[] = [];
  private waiting: Array<() => void> = [];

  constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data: Buffer) => {
      try {
        this.inbox.push(parseMessage(Buffer.from(data)));
      } catch {
        // a 400 echoes what it could of a broken request: keep its status line
        const m = /^SIP\/2\.0 (\d{3}) (.*)\r\n/.exec(data.toString());
        if (m) this.inbox.push(new SipResponse(Number(m[1]), m[2]!));
      }
      for (const w of this.waiting.splice(0)) w();
    });
  }

  static async open(): Promise<WsClient> {
    const ws = new WebSocket(`ws://127.0.0.1:${server.wsPort}/sip`, 'sip');
    ws.on('error', () => undefined);
    sockets.push(ws);
    await once(ws, 'open');
    return new WsClient(ws);
  }

  send(m: SipMessage): void {
    this.ws.send(m.serialize().toString());
  }

  async next(predicate: (m: SipMessage) => boolean, timeoutMs = 3000): Promise<SipMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.inbox.findIndex(predicate);
      if (i >= 0) return this.inbox.splice(i, 1)[0]!;
      if (Date.now() > deadline) throw new Error('no matching message on the WebSocket');
      await new Promise<void>((resolve) => {
        this.waiting.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }
}

function register(seq: number, auth?: string): SipRequest {
  const r = new SipRequest('REGISTER', parseUri('sip:localhost'));
  r.append('Via', `SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKws${seq};rport`);
  r.append('From', '<sip:1005@localhost>;tag=web1');
  r.append('To', '<sip:1005@localhost>');
  r.append('Call-ID', 'ws-reg@test');
  r.append('CSeq', `${seq} REGISTER`);
  r.append('Max-Forwards', '70');
  r.append('Contact', '<sip:web@df7jal23ls0d.invalid;transport=ws>');
  r.append('Expires', '600');
  if (auth !== undefined) r.append('Authorization', auth);
  return r;
}

it('refuses a WebSocket without the sip subprotocol', async () => {
  const ws = new WebSocket(`ws://127.0.0.1:${server.wsPort}/sip`);
  ws.on('error', () => undefined);
  sockets.push(ws);
  const [, response] = (await once(ws, 'unexpected-response')) as [unknown, { statusCode: number }];
  assert.notEqual(response.statusCode, 101);
});

it('a WebSocket phone registers with digest and is called over its connection', async () => {
  const web = await WsClient.open();
  web.send(register(1));
  const challenge = (await web.next((m) => m instanceof SipResponse && m.cseq.seq === 1)) as SipResponse;
  assert.equal(challenge.status, 401);
  const auth = authorize(
    parseAuthHeader(challenge.get('WWW-Authenticate')!)!,
    { username: '1005', password: 'web-secret' },
    'REGISTER',
    'sip:localhost',
  );
  web.send(register(2, auth));
  const ok = (await web.next((m) => m instanceof SipResponse && m.cseq.seq === 2)) as SipResponse;
  assert.equal(ok.status, 200);
  assert.equal(server.registrar.lookup('1005')[0]?.source.protocol, 'WS');

  const alice = new TestPhone('1001', 'alice-secret', {
    host: '127.0.0.1',
    port: server.sipPort,
    domain: 'localhost',
  });
  await alice.start();
  phones.push(alice);
  assert.equal((await alice.register(600)).status, 200);
  const nextCall = waitEvent<Call>(server, 'call', 3000);
  const outcome = alice.call('1005').done;
  const invite = (await web.next((m) => m instanceof SipRequest && m.method === 'INVITE')) as SipRequest;
  assert.equal(invite.via.transport, 'WS');
  assert.match(invite.get('Contact') ?? '', /transport=ws/);
  web.send(createResponse(invite, 486, undefined, 'webtag'));
  assert.equal((await outcome).status, 486);
  await web.next((m) => m instanceof SipRequest && m.method === 'ACK');
  const [call] = await nextCall;
  assert.equal(call!.releaseCause, 'busy');
});

it('a bad request on the WebSocket gets 400 on the same socket', async () => {
  const web = await WsClient.open();
  web.ws.send(
    'OPTIONS sip:localhost SIP/2.0\r\nVia: SIP/2.0/WS x.invalid;branch=z9hG4bKbad\r\nCSeq: x\r\nCall-ID: bad@ws\r\n\r\n',
  );
  const r = await web.next((m) => m instanceof SipResponse);
  assert.equal((r as SipResponse).status, 400);
});
