/**
 * The stack over real loopback sockets: rport/received (RFC 3581), OPTIONS, 405/501/416/420, 400 for
 * torture messages, 481 for an unmatched CANCEL, CANCEL of a pending INVITE, retransmission absorption,
 * TCP framing errors (400 and close), and a client transaction round trip.
 */
import assert from 'node:assert/strict';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { type SipRequest, SipResponse } from '../../src/sip/message.ts';
import { parseMessage } from '../../src/sip/parser.ts';
import { SipStack } from '../../src/sip/stack.ts';
import { TcpTransport, UdpTransport } from '../../src/sip/transport.ts';
import { parseUri } from '../../src/sip/uri.ts';
import { APPLICATION, crlf, INVALID } from './fixtures/rfc4475.ts';

let stack: SipStack;
let udp: UdpTransport;
let tcp: TcpTransport;
let client: UdpSocket;
let clientPort: number;
const queue: SipResponse[] = [];
const waiters: Array<() => void> = [];

async function nextResponse(timeoutMs = 3000): Promise<SipResponse> {
  const deadline = Date.now() + timeoutMs;
  while (queue.length === 0) {
    if (Date.now() > deadline) throw new Error('no response');
    await new Promise<void>((resolve) => {
      waiters.push(resolve);
      setTimeout(resolve, 50);
    });
  }
  return queue.shift()!;
}

function send(text: string) {
  client.send(Buffer.from(text), udp.local.port, '127.0.0.1');
}

const options = (branch: string, extra = '', method = 'OPTIONS') =>
  crlf(`${method} sip:pbx@127.0.0.1 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:${clientPort};branch=z9hG4bK${branch};rport
Max-Forwards: 70
To: <sip:pbx@127.0.0.1>
From: <sip:alice@127.0.0.1>;tag=a${branch}
Call-ID: ${branch}@test
CSeq: 1 ${method}
${extra}Content-Length: 0

`);

const requests: Array<{ request: SipRequest }> = [];

before(async () => {
  udp = new UdpTransport();
  await udp.listen(0, '127.0.0.1');
  tcp = new TcpTransport();
  await tcp.listen(0, '127.0.0.1');
  stack = new SipStack({ transports: [udp, tcp], allow: ['INVITE', 'ACK', 'CANCEL', 'BYE', 'OPTIONS'] });
  stack.handlers = {
    onRequest: (request, tx) => {
      requests.push({ request });
      if (request.method === 'OPTIONS') tx.respond(stack.optionsResponse(request, 'srv'));
      // INVITEs stay pending so CANCEL can be tested
    },
    onCancel: (invite) => invite.reply(487, undefined, 'srv'),
  };
  client = createSocket('udp4');
  client.on('message', (data) => {
    try {
      const m = parseMessage(data);
      if (m instanceof SipResponse) queue.push(m);
    } catch (e) {
      // a 400 echoes the request's broken headers (e.g. CSeq), so only its status line is read here
      const status = /^SIP\/2\.0 (\d{3}) /.exec(data.toString());
      queue.push(new SipResponse(status ? Number(status[1]) : 0, String(e)));
    }
    for (const w of waiters.splice(0)) w();
  });
  client.bind(0, '127.0.0.1');
  await once(client, 'listening');
  clientPort = client.address().port;
});

after(async () => {
  client.close();
  await stack.close();
});

