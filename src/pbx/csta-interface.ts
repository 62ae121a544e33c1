/**
 * The voice server's CSTA XML interface (OpenScape Voice style, TCP, 8-byte header framing): device
 * monitors for many clients at once, the call model's events fanned out per monitor, and the call
 * control services that the SIP side can carry out (MakeCall by 3PCC, ClearConnection, ClearCall) plus
 * the read-only ones (snapshots, device information). Everything else is answered with the CSTA error
 * that says why; a request never throws out of here.
 */
import { EventEmitter } from 'node:events';
import type { AddressInfo } from 'node:net';
import {
  type CstaErrorCode,
  type CstaLogger,
  type CstaMessage,
  CstaServer,
  type CstaServerConnection,
  type Edition,
  type IncomingRequest,
  type MonitorFilter,
  silentLogger,
} from '../csta/index.ts';
import { Element } from '../xml/index.ts';
import type { Call, ReleaseCause } from './call.ts';
import { type CallEnd, CallModel, type ModelCall } from './call-model.ts';
import type { VoiceServer } from './server.ts';
import { ThirdPartyCalls } from './third-party.ts';

export interface CstaInterfaceOptions {
  host?: string;
  /** TCP port ([pbx] csta_port, default 1040); 0 picks a free one. */
  port?: number;
  /** Edition (namespace) the server writes ([pbx] csta_edition, default ed4). */
  edition?: Edition;
  log?: CstaLogger;
  /** Most monitors one client connection may hold. */
  maxMonitorsPerClient?: number;
  /** Most monitors in total. */
  maxMonitors?: number;
}

interface Monitor {
  id: string;
  device: string;
  connection: CstaServerConnection;
  /** Events the client asked not to receive (filter flag true = not sent). */
  suppressed: Set<string>;
}

export interface CstaInterfaceEvents {
  /** Every event written to a monitor (for tests and benchmarks). */
  sent: [monitor: string, message: CstaMessage];
}

/** The callcontrol filter flag of each call event. */
const FILTER_FLAG: Readonly<Record<string, string>> = {
  ServiceInitiatedEvent: 'serviceInitiated',
  OriginatedEvent: 'originated',
  DeliveredEvent: 'delivered',
  EstablishedEvent: 'established',
  ConnectionClearedEvent: 'connectionCleared',
  FailedEvent: 'failed',
  CallClearedEvent: 'callCleared',
  HeldEvent: 'held',
  RetrievedEvent: 'retrieved',
  TransferedEvent: 'transferred',
  ConferencedEvent: 'conferenced',
  DivertedEvent: 'diverted',
  BackInServiceEvent: 'backInService',
  OutOfServiceEvent: 'outOfService',
};

const FORWARD_TYPES = ['forwardImmediate', 'forwardBusy', 'forwardNoAns'] as const;
type ForwardType = (typeof FORWARD_TYPES)[number];

class RequestError extends Error {
  readonly code: CstaErrorCode;
  constructor(code: CstaErrorCode) {
    super(JSON.stringify(code));
    this.code = code;
  }
}

const failure = (code: CstaErrorCode) => new RequestError(code);

export class CstaInterface extends EventEmitter<CstaInterfaceEvents> {
  readonly model = new CallModel();
  readonly voice: VoiceServer;
  private readonly options: CstaInterfaceOptions;
  private readonly log: CstaLogger;
  private server: CstaServer | undefined;
  private thirdParty: ThirdPartyCalls | undefined;
  private readonly monitors = new Map<string, Monitor>();
  private readonly byDevice = new Map<string, Set<Monitor>>();
  private readonly perConnection = new Map<CstaServerConnection, Set<Monitor>>();
  private readonly b2buaCalls = new Map<Call, ModelCall>();
  /** Devices with do-not-disturb on (in memory: lost when the voice server restarts). */
  private readonly dnd = new Set<string>();
  /** Forwarding per device and type → destination (in memory). */
  private readonly forwarding = new Map<string, Map<ForwardType, string>>();
  private monitorCounter = 0;
  private address: AddressInfo | undefined;
  private readonly unsubscribe: Array<() => void> = [];

