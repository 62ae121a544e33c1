/** Hostile and malformed input never crashes the server and never disturbs other users' sessions. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { Element } from '../../src/xml/index.ts';
import { NS } from '../../src/xmpp/ns.ts';
import { DOMAIN, HEADER, iq, login, message, Raw, startServer, TestComponent } from './harness.ts';

test('random bytes, before and after authentication, end only the offending stream', async (t) => {
  const server = await startServer(t);
  const alice = await login(t, server, 'alice');
  const bob = await login(t, server, 'bob');
  await fc.assert(
    fc.asyncProperty(
      fc.uint8Array({ minLength: 1, maxLength: 400 }),
      fc.boolean(),
      async (bytes, withHeader) => {
        const raw = await Raw.open(t, server.c2sPort);
        if (withHeader) raw.write(HEADER);
        raw.socket.write(bytes);
        raw.socket.end();
        await raw.expectClosed();
      },
    ),
    { numRuns: 40 },
  );
  const evil = await login(t, server, 'carol');
  evil.write(`<message to='bob@localhost'><body>&undefined;</body></message>`);
  await evil.waitClosed();
  assert.equal(evil.streamError, 'not-well-formed');
  alice.send(message({ to: bob.jid, type: 'chat' }, 'still here'));
  await bob.waitFor((el) => el.getChildText('body') === 'still here');
});

test('odd but well-formed stanzas after bind get stanza errors or are ignored, never a crash', async (t) => {
  const server = await startServer(t);
  const alice = await login(t, server, 'alice');
  const samples = [
    `<iq type='get' id='a1'/>`,
    `<iq type='bogus' id='a2' to='${DOMAIN}'><ping xmlns='${NS.ping}'/></iq>`,
    `<iq type='set' id='a3'><query xmlns='${NS.roster}'><item/></query></iq>`,
    `<iq type='set' id='a4'><query xmlns='${NS.roster}'><item jid='x@localhost'><group>${'g'.repeat(2000)}</group></item></query></iq>`,
    `<presence type='probe'/>`,
    `<presence type='subscribe' to=''/>`,
    `<presence><priority>999999999999</priority></presence>`,
    `<presence><priority>abc</priority></presence>`,
    `<message to='@localhost' id='a5'/>`,
    `<message to='localhost/res' id='a6'><body>x</body></message>`,
    `<iq type='get' id='a7' to='localhost/res'><ping xmlns='${NS.ping}'/></iq>`,
    `<iq type='set' id='a8' to='${DOMAIN}'><bind xmlns='${NS.bind}'/></iq>`,
  ];
  for (const s of samples) alice.write(s);
  const pong = await alice.iq(iq({ type: 'get', to: DOMAIN }, 'ping', NS.ping));
  assert.equal(pong.attr('type'), 'result');
  const byId = (id: string) => alice.received.find((el) => el.attr('id') === id);
  assert.equal(byId('a1')?.attr('type'), 'error');
  assert.equal(byId('a3')?.attr('type'), 'error');
  assert.equal(byId('a4')?.attr('type'), 'error');
  assert.equal(byId('a7')?.attr('type'), 'error');
  assert.equal(byId('a8')?.attr('type'), 'error');
  assert.equal(byId('a2'), undefined, 'iq of unknown type ignored');
});

test('random component input never crashes; the good component keeps working', async (t) => {
  const server = await startServer(t);
  await fc.assert(
    fc.asyncProperty(fc.string({ maxLength: 300 }), async (junk) => {
      const raw = await Raw.open(t, server.componentPort);
      raw.write(
        `<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='cti.localhost'>`,
      );
      raw.write(junk);
      raw.socket.end();
      await raw.expectClosed();
    }),
    { numRuns: 30 },
  );
  const gw = await TestComponent.connect(t, server.componentPort);
  assert.ok(gw.handshakeOk);
  const alice = await login(t, server, 'alice');
  gw.send(
    new Element('message', NS.component, { from: 'cti.localhost', to: alice.jid }, [
      new Element('body', NS.component, {}, ['ok']),
    ]),
  );
  await alice.waitFor((el) => el.getChildText('body') === 'ok');
});