describe('SipStack over UDP', () => {
  it('answers OPTIONS with Allow and fills rport and received (RFC 3581)', async () => {
    send(options('opt1'));
    const r = await nextResponse();
    assert.equal(r.status, 200);
    assert.match(r.get('Allow') ?? '', /INVITE/);
    assert.equal(r.via.params.get('rport'), String(clientPort));
    assert.equal(r.via.params.get('received'), '127.0.0.1');
    assert.equal(r.headers[0]?.name, 'Via', 'Via keeps its place at the top');
    assert.equal(r.to.params.get('tag'), 'srv');
  });

  it('absorbs a retransmitted request (the TU sees it once, the response is resent)', async () => {
    const before = requests.length;
    send(options('opt2'));
    await nextResponse();
    send(options('opt2'));
    const again = await nextResponse();
    assert.equal(again.status, 200);
    assert.equal(requests.length, before + 1);
  });

  it('501 for an unknown method, 405 for a known one not allowed', async () => {
    send(options('m1', '', 'FOOBAR'));
    assert.equal((await nextResponse()).status, 501);
    send(options('m2', '', 'SUBSCRIBE'));
    const r = await nextResponse();
    assert.equal(r.status, 405);
    assert.match(r.get('Allow') ?? '', /OPTIONS/);
  });

  it('420 with Unsupported for an unknown Require (bext01)', async () => {
    send(options('req1', 'Require: nothingSupportsThis, nothingSupportsThisEither\r\n'));
    const r = await nextResponse();
    assert.equal(r.status, 420);
    assert.equal(r.get('Unsupported'), 'nothingSupportsThis, nothingSupportsThisEither');
  });

  it('416 for a Request-URI with an unknown scheme (novelsc, unkscm)', async () => {
    for (const name of ['novelsc', 'unksm'] as const) {
      send(
        APPLICATION[name]!.message.replace(
          /Via: SIP\/2.0\/TCP host9.example.com;/,
          `Via: SIP/2.0/UDP 127.0.0.1:${clientPort};rport;`,
        ),
      );
      assert.equal((await nextResponse()).status, 416, name);
    }
  });

  it('RFC 4475 invalid requests get their 4xx/5xx, sent back to the source', async () => {
    for (const [name, { message, status }] of Object.entries(INVALID)) {
      if (status === 'drop' || name === 'insuf') continue;
      const text = message.replace(
        /^(Via|v)\s*:.*$/m,
        `Via: SIP/2.0/UDP 127.0.0.1:${clientPort};branch=z9hG4bK${name};rport`,
      );
      if (!/^Via: SIP\/2.0\/UDP 127/m.test(text)) continue; // messages whose Via is itself the error
      send(text);
      const r = await nextResponse().catch(() => new SipResponse(-1, 'none'));
      assert.equal(r.status, status, `${name}: ${r.reason}`);
    }
  });

  it('responses that fail to parse are dropped; the stack keeps serving', async () => {
    send(INVALID.bigcode!.message);
    send(INVALID.scalarlg!.message);
    send('garbage\r\n\r\n');
    send(options('alive'));
    assert.equal((await nextResponse()).status, 200);
  });

  it('CANCEL without a matching INVITE gets 481', async () => {
    send(options('c1', '', 'CANCEL'));
    assert.equal((await nextResponse()).status, 481);
  });

  it('CANCEL of a pending INVITE: 100, then 200 to CANCEL and 487 to the INVITE', async () => {
    send(options('inv1', 'Contact: <sip:alice@127.0.0.1>\r\n', 'INVITE'));
    assert.equal((await nextResponse()).status, 100);
    send(options('inv1', '', 'INVITE'));
    assert.equal((await nextResponse()).status, 100, 'retransmitted INVITE gets the 100 again');
    send(options('inv1', '', 'CANCEL'));
    const statuses = [(await nextResponse()).status, (await nextResponse()).status].sort();
    assert.deepEqual(statuses, [200, 487]);
  });

  it('client transaction round trip through the stack', async () => {
    const peer = new UdpTransport();
    await peer.listen(0, '127.0.0.1');
    const peerStack = new SipStack({ transports: [peer] });
    try {
      const { SipRequest: Req } = await import('../../src/sip/message.ts');
      const r = new Req('OPTIONS', parseUri(`sip:x@127.0.0.1:${udp.local.port}`));
      r.append('From', '<sip:peer@127.0.0.1>;tag=p1');
      r.append('To', '<sip:x@127.0.0.1>');
      r.append('Call-ID', 'round@trip');
      r.append('CSeq', '1 OPTIONS');
      const status = await new Promise<number>((resolve, reject) => {
        peerStack.sendRequest(r, {
          onResponse: (res) => resolve(res.status),
          onTimeout: () => reject(new Error('timeout')),
          onTransportError: (_tx, e) => reject(e),
        });
      });
      assert.equal(status, 200);
    } finally {
      await peerStack.close();
    }
  });
});

describe('SipStack under hostile input', () => {
  it('survives a burst of random and truncated datagrams and keeps answering', async () => {
    const samples = [...Object.values(INVALID).map((v) => v.message), options('x')];
    for (let i = 0; i < 2000; i++) {
      const base = Buffer.from(samples[i % samples.length]!);
      const cut = base.subarray(0, (i * 7919) % (base.length + 1));
      const junk = Buffer.from(cut);
      if (junk.length > 0) junk[(i * 31) % junk.length] = i % 256;
      client.send(junk, udp.local.port, '127.0.0.1');
    }
    client.send(Buffer.alloc(60_000, 0x41), udp.local.port, '127.0.0.1');
    // the kernel may drop datagrams after such a burst: retransmit like a UAC until answered
    let answered: SipResponse | undefined;
    for (let attempt = 0; attempt < 40 && answered === undefined; attempt++) {
      send(options('after-burst'));
      const deadline = Date.now() + 500;
      while (answered === undefined && Date.now() < deadline) {
        const r = await nextResponse(600).catch(() => undefined);
        if (r?.get('Call-ID') === 'after-burst@test') answered = r;
      }
    }
    assert.equal(answered?.status, 200);
  });

  it('a request with thousands of header fields gets 400', async () => {
    send(options('many', 'X-H: 1\r\n'.repeat(1000)));
    queue.length = 0;
    let r = await nextResponse();
    while (r.get('Call-ID') !== 'many@test') r = await nextResponse();
    assert.equal(r.status, 400);
  });
});

describe('SipStack over TCP', () => {
  it('closes a connection whose header section never ends', async () => {
    const socket = connect(tcp.local.port, '127.0.0.1');
    await once(socket, 'connect');
    const closed = once(socket, 'close');
    socket.on('error', () => undefined);
    socket.write('OPTIONS sip:a@b SIP/2.0\r\n');
    const line = `X-Junk: ${'j'.repeat(1000)}\r\n`;
    for (let i = 0; i < 40 && !socket.destroyed; i++) socket.write(line);
    await closed;
  });

  it('answers pipelined requests on the connection, then 400 and close for a missing Content-Length', async () => {
    const socket = connect(tcp.local.port, '127.0.0.1');
    await once(socket, 'connect');
    let data = '';
    socket.on('data', (d) => {
      data += d.toString();
    });
    const closed = once(socket, 'close');
    const tcpReq = (b: string, cl = true) =>
      options(b)
        .replace('SIP/2.0/UDP', 'SIP/2.0/TCP')
        .replace(cl ? /$^/ : 'Content-Length: 0\r\n', '');
    socket.write(tcpReq('t1') + tcpReq('t2') + tcpReq('t3', false));
    await closed;
    const statuses = [...data.matchAll(/^SIP\/2.0 (\d{3})/gm)].map((m) => m[1]);
    assert.deepEqual(statuses, ['200', '200', '400']);
  });
});