  constructor(voice: VoiceServer, options: CstaInterfaceOptions = {}) {
    super();
    this.voice = voice;
    this.options = options;
    this.log = options.log ?? silentLogger;
  }

  get port(): number {
    return this.address?.port ?? 0;
  }

  get monitorCount(): number {
    return this.monitors.size;
  }

  get clientCount(): number {
    return this.server?.connections.size ?? 0;
  }

  /** Starts listening; the voice server must already be started. */
  async start(): Promise<AddressInfo> {
    const voice = this.voice;
    const stack = voice.stack;
    this.thirdParty = new ThirdPartyCalls(stack, voice.registrar, voice.options.users, this.model, {
      domain: voice.domain,
      ...(voice.options.ringTimeoutMs === undefined ? {} : { ringTimeoutMs: voice.options.ringTimeoutMs }),
      redirect: (model, reason) => this.forwardTarget(model, reason),
    });
    const third = this.thirdParty;
    // 3PCC dialogs are ours, not the B2BUA's: look at in-dialog requests and stray 2xx first.
    const previous = stack.handlers;
    stack.handlers = {
      ...previous,
      onRequest: (request, tx, source) => {
        if (request.method !== 'REGISTER' && request.to.params.has('tag') && third.handleRequest(request, tx))
          return;
        previous.onRequest?.(request, tx, source);
      },
      onAck: (ack, source) => {
        if (!third.handleAck(ack)) previous.onAck?.(ack, source);
      },
      onStrayResponse: (response, source) => {
        if (!third.handleStrayResponse(response)) previous.onStrayResponse?.(response, source);
      },
    };
    const b2bua = voice.b2bua;
    const onHold = (call: Call, party: 'caller' | 'callee', held: boolean) => {
      const model = this.b2buaCalls.get(call);
      if (model === undefined) return;
      const device = party === 'caller' ? model.caller : model.callee;
      if (held) this.model.held(model, device);
      else this.model.retrieved(model, device);
    };
    b2bua.on('hold', onHold);
    b2bua.redirect = (call, reason) => this.forwardOnFailure(call, reason);
    b2bua.route = (caller, callee) => {
      const r = this.route(caller, callee);
      if (r.divertedFrom === undefined && r.refuse === undefined) return undefined;
      return {
        ...(r.divertedFrom === undefined ? {} : { forwardTo: r.target }),
        ...(r.refuse === undefined ? {} : { reject: 486, reason: 'Busy Here (do not disturb)' }),
      };
    };
    this.unsubscribe.push(() => {
      stack.handlers = previous;
      b2bua.route = undefined;
      b2bua.off('hold', onHold);
      b2bua.redirect = undefined;
    });

    const onEvent = (device: string, message: CstaMessage) => this.deliver(device, message);
    this.model.on('event', onEvent);
    const onCall = (call: Call) => this.trackB2buaCall(call);
    const inService = (ext: string) => this.deviceEvent(ext, 'BackInServiceEvent');
    const outOfService = (ext: string) => this.deviceEvent(ext, 'OutOfServiceEvent');
    voice.on('call', onCall);
    voice.on('device-in-service', inService);
    voice.on('device-out-of-service', outOfService);
    this.unsubscribe.push(() => {
      this.model.off('event', onEvent);
      voice.off('call', onCall);
      voice.off('device-in-service', inService);
      voice.off('device-out-of-service', outOfService);
    });

    const server = new CstaServer({
      host: this.options.host ?? '127.0.0.1',
      port: this.options.port ?? 1040,
      edition: this.options.edition ?? 'ed4',
      log: this.log,
    });
    server.on('connection', (connection) => this.accept(connection));
    this.server = server;
    this.address = await server.listen();
    return this.address;
  }

  async stop(): Promise<void> {
    this.thirdParty?.close();
    for (const u of this.unsubscribe.splice(0)) u();
    await this.server?.close();
    this.monitors.clear();
    this.byDevice.clear();
    this.perConnection.clear();
  }

