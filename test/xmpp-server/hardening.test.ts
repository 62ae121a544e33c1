/**
 * Hardening (issue 4, reference/perf-reliability.md §7 groups A-C): slow or silent connections, size
 * limits, rate limits per address, sessions per account, error loops, file-descriptor exhaustion.
 * Each case also checks that other users' sessions keep working.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import { Element } from '../../src/xml/index.ts';
import { XmppClient } from '../../src/xmpp/client.ts';
import { NS } from '../../src/xmpp/ns.ts';
import type { XmppServer } from '../../src/xmpp-server/server.ts';
import { Proc, waitUntil } from '../helpers/net.ts';
import {
  assertNothingBefore,
  DOMAIN,
  GATEWAY,
  HEADER,
  login,
  message,
  Raw,
  startServer,
  TestComponent,
} from './harness.ts';

/** Alice and bob exchange a message: the server still serves established sessions. */
async function stillServed(a: XmppClient, b: XmppClient, text: string): Promise<void> {
  a.send(message({ to: b.jid, type: 'chat' }, text));
  await b.waitFor((el) => el.getChildText('body') === text);
}

async function pair(t: import('node:test').TestContext, server: XmppServer) {
  return [await login(t, server, 'alice'), await login(t, server, 'bob')] as const;
}

test('no stream header, or no login, within negotiation_timeout_s: connection-timeout', async (t) => {
  const server = await startServer(t, undefined, { negotiationTimeoutS: 0.5 });
  const [alice, bob] = await pair(t, server);
  const silent = await Raw.open(t, server.c2sPort);
  const stuck = await Raw.open(t, server.c2sPort);
  stuck.write(HEADER);
  await stuck.expect(/<\/stream:features>/);
  // Half a stanza, then nothing.
  stuck.write(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFs`);
  await silent.expect(/<connection-timeout xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/, 5000);
  assert.match(silent.output, /^<\?xml version='1.0'\?><stream:stream /, 'header sent before the error');
  await silent.expectClosed();
  await stuck.expect(/<connection-timeout /, 5000);
  await stuck.expectClosed();
  // Sessions that finished logging in are not affected by the timer.
  await stillServed(alice, bob, 'after the timeouts');
  assert.equal(alice.closed, false);
});

test('stanza size limits: 10 KiB before authentication, 256 KiB after; others keep working', async (t) => {
  const server = await startServer(t);
  const [alice, bob] = await pair(t, server);
  const pre = await Raw.open(t, server.c2sPort);
  pre.write(
    `${HEADER}<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${'A'.repeat(11 * 1024)}`,
  );
  await pre.expect(/<policy-violation /);
  await pre.expectClosed();
  // Under the post-auth limit: delivered.
  const big = 'y'.repeat(200 * 1024);
  alice.send(message({ to: bob.jid, type: 'chat' }, big));
  await bob.waitFor((el) => el.getChildText('body') === big);
  const carol = await login(t, server, 'carol');
  carol.write(`<message to='${bob.jid}'><body>${'z'.repeat(300 * 1024)}</body></message>`);
  await carol.waitClosed();
  assert.equal(carol.streamError, 'policy-violation');
  assert.ok(!bob.received.some((el) => (el.getChildText('body') ?? '').startsWith('zzz')));
  await stillServed(alice, bob, 'after the oversized stanzas');
});

test('connections per address per minute: over the limit the connection gets policy-violation', async (t) => {
  const server = await startServer(t, undefined, { connectionsPerMinute: 3, rateLimitExempt: [] });
  const [alice, bob] = await pair(t, server);
  const ok1 = await Raw.open(t, server.c2sPort);
  ok1.write(HEADER);
  await ok1.expect(/<\/stream:features>/);
  const extra = await Raw.open(t, server.c2sPort);
  await extra.expect(/<policy-violation /);
  await extra.expectClosed();
  assert.doesNotMatch(extra.output, /stream:features/);
  // A new login is refused too, established sessions are not.
  await assert.rejects(login(t, server, 'carol'));
  await stillServed(alice, bob, 'after the connection flood');
  await stillServed(bob, alice, 'both ways');
});

test('exempt addresses (loopback by default) are not rate limited', async (t) => {
  const server = await startServer(t, undefined, { connectionsPerMinute: 1 });
  const [alice, bob] = await pair(t, server);
  await stillServed(alice, bob, 'two logins from loopback with a limit of 1');
});

test('failed logins per address: over the limit even the right password is refused; others keep working', async (t) => {
  const server = await startServer(t, undefined, { authFailuresPerMinute: 2, rateLimitExempt: [] });
  const [alice, bob] = await pair(t, server);
  await assert.rejects(login(t, server, 'carol', { password: 'wrong1' }), /not-authorized/);
  await assert.rejects(login(t, server, 'carol', { password: 'wrong2' }), /not-authorized/);
  await assert.rejects(login(t, server, 'carol'), /policy-violation|closed/);
  await stillServed(alice, bob, 'after the guessing');
});

test('sessions per account: the one over the limit gets resource-constraint; replacing a resource is allowed', async (t) => {
  const server = await startServer(t, undefined, { maxSessionsPerAccount: 2 });
  const bob = await login(t, server, 'bob');
  const a1 = await login(t, server, 'alice', { resource: 'one' });
  await login(t, server, 'alice', { resource: 'two' });
  await assert.rejects(login(t, server, 'alice', { resource: 'three' }), /resource-constraint|bind/);
  assert.equal(server.router.sessionsOf('alice').length, 2);
  // Same resource: the old session is replaced (conflict), not refused.
  const again = await login(t, server, 'alice', { resource: 'one' });
  await a1.waitClosed();
  await stillServed(bob, again, 'to the replacement');
});

test('error loops: a component answering every stanza with an error never gets an answer back', async (t) => {
  const server = await startServer(t);
  const [alice, bob] = await pair(t, server);
  const gw = await TestComponent.connect(t, server.componentPort);
  assert.ok(gw.handshakeOk);
  const errors = (id: string, to: string) =>
    new Element('message', NS.component, { type: 'error', id, from: `x@${GATEWAY}`, to }, [
      new Element('error', NS.component, { type: 'cancel' }, [
        new Element('service-unavailable', NS.stanzas),
      ]),
    ]);
  gw.send(errors('e1', 'nobody@localhost'));
  gw.send(errors('e2', 'alice@localhost/gone'));
  gw.send(errors('e3', 'someone@elsewhere.example'));
  gw.send(errors('e4', `y@${GATEWAY}`));
  gw.send(
    new Element('iq', NS.component, { type: 'error', id: 'e5', from: GATEWAY, to: 'nobody@localhost/r' }),
  );
  // A ping through the server proves it handled everything above (it keeps order per connection).
  gw.send(
    new Element('iq', NS.component, { type: 'get', id: 'sync', from: GATEWAY, to: DOMAIN }, [
      new Element('ping', NS.ping),
    ]),
  );
  await gw.waitFor((el) => el.attr('id') === 'sync');
  const back = gw.received.filter((el) => /^e\d$/.test(el.attr('id') ?? ''));
  // e4 goes to the component itself (it owns the domain) once, as sent; nothing else comes back.
  assert.deepEqual(
    back.map((el) => el.attr('id')),
    ['e4'],
  );
  await assertNothingBefore(alice, (el) => el.attr('type') === 'error', 'error for alice');
  await stillServed(alice, bob, 'after the error storm');
});

test('file descriptors exhausted: connections are refused, nothing crashes, accepting recovers', async (t) => {
  // prlimit is util-linux, part of every Debian system; the test fails clearly without it.
  const prlimit = '/usr/bin/prlimit';
  assert.ok(existsSync(prlimit), `${prlimit} is missing (util-linux)`);
  const server = new Proc(prlimit, [
    '--nofile=96:96',
    process.execPath,
    '--import',
    'tsx',
    new URL('./peers/emfile-server.ts', import.meta.url).pathname,
  ]);
  t.after(() => server.stop());
  const [, port] = await server.waitForOutput(/PORTS (\d+) \d+/, 30_000);
  const c2sPort = Number(port);
  const connectAt = (opts: { port: number; username: string }) =>
    XmppClient.connect({
      host: '127.0.0.1',
      domain: DOMAIN,
      password: `${opts.username}pw`,
      tls: 'none',
      ...opts,
    });
  const alice = await connectAt({ port: c2sPort, username: 'alice' });
  const bob = await connectAt({ port: c2sPort, username: 'bob' });
  t.after(() => {
    alice.kill();
    bob.kill();
  });
  // Open far more connections than the server has descriptors for.
  const flood: Socket[] = [];
  t.after(() => {
    for (const s of flood) s.destroy();
  });
  let closedByServer = 0;
  await Promise.all(
    Array.from({ length: 150 }, async () => {
      const s = connect({ host: '127.0.0.1', port: c2sPort });
      flood.push(s);
      s.on('error', () => {});
      s.on('close', () => closedByServer++);
      await new Promise<void>((resolve) => {
        s.once('connect', () => resolve());
        s.once('error', () => resolve());
      });
    }),
  );
  await server.waitForOutput(/refusing connections/, 10_000);
  await waitUntil(() => closedByServer > 0, 10_000, 'refused connections closed');
  // The server lives, and the sessions it had keep working.
  assert.equal(server.child.exitCode, null);
  await stillServed(alice, bob, 'while out of descriptors');
  const refused = closedByServer;
  // Free the descriptors: new logins work again.
  for (const s of flood) s.destroy();
  await waitUntil(
    async () => {
      try {
        const carol = await connectAt({ port: c2sPort, username: 'bob' });
        carol.kill();
        return true;
      } catch {
        return false;
      }
    },
    15_000,
    'a login after the flood',
  );
  t.diagnostic(`${refused} of 150 flood connections were refused`);
});

test('10,000 connections at once that stop after the stream header: established sessions keep working, logins still work, all are timed out', async (t) => {
  const COUNT = 10_000;
  const server = new Proc(
    process.execPath,
    ['--import', 'tsx', new URL('./peers/emfile-server.ts', import.meta.url).pathname],
    { env: { ...process.env, NEGOTIATION_TIMEOUT_S: '20' } },
  );
  t.after(() => server.stop());
  const [, port] = await server.waitForOutput(/PORTS (\d+) \d+/, 30_000);
  const c2sPort = Number(port);
  const connectAs = (username: string) =>
    XmppClient.connect({
      host: '127.0.0.1',
      port: c2sPort,
      domain: DOMAIN,
      username,
      password: `${username}pw`,
      tls: 'none',
    });
  const alice = await connectAs('alice');
  const bob = await connectAs('bob');
  t.after(() => {
    alice.kill();
    bob.kill();
  });
  const sockets: Socket[] = [];
  t.after(() => {
    for (const s of sockets) s.destroy();
  });
  let connected = 0;
  let closed = 0;
  // In batches, each connection sending a stream header and waiting for the server's answer, so that
  // every one of them is accepted (a connection the kernel completed but the server never accepted
  // because the listen backlog overflowed would say nothing about the server).
  for (let batch = 0; batch < COUNT / 500; batch++) {
    await Promise.all(
      Array.from({ length: 500 }, () => {
        const s = connect({ host: '127.0.0.1', port: c2sPort });
        sockets.push(s);
        s.on('error', () => {});
        s.on('close', () => closed++);
        return new Promise<void>((resolve) => {
          s.once('connect', () => s.write(HEADER));
          s.once('data', () => {
            connected++;
            resolve();
          });
          s.once('close', () => resolve());
        });
      }),
    );
  }
  t.diagnostic(`${connected} of ${COUNT} connected`);
  assert.equal(connected, COUNT);
  assert.equal(closed, 0, 'all 10,000 open at the same time');
  await stillServed(alice, bob, 'with 10,000 idle connections');
  const carol = await connectAs('bob');
  carol.kill();
  // Every idle connection is ended by the server (negotiation timeout 20 s).
  await waitUntil(
    () => closed === COUNT,
    60_000,
    `all ${COUNT} idle connections closed (closed ${closed})`,
    100,
  );
  assert.equal(server.child.exitCode, null);
  await stillServed(bob, alice, 'after the idle connections are gone');
});
