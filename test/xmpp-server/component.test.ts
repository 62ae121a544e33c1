/** XEP-0114 components: handshake, domain ownership, routing both ways, directed presence on session end. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Element } from '../../src/xml/index.ts';
import { NS } from '../../src/xmpp/ns.ts';
import {
  DOMAIN,
  errorCondition,
  GATEWAY,
  iq,
  login,
  message,
  presence,
  Raw,
  startServer,
  TestComponent,
} from './harness.ts';

test('handshake succeeds with the right secret; wrong secret is not-authorized; unknown domain is host-unknown', async (t) => {
  const server = await startServer(t);
  const ok = await TestComponent.connect(t, server.componentPort);
  assert.ok(ok.handshakeOk);
  assert.equal(server.gauges().switchboard_xmpp_components, 1);
  const wrong = await TestComponent.connect(t, server.componentPort, 'cti.localhost', 'nope');
  await wrong.waitClosed();
  assert.equal(wrong.streamError, 'not-authorized');
  const unknown = await TestComponent.connect(t, server.componentPort, 'other.localhost', 'x');
  await unknown.waitClosed();
  assert.equal(unknown.streamError, 'host-unknown');
  const twice = await TestComponent.connect(t, server.componentPort);
  await twice.waitClosed();
  assert.equal(twice.streamError, 'conflict', 'one connection per component domain');
  ok.destroy();
  await ok.waitClosed();
});

test('stanzas before the handshake end the stream', async (t) => {
  const server = await startServer(t);
  const raw = await Raw.open(t, server.componentPort);
  raw.write(
    `<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='${GATEWAY}'>`,
  );
  await raw.expect(/id='[^']+'/);
  raw.write(`<message from='${GATEWAY}' to='alice@localhost'><body>x</body></message>`);
  await raw.expect(/<not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
  await raw.expectClosed();
});

test('client to component domain and to any JID under it; replies come back; namespaces are translated', async (t) => {
  const server = await startServer(t);
  const gw = await TestComponent.connect(t, server.componentPort);
  const alice = await login(t, server, 'alice');
  const reply = alice.iq(iq({ type: 'get', to: '1001@cti.localhost' }, 'query', NS.discoInfo));
  const got = await gw.waitFor((el) => el.name === 'iq' && el.attr('to') === '1001@cti.localhost');
  assert.equal(got.attr('from'), alice.jid);
  assert.equal(got.ns, NS.component, 'delivered in jabber:component:accept');
  gw.send(
    new Element('iq', NS.component, {
      type: 'result',
      id: got.attr('id'),
      from: '1001@cti.localhost',
      to: alice.jid,
    }),
  );
  const answer = await reply;
  assert.equal(answer.attr('type'), 'result');
  assert.equal(answer.attr('from'), '1001@cti.localhost');
  alice.send(message({ to: GATEWAY, type: 'chat' }, 'status'));
  const msg = await gw.waitFor((el) => el.name === 'message');
  assert.equal(msg.getChildText('body'), 'status');
  // Component sends a message from a JID under its domain, with a body in the component namespace.
  gw.write(
    `<message from='1002@cti.localhost/phone' to='${alice.jid}' type='chat'><body>ringing</body></message>`,
  );
  const inbound = await alice.waitFor(
    (el) => el.name === 'message' && el.attr('from') === '1002@cti.localhost/phone',
  );
  assert.equal(inbound.ns, NS.client);
  assert.equal(inbound.getChildText('body'), 'ringing');
});

test('a component may send only from its own domain', async (t) => {
  const server = await startServer(t);
  const gw = await TestComponent.connect(t, server.componentPort);
  const alice = await login(t, server, 'alice');
  gw.send(
    new Element('message', NS.component, { from: 'bob@localhost', to: alice.jid, id: 'spoof' }, [
      new Element('body', NS.component, {}, ['x']),
    ]),
  );
  gw.send(
    new Element('iq', NS.component, { from: 'evil.localhost', to: alice.jid, id: 'spoof2', type: 'get' }, [
      new Element('ping', NS.ping),
    ]),
  );
  const err = await gw.waitFor((el) => el.attr('id') === 'spoof2');
  assert.equal(errorCondition(err), 'not-allowed');
  const err1 = await gw.waitFor((el) => el.attr('id') === 'spoof');
  assert.equal(errorCondition(err1), 'not-allowed');
  const pong = await alice.iq(iq({ type: 'get', to: DOMAIN }, 'ping', NS.ping));
  assert.equal(pong.attr('type'), 'result');
  assert.ok(!alice.received.some((el) => el.attr('id') === 'spoof' || el.attr('id') === 'spoof2'));
  // Without a from, the component's domain is used.
  gw.send(
    new Element('message', NS.component, { to: alice.jid }, [
      new Element('body', NS.component, {}, ['nofrom']),
    ]),
  );
  const m = await alice.waitFor((el) => el.getChildText('body') === 'nofrom');
  assert.equal(m.attr('from'), GATEWAY);
});

test('stanzas to a component that is not connected get service-unavailable (wait)', async (t) => {
  const server = await startServer(t);
  const alice = await login(t, server, 'alice');
  const r = await alice.iq(iq({ type: 'get', to: '1001@cti.localhost' }, 'query', NS.discoInfo));
  assert.equal(errorCondition(r), 'service-unavailable');
  assert.equal(r.getChild('error')?.attr('type'), 'wait');
  assert.equal(r.attr('from'), '1001@cti.localhost');
  const gw = await TestComponent.connect(t, server.componentPort);
  gw.destroy();
  await gw.waitClosed();
  alice.send(message({ to: GATEWAY, id: 'm' }, 'x'));
  const e = await alice.waitFor((el) => el.attr('id') === 'm');
  assert.equal(e.getChild('error')?.attr('type'), 'wait');
});

test('component iq to users: offline full JID and unknown user get service-unavailable (cancel); bare ping is answered', async (t) => {
  const server = await startServer(t);
  const gw = await TestComponent.connect(t, server.componentPort);
  const alice = await login(t, server, 'alice', { resource: 'laptop' });
  const send = (id: string, to: string, ns: string, name: string) =>
    gw.send(new Element('iq', NS.component, { type: 'get', id, from: GATEWAY, to }, [new Element(name, ns)]));
  send('c1', 'alice@localhost/foo', 'urn:x-test', 'query');
  send('c2', 'nobody@localhost', 'urn:x-test', 'query');
  send('c3', 'bob@localhost', NS.ping, 'ping');
  send('c4', 'alice@localhost', 'http://www.ecma-international.org/standards/ecma-323/csta/ed4', 'MakeCall');
  send('c5', 'alice@localhost/laptop', 'urn:x-test', 'query');
  const c1 = await gw.waitFor((el) => el.attr('id') === 'c1');
  assert.equal(errorCondition(c1), 'service-unavailable');
  assert.equal(c1.getChild('error')?.attr('type'), 'cancel');
  assert.equal(errorCondition(await gw.waitFor((el) => el.attr('id') === 'c2')), 'service-unavailable');
  assert.equal((await gw.waitFor((el) => el.attr('id') === 'c3')).attr('type'), 'result');
  assert.equal(errorCondition(await gw.waitFor((el) => el.attr('id') === 'c4')), 'service-unavailable');
  const toClient = await alice.waitFor((el) => el.attr('id') === 'c5');
  assert.equal(toClient.attr('from'), GATEWAY);
  alice.send(new Element('iq', NS.client, { type: 'result', id: 'c5', to: GATEWAY }));
  assert.equal(
    (await gw.waitFor((el) => el.attr('id') === 'c5' && el.attr('type') === 'result')).attr('from'),
    alice.jid,
  );
  // Disco of the server from the component.
  send('c6', DOMAIN, NS.discoInfo, 'query');
  const info = await gw.waitFor((el) => el.attr('id') === 'c6');
  assert.equal(info.attr('type'), 'result');
});

test('directed presence to the component: unavailable on explicit unavailable, on clean close and on a crash', async (t) => {
  const server = await startServer(t);
  const gw = await TestComponent.connect(t, server.componentPort);
  const alice = await login(t, server, 'alice', { resource: 'one' });
  alice.send(presence());
  alice.send(presence({ to: GATEWAY }));
  await gw.waitFor(
    (el) => el.name === 'presence' && el.attr('from') === alice.jid && el.attr('type') === undefined,
  );
  await alice.close();
  await gw.waitFor(
    (el) => el.name === 'presence' && el.attr('from') === alice.jid && el.attr('type') === 'unavailable',
  );
  // Crash without initial broadcast presence: directed presence still tracked.
  const bob = await login(t, server, 'bob', { resource: 'two' });
  bob.send(presence({ to: '1002@cti.localhost' }));
  await gw.waitFor((el) => el.name === 'presence' && el.attr('from') === bob.jid);
  bob.kill();
  const un = await gw.waitFor(
    (el) => el.name === 'presence' && el.attr('from') === bob.jid && el.attr('type') === 'unavailable',
  );
  assert.equal(un.attr('to'), '1002@cti.localhost');
});

test('presence subscription with a phone contact on the component', async (t) => {
  const server = await startServer(t);
  const gw = await TestComponent.connect(t, server.componentPort);
  const alice = await login(t, server, 'alice', { resource: 'r' });
  await alice.iq(iq({ type: 'get' }, 'query', NS.roster));
  alice.send(presence());
  alice.send(presence({ to: '1002@cti.localhost', type: 'subscribe' }));
  const sub = await gw.waitFor((el) => el.name === 'presence' && el.attr('type') === 'subscribe');
  assert.equal(sub.attr('from'), 'alice@localhost', 'subscription stanzas are stamped with the bare JID');
  gw.send(
    new Element('presence', NS.component, {
      type: 'subscribed',
      from: '1002@cti.localhost',
      to: 'alice@localhost',
    }),
  );
  await alice.waitFor(
    (el) =>
      el.name === 'iq' && el.getChild('query', NS.roster)?.getChild('item')?.attr('subscription') === 'to',
  );
  const dnd = new Element('presence', NS.component, { from: '1002@cti.localhost', to: 'alice@localhost' });
  dnd.c('show').append('dnd');
  dnd.c('status').append('On the phone');
  gw.send(dnd);
  const seen = await alice.waitFor(
    (el) =>
      el.name === 'presence' && el.attr('from') === '1002@cti.localhost' && el.attr('type') === undefined,
  );
  assert.equal(seen.getChildText('show'), 'dnd');
  // A new session of alice probes the phone contact through the component.
  const a2 = await login(t, server, 'alice', { resource: 'r2' });
  a2.send(presence());
  const probe = await gw.waitFor((el) => el.name === 'presence' && el.attr('type') === 'probe');
  assert.equal(probe.attr('from'), 'alice@localhost');
  assert.equal(probe.attr('to'), '1002@cti.localhost');
});
