/**
 * The gateway (SPEC.md §3): CSTA requests arrive as iq stanzas, go to the voice server under the
 * link's own invokeIDs, and their answers go back to exactly the (full JID, iq id) that asked. One
 * voice-server monitor per device is shared by every client monitoring it; each client has its own
 * monitorCrossRefIDs and its own filter, and its monitors end on an event error, an unanswered event,
 * its unavailable presence, or MonitorStop. No invokeID reaches a client and no JID reaches the PBX.
 */
import { EventEmitter } from 'node:events';
import {
  type CstaErrorCode,
  type CstaLink,
  type CstaMessage,
  CstaRequestError,
  decodeMessage,
  EDITION_NAMESPACES,
  EVENT_NAMES,
  editionOf,
  encodeMessage,
  type IncomingRequest,
  type MonitorFilter,
  UnknownMessageError,
} from '../csta/index.ts';
import { Element } from '../xml/index.ts';
import { bareOf } from '../xmpp/jid.ts';
import {
  CallRegistry,
  type DeviceAuthorization,
  isAuthorized,
  normalizeDevice,
  targetsOf,
} from './authorization.ts';
import { COMPONENT_NS, stanza } from './component.ts';
import {
  FORBIDDEN_DEVICE,
  LINK_DOWN,
  STANZA_ERRORS_NS,
  type StanzaErrorSpec,
  stanzaErrorFor,
} from './errors.ts';

const DISCO_INFO_NS = 'http://jabber.org/protocol/disco#info';
const PING_NS = 'urn:xmpp:ping';
const COMMANDS_NS = 'http://jabber.org/protocol/commands';

export type MonitorEndReason = 'error' | 'timeout' | 'unavailable' | 'stop';

export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

const SILENT: Logger = { debug() {}, info() {}, warn() {} };

/** What the gateway needs from its XMPP side (a ComponentConnection). */
export interface XmppSide {
  send(stanza: Element): boolean;
}

export interface GatewayOptions {
  /** The gateway's JID, e.g. cti.localhost. */
  jid: string;
  xmpp: XmppSide;
  pbx: CstaLink;
  authorization: DeviceAuthorization;
  /** Seconds a client has to answer an event iq (SPEC.md `event_ack_timeout_s`). */
  eventAckTimeoutS?: number;
  log?: Logger;
}

export interface GatewayEvents {
  /** A client monitor ended (for metrics and tests). */
  monitorEnded: [jid: string, crossRefID: string, reason: MonitorEndReason];
  /** An event iq was sent to a client. */
  eventSent: [jid: string, event: string];
}

interface ClientMonitor {
  crossRefID: string;
  jid: string;
  device: DeviceMonitor;
  /** Namespace of the client's MonitorStart: its events are written in it. */
  ns: string;
  filter: MonitorFilter | undefined;
}

interface DeviceMonitor {
  device: string;
  /** The voice server's monitorCrossRefID; undefined while starting or while the link is down. */
  pbxCrossRefID: string | undefined;
  starting: Promise<void> | undefined;
  clients: Map<string, ClientMonitor>;
  /** The gateway's own listeners (phone presence, chat): they keep the monitor alive as clients do. */
  watchers: Set<DeviceWatcher>;
}

export type DeviceWatcher = (event: CstaMessage) => void;

function inUse(dm: DeviceMonitor): boolean {
  return dm.clients.size > 0 || dm.watchers.size > 0;
}

interface PendingEvent {
  jid: string;
  timer: NodeJS.Timeout;
}

/** Event name → its flag in MonitorFilter.callcontrol (true there means "do not send"). */
const CALL_CONTROL_FLAG: Record<string, string> = {
  BridgedEvent: 'bridged',
  CallClearedEvent: 'callCleared',
  ConferencedEvent: 'conferenced',
  ConnectionClearedEvent: 'connectionCleared',
  DeliveredEvent: 'delivered',
  DigitsDialedEvent: 'digitsDialed',
  DivertedEvent: 'diverted',
  EstablishedEvent: 'established',
  FailedEvent: 'failed',
  HeldEvent: 'held',
  NetworkCapabilitiesChangedEvent: 'networkCapabilitiesChanged',
  NetworkReachedEvent: 'networkReached',
  OfferedEvent: 'offered',
  OriginatedEvent: 'originated',
  QueuedEvent: 'queued',
  RetrievedEvent: 'retrieved',
  ServiceInitiatedEvent: 'serviceInitiated',
  TransferedEvent: 'transferred',
};

