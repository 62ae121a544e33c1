/**
 * Hostile input for the voice server's CSTA interface (property tests with fast-check): random
 * well-formed requests with random devices, callIDs and cross-refs always get either their response or
 * a CSTAErrorCode (never a timeout), random frames never bring the server down, and the server keeps
 * serving other clients afterwards.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, it } from 'node:test';
import fc from 'fast-check';
import { CstaRequestError, encodeFrame } from '../../src/csta/index.ts';
import { CstaInterface } from '../../src/pbx/csta-interface.ts';
import { VoiceServer } from '../../src/pbx/server.ts';
import { InMemoryUserDirectory } from '../../src/pbx/users.ts';
import { waitEvent } from '../helpers/net.ts';
import { CstaTestClient } from './csta-client.ts';

const users = new InMemoryUserDirectory([
  { name: 'alice', extension: '1001', sipPassword: 'a' },
  { name: 'bob', extension: '1002', sipPassword: 'b' },
]);

let voice: VoiceServer;
let csta: CstaInterface;
let client: CstaTestClient;

before(async () => {
  voice = new VoiceServer({ users, host: '127.0.0.1', sipPort: 0 });
  await voice.start();
  csta = new CstaInterface(voice, { port: 0 });
  await csta.start();
  client = new CstaTestClient(csta.port);
  await client.connect();
});

after(async () => {
  await client.close();
  await csta.stop();
  await voice.stop();
});

const device = fc.oneof(
  fc.constantFrom('1001', '1002', 'alice', '', ' 1001 ', 'N<1001>', '9'.repeat(40)),
  fc.string({ maxLength: 20 }),
);
const id = fc.oneof(fc.constantFrom('c1', 'mon1', ''), fc.string({ maxLength: 12 }));
const connection = fc.record({ callID: id, deviceID: device }, { requiredKeys: [] });

const request = fc.oneof(
  fc.record({
    name: fc.constant('MonitorStart' as const),
    monitorObject: fc.oneof(fc.record({ deviceObject: device }), fc.record({ callObject: connection })),
  }),
  fc.record({ name: fc.constant('MonitorStop' as const), monitorCrossRefID: id }),
  fc.record({
    name: fc.constant('MakeCall' as const),
    callingDevice: device,
    calledDirectoryNumber: device,
  }),
  fc.record({ name: fc.constant('ClearConnection' as const), connectionToBeCleared: connection }),
  fc.record({ name: fc.constant('ClearCall' as const), callToBeCleared: connection }),
  fc.record({ name: fc.constant('AnswerCall' as const), callToBeAnswered: connection }),
  fc.record({ name: fc.constant('HoldCall' as const), callToBeHeld: connection }),
  fc.record({ name: fc.constant('RetrieveCall' as const), callToBeRetrieved: connection }),
  fc.record({ name: fc.constant('SnapshotDevice' as const), snapshotObject: device }),
  fc.record({ name: fc.constant('SnapshotCall' as const), snapshotObject: connection }),
  fc.record({ name: fc.constant('SetDoNotDisturb' as const), device, doNotDisturbOn: fc.boolean() }),
  fc.record({ name: fc.constant('GetDoNotDisturb' as const), device }),
  fc.record(
    {
      name: fc.constant('SetForwarding' as const),
      device,
      forwardingType: fc.constantFrom('forwardImmediate' as const, 'forwardBusy' as const),
      activateForward: fc.boolean(),
      forwardDN: device,
    },
    { requiredKeys: ['name', 'device', 'activateForward'] },
  ),
  fc.record({ name: fc.constant('GetForwarding' as const), device }),
  fc.record({ name: fc.constant('GetLogicalDeviceInformation' as const), device }),
  fc.record({
    name: fc.constant('ConsultationCall' as const),
    existingCall: connection,
    consultedDevice: device,
  }),
  fc.record({ name: fc.constant('TransferCall' as const), heldCall: connection, activeCall: connection }),
  fc.record({
    name: fc.constant('SingleStepTransferCall' as const),
    activeCall: connection,
    transferredTo: device,
  }),
  fc.record({
    name: fc.constant('DeflectCall' as const),
    callToBeDiverted: connection,
    newDestination: device,
  }),
);

it('random requests are answered with their response or a CSTAErrorCode', async () => {
  await fc.assert(
    fc.asyncProperty(request, async (message) => {
      try {
        const response = await client.link.request(message as Parameters<typeof client.link.request>[0], {
          timeoutMs: 3000,
        });
        const name = (response as { name: string }).name;
        assert.ok(name.endsWith('Response'), name);
      } catch (e) {
        assert.ok(e instanceof CstaRequestError, String(e));
        assert.equal(e.response.name, 'CSTAErrorCode');
      }
    }),
    { numRuns: 300 },
  );
  assert.equal(csta.model.size, 0, 'no call was started without registered phones');
});

it('random frames do not bring the server down', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.oneof(
          fc.string({ maxLength: 200 }),
          fc.constantFrom(
            '<MonitorStart xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"/>',
            '<MakeCall xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><callingDevice>1001',
            '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>',
            `<MonitorStop xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><monitorCrossRefID>${'x'.repeat(5000)}</monitorCrossRefID></MonitorStop>`,
          ),
        ),
        { minLength: 1, maxLength: 5 },
      ),
      fc.stringMatching(/^[0-9]{4}$/),
      async (bodies, invokeId) => {
        const socket = connect(csta.port, '127.0.0.1');
        socket.on('error', () => undefined);
        // read (and drop) the answers, or the server's end of the stream is never seen
        socket.resume();
        await waitEvent(socket, 'connect', 3000);
        // 'close' comes whether the server ends politely or resets (an 'error' first is fine)
        const closed = new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error('socket not closed')), 5000);
          socket.once('close', () => {
            clearTimeout(timer);
            resolve();
          });
        });
        for (const body of bodies) socket.write(encodeFrame(invokeId, body));
        socket.end();
        await closed;
      },
    ),
    { numRuns: 40 },
  );
  const info = await client.link.request({ name: 'GetLogicalDeviceInformation', device: '1001' });
  assert.equal(info.deviceCategory, 'station');
});
