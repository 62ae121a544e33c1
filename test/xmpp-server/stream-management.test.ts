/**
 * XEP-0198 stream management: acks, server ack requests, resumption with `resume_timeout_s`, and iq
 * requests to a session waiting for resumption answered at once (`iq_during_resumption = "error"`).
 */
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import WebSocket from 'ws';
import { Element } from '../../src/xml/index.ts';
import { NS } from '../../src/xmpp/ns.ts';
import type { XmppServer } from '../../src/xmpp-server/server.ts';
import { waitEvent, waitUntil } from '../helpers/net.ts';
import {
  DOMAIN,
  errorCondition,
  GATEWAY,
  HEADER,
  login,
  message,
  presence,
  Raw,
  startServer,
  TestComponent,
} from './harness.ts';

const SM = NS.sm;

/** Logs in over a raw socket with PLAIN (loopback) and binds, or stops before binding. */
async function rawAuth(t: TestContext, server: XmppServer, user: string): Promise<Raw> {
  const raw = await Raw.open(t, server.c2sPort);
  raw.write(HEADER);
  await raw.expect(/<\/stream:features>/);
  raw.write(
    `<auth xmlns='${NS.sasl}' mechanism='PLAIN'>${Buffer.from(`\0${user}\0${user}pw`).toString('base64')}</auth>`,
  );
  await raw.expect(/<success/);
  raw.output = '';
  raw.write(HEADER);
  await raw.expect(/<\/stream:features>/);
  return raw;
}

async function rawSession(t: TestContext, server: XmppServer, user: string, resource: string): Promise<Raw> {
  const raw = await rawAuth(t, server, user);
  assert.match(raw.output, new RegExp(`<sm xmlns='${SM}'/>`), 'stream management offered after auth');
  raw.write(`<iq type='set' id='b1'><bind xmlns='${NS.bind}'><resource>${resource}</resource></bind></iq>`);
  await raw.expect(new RegExp(`${user}@localhost/${resource}`));
  raw.output = '';
  return raw;
}

async function enable(raw: Raw, resume = true): Promise<{ id: string; max: string }> {
  raw.write(`<enable xmlns='${SM}'${resume ? " resume='true'" : ''}/>`);
  const m = await raw.expect(/<enabled xmlns='urn:xmpp:sm:3' id='([^']+)' resume='true' max='(\d+)'\/>/);
  raw.output = '';
  return { id: m[1]!, max: m[2]! };
}

test('acks: <r/> is answered with the count of handled stanzas; the server asks every 5 stanzas; a too-high h is an error', async (t) => {
  const server = await startServer(t);
  const alice = await login(t, server, 'alice');
  const raw = await rawSession(t, server, 'bob', 'sm');
  const { max } = await enable(raw);
  assert.equal(max, '300');
  raw.write(
    `<presence/><iq type='get' id='p1' to='${DOMAIN}'><ping xmlns='${NS.ping}'/></iq><r xmlns='${SM}'/>`,
  );
  await raw.expect(/<a xmlns='urn:xmpp:sm:3' h='2'\/>/);
  raw.output = '';
  for (let i = 0; i < 5; i++) alice.send(message({ to: 'bob@localhost/sm', type: 'chat' }, `m${i}`));
  // Sent so far: bob's own presence, p1's result, m0..m4. The 5th (m2) comes with an ack request.
  await raw.expect(/m2<\/body><\/message><r xmlns='urn:xmpp:sm:3'\/>/);
  await raw.expect(/m4<\/body>/);
  raw.write(`<a xmlns='${SM}' h='7'/>`);
  raw.write(`<iq type='get' id='p2' to='${DOMAIN}'><ping xmlns='${NS.ping}'/></iq>`);
  await raw.expect(/id='p2'/);
  // One stanza (p2's result) is unacknowledged: h = 9 acknowledges two.
  raw.write(`<a xmlns='${SM}' h='9'/>`);
  await raw.expect(/<undefined-condition /);
  await raw.expectClosed();
  alice.send(message({ to: alice.jid, type: 'chat' }, 'alice fine'));
  await alice.waitFor((el) => el.getChildText('body') === 'alice fine');
});