  // ---- connections and monitors -------------------------------------------------------------

  private accept(connection: CstaServerConnection): void {
    this.perConnection.set(connection, new Set());
    connection.on('request', (request) => this.serve(connection, request));
    void connection.closed.then((reason) => {
      const mine = this.perConnection.get(connection) ?? new Set();
      this.perConnection.delete(connection);
      for (const m of mine) this.removeMonitor(m);
      this.log.info(`csta: client gone (${reason}); ${mine.size} monitor(s) dropped`);
    });
  }

  private removeMonitor(monitor: Monitor): void {
    this.monitors.delete(monitor.id);
    const set = this.byDevice.get(monitor.device);
    set?.delete(monitor);
    if (set?.size === 0) this.byDevice.delete(monitor.device);
    this.perConnection.get(monitor.connection)?.delete(monitor);
  }

  private deliver(device: string, message: CstaMessage): void {
    const monitors = this.byDevice.get(device);
    if (monitors === undefined) return;
    const flag = FILTER_FLAG[message.name];
    for (const m of monitors) {
      if (flag !== undefined && m.suppressed.has(flag)) continue;
      const out = { ...message, monitorCrossRefID: m.id } as CstaMessage;
      try {
        m.connection.sendEvent(out);
        this.emit('sent', m.id, out);
      } catch (e) {
        this.log.warn(`csta: could not send ${message.name} to ${m.id}: ${(e as Error).message}`);
      }
    }
  }

  private deviceEvent(device: string, name: 'BackInServiceEvent' | 'OutOfServiceEvent'): void {
    this.deliver(device, { name, monitorCrossRefID: '', device: { deviceIdentifier: device } });
  }

  // ---- B2BUA calls into the call model -------------------------------------------------------

  private trackB2buaCall(call: Call): void {
    const caller = call.callerExtension;
    const callee = call.calleeExtension;
    const calleeRegistered = this.voice.registrar.lookup(callee).length > 0;
    const calleeDnd = this.dnd.has(callee);
    let clearedBy: 'caller' | 'callee' | 'all' | undefined;
    const model = this.model.create(
      caller,
      callee,
      {
        clearConnection: (device) => {
          clearedBy = device === caller ? 'caller' : 'callee';
          this.voice.b2bua.clearCall(call, clearedBy);
        },
        clearCall: () => {
          clearedBy = 'all';
          this.voice.b2bua.clearCall(call, 'caller');
        },
        deflect: (target) => this.voice.b2bua.deflect(call, target),
        // the B2BUA hands over the leg that stays; the transfer then runs as a third-party call
        consult: (device, target, accepted) => {
          const legs = this.voice.b2bua.takeOver(call);
          if (legs === undefined) return false;
          this.thirdParty!.adopt(model, legs);
          return model.control.consult?.(device, target, accepted) ?? false;
        },
        singleStepTransfer: (device, target, accepted) => {
          const kept = this.voice.b2bua.detach(call, device === caller ? 'callee' : 'caller');
          if (kept === undefined) return false;
          return this.thirdParty!.adoptForTransfer(model, kept, device, target, accepted);
        },
        hold: (device, held) =>
          this.voice.b2bua.setHold(call, device === caller ? 'caller' : 'callee', held, (ok) => {
            if (!ok) this.log.warn(`csta: ${held ? 'hold' : 'retrieve'} of ${device} failed in SIP`);
          }),
      },
      call.divertedFrom === undefined
        ? undefined
        : { from: call.divertedFrom, cause: 'callForwardImmediate' },
    );
    this.b2buaCalls.set(call, model);
    this.model.originated(model);
    call.on('state', (state) => {
      if (state === 'alerting') this.model.delivered(model);
      else if (state === 'connected') this.model.established(model);
    });
    call.once('released', (cause) => {
      this.b2buaCalls.delete(call);
      // handed over to the third-party side (single-step transfer): the CSTA call goes on
      if (cause === 'transferred') return;
      const end = endOf(cause, clearedBy, calleeRegistered, model);
      this.model.end(
        model,
        calleeDnd && typeof end === 'object' && end.failed === 'busy' ? { failed: 'doNotDisturb' } : end,
      );
    });
  }

