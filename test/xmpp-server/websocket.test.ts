/**
 * XMPP over WebSocket (RFC 7395) at /xmpp-websocket: the npm `stanza` client as an independent peer,
 * the framing by hand, hostile WebSocket input, liveness and the upgrade handler on a shared HTTP server.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { Socket } from 'node:net';
import { type TestContext, test } from 'node:test';
import fc from 'fast-check';
import * as XMPP from 'stanza';
import WebSocket from 'ws';
import { Element } from '../../src/xml/index.ts';
import { NS } from '../../src/xmpp/ns.ts';
import type { XmppServer } from '../../src/xmpp-server/server.ts';
import { waitUntil } from '../helpers/net.ts';
import { DOMAIN, login, message, presence, startServer } from './harness.ts';

const FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing';
const OPEN = `<open xmlns='${FRAMING}' to='${DOMAIN}' version='1.0'/>`;

function url(server: XmppServer): string {
  return `ws://127.0.0.1:${server.websocketPort}/xmpp-websocket`;
}

/** A WebSocket conversation: every message received, and the close code. */
class RawWs {
  readonly ws: WebSocket;
  readonly messages: string[] = [];
  closeCode: number | undefined;
  opened = false;
  failed: Error | undefined;

  constructor(t: TestContext, address: string, protocols: string[] | undefined = ['xmpp']) {
    this.ws = new WebSocket(address, protocols);
    this.ws.on('open', () => {
      this.opened = true;
    });
    this.ws.on('message', (d) => this.messages.push(d.toString()));
    this.ws.on('close', (code) => {
      this.closeCode = code;
    });
    this.ws.on('error', (e) => {
      this.failed = e;
    });
    t.after(() => this.ws.terminate());
  }

  async ready(): Promise<void> {
    await waitUntil(() => this.opened || this.failed !== undefined, 5000, 'websocket open');
    if (this.failed !== undefined) throw this.failed;
  }

  send(text: string | Buffer): void {
    this.ws.send(text);
  }

  async expect(pattern: RegExp, timeoutMs = 5000): Promise<string> {
    let found: string | undefined;
    await waitUntil(
      () => {
        found = this.messages.find((m) => pattern.test(m));
        return found !== undefined || this.closeCode !== undefined;
      },
      timeoutMs,
      `${pattern} in ${JSON.stringify(this.messages)}`,
    );
    if (found === undefined) throw new Error(`closed before ${pattern}: ${JSON.stringify(this.messages)}`);
    return found;
  }

  async closed(timeoutMs = 5000): Promise<number> {
    await waitUntil(() => this.closeCode !== undefined, timeoutMs, 'websocket close');
    return this.closeCode!;
  }

  /** Logs in with PLAIN (loopback) and binds `resource`. */
  async login(user: string, resource: string): Promise<void> {
    await this.ready();
    this.send(OPEN);
    await this.expect(/<mechanism>PLAIN<\/mechanism>/);
    this.send(
      `<auth xmlns='${NS.sasl}' mechanism='PLAIN'>${Buffer.from(`\0${user}\0${user}pw`).toString('base64')}</auth>`,
    );
    await this.expect(/^<success /);
    this.send(OPEN);
    await this.expect(/<bind xmlns/);
    this.send(
      `<iq xmlns='jabber:client' type='set' id='b1'><bind xmlns='${NS.bind}'><resource>${resource}</resource></bind></iq>`,
    );
    await this.expect(new RegExp(`<jid>${user}@${DOMAIN}/${resource}</jid>`));
  }
}

