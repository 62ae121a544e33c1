/**
 * Liveness (issue 4): a silent client is pinged (XEP-0199) and dropped when it does not answer; a client
 * that stops reading is cut off (write back-pressure). Ending a session tells subscribers and
 * directed-presence recipients (the gateway component) and later iqs to its full JID get
 * service-unavailable.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ComponentConnection, stanza } from '../../src/gateway/component.ts';
import type { Element } from '../../src/xml/index.ts';
import { Jid } from '../../src/xmpp/jid.ts';
import { NS } from '../../src/xmpp/ns.ts';
import { Proc, waitEvent, waitUntil } from '../helpers/net.ts';
import { requirePeer } from '../helpers/peers.ts';
import {
  DOMAIN,
  errorCondition,
  GATEWAY,
  GATEWAY_SECRET,
  HEADER,
  iq,
  login,
  message,
  presence,
  Raw,
  startServer,
} from './harness.ts';

const SLIX_CTI = new URL('../peers/slix_cti.py', import.meta.url).pathname;

/** The project's gateway-side component, collecting what it receives. */
async function gatewayComponent(
  t: import('node:test').TestContext,
  port: number,
): Promise<{ link: ComponentConnection; received: Element[] }> {
  const link = new ComponentConnection({
    host: '127.0.0.1',
    port,
    domain: GATEWAY,
    secret: GATEWAY_SECRET,
    keepAliveS: 0,
  });
  const received: Element[] = [];
  link.on('stanza', (el) => received.push(el));
  const online = waitEvent(link, 'online', 5000);
  link.start();
  await online;
  t.after(() => link.stop());
  return { link, received };
}

async function waitFor(
  list: Element[],
  predicate: (el: Element) => boolean,
  timeoutMs: number,
  what: string,
) {
  let found: Element | undefined;
  await waitUntil(
    () => {
      found = list.find(predicate);
      return found !== undefined;
    },
    timeoutMs,
    what,
  );
  return found!;
}

test('a frozen slixmpp client (SIGSTOP) is dropped within ping interval + timeout; the gateway component gets its unavailable presence and iqs to it get service-unavailable', async (t) => {
  const intervalS = 1;
  const timeoutS = 1;
  const server = await startServer(t, undefined, { pingIntervalS: intervalS, pingTimeoutS: timeoutS });
  const gw = await gatewayComponent(t, server.componentPort);
  // Bob answers pings (our client does), so he is pinged again and again and stays.
  const bob = await login(t, server, 'bob');
  bob.send(presence());

  const slix = new Proc(requirePeer('python3-slixmpp'), [
    SLIX_CTI,
    '--jid',
    'alice@localhost/slix',
    '--password',
    'alicepw',
    '--port',
    String(server.c2sPort),
  ]);
  t.after(() => slix.stop());
  await slix.waitForOutput(/READY alice@localhost\/slix/, 20_000);
  await waitFor(
    gw.received,
    (el) =>
      el.name === 'presence' && el.attr('from') === 'alice@localhost/slix' && el.attr('type') === undefined,
    5000,
    'directed presence of alice at the gateway',
  );
  // Pings to a live slixmpp session are answered (slixmpp registers xep_0199): it is still bound after
  // the server's second ping to bob, i.e. well past one interval + timeout.
  let pings = 0;
  await bob.waitFor(
    (el) => el.name === 'iq' && el.getChild('ping', NS.ping) !== undefined && ++pings >= 3,
    10_000,
  );
  assert.ok(server.router.session(new Jid('alice', DOMAIN, 'slix')), 'the answering slixmpp session stays');

  const frozenAt = Date.now();
  slix.child.kill('SIGSTOP');
  const unavailable = await waitFor(
    gw.received,
    (el) =>
      el.name === 'presence' &&
      el.attr('from') === 'alice@localhost/slix' &&
      el.attr('type') === 'unavailable',
    (intervalS + timeoutS) * 1000 + 2000,
    'unavailable presence of the frozen client at the gateway',
  );
  const detectedMs = Date.now() - frozenAt;
  assert.equal(unavailable.attr('to'), GATEWAY);
  t.diagnostic(
    `frozen client detected after ${detectedMs} ms (interval ${intervalS} s + timeout ${timeoutS} s)`,
  );

  // An iq from the gateway to the dead full JID is answered at once.
  const query = stanza('iq', { type: 'get', id: 'after-death', from: GATEWAY, to: 'alice@localhost/slix' });
  query.c('ping', {}, NS.ping);
  gw.link.send(query);
  const reply = await waitFor(gw.received, (el) => el.attr('id') === 'after-death', 5000, 'answer to the iq');
  assert.equal(reply.attr('type'), 'error');
  assert.equal(reply.getChild('error')?.attr('type'), 'cancel');
  assert.ok(reply.getChild('error')?.getChild('service-unavailable', NS.stanzas));

  // Bob was pinged all along and is still served.
  const pong = await bob.iq(iq({ type: 'get', to: DOMAIN }, 'ping', NS.ping));
  assert.equal(pong.attr('type'), 'result');
  assert.equal(bob.closed, false);
});