  /**
   * Forwarding on busy / no answer for a B2BUA call: one hop only (a call already redirected ends
   * normally), never to the caller or back to the callee, only to a registered destination.
   */
  private forwardOnFailure(call: Call, reason: 'busy' | 'no-answer'): boolean {
    const model = this.b2buaCalls.get(call);
    if (model === undefined) return false;
    const target = this.forwardTarget(model, reason);
    if (target === undefined || !this.voice.b2bua.deflect(call, target)) return false;
    this.model.redirected(model, target, reason === 'busy' ? 'callForwardBusy' : 'callForwardNoAnswer');
    return true;
  }

  /** Where forwarding on busy / no answer sends a call, if anywhere (one hop, registered, no DND). */
  private forwardTarget(model: ModelCall, reason: 'busy' | 'no-answer'): string | undefined {
    if (model.redirectCause !== undefined) return undefined;
    const type: ForwardType = reason === 'busy' ? 'forwardBusy' : 'forwardNoAns';
    const target = this.forwarding.get(model.callee)?.get(type);
    if (target === undefined || target === model.caller || target === model.callee) return undefined;
    if (this.dnd.has(target) || this.voice.registrar.lookup(target).length === 0) return undefined;
    return target;
  }

  // ---- requests -------------------------------------------------------------------------------

  private serve(connection: CstaServerConnection, request: IncomingRequest): void {
    try {
      this.dispatch(connection, request);
    } catch (e) {
      if (request.answered) {
        this.log.warn(`csta: error after answering ${request.root}: ${(e as Error).message}`);
        return;
      }
      if (e instanceof RequestError) request.fail(e.code);
      else {
        this.log.warn(`csta: ${request.root} failed: ${(e as Error).stack ?? String(e)}`);
        request.fail({ operation: 'generic' });
      }
    }
  }

