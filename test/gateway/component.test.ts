import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ComponentConnection, handshakeDigest, stanza } from '../../src/gateway/component.ts';
import { type Element, XmlStreamReader } from '../../src/xml/index.ts';
import { Proc, waitEvent } from '../helpers/net.ts';
import { requirePeer } from '../helpers/peers.ts';
import { type ProsodyInstance, startProsody } from '../helpers/prosody.ts';

describe('XEP-0114 handshake digest', () => {
  it('is the lower-case hex SHA-1 of stream id + secret (values from Python hashlib)', () => {
    assert.equal(handshakeDigest('3BF96D32', 'test'), 'aaee83c26aeeafcbabeabfcbcd50df997e0a2a1e');
    assert.equal(handshakeDigest('id€', 'secret'), '193f3a29262d794a78449e3436ce65f8f5cd3436');
  });
});

describe('component connection against Prosody 0.12', () => {
  let prosody: ProsodyInstance;
  before(async () => {
    prosody = await startProsody({
      components: { 'cti.localhost': 'gwsecret' },
      users: { alice: 'alicepw' },
    });
  });
  after(async () => {
    await prosody?.stop();
  });

  it('connects, handshakes, exchanges an iq with the server and closes cleanly', async () => {
    const conn = new ComponentConnection({
      host: '127.0.0.1',
      port: prosody.componentPort,
      domain: 'cti.localhost',
      secret: 'gwsecret',
    });
    const online = waitEvent(conn, 'online', 5000);
    conn.start();
    await online;
    assert.equal(conn.state, 'online');
    const ping = stanza('iq', { type: 'get', id: 'p1', from: 'cti.localhost', to: 'localhost' });
    ping.c('ping', {}, 'urn:xmpp:ping');
    const reply = waitEvent<Element>(conn, 'stanza', 5000);
    assert.equal(conn.send(ping), true);
    const [iq] = await reply;
    assert.equal(iq!.attr('type'), 'result');
    assert.equal(iq!.attr('id'), 'p1');
    await conn.stop();
    assert.equal(conn.state, 'stopped');
    assert.equal(conn.send(ping), false);
  });

  it('receives a client message addressed to a JID under its domain', async () => {
    const conn = new ComponentConnection({
      host: '127.0.0.1',
      port: prosody.componentPort,
      domain: 'cti.localhost',
      secret: 'gwsecret',
    });
    conn.start();
    await waitEvent(conn, 'online', 5000);
    const got = new Promise<Element>((resolve) => {
      conn.on('stanza', (s) => {
        if (s.name === 'message') resolve(s);
      });
    });
    const py = requirePeer('python3-slixmpp');
    const client = new Proc(py, [
      new URL('../../../shared/reference/peers/scripts/slix_client.py', import.meta.url).pathname,
      '--port',
      String(prosody.c2sPort),
      '--jid',
      'alice@localhost/test',
      '--password',
      'alicepw',
      '--to',
      '1002@cti.localhost',
      '--msg',
      'call bob',
      '--stay',
      '1',
    ]);
    try {
      const message = await got;
      assert.equal(message.attr('to'), '1002@cti.localhost');
      assert.match(message.attr('from') ?? '', /^alice@localhost\//);
      assert.equal(message.getChildText('body'), 'call bob');
    } finally {
      await client.stop();
      await conn.stop();
    }
  });

  it('a wrong secret is reported as a stream error and retried with backoff', async () => {
    const conn = new ComponentConnection({
      host: '127.0.0.1',
      port: prosody.componentPort,
      domain: 'cti.localhost',
      secret: 'wrong',
      backoffInitialMs: 50,
    });
    conn.start();
    const [reason] = await waitEvent<string>(conn, 'offline', 5000);
    assert.match(reason!, /not-authorized/);
    // It tries again by itself.
    const [again] = await waitEvent<string>(conn, 'offline', 5000);
    assert.match(again!, /not-authorized/);
    await conn.stop();
  });
});

/** A scripted XEP-0114 server for fault cases Prosody cannot be made to produce on demand. */
class FakeServer {
  readonly server: Server;
  readonly sockets: Socket[] = [];
  readonly received: Element[] = [];
  port = 0;
  answerPings = true;

  private readonly secret: string;

  constructor(secret: string) {
    this.secret = secret;
    this.server = createServer((socket) => this.accept(socket));
  }

  async listen(): Promise<void> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.port = (this.server.address() as { port: number }).port;
  }

  private accept(socket: Socket): void {
    this.sockets.push(socket);
    const id = `s${this.sockets.length}`;
    const reader = new XmlStreamReader({
      onStreamStart: () => {
        socket.write(
          `<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='${id}' from='cti.localhost'>`,
        );
      },
      onStanza: (el) => {
        this.received.push(el);
        if (el.name === 'handshake') {
          if (el.text() === handshakeDigest(id, this.secret)) socket.write('<handshake/>');
          else
            socket.end(
              "<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>",
            );
        } else if (el.name === 'iq' && el.getChild('ping') && this.answerPings) {
          socket.write(
            `<iq type='result' id='${el.attr('id')}' from='${el.attr('to')}' to='${el.attr('from')}'/>`,
          );
        }
      },
      onStreamEnd: () => socket.end('</stream:stream>'),
      onError: () => socket.destroy(),
    });
    socket.on('data', (d) => reader.feed(d));
    socket.on('error', () => {});
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server.close(r));
  }
}

