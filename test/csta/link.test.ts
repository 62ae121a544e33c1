import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import {
  describeErrorCode,
  EDITION_NAMESPACES,
  parseMessage,
  serializeMessage,
} from '../../src/csta/codec.ts';
import { encodeFrame, type Frame, HeaderFrameSplitter } from '../../src/csta/framing.ts';
import {
  backoffDelay,
  CstaLink,
  type CstaLinkOptions,
  type LinkDownInfo,
  type LinkUpInfo,
} from '../../src/csta/link.ts';
import type { CstaMessage, MessageOf } from '../../src/csta/messages.ts';
import { CstaServer, type CstaServerConnection, type CstaServerOptions } from '../../src/csta/server.ts';
import { CstaRequestError, type IncomingRequest } from '../../src/csta/session.ts';
import { waitEvent, waitUntil } from '../helpers/net.ts';

/** The first argument of the next `event` emitted. */
async function nextEvent<T>(emitter: NodeJS.EventEmitter, event: string): Promise<T> {
  const args = await waitEvent<T>(emitter, event, 5000);
  return args[0]!;
}

const DELIVERED: CstaMessage = {
  name: 'DeliveredEvent',
  monitorCrossRefID: 'mon202',
  connection: { callID: 'c1', deviceID: '202' },
  alertingDevice: { deviceIdentifier: '202' },
  callingDevice: { deviceIdentifier: '201' },
  calledDevice: { deviceIdentifier: '202' },
  lastRedirectionDevice: { notRequired: true },
  localConnectionInfo: 'alerting',
  cause: 'newCall',
};

async function startServer(t: TestContext, options: CstaServerOptions = {}) {
  const server = new CstaServer(options);
  const address = await server.listen();
  t.after(() => server.close());
  return { server, port: address.port };
}

function startLink(t: TestContext, options: Partial<CstaLinkOptions> & { port: number }) {
  const link = new CstaLink({
    host: '127.0.0.1',
    awaitSystemStatusMs: 2000,
    reconnect: { initialDelayMs: 20, maxDelayMs: 200, jitter: 0 },
    ...options,
  });
  t.after(() => link.stop());
  link.start();
  return link;
}

/** A raw TCP server for fault injection. */
async function rawServer(t: TestContext, onSocket: (socket: Socket) => void): Promise<number> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    onSocket(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  return address.port;
}