  private dispatch(connection: CstaServerConnection, request: IncomingRequest): void {
    const m = request.message;
    if (m === undefined) throw failure({ operation: 'invalidParameterValue' });
    switch (m.name) {
      case 'MonitorStart':
        this.monitorStart(connection, request, m);
        return;
      case 'MonitorStop': {
        const monitor = this.monitors.get(m.monitorCrossRefID.trim());
        if (monitor === undefined || monitor.connection !== connection)
          throw failure({ operation: 'invalidMonitorCrossRefID' });
        this.removeMonitor(monitor);
        request.reply({ name: 'MonitorStopResponse' });
        return;
      }
      case 'MakeCall':
        this.makeCall(request, m);
        return;
      case 'ClearConnection': {
        const { call, device } = this.connectionOf(m.connectionToBeCleared);
        request.reply({ name: 'ClearConnectionResponse' });
        call.control.clearConnection(device);
        return;
      }
      case 'ClearCall': {
        const callID = m.callToBeCleared.callID?.trim();
        const call = callID === undefined ? undefined : this.model.get(callID);
        if (call === undefined) throw failure({ operation: 'invalidCallID' });
        request.reply({ name: 'ClearCallResponse' });
        call.control.clearCall();
        return;
      }
      case 'AnswerCall': {
        const { call, device } = this.connectionOf(m.callToBeAnswered);
        if (device !== call.callee || call.calleeState !== 'alerting')
          throw failure({ stateIncompatibility: 'invalidConnectionState' });
        // Remote answer needs uaCSTA (INFO) or the `talk` event, which no phone here offers yet.
        throw failure({ operation: 'requestIncompatibleWithDevice' });
      }
      case 'SnapshotDevice': {
        const device = this.device(m.snapshotObject);
        request.reply({
          name: 'SnapshotDeviceResponse',
          crossRefIDorSnapshotData: {
            snapshotData: {
              snapshotDeviceResponseInfo: this.model.callsOf(device).map(({ call, state }) => ({
                connectionIdentifier: { callID: call.id, deviceID: device },
                localCallState: { compoundCallState: { localConnectionState: [state] } },
              })),
            },
          },
        });
        return;
      }
      case 'SnapshotCall': {
        const callID = m.snapshotObject.callID?.trim();
        const call = callID === undefined ? undefined : this.model.get(callID);
        if (call === undefined) throw failure({ operation: 'invalidCallID' });
        const parties = [
          { device: call.caller, state: call.callerState },
          { device: call.callee, state: call.calleeState },
        ].filter((p) => p.state !== 'null');
        request.reply({
          name: 'SnapshotCallResponse',
          crossRefIDorSnapshotData: {
            snapshotData: {
              snapshotCallResponseInfo: parties.map((p) => ({
                deviceOnCall: { deviceIdentifier: p.device },
                callIdentifier: { callID: call.id, deviceID: p.device },
                localConnectionInfo: p.state,
              })),
            },
          },
          callingDevice: { deviceIdentifier: call.caller },
          calledDevice: { deviceIdentifier: call.callee },
        });
        return;
      }
      case 'GetLogicalDeviceInformation':
        this.device(m.device);
        request.reply({
          name: 'GetLogicalDeviceInformationResponse',
          deviceCategory: 'station',
          hasPhysicalElement: true,
          acdModels: new Element('acdModels'),
          appearanceAddressable: false,
          appearanceType: 'basicStandard',
          maxActiveCalls: 1,
          maxHeldCalls: 1,
        });
        return;
      case 'GetPhysicalDeviceInformation':
        this.device(m.device);
        request.reply({
          name: 'GetPhysicalDeviceInformationResponse',
          deviceCategory: 'station',
          hasLogicalElement: true,
          deviceModelName: 'SIP phone',
        });
        return;
      case 'HoldCall':
      case 'RetrieveCall': {
        const hold = m.name === 'HoldCall';
        const { call, device } = this.connectionOf(hold ? m.callToBeHeld : m.callToBeRetrieved);
        if (call.control.hold === undefined)
          throw failure({ operation: 'requestIncompatibleWithConnection' });
        const state = device === call.caller ? call.callerState : call.calleeState;
        const other = device === call.caller ? call.calleeState : call.callerState;
        if (hold && (state !== 'connected' || other === 'null' || other === 'alerting'))
          throw failure({ stateIncompatibility: 'invalidConnectionState' });
        if (!hold && state !== 'hold') throw failure({ stateIncompatibility: 'noHeldCall' });
        if (!call.control.hold(device, hold)) throw failure({ stateIncompatibility: 'invalidObjectState' });
        request.reply(hold ? { name: 'HoldCallResponse' } : { name: 'RetrieveCallResponse' });
        return;
      }
      case 'DeflectCall': {
        const { call, device } = this.connectionOf(m.callToBeDiverted);
        if (call.control.deflect === undefined)
          throw failure({ operation: 'requestIncompatibleWithConnection' });
        if (device !== call.callee || call.calleeState !== 'alerting')
          throw failure({ stateIncompatibility: 'invalidConnectionState' });
        const target = this.knownDevice(m.newDestination);
        if (target === undefined || target === call.caller || target === call.callee)
          throw failure({ operation: 'invalidDestinationDeviceID' });
        if (this.voice.registrar.lookup(target).length === 0)
          throw failure({ systemResourceAvailibility: 'deviceOutOfService' });
        if (!call.control.deflect(target)) throw failure({ stateIncompatibility: 'invalidObjectState' });
        request.reply({ name: 'DeflectCallResponse' });
        this.model.redirected(call, target, 'redirected');
        return;
      }
      case 'SingleStepTransferCall': {
        const { call, device } = this.connectionOf(m.activeCall);
        if (call.control.singleStepTransfer === undefined)
          throw failure({ operation: 'requestIncompatibleWithConnection' });
        if (call.callerState !== 'connected' || call.calleeState !== 'connected')
          throw failure({ stateIncompatibility: 'invalidConnectionState' });
        const target = this.knownDevice(m.transferredTo);
        if (target === undefined || target === call.caller || target === call.callee)
          throw failure({ operation: 'invalidDestinationDeviceID' });
        if (this.voice.registrar.lookup(target).length === 0)
          throw failure({ systemResourceAvailibility: 'deviceOutOfService' });
        const accepted = () =>
          request.reply({
            name: 'SingleStepTransferCallResponse',
            transferredCall: { callID: call.id, deviceID: target },
          });
        if (!call.control.singleStepTransfer(device, target, accepted))
          throw failure({ stateIncompatibility: 'invalidObjectState' });
        return;
      }
      case 'ConsultationCall': {
        const { call, device } = this.connectionOf(m.existingCall);
        if (call.control.consult === undefined)
          throw failure({ operation: 'requestIncompatibleWithConnection' });
        if (call.callerState !== 'connected' || call.calleeState !== 'connected')
          throw failure({ stateIncompatibility: 'invalidConnectionState' });
        const target = this.knownDevice(m.consultedDevice);
        if (target === undefined || target === call.caller || target === call.callee)
          throw failure({ operation: 'invalidDestinationDeviceID' });
        if (this.voice.registrar.lookup(target).length === 0)
          throw failure({ systemResourceAvailibility: 'deviceOutOfService' });
        const accepted = (consultation: ModelCall) =>
          request.reply({
            name: 'ConsultationCallResponse',
            initiatedCall: { callID: consultation.id, deviceID: device },
          });
        if (!call.control.consult(device, target, accepted))
          throw failure({ stateIncompatibility: 'invalidObjectState' });
        return;
      }
      case 'TransferCall': {
        const held = this.connectionOf(m.heldCall);
        const active = this.connectionOf(m.activeCall);
        if (held.device !== active.device) throw failure({ operation: 'notSameDevice' });
        if (held.call === active.call) throw failure({ operation: 'invalidCallID' });
        if (held.call.control.transfer === undefined || active.call.control.transfer === undefined)
          throw failure({ operation: 'requestIncompatibleWithConnection' });
        const device = held.device;
        const heldState = device === held.call.caller ? held.call.callerState : held.call.calleeState;
        const activeOther = device === active.call.caller ? active.call.calleeState : active.call.callerState;
        if (heldState !== 'hold') throw failure({ stateIncompatibility: 'invalidHeldConnectionState' });
        if (activeOther !== 'connected')
          throw failure({ stateIncompatibility: 'invalidActiveConnectionState' });
        const joining = device === active.call.caller ? active.call.callee : active.call.caller;
        const accepted = () =>
          request.reply({
            name: 'TransferCallResponse',
            transferredCall: { callID: held.call.id, deviceID: joining },
          });
        if (!held.call.control.transfer(device, active.call, accepted))
          throw failure({ stateIncompatibility: 'invalidObjectState' });
        return;
      }
      case 'SetDoNotDisturb': {
        const device = this.device(m.device);
        if (m.doNotDisturbOn) this.dnd.add(device);
        else this.dnd.delete(device);
        request.reply({ name: 'SetDoNotDisturbResponse' });
        this.deliver(device, {
          name: 'DoNotDisturbEvent',
          monitorCrossRefID: '',
          device: { deviceIdentifier: device },
          doNotDisturbOn: m.doNotDisturbOn,
        });
        return;
      }
      case 'GetDoNotDisturb': {
        const device = this.device(m.device);
        request.reply({ name: 'GetDoNotDisturbResponse', doNotDisturbOn: this.dnd.has(device) });
        return;
      }
      case 'SetForwarding': {
        const device = this.device(m.device);
        const type = m.forwardingType;
        // immediate, busy and no-answer forwarding are carried out; the Int/Ext and DND kinds are not
        if (type !== undefined && !(FORWARD_TYPES as readonly string[]).includes(type))
          throw failure({ operation: 'invalidForwardingType' });
        const table = this.forwarding.get(device) ?? new Map<ForwardType, string>();
        let changed: Array<[ForwardType, string | undefined]>;
        if (m.activateForward) {
          if (type === undefined) throw failure({ operation: 'invalidForwardingType' });
          const destination = this.knownDevice(m.forwardDN ?? '');
          if (destination === undefined || destination === device)
            throw failure({ operation: 'invalidForwardingDestination' });
          table.set(type as ForwardType, destination);
          changed = [[type as ForwardType, destination]];
        } else {
          const off = type === undefined ? [...table.keys()] : [type as ForwardType];
          for (const t of off) table.delete(t);
          changed = (off.length > 0 ? off : ['forwardImmediate' as const]).map((t) => [t, undefined]);
        }
        if (table.size > 0) this.forwarding.set(device, table);
        else this.forwarding.delete(device);
        request.reply({ name: 'SetForwardingResponse' });
        for (const [forwardingType, forwardTo] of changed) {
          this.deliver(device, {
            name: 'ForwardingEvent',
            monitorCrossRefID: '',
            device: { deviceIdentifier: device },
            forwardingType,
            forwardStatus: m.activateForward,
            ...(forwardTo === undefined ? {} : { forwardTo }),
          });
        }
        return;
      }
      case 'GetForwarding': {
        const device = this.device(m.device);
        const table = this.forwarding.get(device);
        request.reply({
          name: 'GetForwardingResponse',
          forwardingList: FORWARD_TYPES.map((forwardingType) => {
            const to = table?.get(forwardingType);
            return {
              forwardingType,
              forwardStatus: to !== undefined,
              ...(to === undefined ? {} : { forwardDN: to }),
            };
          }),
        });
        return;
      }
      default:
        // ConferenceCall needs a mixer; consultation, transfer and deflect are not built yet.
        throw failure({ operation: 'serviceNotSupported' });
    }
  }