test('resumption: a dropped session stays bound, keeps messages, answers iq requests at once with service-unavailable, and resumes', async (t) => {
  const server = await startServer(t, undefined, { resumeTimeoutS: 30 });
  const alice = await login(t, server, 'alice');
  const gw = await TestComponent.connect(t, server.componentPort);
  const raw = await rawSession(t, server, 'bob', 'phone');
  const { id } = await enable(raw);
  raw.write(`<presence/><presence to='${GATEWAY}'/>`);
  await gw.waitFor((el) => el.name === 'presence' && el.attr('from') === 'bob@localhost/phone');
  alice.send(message({ to: 'bob@localhost/phone', type: 'chat' }, 'before the drop'));
  await raw.expect(/before the drop/);
  // Bob's connection drops without a word (h for him: 1 stanza received, not acknowledged).
  raw.socket.destroy();
  await waitUntil(() => raw.closed, 5000, 'socket closed');
  alice.send(message({ to: 'bob@localhost/phone', type: 'chat' }, 'while away'));
  const started = Date.now();
  gw.send(
    new Element('iq', NS.component, { type: 'get', id: 'gw1', from: GATEWAY, to: 'bob@localhost/phone' }, [
      new Element('ping', NS.ping),
    ]),
  );
  const err = await gw.waitFor((el) => el.attr('id') === 'gw1');
  t.diagnostic(`iq to the hibernating session answered after ${Date.now() - started} ms`);
  assert.equal(err.attr('type'), 'error');
  assert.equal(errorCondition(err), 'service-unavailable');
  assert.equal(err.attr('from'), 'bob@localhost/phone');
  // No unavailable presence while the session waits.
  assert.ok(!gw.received.some((el) => el.name === 'presence' && el.attr('type') === 'unavailable'));
  assert.ok(server.router.sessionsOf('bob').length === 1);

  const again = await rawAuth(t, server, 'bob');
  again.output = '';
  again.write(`<resume xmlns='${SM}' previd='${id}' h='0'/>`);
  await again.expect(new RegExp(`<resumed xmlns='urn:xmpp:sm:3' previd='${id}' h='2'/>`));
  // Both unacknowledged messages come again, in order.
  await again.expect(/before the drop[\s\S]*while away/);
  again.write(
    `<a xmlns='${SM}' h='2'/><message to='${alice.jid}' type='chat'><body>resumed</body></message>`,
  );
  const m = await alice.waitFor((el) => el.getChildText('body') === 'resumed');
  assert.equal(m.attr('from'), 'bob@localhost/phone');
  assert.ok(!gw.received.some((el) => el.name === 'presence' && el.attr('type') === 'unavailable'));
});

test('not resumed within resume_timeout_s: the session ends, the component gets unavailable, kept messages go offline', async (t) => {
  const server = await startServer(t, undefined, { resumeTimeoutS: 0.5 });
  const alice = await login(t, server, 'alice');
  const gw = await TestComponent.connect(t, server.componentPort);
  const raw = await rawSession(t, server, 'bob', 'phone');
  await enable(raw);
  raw.write(`<presence to='${GATEWAY}'/>`);
  await gw.waitFor((el) => el.name === 'presence' && el.attr('from') === 'bob@localhost/phone');
  raw.socket.destroy();
  await waitUntil(() => raw.closed, 5000, 'socket closed');
  alice.send(message({ to: 'bob@localhost/phone', type: 'chat' }, 'kept for bob'));
  await gw.waitFor(
    (el) =>
      el.name === 'presence' &&
      el.attr('from') === 'bob@localhost/phone' &&
      el.attr('type') === 'unavailable',
    5000,
    'unavailable after the resume timeout',
  );
  assert.equal(server.router.sessionsOf('bob').length, 0);
  // The kept message is not lost: bob's next session gets it from offline storage.
  const bob = await login(t, server, 'bob');
  bob.send(presence());
  await bob.waitFor((el) => el.getChildText('body') === 'kept for bob');
  // A resume now fails.
  const late = await rawAuth(t, server, 'bob');
  late.output = '';
  late.write(`<resume xmlns='${SM}' previd='nope' h='0'/>`);
  await late.expect(/<failed xmlns='urn:xmpp:sm:3'><item-not-found /);
});

