import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { EDITION_NAMESPACES, parseMessage, serializeMessage } from '../../src/csta/codec.ts';
import { RequestTimeoutError } from '../../src/csta/invoke.ts';
import type { CstaMessage, MessageOf } from '../../src/csta/messages.ts';
import { type CstaLogger, CstaProtocolError, CstaRequestError, CstaSession } from '../../src/csta/session.ts';
import { Element, parseDocument } from '../../src/xml/index.ts';
import { REFERENCE_EXAMPLES } from './fixtures.ts';

interface Wire {
  invokeId: string;
  xml: string;
}

function recordingLog(): CstaLogger & { lines: string[] } {
  const lines: string[] = [];
  const push = (m: string) => lines.push(m);
  return { lines, debug: push, info: push, warn: push };
}

/** Two sessions joined in memory: no TCP, no framing. Delivery is asynchronous like a real transport. */
function pair(options: { serverEdition?: 'ed3' | 'ed4' | 'ed6' } = {}) {
  const clientLog = recordingLog();
  const serverLog = recordingLog();
  const toServer: Wire[] = [];
  const toClient: Wire[] = [];
  let server: CstaSession;
  const client = new CstaSession({
    log: clientLog,
    send: (invokeId, xml) => {
      toServer.push({ invokeId, xml });
      queueMicrotask(() => server.receive(invokeId, xml));
    },
  });
  server = new CstaSession({
    edition: options.serverEdition ?? 'ed4',
    adoptPeerNamespace: false,
    log: serverLog,
    send: (invokeId, xml) => {
      toClient.push({ invokeId, xml });
      queueMicrotask(() => client.receive(invokeId, xml));
    },
  });
  return { client, server, toServer, toClient, clientLog, serverLog };
}