test('the npm stanza client logs in over WebSocket, chats with a TCP client, pings, gets the roster', async (t) => {
  const server = await startServer(t, undefined, { websocketPort: 0 });
  const bob = await login(t, server, 'bob');
  const client = XMPP.createClient({
    jid: `alice@${DOMAIN}`,
    password: 'alicepw',
    resource: 'web',
    transports: { websocket: url(server), bosh: false },
  });
  t.after(() => client.disconnect());
  const started = new Promise<void>((resolve, reject) => {
    client.once('session:started', () => resolve());
    client.once('auth:failed', () => reject(new Error('auth failed')));
  });
  const mechanisms: string[] = [];
  client.on('auth:success', (creds) =>
    mechanisms.push(String((creds as { mechanism?: string }).mechanism ?? '')),
  );
  client.connect();
  await started;
  assert.equal(client.jid, `alice@${DOMAIN}/web`);
  const roster = await client.getRoster();
  assert.deepEqual(roster.items ?? [], []);
  await client.ping(DOMAIN);
  client.sendPresence();
  const got = new Promise<string>((resolve) => client.on('message', (m) => m.body && resolve(m.body)));
  client.sendMessage({ to: bob.jid, type: 'chat', body: 'hello over websocket' });
  const m = await bob.waitFor((el) => el.getChildText('body') === 'hello over websocket');
  assert.equal(m.attr('from'), `alice@${DOMAIN}/web`);
  bob.send(message({ to: `alice@${DOMAIN}/web`, type: 'chat' }, 'hello back'));
  assert.equal(await got, 'hello back');
  // iq from the TCP side to the WebSocket session is routed and answered.
  const pong = await bob.iq(
    new Element('iq', NS.client, { type: 'get', to: client.jid }, [new Element('ping', NS.ping)]),
  );
  assert.equal(pong.attr('type'), 'result');
  // A clean disconnect ends the session (unavailable reaches bob's bookkeeping: no session left).
  client.disconnect();
  await waitUntil(() => server.router.sessionsOf('alice').length === 0, 5000, 'alice session gone');
});