/** A raw TCP client that collects frames. */
async function rawClient(t: TestContext, port: number) {
  const socket = connect({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  t.after(() => socket.destroy());
  await once(socket, 'connect');
  const frames: Frame[] = [];
  const splitter = new HeaderFrameSplitter({ onFrame: (f) => frames.push(f), onError: () => {} });
  socket.on('data', (d: Buffer) => splitter.push(d));
  const closed = once(socket, 'close');
  return { socket, frames, closed };
}

describe('backoffDelay', () => {
  it('grows exponentially, is capped, and spreads by ±jitter', () => {
    const o = { initialDelayMs: 1000, maxDelayMs: 60_000, factor: 2, jitter: 0.2 };
    assert.equal(
      backoffDelay(0, o, () => 0.5),
      1000,
    );
    assert.equal(
      backoffDelay(3, o, () => 0.5),
      8000,
    );
    assert.equal(
      backoffDelay(20, o, () => 0.5),
      60_000,
    );
    assert.equal(
      backoffDelay(1, o, () => 0),
      1600,
    );
    assert.equal(
      backoffDelay(1, o, () => 1),
      2400,
    );
  });
});

describe('CstaLink against CstaServerConnection', () => {
  it('handshake: answers the server SystemStatus, registers, comes up in the server edition', async (t) => {
    const { server, port } = await startServer(t, { edition: 'ed6' });
    const connections: CstaServerConnection[] = [];
    server.on('connection', (c) => connections.push(c));
    const link = startLink(t, { port });
    const received: string[] = [];
    link.on('received', (_id, root) => received.push(root));
    const info = await nextEvent<LinkUpInfo>(link, 'up');
    assert.equal(info.systemStatus, 'normal');
    assert.match(info.sysStatRegisterID ?? '', /^reg\d+$/);
    assert.equal(info.ns, EDITION_NAMESPACES.ed6);
    assert.deepEqual(received, ['SystemStatus', 'SystemRegisterResponse']);
    assert.equal(connections[0]?.sysStatRegisterID, info.sysStatRegisterID);
  });

  it('requests, typed responses, CSTAErrorCode, events and requests from the server', async (t) => {
    const { server, port } = await startServer(t);
    let connection: CstaServerConnection | undefined;
    server.on('connection', (c) => {
      connection = c;
      c.on('request', (request: IncomingRequest) => {
        const m = request.message!;
        if (m.name === 'MonitorStart' && 'deviceObject' in m.monitorObject) {
          if (m.monitorObject.deviceObject === '999') request.fail({ operation: 'invalidDeviceID' });
          else
            request.reply({
              name: 'MonitorStartResponse',
              monitorCrossRefID: `mon${m.monitorObject.deviceObject}`,
            });
        } else {
          request.fail({ operation: 'serviceNotSupported' });
        }
      });
    });
    const link = startLink(t, { port });
    await waitEvent(link, 'up', 5000);
    const response = await link.request({ name: 'MonitorStart', monitorObject: { deviceObject: '202' } });
    assert.equal(response.name, 'MonitorStartResponse');
    assert.equal(response.monitorCrossRefID, 'mon202');
    await assert.rejects(
      link.request({ name: 'MonitorStart', monitorObject: { deviceObject: '999' } }),
      (e: unknown) => e instanceof CstaRequestError && /operation\/invalidDeviceID/.test(e.message),
    );
    await assert.rejects(link.request({ name: 'GetDoNotDisturb', device: '202' }), /serviceNotSupported/);

    const events = waitEvent<CstaMessage>(link, 'event', 5000);
    connection!.sendEvent(DELIVERED);
    const [event, invokeId] = (await events) as unknown as [CstaMessage, string];
    assert.equal(invokeId, '9999');
    assert.deepEqual(event, DELIVERED);

    link.on('request', (request: IncomingRequest) => {
      if (request.message?.name === 'MonitorStop') request.reply({ name: 'MonitorStopResponse' });
    });
    const stopped = await connection!.request({ name: 'MonitorStop', monitorCrossRefID: 'mon202' });
    assert.equal(stopped.name, 'MonitorStopResponse');
  });

  it('sends RequestSystemStatus as keep-alive and stays up while it is answered', async (t) => {
    const { server, port } = await startServer(t);
    let keepAlives = 0;
    server.on('connection', (c) =>
      c.session.on('received', (_id, root) => {
        if (root === 'RequestSystemStatus') keepAlives++;
      }),
    );
    const link = startLink(t, { port, keepAliveIntervalMs: 30, keepAliveTimeoutMs: 1000 });
    await waitEvent(link, 'up', 5000);
    let downs = 0;
    link.on('down', () => downs++);
    await waitUntil(() => keepAlives >= 3, 5000, 'three keep-alives');
    assert.equal(downs, 0);
    assert.equal(link.isUp, true);
  });

  it('declares the link down when keep-alives go unanswered, then reconnects', async (t) => {
    const { server, port } = await startServer(t, {
      autoAnswer: ['SystemStatus', 'SystemRegister'],
    });
    let connections = 0;
    server.on('connection', (c) => {
      connections++;
      c.on('request', () => {}); // swallow RequestSystemStatus: never answered
    });
    const link = startLink(t, {
      port,
      keepAliveIntervalMs: 30,
      keepAliveTimeoutMs: 60,
      maxMissedKeepAlives: 2,
    });
    await waitEvent(link, 'up', 5000);
    const down = await nextEvent<LinkDownInfo>(link, 'down');
    assert.equal(down.wasUp, true);
    assert.match(
      down.reason,
      /keep-alive failed: RequestSystemStatus \(invokeID \d{4}\) got no answer within 60 ms/,
    );
    assert.equal(down.retryInMs, 20);
    await waitEvent(link, 'up', 5000);
    assert.equal(connections, 2);
  });

  it('reconnects with backoff after the server drops the connection', async (t) => {
    const { server, port } = await startServer(t);
    const connections: CstaServerConnection[] = [];
    server.on('connection', (c) => connections.push(c));
    const link = startLink(t, { port });
    await waitEvent(link, 'up', 5000);
    const downP = waitEvent<LinkDownInfo>(link, 'down', 5000);
    connections[0]!.close();
    const down = (await downP)[0]!;
    assert.equal(down.wasUp, true);
    assert.equal(down.reason, 'connection closed');
    await waitEvent(link, 'up', 5000);
    assert.equal(connections.length, 2);
    await assert.rejects(
      (async () => {
        await link.stop();
        return link.request({ name: 'RequestSystemStatus' });
      })(),
      /CSTA link is not up \(stopped\)/,
    );
  });

  it('retries a refused connection with growing delays', async (t) => {
    const port = await rawServer(t, (s) => s.destroy());
    const link = startLink(t, {
      port,
      reconnect: { initialDelayMs: 5, factor: 2, maxDelayMs: 20, jitter: 0 },
    });
    const delays: number[] = [];
    link.on('down', (d) => delays.push(d.retryInMs ?? -1));
    await waitUntil(() => delays.length >= 4, 5000, 'four failed attempts');
    assert.deepEqual(delays.slice(0, 4), [5, 10, 20, 20]);
  });

  it('ECMA-354: starts an application session, and stops it on stop()', async (t) => {
    const { server, port } = await startServer(t, { greet: false });
    const connections: CstaServerConnection[] = [];
    server.on('connection', (c) => connections.push(c));
    const link = startLink(t, {
      port,
      awaitSystemStatusMs: 0,
      applicationSession: { applicationID: 'gw', requestedSessionDurationS: 120 },
    });
    const sent: string[] = [];
    link.on('sent', (_id, m) => sent.push(m.name));
    const info = await nextEvent<LinkUpInfo>(link, 'up');
    assert.ok(info.sessionID);
    assert.equal(connections[0]!.applicationSessionID, info.sessionID);
    assert.deepEqual(sent, ['StartApplicationSession', 'SystemRegister']);
    await link.stop();
    await waitUntil(() => connections[0]!.applicationSessionID === undefined, 5000, 'session stopped');
  });

  it('ECMA-354: a NegResponse fails the attempt with the reason', async (t) => {
    const { port } = await startServer(t, { greet: false, edition: 'ed4' });
    const link = startLink(t, {
      port,
      reconnect: false,
      applicationSession: { applicationID: 'gw', protocolVersions: [EDITION_NAMESPACES.ed6] },
    });
    const down = await nextEvent<LinkDownInfo>(link, 'down');
    assert.equal(down.wasUp, false);
    assert.equal(down.retryInMs, undefined);
    assert.match(down.reason, /StartApplicationSessionNegResponse.*requestedProtocolVersionNotSupported/);
    assert.equal(link.state, 'stopped');
  });
});

describe('fault injection', () => {
  it('peer closes in the middle of a frame: link down with a clear reason, no crash', async (t) => {
    const port = await rawServer(t, (socket) => {
      const frame = encodeFrame('0001', serializeMessage({ name: 'SystemStatus', systemStatus: 'normal' }));
      socket.write(Buffer.concat([frame, frame.subarray(0, 20)]));
      socket.end();
    });
    const link = startLink(t, { port, reconnect: false });
    const down = await nextEvent<LinkDownInfo>(link, 'down');
    assert.equal(down.wasUp, false);
    assert.match(down.reason, /peer closed the connection in the middle of a frame \(20 bytes\)/);
  });

  it('garbage header from the server: framing error, connection dropped', async (t) => {
    const port = await rawServer(t, (socket) => socket.write('HTTP/1.1 400 Bad Request\r\n\r\n'));
    const link = startLink(t, { port, reconnect: false });
    const down = await nextEvent<LinkDownInfo>(link, 'down');
    assert.match(down.reason, /framing error: frame invokeID is not four ASCII digits/);
  });

  it('no answer at all (no SystemStatus, no SystemRegisterResponse): the handshake times out', async (t) => {
    const port = await rawServer(t, () => {});
    const link = startLink(t, { port, reconnect: false, awaitSystemStatusMs: 10, requestTimeoutMs: 50 });
    const down = await nextEvent<LinkDownInfo>(link, 'down');
    assert.match(
      down.reason,
      /handshake failed: SystemRegister \(invokeID 0001\) got no answer within 50 ms/,
    );
  });

  it('server side: garbage from a client closes that connection only', async (t) => {
    const { server, port } = await startServer(t, { greet: false });
    const reasons: string[] = [];
    server.on('connection', (c) => c.on('close', (r) => reasons.push(r)));
    const bad = await rawClient(t, port);
    bad.socket.write(Buffer.from([0, 0, 0, 4, 0x30, 0x30, 0x30, 0x31]));
    await bad.closed;
    await waitUntil(() => reasons.length === 1, 5000, 'server close');
    assert.match(reasons[0]!, /framing error: frame length 4 is not more than the 8-byte header/);
    const good = await rawClient(t, port);
    good.socket.write(encodeFrame('0007', serializeMessage({ name: 'RequestSystemStatus' })));
    await waitUntil(() => good.frames.length === 1, 5000, 'answer');
    assert.equal(good.frames[0]!.invokeId, '0007');
    const answer = parseMessage(good.frames[0]!.body).message as MessageOf<'RequestSystemStatusResponse'>;
    assert.equal(answer.systemStatus, 'normal');
  });

  it('server side: unknown, invalid and unreadable requests get CSTAErrorCode with their invokeID', async (t) => {
    const { port } = await startServer(t, { greet: false });
    const client = await rawClient(t, port);
    const ns = EDITION_NAMESPACES.ed4;
    client.socket.write(encodeFrame('0005', `<FooBar xmlns="${ns}"/>`));
    client.socket.write(encodeFrame('0006', `<MonitorStart xmlns="${ns}"/>`));
    client.socket.write(encodeFrame('0008', '<MonitorStart><oops></MonitorStart>'));
    client.socket.write(
      encodeFrame(
        '9999',
        `<MonitorStartResponse xmlns="${ns}"><monitorCrossRefID>x</monitorCrossRefID></MonitorStartResponse>`,
      ),
    );
    client.socket.write(
      encodeFrame(
        '0009',
        `<MakeCall xmlns="${ns}"><callingDevice>1</callingDevice><calledDirectoryNumber>2</calledDirectoryNumber></MakeCall>`,
      ),
    );
    await waitUntil(() => client.frames.length === 4, 5000, 'four answers');
    const answers = client.frames.map((f) => {
      const m = parseMessage(f.body).message as MessageOf<'CSTAErrorCode'>;
      return [f.invokeId, m.name, describeErrorCode(m)];
    });
    assert.deepEqual(answers, [
      ['0005', 'CSTAErrorCode', 'operation/serviceNotSupported'],
      ['0006', 'CSTAErrorCode', 'operation/invalidParameterValue'],
      ['0008', 'CSTAErrorCode', 'operation/generic'],
      ['0009', 'CSTAErrorCode', 'operation/serviceNotSupported'],
    ]);
  });
});