describe('component connection faults', () => {
  it('declares the link down when a keep-alive ping is not answered, then reconnects', async () => {
    const fake = new FakeServer('s3cret');
    await fake.listen();
    fake.answerPings = false;
    const conn = new ComponentConnection({
      host: '127.0.0.1',
      port: fake.port,
      domain: 'cti.localhost',
      secret: 's3cret',
      keepAliveS: 0.05,
      timeoutS: 0.1,
      backoffInitialMs: 10,
    });
    try {
      conn.start();
      await waitEvent(conn, 'online', 2000);
      const [reason] = await waitEvent<string>(conn, 'offline', 2000);
      assert.match(reason!, /no keep-alive answer/);
      await waitEvent(conn, 'online', 2000);
      // A new connection each time: this server never answers, so a slow machine may already be on its third.
      assert.ok(fake.sockets.length >= 2, `${fake.sockets.length} connections`);
      assert.ok(fake.received.some((e) => e.name === 'iq' && e.getChild('ping', 'urn:xmpp:ping')));
    } finally {
      await conn.stop();
      await fake.close();
    }
  });

  it('stays up while pings are answered and never passes the answers on', async () => {
    const fake = new FakeServer('s3cret');
    await fake.listen();
    const conn = new ComponentConnection({
      host: '127.0.0.1',
      port: fake.port,
      domain: 'cti.localhost',
      secret: 's3cret',
      keepAliveS: 0.02,
      timeoutS: 0.5,
    });
    const passedOn: Element[] = [];
    conn.on('stanza', (s) => passedOn.push(s));
    let offline = 0;
    conn.on('offline', () => offline++);
    try {
      conn.start();
      await waitEvent(conn, 'online', 2000);
      // Wait until several pings went round.
      while (fake.received.filter((e) => e.name === 'iq').length < 5)
        await waitEvent(fake.sockets[0]!, 'data', 2000);
      assert.equal(offline, 0);
      assert.equal(passedOn.length, 0);
    } finally {
      await conn.stop();
      await fake.close();
    }
  });

  it('reconnects after the server drops the connection, and again after a restart on the same port', async () => {
    const fake = new FakeServer('s3cret');
    await fake.listen();
    const conn = new ComponentConnection({
      host: '127.0.0.1',
      port: fake.port,
      domain: 'cti.localhost',
      secret: 's3cret',
      keepAliveS: 0,
      backoffInitialMs: 10,
    });
    try {
      conn.start();
      await waitEvent(conn, 'online', 2000);
      fake.sockets[0]!.destroy();
      await waitEvent(conn, 'offline', 2000);
      await waitEvent(conn, 'online', 2000);
      assert.equal(fake.sockets.length, 2);
    } finally {
      await conn.stop();
      await fake.close();
    }
  });

  it('refuses to send a stanza built outside the component namespace', async () => {
    const fake = new FakeServer('s3cret');
    await fake.listen();
    const conn = new ComponentConnection({
      host: '127.0.0.1',
      port: fake.port,
      domain: 'cti.localhost',
      secret: 's3cret',
    });
    try {
      conn.start();
      await waitEvent(conn, 'online', 2000);
      const { Element } = await import('../../src/xml/index.ts');
      assert.throws(() => conn.send(new Element('message', 'jabber:client')), /jabber:component:accept/);
    } finally {
      await conn.stop();
      await fake.close();
    }
  });
});
