import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Element } from '../../src/xml/index.ts';
import { XmppClient } from '../../src/xmpp/client.ts';
import { NS } from '../../src/xmpp/ns.ts';
import { DOMAIN, HEADER, login, Raw, startServer } from './harness.ts';

test('STARTTLS with the self-signed certificate from the data directory, then SCRAM-SHA-256, bind and session', async (t) => {
  const server = await startServer(t);
  assert.ok(
    existsSync(join(server.config.dataDir, 'tls', `${DOMAIN}.crt`)),
    'certificate created in the data dir',
  );
  const client = await login(t, server, 'alice', { tls: 'starttls', resource: 'laptop', session: true });
  assert.equal(client.jid, 'alice@localhost/laptop');
  await client.close();
});

for (const mechanism of ['SCRAM-SHA-1', 'PLAIN'] as const) {
  test(`${mechanism} over TLS`, async (t) => {
    const server = await startServer(t);
    const client = await login(t, server, 'bob', { tls: 'starttls', mechanism });
    assert.match(client.jid, /^bob@localhost\/.+/);
  });
}

test('without TLS and without allow_plain_loopback: STARTTLS required, no mechanisms, auth refused', async (t) => {
  const server = await startServer(t, undefined, { allowPlainLoopback: false });
  const raw = await Raw.open(t, server.c2sPort);
  raw.write(HEADER);
  const features = await raw.expect(/<stream:features>.*<\/stream:features>/);
  assert.match(features[0], /<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required\/><\/starttls>/);
  assert.doesNotMatch(features[0], /mechanisms/);
  raw.write(
    `<auth xmlns='${NS.sasl}' mechanism='PLAIN'>${Buffer.from('\0alice\0alicepw').toString('base64')}</auth>`,
  );
  await raw.expect(/<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><encryption-required\/><\/failure>/);
  await assert.rejects(login(t, server, 'alice', { tls: 'none' }), /does not offer/);
  const secure = await login(t, server, 'alice', { tls: 'starttls', mechanism: 'PLAIN' });
  assert.match(secure.jid, /^alice@localhost\//);
});

test('with allow_plain_loopback, loopback clients may authenticate without TLS', async (t) => {
  const server = await startServer(t);
  for (const mechanism of ['PLAIN', 'SCRAM-SHA-1', 'SCRAM-SHA-256'] as const) {
    const c = await login(t, server, 'carol', { mechanism });
    assert.match(c.jid, /^carol@localhost\//);
    await c.close();
  }
});

test('wrong password, unknown user and bad base64 fail with SASL failures; three failures end the stream', async (t) => {
  const server = await startServer(t);
  await assert.rejects(login(t, server, 'alice', { password: 'nope' }), /not-authorized/);
  await assert.rejects(login(t, server, 'ghost', { password: 'x', mechanism: 'PLAIN' }), /not-authorized/);
  const raw = await Raw.open(t, server.c2sPort);
  raw.write(HEADER);
  await raw.expect(/<\/stream:features>/);
  raw.write(`<auth xmlns='${NS.sasl}' mechanism='PLAIN'>!!!notbase64</auth>`);
  await raw.expect(/<incorrect-encoding\/>/);
  raw.write(`<auth xmlns='${NS.sasl}' mechanism='X-UNKNOWN'/>`);
  await raw.expect(/<invalid-mechanism\/>/);
  raw.write(
    `<auth xmlns='${NS.sasl}' mechanism='PLAIN'>${Buffer.from('\0alice\0bad').toString('base64')}</auth>`,
  );
  await raw.expect(/<not-authorized\/><\/failure>/);
  await raw.expect(/<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'\/>/);
  await raw.expectClosed();
});

test('SASL without initial response gets an empty challenge; abort works', async (t) => {
  const server = await startServer(t);
  const raw = await Raw.open(t, server.c2sPort);
  raw.write(HEADER);
  await raw.expect(/<\/stream:features>/);
  raw.write(`<auth xmlns='${NS.sasl}' mechanism='PLAIN'/>`);
  await raw.expect(/<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'\/>/);
  raw.write(`<abort xmlns='${NS.sasl}'/>`);
  await raw.expect(/<aborted\/>/);
  raw.write(`<auth xmlns='${NS.sasl}' mechanism='PLAIN'/>`);
  await raw.expect(/<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'\/>.*<challenge/s);
  raw.write(`<response xmlns='${NS.sasl}'>${Buffer.from('\0alice\0alicepw').toString('base64')}</response>`);
  await raw.expect(/<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><\/success>/);
});

test('server-generated resource when none is requested; invalid resource is bad-request', async (t) => {
  const server = await startServer(t);
  const a = await login(t, server, 'alice');
  const b = await login(t, server, 'alice');
  assert.match(a.jid, /^alice@localhost\/[0-9a-f]{12}$/);
  assert.notEqual(a.jid, b.jid);
  await assert.rejects(login(t, server, 'alice', { resource: 'bad\uFDD0res' }), /bind failed.*bad-request/);
});

test('resource conflict: the older session gets a conflict stream error, unavailable goes out for it', async (t) => {
  const server = await startServer(t);
  const first = await login(t, server, 'alice', { resource: 'desk' });
  const second = await login(t, server, 'alice', { resource: 'desk' });
  await first.waitClosed();
  assert.equal(first.streamError, 'conflict');
  assert.equal(second.jid, 'alice@localhost/desk');
  const pong = await second.iq(
    new Element('iq', NS.client, { type: 'get', to: DOMAIN }, [new Element('ping', NS.ping)]),
  );
  assert.equal(pong.attr('type'), 'result');
  assert.equal(server.gauges().switchboard_xmpp_sessions, 1);
});

test('stream errors: host-unknown, unsupported-version, bad namespace, not-well-formed, restricted XML', async (t) => {
  const server = await startServer(t);
  const cases: Array<[string, RegExp]> = [
    [HEADER.replace(`to='${DOMAIN}'`, "to='elsewhere.example'"), /<host-unknown /],
    [HEADER.replace(" version='1.0'>", '>'), /<unsupported-version /],
    ["<stream:stream xmlns:stream='urn:wrong' to='localhost' version='1.0'>", /<invalid-namespace /],
    [`${HEADER}<message><unclosed></message>`, /<not-well-formed /],
    [`${HEADER}<!-- comment -->`, /<restricted-xml /],
    [`${HEADER}<message to='bob@localhost'/>`, /<not-authorized /],
    ['<?xml version="1.0" encoding="UTF-16"?><stream:stream>', /<unsupported-encoding /],
    [`${HEADER}<message>${'x'.repeat(20_000)}</message>`, /<policy-violation /],
  ];
  for (const [input, pattern] of cases) {
    const raw = await Raw.open(t, server.c2sPort);
    raw.write(input);
    await raw.expect(pattern);
    assert.match(raw.output, /^<\?xml version='1.0'\?><stream:stream /, 'header sent before the error');
    assert.match(raw.output, /<\/stream:stream>$/);
    await raw.expectClosed();
  }
});

test('after bind: unknown top-level element is unsupported-stanza-type; stanza without jabber:client is invalid-namespace', async (t) => {
  const server = await startServer(t);
  const a = await login(t, server, 'alice');
  a.write("<foo xmlns='jabber:client'/>");
  await a.waitClosed();
  assert.equal(a.streamError, 'unsupported-stanza-type');
  const b = await login(t, server, 'bob');
  b.write("<message xmlns='urn:other' to='alice@localhost'/>");
  await b.waitClosed();
  assert.equal(b.streamError, 'invalid-namespace');
});

test('clean close: the server answers the closing tag and the session ends', async (t) => {
  const server = await startServer(t);
  const a = await login(t, server, 'alice');
  assert.equal(server.gauges().switchboard_xmpp_sessions, 1);
  await a.close();
  assert.equal(a.streamError, undefined);
  assert.equal(server.gauges().switchboard_xmpp_sessions, 0);
});

test('whitespace keep-alives between stanzas are accepted', async (t) => {
  const server = await startServer(t);
  const a = await login(t, server, 'alice');
  a.write(' \n \t ');
  a.write(' ');
  const pong = await a.iq(
    new Element('iq', NS.client, { type: 'get', to: DOMAIN }, [new Element('ping', NS.ping)]),
  );
  assert.equal(pong.attr('type'), 'result');
});

test('STARTTLS injection: cleartext sent after <starttls/> is discarded', async (t) => {
  const server = await startServer(t, undefined, { allowPlainLoopback: false });
  const raw = await Raw.open(t, server.c2sPort);
  raw.write(HEADER);
  await raw.expect(/<\/stream:features>/);
  // The injected auth rides in the same packet as <starttls/>; the server must not act on it.
  raw.write(
    `<starttls xmlns='${NS.tls}'/><auth xmlns='${NS.sasl}' mechanism='PLAIN'>${Buffer.from('\0alice\0alicepw').toString('base64')}</auth>`,
  );
  await raw.expect(/<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'\/>/);
  const { connect } = await import('node:tls');
  const secure = connect({ socket: raw.socket, rejectUnauthorized: false });
  t.after(() => secure.destroy());
  let out = '';
  secure.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  await new Promise<void>((resolve) => secure.once('secureConnect', () => resolve()));
  secure.write(HEADER);
  const { waitUntil } = await import('../helpers/net.ts');
  await waitUntil(() => out.includes('</stream:features>'), 5000, 'features over TLS');
  assert.doesNotMatch(out + raw.output, /<success/);
  assert.match(out, /<mechanism>PLAIN<\/mechanism>/);
});

test('a second connection cannot use a closed socket to crash the server (garbage bytes)', async (t) => {
  const server = await startServer(t);
  const raw = await Raw.open(t, server.c2sPort);
  raw.socket.write(Buffer.from([0xff, 0xfe, 0x00, 0x3c, 0xc3, 0x28]));
  await raw.expect(/<not-well-formed /);
  const c = await XmppClient.connect({
    host: '127.0.0.1',
    port: server.c2sPort,
    domain: DOMAIN,
    username: 'alice',
    password: 'alicepw',
    tls: 'none',
  });
  t.after(() => c.kill());
  assert.ok(c.jid);
});