test('a client that answers nothing is pinged once, then dropped; its directed-presence recipients get unavailable presence', async (t) => {
  const server = await startServer(t, undefined, { pingIntervalS: 0.5, pingTimeoutS: 0.5 });
  const bob = await login(t, server, 'bob');
  const alice = await login(t, server, 'alice');
  bob.send(presence());
  alice.send(presence());

  // A raw session that never answers: logs in, sends presence to bob, then stays silent.
  const raw = await Raw.open(t, server.c2sPort);
  raw.write(HEADER);
  await raw.expect(/<\/stream:features>/);
  raw.write(
    `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from('\0carol\0carolpw').toString('base64')}</auth>`,
  );
  await raw.expect(/<success/);
  raw.write(HEADER);
  raw.write(
    `<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>mute</resource></bind></iq>`,
  );
  await raw.expect(/carol@localhost\/mute/);
  raw.write(`<presence to='bob@localhost'/>`);
  await bob.waitFor((el) => el.name === 'presence' && el.attr('from') === 'carol@localhost/mute');
  await raw.expect(
    /<iq type='get' id='(ping-[0-9a-f]+)' from='localhost' to='carol@localhost\/mute'><ping xmlns='urn:xmpp:ping'\/><\/iq>/,
  );
  await raw.expect(/<connection-timeout /, 3000);
  await raw.expectClosed(3000);
  await bob.waitFor(
    (el) =>
      el.name === 'presence' &&
      el.attr('from') === 'carol@localhost/mute' &&
      el.attr('type') === 'unavailable',
    2000,
  );
  // Alice answered her pings and is still there.
  alice.send(message({ to: bob.jid, type: 'chat' }, 'still here'));
  await bob.waitFor((el) => el.getChildText('body') === 'still here');
  const err = await bob.iq(iq({ type: 'get', to: 'carol@localhost/mute' }, 'ping', NS.ping));
  assert.equal(errorCondition(err), 'service-unavailable');
});

test('a client that stops reading is cut off; the sender and others keep working', async (t) => {
  const server = await startServer(t, undefined, {
    outputBufferLimit: 64 * 1024,
    pingTimeoutS: 0.5,
    pingIntervalS: 60,
  });
  const alice = await login(t, server, 'alice');
  const carol = await login(t, server, 'carol');
  const raw = await Raw.open(t, server.c2sPort);
  raw.write(HEADER);
  await raw.expect(/<\/stream:features>/);
  raw.write(
    `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from('\0bob\0bobpw').toString('base64')}</auth>`,
  );
  await raw.expect(/<success/);
  raw.write(HEADER);
  raw.write(
    `<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>slow</resource></bind></iq>`,
  );
  await raw.expect(/bob@localhost\/slow/);
  // Bob stops reading.
  raw.socket.pause();
  const body = 'x'.repeat(8000);
  let sent = 0;
  // Bounded: at most 64 MB, in batches that give the server time to notice.
  while (!raw.closed && sent < 8000) {
    for (let i = 0; i < 50; i++) alice.send(message({ to: 'bob@localhost/slow', type: 'chat' }, body));
    sent += 50;
    await alice.iq(iq({ type: 'get', to: DOMAIN }, 'ping', NS.ping), 10_000);
    if (server.router.sessionsOf('bob').length === 0) break;
  }
  await waitUntil(() => server.router.sessionsOf('bob').length === 0, 5000, 'bob session dropped');
  t.diagnostic(`slow reader dropped after ${sent} messages of 8 kB`);
  raw.socket.resume();
  await raw.expectClosed(5000);
  // The sender and other users are fine.
  alice.send(message({ to: carol.jid, type: 'chat' }, 'after the slow reader'));
  await carol.waitFor((el) => el.getChildText('body') === 'after the slow reader');
});