test('framing: <open/> gets <open/> and features with the stream prefix declared; <close/> gets <close/>', async (t) => {
  const server = await startServer(t, undefined, { websocketPort: 0 });
  const ws = new RawWs(t, url(server));
  await ws.login('alice', 'raw');
  const open = ws.messages.find((m) => m.startsWith('<open '))!;
  assert.match(
    open,
    new RegExp(`^<open xmlns='${FRAMING}' id='[^']+' from='${DOMAIN}' version='1.0' xml:lang='en'/>$`),
  );
  assert.ok(ws.messages.some((m) => m.startsWith(`<stream:features xmlns:stream='${NS.stream}'>`)));
  assert.equal(ws.ws.protocol, 'xmpp');
  ws.send(`<iq xmlns='jabber:client' type='get' id='p1' to='${DOMAIN}'><ping xmlns='${NS.ping}'/></iq>`);
  await ws.expect(/<iq xmlns='jabber:client' type='result' id='p1'|id='p1'[^>]*type='result'/);
  ws.send(`<close xmlns='${FRAMING}'/>`);
  await ws.expect(/^<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'\/>$/);
  assert.equal(await ws.closed(), 1000);
  assert.equal(server.router.sessionsOf('alice').length, 0);
});

test('hostile WebSocket input ends only the offending stream; a TCP user and a WebSocket user keep working', async (t) => {
  const server = await startServer(t, undefined, { websocketPort: 0 });
  const bob = await login(t, server, 'bob');
  const good = new RawWs(t, url(server));
  await good.login('carol', 'good');

  // No `xmpp` subprotocol: the handshake is refused.
  const noProto = new RawWs(t, url(server), []);
  await waitUntil(() => noProto.failed !== undefined || noProto.closeCode !== undefined, 5000, 'refusal');
  assert.equal(noProto.opened, false);

  const cases: Array<[string | Buffer, RegExp]> = [
    ['<message', /<not-well-formed /],
    [`<message xmlns='jabber:client'/>`, /<invalid-namespace |<not-authorized /],
    [Buffer.from([0, 1, 2, 3]), /<bad-format /],
    [`${OPEN.replace('/>', '>')}`, /<not-well-formed /],
    [
      `<!DOCTYPE x [<!ENTITY a 'b'>]><open xmlns='${FRAMING}' to='${DOMAIN}' version='1.0'/>`,
      /<restricted-xml /,
    ],
    [`<open xmlns='${FRAMING}' to='elsewhere.example' version='1.0'/>`, /<host-unknown /],
    [`<a/><b/>`, /<not-well-formed |<bad-format /],
  ];
  for (const [input, pattern] of cases) {
    const ws = new RawWs(t, url(server));
    await ws.ready();
    if (Buffer.isBuffer(input)) {
      ws.ws.send(input, { binary: true });
    } else ws.send(input);
    await ws.expect(pattern);
    await ws.closed();
  }
  // Before authentication the stanza limit is 10 KiB.
  const pre = new RawWs(t, url(server));
  await pre.ready();
  pre.send(OPEN);
  await pre.expect(/stream:features/);
  pre.send(`<auth xmlns='${NS.sasl}' mechanism='PLAIN'>${'A'.repeat(11 * 1024)}</auth>`);
  await pre.expect(/<policy-violation /);
  // Over the WebSocket maxPayload: the WebSocket layer closes with 1009 (message too big).
  const huge = new RawWs(t, url(server));
  await huge.login('alice', 'huge');
  huge.send(
    `<message xmlns='jabber:client' to='bob@localhost'><body>${'x'.repeat(300 * 1024)}</body></message>`,
  );
  assert.equal(await huge.closed(), 1009);
  // Random text.
  await fc.assert(
    fc.asyncProperty(fc.string({ maxLength: 200 }), async (junk) => {
      const ws = new RawWs(t, url(server));
      await ws.ready();
      ws.send(OPEN);
      ws.send(junk);
      ws.ws.close();
      await ws.closed();
    }),
    { numRuns: 25 },
  );
  // Still served: TCP bob and WebSocket carol.
  good.send(
    `<message xmlns='jabber:client' to='${bob.jid}' type='chat'><body>ws still here</body></message>`,
  );
  await bob.waitFor((el) => el.getChildText('body') === 'ws still here');
  bob.send(message({ to: `carol@${DOMAIN}/good`, type: 'chat' }, 'tcp still here'));
  await good.expect(/tcp still here/);
});

test('a silent WebSocket session is pinged and dropped; the upgrade handler also works on a shared HTTP server', async (t) => {
  const server = await startServer(t, undefined, { pingIntervalS: 0.5, pingTimeoutS: 0.5 });
  // What `switchboard up` does: its own node:http server, with the endpoint on 'upgrade'.
  const http = createServer((_req, res) => {
    res.writeHead(404);
    res.end();
  });
  http.on('upgrade', (req, socket, head) => {
    if (!server.websocket.handleUpgrade(req, socket as Socket, head)) socket.destroy();
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => http.close(() => resolve())));
  const port = (http.address() as { port: number }).port;
  const bob = await login(t, server, 'bob');
  bob.send(presence());
  const ws = new RawWs(t, `ws://127.0.0.1:${port}/xmpp-websocket`);
  await ws.login('alice', 'mute');
  ws.send(`<presence xmlns='jabber:client' to='bob@${DOMAIN}'/>`);
  await bob.waitFor((el) => el.name === 'presence' && el.attr('from') === `alice@${DOMAIN}/mute`);
  await ws.expect(/<ping xmlns='urn:xmpp:ping'\/>/);
  await ws.expect(/<connection-timeout /, 3000);
  await bob.waitFor(
    (el) =>
      el.name === 'presence' &&
      el.attr('from') === `alice@${DOMAIN}/mute` &&
      el.attr('type') === 'unavailable',
  );
  // Other paths are not taken over.
  const other = new RawWs(t, `ws://127.0.0.1:${port}/elsewhere`);
  await waitUntil(() => other.failed !== undefined || other.closeCode !== undefined, 5000, 'refusal');
  assert.equal(other.opened, false);
});