/** Every callID in a message, wherever it sits. */
function callIDsIn(value: unknown, out: Set<string>, depth = 0): Set<string> {
  if (depth > 8 || value === null || typeof value !== 'object' || value instanceof Element) return out;
  if (Array.isArray(value)) {
    for (const v of value) callIDsIn(v, out, depth + 1);
    return out;
  }
  for (const [key, v] of Object.entries(value)) {
    if (key === 'callID' && typeof v === 'string') out.add(v);
    else if (key !== '$unknown') callIDsIn(v, out, depth + 1);
  }
  return out;
}

export class Gateway extends EventEmitter<GatewayEvents> {
  private readonly jid: string;
  private readonly xmpp: XmppSide;
  private readonly pbx: CstaLink;
  private readonly auth: DeviceAuthorization;
  private readonly ackTimeoutMs: number;
  private readonly log: Logger;
  private readonly calls = new CallRegistry();
  private readonly devices = new Map<string, DeviceMonitor>();
  private readonly byPbxCrossRef = new Map<string, DeviceMonitor>();
  private readonly clientMonitors = new Map<string, ClientMonitor>();
  private readonly monitorsByJid = new Map<string, Set<ClientMonitor>>();
  private readonly pendingEvents = new Map<string, PendingEvent>();
  /**
   * Events whose cross-ref is not known yet: a PBX may send the first events of a monitor in the same
   * TCP segment as the MonitorStartResponse, which the link resolves only after it (csta.md §2.2).
   */
  private readonly earlyEvents: CstaMessage[] = [];
  private startsInFlight = 0;
  private nextCrossRef = 1;
  private nextStanzaId = 1;
  /** Counters for metrics (SPEC.md §5). */
  readonly counters = {
    eventsSent: 0,
    monitorsEnded: { error: 0, timeout: 0, unavailable: 0, stop: 0 } as Record<MonitorEndReason, number>,
    requestsRelayed: 0,
  };

  constructor(options: GatewayOptions) {
    super();
    this.jid = options.jid;
    this.xmpp = options.xmpp;
    this.pbx = options.pbx;
    this.auth = options.authorization;
    this.ackTimeoutMs = (options.eventAckTimeoutS ?? 10) * 1000;
    this.log = options.log ?? SILENT;
    this.pbx.on('event', (message) => this.onPbxEvent(message));
    this.pbx.on('up', () => this.restoreMonitors());
    this.pbx.on('down', (info) => this.onPbxDown(info.reason));
    this.pbx.on('request', (request) => this.onPbxRequest(request));
  }

  get clientMonitorCount(): number {
    return this.clientMonitors.size;
  }

  /** Voice-server monitors held (one per monitored device while the link is up). */
  get deviceMonitorCount(): number {
    return this.byPbxCrossRef.size;
  }

  get linkUp(): boolean {
    return this.pbx.isUp;
  }

  /** Every stanza the component receives. Never throws. */
  handleStanza(el: Element): void {
    try {
      if (el.name === 'iq') this.onIq(el);
      else if (el.name === 'presence') this.onPresence(el);
    } catch (e) {
      this.log.warn({ err: e, stanza: el.name }, 'stanza handling failed');
      if (el.name === 'iq' && (el.attr('type') === 'get' || el.attr('type') === 'set')) {
        this.replyError(el, { type: 'cancel', condition: 'internal-server-error' });
      }
    }
  }

