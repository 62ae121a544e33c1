import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CstaMessage } from '../../src/csta/index.ts';
import { DeviceState } from '../../src/gateway/device-state.ts';

const dev = (d: string) => ({ deviceIdentifier: d });
const base = { monitorCrossRefID: 'm', cause: 'newCall' };
const ev = (m: Record<string, unknown>) => ({ ...base, ...m }) as unknown as CstaMessage;

// csta.md §5.1, seen from A = 201 and from B = 202.
const A_CALLS_B = {
  serviceInitiated: ev({
    name: 'ServiceInitiatedEvent',
    initiatedConnection: { callID: 'c1', deviceID: '201' },
    initiatingDevice: dev('201'),
    localConnectionInfo: 'initiated',
  }),
  originated: ev({
    name: 'OriginatedEvent',
    originatedConnection: { callID: 'c1', deviceID: '201' },
    callingDevice: dev('201'),
    calledDevice: dev('202'),
    localConnectionInfo: 'connected',
  }),
  delivered: (lci: string) =>
    ev({
      name: 'DeliveredEvent',
      connection: { callID: 'c1', deviceID: '202' },
      alertingDevice: dev('202'),
      callingDevice: dev('201'),
      calledDevice: dev('202'),
      lastRedirectionDevice: { notKnown: true },
      localConnectionInfo: lci,
    }),
  established: (lci: string) =>
    ev({
      name: 'EstablishedEvent',
      establishedConnection: { callID: 'c1', deviceID: '202' },
      answeringDevice: dev('202'),
      callingDevice: dev('201'),
      calledDevice: dev('202'),
      lastRedirectionDevice: { notKnown: true },
      localConnectionInfo: lci,
    }),
  cleared: (device: string, lci: string) =>
    ev({
      name: 'ConnectionClearedEvent',
      droppedConnection: { callID: 'c1', deviceID: device },
      releasingDevice: dev(device),
      localConnectionInfo: lci,
      cause: 'normalClearing',
    }),
};