  private monitorStart(
    connection: CstaServerConnection,
    request: IncomingRequest,
    m: Extract<CstaMessage, { name: 'MonitorStart' }>,
  ): void {
    const object = m.monitorObject;
    // call-type monitors are not offered: only device monitors
    if (!('deviceObject' in object) || m.monitorType === 'call')
      throw failure({ operation: 'invalidMonitorObject' });
    const device = this.device(object.deviceObject);
    const mine = this.perConnection.get(connection);
    if (mine === undefined) throw failure({ operation: 'generic' });
    if (mine.size >= (this.options.maxMonitorsPerClient ?? 10_000))
      throw failure({ subscribedResourceAvailability: 'objectMonitorLimitExceeded' });
    if (this.monitors.size >= (this.options.maxMonitors ?? 100_000))
      throw failure({ systemResourceAvailibility: 'overallMonitorLimitExceeded' });
    const monitor: Monitor = {
      id: `mon${(++this.monitorCounter).toString(36)}`,
      device,
      connection,
      suppressed: suppressedBy(m.requestedMonitorFilter),
    };
    this.monitors.set(monitor.id, monitor);
    mine.add(monitor);
    let set = this.byDevice.get(device);
    if (set === undefined) {
      set = new Set();
      this.byDevice.set(device, set);
    }
    set.add(monitor);
    request.reply({
      name: 'MonitorStartResponse',
      monitorCrossRefID: monitor.id,
      ...(m.requestedMonitorFilter?.callcontrol === undefined
        ? {}
        : { actualMonitorFilter: { callcontrol: m.requestedMonitorFilter.callcontrol } }),
    });
  }