  /**
   * Watches a device's events for the gateway itself (phone presence, chat commands), sharing the
   * voice-server monitor with clients. Retried after every link restore. Returns the unwatch function.
   */
  watch(device: string, watcher: DeviceWatcher): () => void {
    const key = normalizeDevice(device);
    let dm = this.devices.get(key);
    if (dm === undefined) {
      dm = { device, pbxCrossRefID: undefined, starting: undefined, clients: new Map(), watchers: new Set() };
      this.devices.set(key, dm);
    }
    const deviceMonitor = dm;
    deviceMonitor.watchers.add(watcher);
    if (this.pbx.isUp && deviceMonitor.pbxCrossRefID === undefined && deviceMonitor.starting === undefined) {
      this.startDeviceMonitor(deviceMonitor).catch((e: unknown) =>
        this.log.warn({ device, err: (e as Error).message }, 'could not monitor device for the gateway'),
      );
    }
    return () => {
      deviceMonitor.watchers.delete(watcher);
      if (!inUse(deviceMonitor) && deviceMonitor.starting === undefined)
        void this.stopDeviceMonitor(deviceMonitor);
    };
  }

  /** Sends a request to the voice server on the gateway's own behalf (authorisation is the caller's). */
  request(message: CstaMessage): Promise<CstaMessage> {
    // biome-ignore lint/suspicious/noExplicitAny: requests are checked by the callers' builders
    return this.pbx.request(message as any) as Promise<CstaMessage>;
  }

  /**
   * After the component reconnects, clients may have gone meanwhile: ping every JID that holds
   * monitors; no answer within the ack timeout (or an error) ends its monitors.
   */
  probeClients(): void {
    for (const jid of [...this.monitorsByJid.keys()]) {
      const id = this.stanzaId('probe');
      const iq = stanza('iq', { type: 'get', id, from: this.jid, to: jid });
      iq.c('ping', {}, PING_NS);
      this.trackPending(id, jid);
      this.xmpp.send(iq);
    }
  }

  /** Stops every voice-server monitor (before a clean shutdown). */
  async close(): Promise<void> {
    for (const pending of this.pendingEvents.values()) clearTimeout(pending.timer);
    this.pendingEvents.clear();
    const stops = [...this.devices.values()].map((d) => this.stopDeviceMonitor(d));
    await Promise.allSettled(stops);
  }

  // ---- iq ---------------------------------------------------------------------------------------

  private onIq(iq: Element): void {
    const type = iq.attr('type');
    const id = iq.attr('id');
    const from = iq.attr('from');
    if (type === 'result' || type === 'error') {
      if (id !== undefined) this.onIqAnswer(id, type, from);
      return;
    }
    // Without an id or a sender there is nothing to answer to (RFC 6120 §8.1.3).
    if (id === undefined || from === undefined) return;
    if (type !== 'get' && type !== 'set') {
      this.replyError(iq, {
        type: 'modify',
        condition: 'bad-request',
        text: 'iq type must be get, set, result or error',
      });
      return;
    }
    const payloads = iq.elements();
    if (payloads.length !== 1) {
      this.replyError(iq, {
        type: 'modify',
        condition: 'bad-request',
        text: 'an iq get/set carries exactly one child',
      });
      return;
    }
    const payload = payloads[0]!;
    const to = iq.attr('to') ?? this.jid;
    if (to !== this.jid) {
      // Addressed to a phone contact or other JID under our domain: no CSTA there.
      this.replyError(iq, { type: 'cancel', condition: 'service-unavailable' });
      return;
    }
    if (payload.ns === DISCO_INFO_NS && type === 'get') {
      this.reply(iq, this.discoInfo());
      return;
    }
    if (payload.ns === PING_NS && payload.name === 'ping' && type === 'get') {
      this.reply(iq);
      return;
    }
    if (editionOf(payload.ns) === undefined) {
      this.replyError(iq, { type: 'cancel', condition: 'service-unavailable' });
      return;
    }
    this.onCstaRequest(iq, from, payload);
  }

  private discoInfo(): Element {
    const query = new Element('query', DISCO_INFO_NS);
    query.c('identity', { category: 'component', type: 'generic', name: 'Switchboard CSTA gateway' });
    const features = [DISCO_INFO_NS, PING_NS, COMMANDS_NS, ...Object.values(EDITION_NAMESPACES)];
    for (const feature of features) query.c('feature', { var: feature });
    return query;
  }