describe('CstaSession over an in-memory transport', () => {
  it('request → typed response, by invokeID, with concurrent requests answered out of order', async () => {
    const { client, server, toServer } = pair();
    const held: Array<() => void> = [];
    server.onRequest = (request) => {
      const m = request.message!;
      if (m.name === 'MonitorStart' && 'deviceObject' in m.monitorObject) {
        const id = m.monitorObject.deviceObject;
        held.push(() => request.reply({ name: 'MonitorStartResponse', monitorCrossRefID: `mon${id}` }));
      }
    };
    const a = client.request({ name: 'MonitorStart', monitorObject: { deviceObject: '201' } });
    const b = client.request({ name: 'MonitorStart', monitorObject: { deviceObject: '202' } });
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(
      toServer.map((w) => w.invokeId),
      ['0001', '0002'],
    );
    held[1]!();
    held[0]!();
    assert.equal((await a).monitorCrossRefID, 'mon201');
    assert.equal((await b).monitorCrossRefID, 'mon202');
    assert.equal(client.outstanding, 0);
  });

  it('events travel with invokeID 9999; the client adopts the server namespace', async () => {
    const { client, server, toClient, toServer } = pair({ serverEdition: 'ed6' });
    const events: CstaMessage[] = [];
    client.on('event', (m) => events.push(m));
    const fixture = REFERENCE_EXAMPLES.find((f) => f.name === 'HeldEvent')!;
    const held = parseMessage(fixture.xml).message!;
    assert.equal(server.sendEvent(held), true);
    await new Promise((r) => setImmediate(r));
    assert.equal(toClient[0]!.invokeId, '9999');
    assert.deepEqual(events, [held]);
    assert.equal(client.ns, EDITION_NAMESPACES.ed6);
    server.onRequest = (r) => r.reply({ name: 'RequestSystemStatusResponse', systemStatus: 'normal' });
    await client.request({ name: 'RequestSystemStatus' });
    assert.match(toServer[0]!.xml, /csta\/ed6/);
  });

  it('CSTAErrorCode and NegResponse reject with CstaRequestError; a wrong answer with CstaProtocolError', async () => {
    const { client, server } = pair();
    server.onRequest = (request) => {
      const m = request.message!;
      if (m.name === 'MakeCall') request.fail({ stateIncompatibility: 'invalidDeviceState' });
      else if (m.name === 'StartApplicationSession')
        request.reply({
          name: 'StartApplicationSessionNegResponse',
          errorCode: { definedError: 'maxNumberSessions' },
        });
      else request.reply({ name: 'HoldCallResponse' });
    };
    await assert.rejects(
      client.request({ name: 'MakeCall', callingDevice: '201', calledDirectoryNumber: '202' }),
      (e: unknown) =>
        e instanceof CstaRequestError &&
        e.message === 'MakeCall failed: CSTAErrorCode stateIncompatibility/invalidDeviceState',
    );
    await assert.rejects(
      client.request({
        name: 'StartApplicationSession',
        applicationInfo: { applicationID: 'x' },
        requestedProtocolVersions: { protocolVersion: [EDITION_NAMESPACES.ed4] },
      }),
      (e: unknown) => e instanceof CstaRequestError && /maxNumberSessions/.test(e.message),
    );
    await assert.rejects(
      client.request({ name: 'RetrieveCall', callToBeRetrieved: { callID: 'c1', deviceID: '201' } }),
      (e: unknown) =>
        e instanceof CstaProtocolError && /RetrieveCall was answered with <HoldCallResponse>/.test(e.message),
    );
  });

  it('a late answer after the timeout and a stray answer are dropped and logged (mock timers)', async (t) => {
    t.mock.timers.enable({ apis: ['setTimeout'] });
    const log = recordingLog();
    const sent: Wire[] = [];
    const session = new CstaSession({
      log,
      requestTimeoutMs: 5000,
      send: (invokeId, xml) => sent.push({ invokeId, xml }),
    });
    const pending = session.request({ name: 'RequestSystemStatus' });
    const rejected = assert.rejects(pending, RequestTimeoutError);
    t.mock.timers.tick(5000);
    await rejected;
    const answer = serializeMessage({ name: 'RequestSystemStatusResponse', systemStatus: 'normal' });
    session.receive(sent[0]!.invokeId, answer);
    session.receive('4242', answer);
    assert.equal(log.lines.filter((l) => /answers no outstanding request; dropped/.test(l)).length, 2);
  });

  it('duplicate invokeIDs from the peer are each answered', async () => {
    const { client, server, toClient } = pair();
    void client;
    server.onRequest = (r) => r.reply({ name: 'SystemStatusResponse' });
    const body = serializeMessage({ name: 'SystemStatus', systemStatus: 'normal' });
    server.receive('0003', body);
    server.receive('0003', body);
    assert.deepEqual(
      toClient.map((w) => w.invokeId),
      ['0003', '0003'],
    );
  });

  it('a throwing event listener is logged and does not stop later listeners or events', async () => {
    const { client, server, clientLog } = pair();
    const seen: string[] = [];
    client.on('event', () => {
      throw new Error('application bug');
    });
    client.on('event', (m) => seen.push(m.name));
    const cleared: CstaMessage = {
      name: 'CallClearedEvent',
      monitorCrossRefID: 'm',
      clearedCall: { callID: 'c1' },
      cause: 'normalClearing',
    };
    server.sendEvent(cleared);
    server.sendEvent(cleared);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(seen, ['CallClearedEvent', 'CallClearedEvent']);
    assert.equal(clientLog.lines.filter((l) => /'event' listener failed: application bug/.test(l)).length, 2);
  });

  it('a handler that throws or rejects gets the request answered with operation/generic', async () => {
    const { client, server } = pair();
    server.onRequest = async (r) => {
      if (r.message?.name === 'HoldCall') throw new Error('boom');
    };
    await assert.rejects(
      client.request({ name: 'HoldCall', callToBeHeld: { callID: 'c1', deviceID: '201' } }),
      /CSTAErrorCode operation\/generic/,
    );
  });

  it('close() rejects outstanding requests and makes later ones fail', async () => {
    const { client } = pair();
    const pending = client.request({ name: 'RequestSystemStatus' });
    client.close('test over');
    await assert.rejects(pending, /CSTA session closed: test over/);
    await assert.rejects(client.request({ name: 'RequestSystemStatus' }), /session closed: test over/);
    assert.equal(
      client.sendEvent({
        name: 'CallClearedEvent',
        monitorCrossRefID: 'm',
        clearedCall: {},
        cause: 'normal',
      }),
      false,
    );
  });

  it('property: receive() never throws on arbitrary bytes or mutated messages', () => {
    const log = recordingLog();
    const session = new CstaSession({ log, send: () => {} });
    session.onRequest = (r) => r.reply({ name: 'SystemStatusResponse' });
    const docs = REFERENCE_EXAMPLES.map((f) => f.xml);
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }),
          fc
            .tuple(fc.constantFrom(...docs), fc.nat(), fc.string({ maxLength: 6 }))
            .map(
              ([xml, at, junk]) => xml.slice(0, at % xml.length) + junk + xml.slice((at % xml.length) + 3),
            ),
        ),
        fc.constantFrom('0001', '0002', '9999'),
        (body, invokeId) => {
          session.receive(invokeId, body);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('a request whose answer is sent through a failing transport is rejected, not thrown', async () => {
    const session = new CstaSession({
      send: () => {
        throw new Error('socket is closed');
      },
    });
    await assert.rejects(session.request({ name: 'RequestSystemStatus' }), /socket is closed/);
    assert.equal(session.outstanding, 0);
    const m = parseMessage(REFERENCE_EXAMPLES.find((f) => f.name === 'MonitorStop')!.xml)
      .message as MessageOf<'MonitorStop'>;
    assert.equal(m.monitorCrossRefID, 'mon201');
  });

  it('proxying: requestElement and replyElement carry services the codec does not model', async () => {
    const clientSent: Wire[] = [];
    let server: CstaSession;
    const client = new CstaSession({
      edition: 'ed6',
      adoptPeerNamespace: false,
      send: (invokeId, xml) => {
        clientSent.push({ invokeId, xml });
        queueMicrotask(() => server.receive(invokeId, xml));
      },
    });
    const requests: string[] = [];
    server = new CstaSession({
      deliverUndecodedRequests: true,
      send: (invokeId, xml) => queueMicrotask(() => client.receive(invokeId, xml)),
      onRequest: (request) => {
        requests.push(`${request.root}:${request.message === undefined}:${request.element.ns}`);
        if (request.root === 'SetMicrophoneMute') {
          request.replyElement(new Element('SetMicrophoneMuteResponse', EDITION_NAMESPACES.ed3));
        } else {
          request.fail({ operation: 'invalidCallID' });
        }
      },
    });
    const ed3 = EDITION_NAMESPACES.ed3;
    const digits = parseDocument(
      `<SetMicrophoneMute xmlns="${ed3}"><device>201</device><auditoryApparatus>1</auditoryApparatus><microphoneMuteOn>true</microphoneMuteOn></SetMicrophoneMute>`,
    );
    const answer = await client.requestElement(digits);
    assert.equal(answer.root.name, 'SetMicrophoneMuteResponse');
    assert.equal(answer.message, undefined);
    assert.match(
      clientSent[0]!.xml,
      /^<\?xml[^>]*\?><SetMicrophoneMute xmlns='[^']*csta\/ed6'><device>201<\/device>/,
    );
    assert.deepEqual(requests, [`SetMicrophoneMute:true:${EDITION_NAMESPACES.ed6}`]);
    // A CSTAErrorCode is an answer like any other for requestElement.
    const failed = await client.requestElement(parseDocument(`<GetMicrophoneMute xmlns="${ed3}"/>`));
    assert.equal(failed.message?.name, 'CSTAErrorCode');
  });

  it('unknown events are offered as elements on unknownEvent', async () => {
    const { client } = pair();
    const seen: string[] = [];
    client.on('unknownEvent', (element, invokeId, error) =>
      seen.push(`${element.name} ${invokeId} ${error?.name}`),
    );
    client.receive(
      '9999',
      `<NetworkReachedEvent xmlns="${EDITION_NAMESPACES.ed4}"><monitorCrossRefID>m</monitorCrossRefID></NetworkReachedEvent>`,
    );
    client.receive('9999', `<HeldEvent xmlns="${EDITION_NAMESPACES.ed4}"/>`);
    assert.deepEqual(seen, [
      'NetworkReachedEvent 9999 UnknownMessageError',
      'HeldEvent 9999 CstaDecodeError',
    ]);
  });
});