  private makeCall(request: IncomingRequest, m: Extract<CstaMessage, { name: 'MakeCall' }>): void {
    const caller = this.knownDevice(m.callingDevice);
    if (caller === undefined) throw failure({ operation: 'invalidCallingDeviceID' });
    const callee = this.knownDevice(m.calledDirectoryNumber);
    if (callee === undefined) throw failure({ operation: 'invalidCalledDeviceID' });
    if (caller === callee) throw failure({ operation: 'notDifferentDevices' });
    if (this.voice.registrar.lookup(caller).length === 0)
      throw failure({ systemResourceAvailibility: 'callingDeviceOutOfService' });
    const routing = this.route(caller, callee);
    if (this.voice.registrar.lookup(routing.target).length === 0)
      throw failure({ systemResourceAvailibility: 'calledDeviceOutOfService' });
    this.thirdParty!.makeCall(
      caller,
      routing.target,
      m.autoOriginate ?? 'prompt',
      (call) =>
        request.reply({ name: 'MakeCallResponse', callingDevice: { callID: call.id, deviceID: caller } }),
      {
        ...(routing.divertedFrom === undefined ? {} : { divertedFrom: routing.divertedFrom }),
        ...(routing.refuse === undefined ? {} : { refuse: routing.refuse }),
      },
    );
  }