  private onCstaRequest(iq: Element, from: string, payload: Element): void {
    let message: CstaMessage;
    try {
      message = decodeMessage(payload);
    } catch (e) {
      if (e instanceof UnknownMessageError) {
        this.replyError(iq, {
          type: 'cancel',
          condition: 'feature-not-implemented',
          text: e.message,
          csta: { operation: 'serviceNotSupported' } as CstaErrorCode,
        });
      } else {
        this.replyError(iq, {
          type: 'modify',
          condition: 'bad-request',
          text: (e as Error).message,
          csta: { operation: 'invalidParameterValue' } as CstaErrorCode,
        });
      }
      return;
    }
    const name = message.name;
    if (EVENT_NAMES.has(name) || name.endsWith('Response') || name === 'CSTAErrorCode') {
      this.replyError(iq, { type: 'modify', condition: 'bad-request', text: `${name} is not a request` });
      return;
    }
    if (name === 'RequestSystemStatus') {
      this.reply(
        iq,
        encodeMessage(
          { name: 'RequestSystemStatusResponse', systemStatus: this.pbx.isUp ? 'normal' : 'disabled' },
          { ns: payload.ns },
        ),
      );
      return;
    }
    if (name === 'MonitorStop') {
      this.clientMonitorStop(iq, from, payload.ns, message.monitorCrossRefID);
      return;
    }
    const targets = targetsOf(message);
    if (targets === undefined) {
      this.replyError(iq, {
        type: 'cancel',
        condition: 'feature-not-implemented',
        text: `${name} is not offered through the gateway`,
        csta: { operation: 'serviceNotSupported' } as CstaErrorCode,
      });
      return;
    }
    if (!isAuthorized(this.auth, this.calls, bareOf(from), targets)) {
      this.replyError(iq, FORBIDDEN_DEVICE);
      return;
    }
    if (!this.pbx.isUp) {
      this.replyError(iq, LINK_DOWN);
      return;
    }
    if (name === 'MonitorStart') {
      const device = targets.devices[0];
      if (device === undefined) {
        // Call-type monitors are not shared; pass them through unchanged would leak cross-refs.
        this.replyError(iq, {
          type: 'cancel',
          condition: 'feature-not-implemented',
          text: 'call monitors are not offered; monitor a device',
          csta: { operation: 'invalidMonitorObject' } as CstaErrorCode,
        });
        return;
      }
      this.clientMonitorStart(iq, from, payload.ns, device, message.requestedMonitorFilter);
      return;
    }
    this.relay(iq, payload.ns, message);
  }

  private relay(iq: Element, ns: string, message: CstaMessage): void {
    this.counters.requestsRelayed++;
    this.pbx
      // biome-ignore lint/suspicious/noExplicitAny: the request type is checked by targetsOf above
      .request(message as any)
      .then((response: CstaMessage) => {
        if (message.name === 'MakeCall' && response.name === 'MakeCallResponse') {
          const { callID } = response.callingDevice;
          if (callID !== undefined) this.calls.note(callID, message.callingDevice);
        }
        this.reply(iq, encodeMessage(response, { ns }));
      })
      .catch((e: unknown) => this.replyError(iq, this.failureOf(e)));
  }

  private failureOf(e: unknown): StanzaErrorSpec {
    if (e instanceof CstaRequestError) {
      if (e.response.name === 'CSTAErrorCode') return stanzaErrorFor(e.response as CstaErrorCode);
      return { type: 'cancel', condition: 'undefined-condition', text: e.message };
    }
    // Link down, request cancelled when the link broke, or no answer in time.
    return { ...LINK_DOWN, text: (e as Error).message };
  }

  private reply(iq: Element, payload?: Element): void {
    const result = stanza('iq', {
      type: 'result',
      id: iq.attr('id'),
      from: iq.attr('to') ?? this.jid,
      to: iq.attr('from'),
    });
    if (payload !== undefined) result.append(payload);
    this.xmpp.send(result);
  }