test('slixmpp with stream management (XEP-0198) frozen: <r/> unanswered, iqs to it fail at once, unavailable after resume_timeout_s', async (t) => {
  const intervalS = 1;
  const timeoutS = 1;
  const resumeS = 1;
  const server = await startServer(t, undefined, {
    pingIntervalS: intervalS,
    pingTimeoutS: timeoutS,
    resumeTimeoutS: resumeS,
  });
  const gw = await gatewayComponent(t, server.componentPort);
  const bob = await login(t, server, 'bob');
  const slix = new Proc(requirePeer('python3-slixmpp'), [
    new URL('./peers/slix_sm.py', import.meta.url).pathname,
    '--jid',
    'alice@localhost/sm',
    '--password',
    'alicepw',
    '--port',
    String(server.c2sPort),
  ]);
  t.after(() => slix.stop());
  await slix.waitForOutput(/SM_ENABLED \S+/, 20_000);
  await slix.waitForOutput(/READY alice@localhost\/sm/, 20_000);
  await waitFor(
    gw.received,
    (el) =>
      el.name === 'presence' && el.attr('from') === 'alice@localhost/sm' && el.attr('type') === undefined,
    5000,
    'directed presence at the gateway',
  );
  bob.send(message({ to: 'alice@localhost/sm', type: 'chat' }, 'hello sm'));
  await slix.waitForOutput(/MSG bob@localhost\/\S+ hello sm/, 5000);

  const frozenAt = Date.now();
  slix.child.kill('SIGSTOP');
  // An iq sent to the frozen client waits in its unacknowledged queue; when the server gives up on the
  // connection (no answer to <r/>) the session hibernates and the iq is answered with an error.
  const probe = stanza('iq', { type: 'get', id: 'probe', from: GATEWAY, to: 'alice@localhost/sm' });
  probe.c('ping', {}, NS.ping);
  gw.link.send(probe);
  const answered = await waitFor(
    gw.received,
    (el) => el.name === 'iq' && el.attr('id') === 'probe',
    (intervalS + timeoutS) * 1000 + 2000,
    'an answer to the iq for the frozen client',
  );
  assert.equal(answered.attr('type'), 'error');
  t.diagnostic(`iq to the frozen client failed ${Date.now() - frozenAt} ms after SIGSTOP`);
  assert.ok(answered.getChild('error')?.getChild('service-unavailable', NS.stanzas));
  const unavailable = await waitFor(
    gw.received,
    (el) =>
      el.name === 'presence' && el.attr('from') === 'alice@localhost/sm' && el.attr('type') === 'unavailable',
    (intervalS + timeoutS + resumeS) * 1000 + 3000,
    'unavailable presence after the resume timeout',
  );
  assert.equal(unavailable.attr('to'), GATEWAY);
  t.diagnostic(
    `unavailable at the gateway ${Date.now() - frozenAt} ms after SIGSTOP (resume_timeout_s ${resumeS})`,
  );
  const pong = await bob.iq(iq({ type: 'get', to: DOMAIN }, 'ping', NS.ping));
  assert.equal(pong.attr('type'), 'result');
});