describe('DeviceState from CSTA events (csta.md §5)', () => {
  it('follows a basic call on the calling side: Idle → On the phone → Idle', () => {
    const a = new DeviceState('201');
    assert.equal(a.presence().status, 'Idle');
    a.apply(A_CALLS_B.serviceInitiated);
    a.apply(A_CALLS_B.originated);
    a.apply(A_CALLS_B.delivered('connected'));
    assert.deepEqual(a.presence(), {
      available: true,
      show: 'dnd',
      status: 'On the phone',
      detailedStatus: 'On the phone (with 202)',
    });
    a.apply(A_CALLS_B.established('connected'));
    assert.equal(a.currentCall()?.callID, 'c1');
    assert.deepEqual(a.apply(A_CALLS_B.cleared('201', 'null')), []);
    assert.equal(a.presence().status, 'Idle');
    assert.equal(a.calls.size, 0);
  });

  it('on the called side: an incoming notice, Ringing, then On the phone; no missed call once answered', () => {
    const b = new DeviceState('202');
    assert.deepEqual(b.apply(A_CALLS_B.delivered('alerting')), [
      { kind: 'incoming', callID: 'c1', caller: '201' },
    ]);
    assert.equal(b.presence().status, 'Ringing');
    assert.equal(b.presence().detailedStatus, 'Ringing (from 201)');
    b.apply(A_CALLS_B.established('connected'));
    assert.equal(b.presence().status, 'On the phone');
    // A hangs up: B's monitor sees A's connection cleared first (B still connected), then its own.
    b.apply(A_CALLS_B.cleared('201', 'connected'));
    assert.equal(b.calls.size, 1);
    assert.deepEqual(b.apply(A_CALLS_B.cleared('202', 'null')), []);
    assert.equal(b.presence().status, 'Idle');
  });

  it('an unanswered incoming call ends as a missed call (caller cancels, §5.3)', () => {
    const b = new DeviceState('202');
    b.apply(A_CALLS_B.delivered('alerting'));
    b.apply(A_CALLS_B.cleared('201', 'alerting'));
    assert.deepEqual(b.apply(A_CALLS_B.cleared('202', 'null')), [
      { kind: 'missed', callID: 'c1', caller: '201' },
    ]);
  });

  it('CallCleared ends the call too', () => {
    const b = new DeviceState('202');
    b.apply(A_CALLS_B.delivered('alerting'));
    assert.deepEqual(b.apply(ev({ name: 'CallClearedEvent', clearedCall: { callID: 'c1' } })), [
      { kind: 'missed', callID: 'c1', caller: '201' },
    ]);
  });

  it('hold and retrieve (§5.4), DND, forwarding and registration drive presence', () => {
    const a = new DeviceState('201');
    a.apply(A_CALLS_B.originated);
    a.apply(A_CALLS_B.established('connected'));
    a.apply(
      ev({
        name: 'HeldEvent',
        heldConnection: { callID: 'c1', deviceID: '201' },
        holdingDevice: dev('201'),
        localConnectionInfo: 'hold',
      }),
    );
    assert.equal(a.presence().status, 'On hold');
    a.apply(
      ev({
        name: 'RetrievedEvent',
        retrievedConnection: { callID: 'c1', deviceID: '201' },
        retrievingDevice: dev('201'),
        localConnectionInfo: 'connected',
      }),
    );
    assert.equal(a.presence().status, 'On the phone');
    a.apply(A_CALLS_B.cleared('201', 'null'));
    a.apply(ev({ name: 'DoNotDisturbEvent', device: dev('201'), doNotDisturbOn: true }));
    assert.deepEqual(a.presence(), {
      available: true,
      show: 'xa',
      status: 'Do not disturb',
      detailedStatus: 'Do not disturb',
    });
    a.apply(ev({ name: 'DoNotDisturbEvent', device: dev('201'), doNotDisturbOn: false }));
    a.apply(
      ev({
        name: 'ForwardingEvent',
        device: dev('201'),
        forwardStatus: true,
        forwardTo: '203',
        forwardingType: 'forwardImmediate',
      }),
    );
    assert.equal(a.presence().status, 'Forwarded to 203');
    assert.equal(a.presence().show, 'xa');
    a.apply(ev({ name: 'ForwardingEvent', device: dev('201'), forwardStatus: false }));
    a.apply(ev({ name: 'OutOfServiceEvent', device: dev('201') }));
    assert.equal(a.presence().available, false);
    a.apply(ev({ name: 'BackInServiceEvent', device: dev('201') }));
    assert.deepEqual(a.presence(), {
      available: true,
      show: undefined,
      status: 'Idle',
      detailedStatus: 'Idle',
    });
  });

  it('a transfer ends the call for the transferring device (§5.5)', () => {
    const a = new DeviceState('201');
    a.apply(A_CALLS_B.originated);
    a.apply(
      ev({
        name: 'TransferedEvent',
        primaryOldCall: { callID: 'c1', deviceID: '201' },
        transferringDevice: dev('201'),
        transferredToDevice: dev('203'),
        transferredConnections: [],
        localConnectionInfo: 'null',
        cause: 'transfer',
      }),
    );
    assert.equal(a.calls.size, 0);
  });

  it('a snapshot seeds calls, DND and forwarding, but never overrides what events said', () => {
    const a = new DeviceState('201');
    a.seed({
      dnd: true,
      forwardTo: '203',
      calls: [
        { callID: 'c5', local: 'alerting' },
        { callID: 'c6', simple: 'callNull' },
      ],
    });
    assert.equal(a.presence().status, 'Ringing');
    assert.equal(a.calls.size, 1);
    assert.equal(a.calls.get('c5')!.direction, 'incoming');
    const b = new DeviceState('201');
    b.apply(ev({ name: 'DoNotDisturbEvent', device: dev('201'), doNotDisturbOn: false }));
    b.seed({ dnd: true, calls: [{ callID: 'c7', simple: 'callEstablished' }] });
    assert.equal(b.dnd, false, 'the event came after the snapshot was asked for');
    assert.equal(b.calls.get('c7')!.state, 'connected');
  });
});