  private replyError(iq: Element, spec: StanzaErrorSpec): void {
    const error = stanza('iq', {
      type: 'error',
      id: iq.attr('id'),
      from: iq.attr('to') ?? this.jid,
      to: iq.attr('from'),
    });
    const body = error.c('error', { type: spec.type });
    body.c(spec.condition, {}, STANZA_ERRORS_NS);
    if (spec.text !== undefined) body.c('text', { 'xml:lang': 'en' }, STANZA_ERRORS_NS).append(spec.text);
    if (spec.csta !== undefined) {
      const request = iq.elements()[0];
      const ns =
        request !== undefined && editionOf(request.ns) !== undefined ? request.ns : EDITION_NAMESPACES.ed4;
      body.append(encodeMessage({ name: 'CSTAErrorCode', ...spec.csta } as CstaMessage, { ns }));
    }
    this.xmpp.send(error);
  }

  // ---- monitors ---------------------------------------------------------------------------------

  private clientMonitorStart(
    iq: Element,
    jid: string,
    ns: string,
    device: string,
    filter: MonitorFilter | undefined,
  ): void {
    const key = normalizeDevice(device);
    let dm = this.devices.get(key);
    if (dm === undefined) {
      dm = { device, pbxCrossRefID: undefined, starting: undefined, clients: new Map(), watchers: new Set() };
      this.devices.set(key, dm);
    }
    const deviceMonitor = dm;
    const ready =
      deviceMonitor.pbxCrossRefID !== undefined
        ? Promise.resolve()
        : (deviceMonitor.starting ?? this.startDeviceMonitor(deviceMonitor));
    ready
      .then(() => {
        const crossRefID = String(this.nextCrossRef++);
        const monitor: ClientMonitor = { crossRefID, jid, device: deviceMonitor, ns, filter };
        deviceMonitor.clients.set(crossRefID, monitor);
        this.clientMonitors.set(crossRefID, monitor);
        let set = this.monitorsByJid.get(jid);
        if (set === undefined) {
          set = new Set();
          this.monitorsByJid.set(jid, set);
        }
        set.add(monitor);
        const response: CstaMessage = { name: 'MonitorStartResponse', monitorCrossRefID: crossRefID };
        if (filter !== undefined) response.actualMonitorFilter = filter;
        this.reply(iq, encodeMessage(response, { ns }));
        this.log.info({ jid, device, crossRefID }, 'client monitor started');
      })
      .catch((e: unknown) => {
        if (!inUse(deviceMonitor) && deviceMonitor.pbxCrossRefID === undefined) {
          this.devices.delete(key);
        }
        this.replyError(iq, this.failureOf(e));
      });
  }

  private startDeviceMonitor(dm: DeviceMonitor): Promise<void> {
    this.startsInFlight++;
    const starting = this.pbx
      .request({ name: 'MonitorStart', monitorObject: { deviceObject: dm.device }, monitorType: 'device' })
      .then((response) => {
        dm.pbxCrossRefID = response.monitorCrossRefID;
        this.byPbxCrossRef.set(response.monitorCrossRefID, dm);
        this.log.info(
          { device: dm.device, pbxCrossRefID: response.monitorCrossRefID },
          'voice-server monitor started',
        );
      })
      .finally(() => {
        dm.starting = undefined;
        this.startsInFlight--;
        // Replay what arrived early once the clients waiting on this start are attached (after microtasks).
        setImmediate(() => {
          this.replayEarlyEvents();
          // Everyone who wanted the monitor may have gone while it was starting (watch() then stop()).
          if (!inUse(dm) && dm.starting === undefined && this.devices.get(normalizeDevice(dm.device)) === dm)
            void this.stopDeviceMonitor(dm);
        });
      });
    dm.starting = starting;
    return starting;
  }