test('iq_during_resumption = "queue": iq requests wait for the resumed session', async (t) => {
  const server = await startServer(t, undefined, { resumeTimeoutS: 30, iqDuringResumption: 'queue' });
  const alice = await login(t, server, 'alice');
  const raw = await rawSession(t, server, 'bob', 'phone');
  const { id } = await enable(raw);
  raw.socket.destroy();
  await waitUntil(() => raw.closed, 5000, 'socket closed');
  alice.send(
    new Element('iq', NS.client, { type: 'get', id: 'q1', to: 'bob@localhost/phone' }, [
      new Element('ping', NS.ping),
    ]),
  );
  const again = await rawAuth(t, server, 'bob');
  again.output = '';
  again.write(`<resume xmlns='${SM}' previd='${id}' h='0'/>`);
  await again.expect(/<resumed /);
  await again.expect(/id='q1'/);
  again.write(`<iq type='result' id='q1' to='alice@localhost/${alice.jid.split('/')[1]}'/>`);
  const reply = await alice.waitFor((el) => el.attr('id') === 'q1');
  assert.equal(reply.attr('type'), 'result');
});

test('another account cannot resume a session; liveness with stream management uses <r/> and hibernates', async (t) => {
  const server = await startServer(t, undefined, {
    resumeTimeoutS: 30,
    pingIntervalS: 0.3,
    pingTimeoutS: 0.3,
  });
  const raw = await rawSession(t, server, 'bob', 'phone');
  const { id } = await enable(raw);
  const carol = await rawAuth(t, server, 'carol');
  carol.output = '';
  carol.write(`<resume xmlns='${SM}' previd='${id}' h='0'/>`);
  await carol.expect(/<failed xmlns='urn:xmpp:sm:3'><item-not-found /);
  // Bob goes silent: an ack request, then the connection is given up but the session waits.
  await raw.expect(/<r xmlns='urn:xmpp:sm:3'\/>/);
  await raw.expectClosed(3000);
  assert.doesNotMatch(raw.output, /stream:error/);
  assert.equal(server.router.sessionsOf('bob').length, 1);
  const again = await rawAuth(t, server, 'bob');
  again.output = '';
  again.write(`<resume xmlns='${SM}' previd='${id}' h='0'/>`);
  await again.expect(/<resumed /);
});

test('a WebSocket session with stream management resumes on a TCP connection after the WebSocket drops', async (t) => {
  const server = await startServer(t, undefined, { resumeTimeoutS: 30, websocketPort: 0 });
  const alice = await login(t, server, 'alice');
  const ws = new WebSocket(`ws://127.0.0.1:${server.websocketPort}/xmpp-websocket`, ['xmpp']);
  t.after(() => ws.terminate());
  const got: string[] = [];
  ws.on('message', (d) => got.push(d.toString()));
  ws.on('error', () => {});
  await waitEvent(ws, 'open', 5000);
  const expect = (re: RegExp) => waitUntil(() => got.some((m) => re.test(m)), 5000, `${re}`);
  const open = `<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='${DOMAIN}' version='1.0'/>`;
  ws.send(open);
  await expect(/<mechanism>PLAIN/);
  ws.send(
    `<auth xmlns='${NS.sasl}' mechanism='PLAIN'>${Buffer.from('\0bob\0bobpw').toString('base64')}</auth>`,
  );
  await expect(/^<success/);
  ws.send(open);
  await expect(/<sm xmlns='urn:xmpp:sm:3'\/>/);
  ws.send(
    `<iq xmlns='jabber:client' type='set' id='b1'><bind xmlns='${NS.bind}'><resource>web</resource></bind></iq>`,
  );
  await expect(/bob@localhost\/web/);
  ws.send(`<enable xmlns='${SM}' resume='true'/>`);
  await expect(/<enabled /);
  const id = got.find((m) => m.startsWith('<enabled '))!.match(/id='([^']+)'/)![1]!;
  ws.terminate();
  await waitUntil(() => server.router.sessionsOf('bob').length === 1, 5000, 'still bound');
  alice.send(message({ to: 'bob@localhost/web', type: 'chat' }, 'kept across transports'));
  const tcp = await rawAuth(t, server, 'bob');
  tcp.output = '';
  tcp.write(`<resume xmlns='${SM}' previd='${id}' h='0'/>`);
  await tcp.expect(/<resumed /);
  await tcp.expect(/kept across transports/);
});