  /**
   * Where a call to `callee` goes: one hop of immediate forwarding (never back to the caller), then
   * DND at the destination refuses it.
   */
  private route(
    caller: string,
    callee: string,
  ): { target: string; divertedFrom?: string; refuse?: 'doNotDisturb' } {
    const forwardTo = this.forwarding.get(callee)?.get('forwardImmediate');
    const target = forwardTo !== undefined && forwardTo !== caller ? forwardTo : callee;
    return {
      target,
      ...(target === callee ? {} : { divertedFrom: callee }),
      ...(this.dnd.has(target) ? { refuse: 'doNotDisturb' as const } : {}),
    };
  }

  /** A call and one of its live connections, or the CSTA error that says which part is wrong. */
  private connectionOf(c: { callID?: string; deviceID?: string }): { call: ModelCall; device: string } {
    const callID = c.callID?.trim();
    const device = c.deviceID?.trim();
    if (callID === undefined || device === undefined) throw failure({ operation: 'invalidConnectionID' });
    const call = this.model.get(callID);
    if (call === undefined) throw failure({ operation: 'invalidCallID' });
    const state =
      device === call.caller ? call.callerState : device === call.callee ? call.calleeState : 'null';
    if (state === 'null') throw failure({ operation: 'invalidConnectionID' });
    return { call, device };
  }

  private device(id: string): string {
    const device = this.knownDevice(id);
    if (device === undefined) throw failure({ operation: 'invalidDeviceID' });
    return device;
  }

  /** The extension a DeviceID names (plain digits, or OpenScape's `N<digits>` form). */
  private knownDevice(id: string): string | undefined {
    const trimmed = id.trim();
    const ext = /^N<([^>]*)>/.exec(trimmed)?.[1] ?? trimmed;
    const user = this.voice.options.users.findUser(ext);
    return user !== undefined && user.extension === ext ? ext : undefined;
  }
}

function suppressedBy(filter: MonitorFilter | undefined): Set<string> {
  const out = new Set<string>();
  for (const [flag, on] of Object.entries(filter?.callcontrol ?? {})) if (on === true) out.add(flag);
  const maintenance = filter?.maintenance;
  if (maintenance !== undefined) {
    for (const flag of ['backInService', 'outOfService']) {
      if (maintenance.getChild(flag)?.text().trim() === 'true') out.add(flag);
    }
  }
  return out;
}

/** How a B2BUA release reads in the call model. */
function endOf(
  cause: ReleaseCause,
  clearedBy: 'caller' | 'callee' | 'all' | undefined,
  calleeRegistered: boolean,
  model: ModelCall,
): CallEnd {
  if (clearedBy === 'caller') return 'caller-released';
  if (clearedBy === 'callee') return 'callee-released';
  if (clearedBy === 'all') return 'cleared';
  switch (cause) {
    case 'caller-hangup':
    case 'caller-cancel':
      return 'caller-released';
    case 'callee-hangup':
      return 'callee-released';
    case 'busy':
    case 'rejected':
      return { failed: 'busy' };
    case 'no-answer':
      return 'no-answer';
    case 'unavailable':
      if (!calleeRegistered) return { failed: 'destOutOfOrder' };
      return model.calleeState === 'alerting' ? 'no-answer' : { failed: 'destNotObtainable' };
    case 'not-found':
      return { failed: 'destNotObtainable' };
    default:
      return 'cleared';
  }
}