  private async stopDeviceMonitor(dm: DeviceMonitor): Promise<void> {
    this.devices.delete(normalizeDevice(dm.device));
    const xref = dm.pbxCrossRefID;
    if (xref === undefined) return;
    this.byPbxCrossRef.delete(xref);
    dm.pbxCrossRefID = undefined;
    if (!this.pbx.isUp) return;
    try {
      await this.pbx.request({ name: 'MonitorStop', monitorCrossRefID: xref });
      this.log.info({ device: dm.device, pbxCrossRefID: xref }, 'voice-server monitor stopped');
    } catch (e) {
      this.log.warn({ device: dm.device, err: (e as Error).message }, 'voice-server MonitorStop failed');
    }
  }

  private clientMonitorStop(iq: Element, jid: string, ns: string, crossRefID: string): void {
    const monitor = this.clientMonitors.get(crossRefID);
    if (monitor === undefined || monitor.jid !== jid) {
      this.replyError(iq, {
        type: 'cancel',
        condition: 'item-not-found',
        csta: { operation: 'invalidMonitorCrossRefID' } as CstaErrorCode,
      });
      return;
    }
    this.endMonitor(monitor, 'stop');
    this.reply(iq, encodeMessage({ name: 'MonitorStopResponse' }, { ns }));
  }

  private endMonitor(monitor: ClientMonitor, reason: MonitorEndReason): void {
    if (this.clientMonitors.get(monitor.crossRefID) !== monitor) return;
    this.clientMonitors.delete(monitor.crossRefID);
    monitor.device.clients.delete(monitor.crossRefID);
    const set = this.monitorsByJid.get(monitor.jid);
    set?.delete(monitor);
    if (set !== undefined && set.size === 0) this.monitorsByJid.delete(monitor.jid);
    this.counters.monitorsEnded[reason]++;
    this.log.info({ jid: monitor.jid, crossRefID: monitor.crossRefID, reason }, 'client monitor ended');
    this.emit('monitorEnded', monitor.jid, monitor.crossRefID, reason);
    if (!inUse(monitor.device) && monitor.device.starting === undefined) {
      void this.stopDeviceMonitor(monitor.device);
    }
  }

  /** Ends every monitor of a full JID, and forgets its unanswered events. */
  private endClient(jid: string, reason: MonitorEndReason): void {
    for (const [id, pending] of this.pendingEvents) {
      if (pending.jid === jid) {
        clearTimeout(pending.timer);
        this.pendingEvents.delete(id);
      }
    }
    const monitors = this.monitorsByJid.get(jid);
    if (monitors === undefined) return;
    for (const monitor of [...monitors]) this.endMonitor(monitor, reason);
  }

  private onIqAnswer(id: string, type: 'result' | 'error', from: string | undefined): void {
    const pending = this.pendingEvents.get(id);
    if (pending === undefined || (from !== undefined && from !== pending.jid)) return;
    clearTimeout(pending.timer);
    this.pendingEvents.delete(id);
    if (type === 'error') this.endClient(pending.jid, id.startsWith('probe') ? 'unavailable' : 'error');
  }

  private trackPending(id: string, jid: string): void {
    const timer = setTimeout(() => {
      if (this.pendingEvents.delete(id)) {
        this.log.warn({ jid, id }, 'client did not answer in time');
        this.endClient(jid, id.startsWith('probe') ? 'unavailable' : 'timeout');
      }
    }, this.ackTimeoutMs);
    timer.unref();
    this.pendingEvents.set(id, { jid, timer });
  }

  private stanzaId(prefix: string): string {
    return `${prefix}${(this.nextStanzaId++).toString(36)}`;
  }

  // ---- presence ---------------------------------------------------------------------------------

  private onPresence(presence: Element): void {
    const type = presence.attr('type');
    const from = presence.attr('from');
    if (from === undefined) return;
    if (type === 'unavailable' || type === 'error') {
      if (from.includes('/')) this.endClient(from, 'unavailable');
      else
        for (const jid of [...this.monitorsByJid.keys()])
          if (bareOf(jid) === from) this.endClient(jid, 'unavailable');
    }
  }

  // ---- voice server -----------------------------------------------------------------------------

  private onPbxEvent(message: CstaMessage): void {
    const xref = (message as { monitorCrossRefID?: unknown }).monitorCrossRefID;
    if (typeof xref !== 'string') return;
    const dm = this.byPbxCrossRef.get(xref);
    if (dm === undefined) {
      if (this.startsInFlight > 0 && this.earlyEvents.length < 1000) this.earlyEvents.push(message);
      else this.log.debug({ event: message.name, xref }, 'event for no monitor of ours');
      return;
    }
    for (const callID of callIDsIn(message, new Set())) this.calls.note(callID, dm.device);
    const flag = CALL_CONTROL_FLAG[message.name];
    for (const watcher of dm.watchers) {
      try {
        watcher(message);
      } catch (e) {
        this.log.warn({ err: (e as Error).message, device: dm.device }, 'device watcher failed');
      }
    }
    for (const monitor of dm.clients.values()) {
      if (
        flag !== undefined &&
        (monitor.filter?.callcontrol as Record<string, boolean> | undefined)?.[flag] === true
      ) {
        continue;
      }
      const event = encodeMessage({ ...message, monitorCrossRefID: monitor.crossRefID } as CstaMessage, {
        ns: monitor.ns,
      });
      const id = this.stanzaId('ev');
      const iq = stanza('iq', { type: 'set', id, from: this.jid, to: monitor.jid });
      iq.append(event);
      this.trackPending(id, monitor.jid);
      if (this.xmpp.send(iq)) {
        this.counters.eventsSent++;
        this.emit('eventSent', monitor.jid, message.name);
      }
    }
  }

  private replayEarlyEvents(): void {
    if (this.earlyEvents.length === 0) return;
    const events = this.earlyEvents.splice(0, this.earlyEvents.length);
    for (const event of events) {
      const xref = (event as { monitorCrossRefID?: string }).monitorCrossRefID!;
      if (this.byPbxCrossRef.has(xref)) this.onPbxEvent(event);
      else if (this.startsInFlight > 0) this.earlyEvents.push(event);
      else this.log.debug({ event: event.name, xref }, 'event for no monitor of ours');
    }
  }

  private onPbxDown(reason: string): void {
    this.earlyEvents.length = 0;
    // The voice server's monitors died with the link; clients keep theirs and get them back on reconnect.
    for (const dm of this.byPbxCrossRef.values()) dm.pbxCrossRefID = undefined;
    this.byPbxCrossRef.clear();
    this.log.warn({ reason }, 'voice-server link down');
  }

  private restoreMonitors(): void {
    for (const [key, dm] of this.devices) {
      if (!inUse(dm)) {
        this.devices.delete(key);
        continue;
      }
      if (dm.pbxCrossRefID !== undefined || dm.starting !== undefined) continue;
      this.startDeviceMonitor(dm).catch((e: unknown) => {
        this.log.warn({ device: dm.device, err: (e as Error).message }, 'could not restore monitor');
        for (const monitor of [...dm.clients.values()]) this.endMonitor(monitor, 'error');
      });
    }
  }

  private onPbxRequest(request: IncomingRequest): void {
    const message = request.message;
    if (message?.name === 'MonitorStop') {
      const dm = this.byPbxCrossRef.get(message.monitorCrossRefID);
      if (dm === undefined) {
        request.fail({ operation: 'invalidMonitorCrossRefID' } as CstaErrorCode);
        return;
      }
      request.reply({ name: 'MonitorStopResponse' });
      this.byPbxCrossRef.delete(message.monitorCrossRefID);
      dm.pbxCrossRefID = undefined;
      // Tell each client in its own terms, then forget its monitor.
      for (const monitor of [...dm.clients.values()]) {
        const iq = stanza('iq', { type: 'set', id: this.stanzaId('stop'), from: this.jid, to: monitor.jid });
        iq.append(
          encodeMessage({ name: 'MonitorStop', monitorCrossRefID: monitor.crossRefID }, { ns: monitor.ns }),
        );
        this.xmpp.send(iq);
        this.endMonitor(monitor, 'stop');
      }
      return;
    }
    request.fail({ operation: 'serviceNotSupported' } as CstaErrorCode);
  }
}

export { COMPONENT_NS };
