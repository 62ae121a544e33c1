/**
 * The CSTA messages this project speaks, in XSD element order (csta.md §2.3–§4; order and enum
 * values from the ECMA-323 ed3/ed6 schemas as summarised there). Fields named `…` in the reference
 * that are not listed here still survive a round trip through `$unknown`.
 */
import type { Element } from '../xml/index.ts';
import {
  bool,
  type Codec,
  CstaDecodeError,
  choice,
  type Edition,
  empty,
  enumOf,
  flags,
  type Infer,
  int,
  list,
  many,
  opt,
  type Preserved,
  raw,
  req,
  type Shape,
  seq,
  text,
} from './schema.ts';

// ---- enumerations -------------------------------------------------------------------------------------

export const EVENT_CAUSES = [
  'aCDBusy',
  'aCDForward',
  'aCDSaturated',
  'activation',
  'activeParticipation',
  'alertTimeExpired',
  'alternate',
  'autoWork',
  'babble',
  'badAttribute',
  'badGrammar',
  'badURI',
  'badVoice',
  'blocked',
  'busy',
  'busyOverflow',
  'calendarOverflow',
  'callBack',
  'callCancelled',
  'callForward',
  'callForwardImmediate',
  'callForwardBusy',
  'callForwardNoAnswer',
  'callInterception',
  'callInterceptionBusy',
  'callInterceptionForwarded',
  'callInterceptionNoAnswer',
  'callInterceptionResourcesNotAvailable',
  'callNotAnswered',
  'callPickup',
  'campOn',
  'campOnTrunks',
  'capacityOverflow',
  'characterCountReached',
  'conference',
  'consultation',
  'destDetected',
  'destNotObtainable',
  'destOutOfOrder',
  'distributed',
  'distributionDelay',
  'doNotDisturb',
  'dTMFDigitDetected',
  'duplicateDTMF',
  'durationExceeded',
  'earlyStop',
  'emptyQueue',
  'endOfMessageDetected',
  'enteringDistribution',
  'forcedPause',
  'forcedTransition',
  'incompatibleDestination',
  'interdigitTimeout',
  'intrude',
  'invalidAccountCode',
  'invalidConnection',
  'invalidConnectionState',
  'invalidNumberFormat',
  'joinCall',
  'keyOperation',
  'keyOperationInUse',
  'lawfulInterception',
  'lockout',
  'maintenance',
  'makeCall',
  'makeConnection',
  'makePredictiveCall',
  'maxTimeout',
  'messageDurationExceeded',
  'messageSizeExceeded',
  'multipleAlerting',
  'multipleQueuing',
  'networkCongestion',
  'networkDialling',
  'networkNotObtainable',
  'networkOutOfOrder',
  'networkSignal',
  'newCall',
  'nextMessage',
  'noAvailableAgents',
  'normal',
  'normalClearing',
  'noAudioSaved',
  'noQueue',
  'noRule',
  'noSpeechDetected',
  'notAvailableBearerService',
  'notSupportedBearerService',
  'numberChanged',
  'numberUnallocated',
  'outOfGrammar',
  'overflow',
  'park',
  'pathReplacement',
  'queueCleared',
  'queueTimeOverflow',
  'recall',
  'recallBusy',
  'recallForwarded',
  'recallNoAnswer',
  'recallResourcesNotAvailable',
  'redirected',
  'remainsInQueue',
  'reorderTone',
  'reserved',
  'resourcesNotAvailable',
  'selectedTrunkBusy',
  'silentParticipation',
  'singleStepConference',
  'singleStepTransfer',
  'speechDetected',
  'suspend',
  'switchingFunctionTerminated',
  'terminationCharacterReceived',
  'timeout',
  'transfer',
  'trunksBusy',
  'unauthorisedBearerService',
  'unknownOverflow',
] as const;
export type EventCause = (typeof EVENT_CAUSES)[number];

export const LOCAL_CONNECTION_STATES = [
  'null',
  'initiated',
  'alerting',
  'connected',
  'hold',
  'queued',
  'fail',
] as const;
export type LocalConnectionState = (typeof LOCAL_CONNECTION_STATES)[number];

export const SYSTEM_STATUSES = [
  'disabled',
  'partiallyDisabled',
  'enabled',
  'initializing',
  'messagesLost',
  'normal',
  'overloadImminent',
  'overloadReached',
  'overloadRelieved',
] as const;
export type SystemStatusValue = (typeof SYSTEM_STATUSES)[number];

export const FORWARDING_TYPES = [
  'forwardImmediate',
  'forwardBusy',
  'forwardNoAns',
  'forwardDND',
  'forwardBusyInt',
  'forwardBusyExt',
  'forwardNoAnsInt',
  'forwardNoAnsExt',
  'forwardImmInt',
  'forwardImmExt',
  'forwardDNDInt',
  'forwardDNDExt',
] as const;
export type ForwardingType = (typeof FORWARDING_TYPES)[number];

export const SIMPLE_CALL_STATES = [
  'callNull',
  'callPending',
  'callOriginated',
  'callDelivered',
  'callDeliveredHeld',
  'callReceived',
  'callEstablished',
  'callEstablishedHeld',
  'callReceivedOnHold',
  'callEstablishedOnHold',
  'callQueued',
  'callQueuedHeld',
  'callFailed',
  'callFailedHeld',
  'callBlocked',
] as const;

export const DEVICE_CATEGORIES = [
  'acd',
  'group',
  'networkInterface',
  'park',
  'routeingDevice',
  'station',
  'voiceUnit',
  'conference',
  'other',
] as const;

export const APPEARANCE_TYPES = [
  'selectedStandard',
  'basicStandard',
  'basicBridged',
  'exclusiveBridged',
  'independentSharedBridged',
  'interdependentSharedBridged',
] as const;

export const OPERATION_ERRORS = [
  'generic',
  'invalidCallID',
  'invalidConnectionID',
  'invalidDeviceID',
  'invalidCalledDeviceID',
  'invalidCallingDeviceID',
  'invalidDestinationDeviceID',
  'invalidMonitorObject',
  'invalidMonitorCrossRefID',
  'invalidForwardingType',
  'invalidForwardingDestination',
  'invalidDoNotDisturb',
  'invalidParameterValue',
  'notSameDevice',
  'notDifferentDevices',
  'objectNotKnown',
  'parameterNotSupported',
  'serviceNotSupported',
  'requestIncompatibleWithDevice',
  'requestIncompatibleWithConnection',
  'privilegeViolationSpecifiedDevice',
  'valueOutOfRange',
] as const;
export const STATE_ERRORS = [
  'generic',
  'invalidObjectState',
  'invalidDeviceState',
  'invalidConnectionState',
  'invalidActiveConnectionState',
  'invalidHeldConnectionState',
  'noActiveCall',
  'noCallToAnswer',
  'noCallToClear',
  'noConnectionToClear',
  'noHeldCall',
  'connectedCallExists',
] as const;
export const SYSTEM_RESOURCE_ERRORS = [
  'generic',
  'resourceBusy',
  'internalResourceBusy',
  'networkBusy',
  'resourceOutOfService',
  'deviceOutOfService',
  'calledDeviceOutOfService',
  'callingDeviceOutOfService',
  'resourceLimitExceeded',
  'overallMonitorLimitExceeded',
  'conferenceMemberLimitExceeded',
] as const;
export const SUBSCRIBED_RESOURCE_ERRORS = [
  'generic',
  'objectMonitorLimitExceeded',
  'trunkLimitExceeded',
  'outstandingReqLimitExceeded',
  'objectRegistrationLimitExceeded',
] as const;
export const SECURITY_ERRORS = [
  'generic',
  'sequenceNumberViolated',
  'timeStampViolated',
  'securityInfoViolated',
] as const;
export const PERFORMANCE_ERRORS = ['generic', 'performanceLimitExceeded'] as const;

export const CALL_CONTROL_FILTERS = [
  'bridged',
  'callCleared',
  'conferenced',
  'connectionCleared',
  'delivered',
  'digitsDialed',
  'diverted',
  'established',
  'failed',
  'held',
  'networkCapabilitiesChanged',
  'networkReached',
  'offered',
  'originated',
  'queued',
  'retrieved',
  'serviceInitiated',
  'transferred',
] as const;

// ---- common types ----------------------------------------------------------------------------------------

/** Invalid causes (UNI sends "Normal Clearing") are read as `normal` and logged (csta.md §4). */
const cause = enumOf(EVENT_CAUSES, 'normal');
/** ClearConnection/ClearCall `reason`: an EventCause; free text there is kept raw, not rewritten. */
const reasonCause = enumOf(EVENT_CAUSES);
const lci = enumOf(LOCAL_CONNECTION_STATES);
const deviceID = text;

export const connectionID = seq({ callID: opt(text), deviceID: opt(deviceID) });
export type ConnectionID = Infer<typeof connectionID>;

/** SubjectDeviceID, CallingDeviceID, CalledDeviceID, AlertingDeviceID, … */
export const deviceChoice = choice({ deviceIdentifier: deviceID, notKnown: empty, restricted: empty });
export type DeviceChoice = Infer<typeof deviceChoice>;

/**
 * RedirectionDeviceID has no deviceIdentifier choice (csta.md §1); one sent anyway is read as
 * numberDialed, which is what the peer meant.
 */
export const redirectionDevice = choice(
  { numberDialed: deviceID, notKnown: empty, notRequired: empty, notSpecified: empty, restricted: empty },
  { deviceIdentifier: 'numberDialed' },
);
export type RedirectionDevice = Infer<typeof redirectionDevice>;

export const connectionListItem = seq({
  newConnection: opt(connectionID),
  oldConnection: opt(connectionID),
  endpoint: opt(choice({ deviceID, notKnown: empty, restricted: empty })),
  associatedNID: opt(raw),
  resultingConnectionInfo: opt(raw),
});
export type ConnectionListItem = Infer<typeof connectionListItem>;
const connectionList = list('connectionListItem', connectionListItem);

export const monitorFilter = seq({
  callcontrol: opt(flags(CALL_CONTROL_FILTERS), { aliases: ['callControl'] }),
  callAssociated: opt(raw),
  mediaAttachment: opt(raw),
  physicalDeviceFeature: opt(raw),
  logicalDeviceFeature: opt(raw),
  maintenance: opt(raw),
  voice: opt(raw),
  private: opt(raw),
});
export type MonitorFilter = Infer<typeof monitorFilter>;

/**
 * DeflectCall newDestination (csta.md §1): plain text in ed3/ed4 (and OpenScape Voice), wrapped in
 * `<device>` in the ed5/ed6 types and Yealink's parser. Both forms are read; the edition picks the
 * written one.
 */
export const deflectDestination: Codec<string> = {
  decode: (el) => {
    const device = el.getChild('device');
    return device === undefined ? el.text().trim() : device.text();
  },
  encode: (el, value, ctx) => {
    if (ctx.edition === 'ed5' || ctx.edition === 'ed6') el.c('device', {}, ctx.ns).append(value);
    else el.append(value);
  },
};

const ED6: readonly Edition[] = ['ed6'];

const forwardListItem = seq({
  forwardingType: opt(enumOf(FORWARDING_TYPES)),
  forwardStatus: req(bool),
  forwardDN: opt(deviceID),
  forwardDefault: opt(enumOf(['forwardingTypeAndForwardDN', 'forwardingType', 'forwardDN'])),
  ringCount: opt(int),
  ringDuration: opt(int, { editions: ED6 }),
});

const localCallState = choice({
  compoundCallState: seq({ localConnectionState: many(lci) }),
  simpleCallState: enumOf(SIMPLE_CALL_STATES),
  unknown: empty,
});

const snapshotDeviceInfo = seq({
  snapshotDeviceResponseInfo: many(
    seq({
      connectionIdentifier: req(connectionID),
      endpointDevice: opt(raw),
      localCallState: req(localCallState),
      servicesPermitted: opt(raw),
      mediaServiceInfoList: opt(raw),
      mediaCallCharacteristics: opt(raw),
      callLinkageData: opt(raw),
    }),
  ),
});

const snapshotCallInfo = seq({
  snapshotCallResponseInfo: many(
    seq({
      deviceOnCall: req(deviceChoice),
      callIdentifier: opt(connectionID),
      localConnectionInfo: opt(lci),
      servicesPermitted: opt(raw),
      mediaServiceInfoList: opt(raw),
    }),
  ),
});

const errorCode = choice(
  {
    operation: enumOf(OPERATION_ERRORS, 'generic'),
    security: enumOf(SECURITY_ERRORS, 'generic'),
    stateIncompatibility: enumOf(STATE_ERRORS, 'generic'),
    systemResourceAvailibility: enumOf(SYSTEM_RESOURCE_ERRORS, 'generic'),
    subscribedResourceAvailability: enumOf(SUBSCRIBED_RESOURCE_ERRORS, 'generic'),
    performanceManagement: enumOf(PERFORMANCE_ERRORS, 'generic'),
    privateData: raw,
    unspecified: empty,
    privateErrorCode: text,
  },
  { systemResourceAvailability: 'systemResourceAvailibility' },
);

/** A message: its fields in XSD order, then the optional `extensions` that every message ends with. */
function message<S extends Shape>(shape: S) {
  return seq({ ...shape, extensions: opt(raw) });
}

const mon = { monitorCrossRefID: req(text) };
const NONE = {};

// ---- services (csta.md §3) ------------------------------------------------------------------------------

const SERVICES = {
  MonitorStart: message({
    monitorObject: req(choice({ deviceObject: deviceID, callObject: connectionID })),
    requestedMonitorFilter: opt(monitorFilter),
    monitorType: opt(enumOf(['call', 'device'])),
    requestedMonitorMediaClass: opt(raw),
  }),
  MonitorStartResponse: message({
    monitorCrossRefID: req(text),
    actualMonitorFilter: opt(monitorFilter),
    actualMonitorMediaClass: opt(raw),
    monitorExistingCalls: opt(bool),
  }),
  MonitorStop: message({ monitorCrossRefID: req(text) }),
  MonitorStopResponse: message(NONE),

  MakeCall: message({
    callingDevice: req(deviceID),
    calledDirectoryNumber: req(deviceID),
    accountCode: opt(text),
    authCode: opt(text),
    autoOriginate: opt(enumOf(['prompt', 'doNotPrompt'])),
    correlatorData: opt(raw),
    userData: opt(raw),
    callCharacteristics: opt(raw),
    mediaCallCharacteristics: opt(raw),
    callLinkageData: opt(raw),
  }),
  MakeCallResponse: message({
    callingDevice: req(connectionID),
    mediaServiceInstanceID: opt(text),
    callLinkageData: opt(raw),
  }),
  AnswerCall: message({ callToBeAnswered: req(connectionID), correlatorData: opt(raw), userData: opt(raw) }),
  AnswerCallResponse: message(NONE),
  ClearConnection: message({
    connectionToBeCleared: req(connectionID),
    correlatorData: opt(raw),
    userData: opt(raw),
    reason: opt(reasonCause),
  }),
  ClearConnectionResponse: message(NONE),
  ClearCall: message({
    callToBeCleared: req(connectionID),
    correlatorData: opt(raw),
    userData: opt(raw),
    reason: opt(reasonCause, { editions: ED6 }),
  }),
  ClearCallResponse: message(NONE),
  HoldCall: message({ callToBeHeld: req(connectionID), connectionReservation: opt(bool) }),
  HoldCallResponse: message(NONE),
  RetrieveCall: message({ callToBeRetrieved: req(connectionID) }),
  RetrieveCallResponse: message(NONE),
  ConsultationCall: message({
    existingCall: req(connectionID),
    consultedDevice: req(deviceID),
    connectionReservation: opt(bool),
    correlatorData: opt(raw),
    userData: opt(raw),
    consultOptions: opt(enumOf(['unrestricted', 'consultOnly', 'transferOnly', 'conferenceOnly'])),
  }),
  ConsultationCallResponse: message({ initiatedCall: req(connectionID) }),
  TransferCall: message({ heldCall: req(connectionID), activeCall: req(connectionID) }),
  TransferCallResponse: message({ transferredCall: req(connectionID), connections: opt(connectionList) }),
  SingleStepTransferCall: message({
    activeCall: req(connectionID),
    transferredTo: req(deviceID),
    accountCode: opt(text),
    authCode: opt(text),
    correlatorData: opt(raw),
    userData: opt(raw),
  }),
  SingleStepTransferCallResponse: message({
    transferredCall: req(connectionID),
    connections: opt(connectionList),
  }),
  DeflectCall: message({
    callToBeDiverted: req(connectionID),
    newDestination: req(deflectDestination),
    correlatorData: opt(raw),
    userData: opt(raw),
  }),
  DeflectCallResponse: message(NONE),
  ConferenceCall: message({ heldCall: req(connectionID), activeCall: req(connectionID) }),
  ConferenceCallResponse: message({ conferenceCall: req(connectionID), connections: opt(connectionList) }),

  SetForwarding: message({
    device: req(deviceID),
    forwardingType: opt(enumOf(FORWARDING_TYPES)),
    activateForward: req(bool),
    forwardDN: opt(deviceID),
    ringCount: opt(int),
    ringDuration: opt(int, { editions: ED6 }),
  }),
  SetForwardingResponse: message(NONE),
  GetForwarding: message({ device: req(deviceID) }),
  GetForwardingResponse: message({ forwardingList: opt(list('forwardListItem', forwardListItem)) }),
  SetDoNotDisturb: message({
    device: req(deviceID),
    doNotDisturbOn: req(bool),
    callOrigination: opt(raw),
    callingDeviceList: opt(raw),
  }),
  SetDoNotDisturbResponse: message(NONE),
  GetDoNotDisturb: message({ device: req(deviceID) }),
  GetDoNotDisturbResponse: message({
    doNotDisturbOn: req(bool),
    callOrigination: opt(raw),
    callingDeviceList: opt(raw),
  }),

  SnapshotDevice: message({ snapshotObject: req(deviceID) }),
  SnapshotDeviceResponse: message({
    crossRefIDorSnapshotData: req(choice({ serviceCrossRefID: text, snapshotData: snapshotDeviceInfo })),
  }),
  SnapshotDeviceData: message({
    serviceCrossRefID: req(text),
    segmentID: opt(int),
    snapshotData: req(snapshotDeviceInfo),
    lastSegment: opt(bool),
  }),
  SnapshotCall: message({ snapshotObject: req(connectionID) }),
  SnapshotCallResponse: message({
    crossRefIDorSnapshotData: req(choice({ serviceCrossRefID: text, snapshotData: snapshotCallInfo })),
    callingDevice: opt(deviceChoice),
    calledDevice: opt(deviceChoice),
    correlatorData: opt(raw),
  }),

  GetLogicalDeviceInformation: message({ device: req(deviceID) }),
  GetLogicalDeviceInformationResponse: message({
    deviceCategory: opt(enumOf(DEVICE_CATEGORIES)),
    groupDeviceAttributes: opt(raw),
    namedDeviceTypes: opt(raw),
    hasPhysicalElement: req(bool),
    acdModels: req(raw),
    agentLogOnModels: opt(raw),
    appearanceAddressable: req(bool),
    appearanceType: req(enumOf(APPEARANCE_TYPES)),
    callingDeviceID: opt(text),
    maxActiveCalls: opt(int),
    maxHeldCalls: opt(int),
  }),
  GetPhysicalDeviceInformation: message({ device: req(deviceID) }),
  GetPhysicalDeviceInformationResponse: message({
    deviceCategory: opt(enumOf(DEVICE_CATEGORIES)),
    groupDeviceAttributes: opt(raw),
    namedDeviceTypes: opt(raw),
    hasLogicalElement: req(bool),
    otherLogicalDeviceList: opt(raw),
    deviceModelName: opt(text),
  }),

  /** Real servers send an empty `<SystemStatus/>`, so `systemStatus` is optional on input (§2.4). */
  SystemStatus: message({
    sysStatRegisterID: opt(text),
    systemStatus: opt(enumOf(SYSTEM_STATUSES, 'normal')),
  }),
  SystemStatusResponse: message(NONE),
  RequestSystemStatus: message({ sysStatRegisterID: opt(text) }),
  RequestSystemStatusResponse: message({ systemStatus: req(enumOf(SYSTEM_STATUSES, 'normal')) }),
  SystemRegister: message({
    requestTypes: req(
      flags([
        'systemStatus',
        'requestSystemStatus',
        'switchingFunctionCapsChanged',
        'switchingFunctionDevicesChanged',
      ]),
    ),
    requestedStatusFilter: opt(raw),
  }),
  SystemRegisterResponse: message({ sysStatRegisterID: req(text), actualStatusFilter: opt(raw) }),

  Escape: message({
    escapeRegisterID: opt(text),
    security: opt(raw),
    privateData: req(choice({ private: raw, string: text })),
  }),
  EscapeResponse: message(NONE),
  EscapeRegister: message(NONE),
  EscapeRegisterResponse: message({ escapeRegisterID: req(text) }),

  CSTAErrorCode: errorCode,
} as const;

// ---- events (csta.md §4) -----------------------------------------------------------------------------------

const trailing = {
  servicesPermitted: opt(raw),
  networkCallingDevice: opt(raw),
  networkCalledDevice: opt(raw),
  associatedCallingDevice: opt(raw),
  associatedCalledDevice: opt(raw),
  mediaCallCharacteristics: opt(raw),
};

const EVENTS = {
  ServiceInitiatedEvent: message({
    ...mon,
    initiatedConnection: req(connectionID),
    initiatingDevice: req(deviceChoice),
    calledDevice: opt(deviceChoice, { editions: ED6 }),
    localConnectionInfo: opt(lci),
    correlatorData: opt(raw),
    cause: req(cause),
    ...trailing,
  }),
  OriginatedEvent: message({
    ...mon,
    originatedConnection: req(connectionID),
    callingDevice: req(deviceChoice),
    calledDevice: req(deviceChoice),
    originatingDevice: opt(deviceChoice),
    localConnectionInfo: opt(lci),
    correlatorData: opt(raw),
    userData: opt(raw),
    cause: req(cause),
    ...trailing,
  }),
  DeliveredEvent: message({
    ...mon,
    connection: req(connectionID),
    alertingDevice: req(deviceChoice),
    callingDevice: req(deviceChoice),
    calledDevice: req(deviceChoice),
    lastRedirectionDevice: req(redirectionDevice),
    originatingNIDConnection: opt(connectionID),
    localConnectionInfo: opt(lci),
    correlatorData: opt(raw),
    userData: opt(raw),
    cause: req(cause),
    ...trailing,
  }),
  EstablishedEvent: message({
    ...mon,
    establishedConnection: req(connectionID),
    answeringDevice: req(deviceChoice),
    callingDevice: req(deviceChoice),
    calledDevice: req(deviceChoice),
    lastRedirectionDevice: req(redirectionDevice),
    originatingNIDConnection: opt(connectionID, { aliases: ['originatinNIDConnection'] }),
    localConnectionInfo: opt(lci),
    correlatorData: opt(raw),
    userData: opt(raw),
    cause: req(cause),
    ...trailing,
  }),
  ConnectionClearedEvent: message({
    ...mon,
    droppedConnection: req(connectionID),
    releasingDevice: req(deviceChoice),
    localConnectionInfo: opt(lci),
    correlatorData: opt(raw),
    userData: opt(raw),
    chargingInfo: opt(raw),
    cause: req(cause),
    servicesPermitted: opt(raw),
    mediaCallCharacteristics: opt(raw),
  }),
  HeldEvent: message({
    ...mon,
    heldConnection: req(connectionID),
    holdingDevice: req(deviceChoice),
    localConnectionInfo: opt(lci),
    correlatorData: opt(raw),
    cause: req(cause),
    servicesPermitted: opt(raw),
    mediaCallCharacteristics: opt(raw),
  }),
  RetrievedEvent: message({
    ...mon,
    retrievedConnection: req(connectionID),
    retrievingDevice: req(deviceChoice),
    localConnectionInfo: opt(lci),
    correlatorData: opt(raw),
    cause: req(cause),
    servicesPermitted: opt(raw),
    mediaCallCharacteristics: opt(raw),
  }),
  TransferedEvent: message({
    ...mon,
    primaryOldCall: req(connectionID),
    secondaryOldCall: opt(connectionID),
    transferringDevice: req(deviceChoice),
    transferredToDevice: req(deviceChoice),
    transferredConnections: req(connectionList),
    localConnectionInfo: opt(lci),
    correlatorData: opt(raw),
    userData: opt(raw),
    chargingInfo: opt(raw),
    cause: req(cause),
    servicesPermitted: opt(raw),
    mediaCallCharacteristics: opt(raw),
  }),
  ConferencedEvent: message({
    ...mon,
    primaryOldCall: req(connectionID),
    secondaryOldCall: opt(connectionID),
    conferencingDevice: req(deviceChoice),
    addedParty: req(deviceChoice),
    conferenceConnections: req(connectionList),
    localConnectionInfo: opt(lci),
    correlatorData: opt(raw),
    userData: opt(raw),
    cause: req(cause),
    servicesPermitted: opt(raw),
    mediaCallCharacteristics: opt(raw),
  }),
  DivertedEvent: message({
    ...mon,
    connection: req(connectionID),
    divertingDevice: req(deviceChoice),
    newDestination: req(deviceChoice),
    callingDevice: opt(deviceChoice),
    calledDevice: opt(deviceChoice),
    lastRedirectionDevice: opt(redirectionDevice),
    localConnectionInfo: opt(lci),
    correlatorData: opt(raw),
    userData: opt(raw),
    cause: req(cause),
    servicesPermitted: opt(raw),
    mediaCallCharacteristics: opt(raw),
  }),
  FailedEvent: message({
    ...mon,
    failedConnection: req(connectionID),
    failingDevice: req(deviceChoice),
    callingDevice: req(deviceChoice),
    calledDevice: req(deviceChoice),
    lastRedirectionDevice: req(redirectionDevice),
    originatingNIDConnection: opt(connectionID),
    localConnectionInfo: opt(lci),
    correlatorData: opt(raw),
    userData: opt(raw),
    cause: req(cause),
    servicesPermitted: opt(raw),
    mediaCallCharacteristics: opt(raw),
  }),
  CallClearedEvent: message({
    ...mon,
    clearedCall: req(connectionID),
    correlatorData: opt(raw),
    userData: opt(raw),
    cause: req(cause),
    servicesPermitted: opt(raw),
    mediaCallCharacteristics: opt(raw),
  }),
  DoNotDisturbEvent: message({
    ...mon,
    device: req(deviceChoice),
    doNotDisturbOn: req(bool),
    callOrigination: opt(raw),
    callingDeviceList: opt(raw),
  }),
  ForwardingEvent: message({
    ...mon,
    device: req(deviceChoice),
    forwardingType: opt(enumOf(FORWARDING_TYPES)),
    forwardStatus: req(bool),
    forwardTo: opt(deviceID),
    forwardDefault: opt(enumOf(['forwardingTypeAndForwardDN', 'forwardingType', 'forwardDN'])),
    ringCount: opt(int),
    ringDuration: opt(int, { editions: ED6 }),
  }),
  BackInServiceEvent: message({ ...mon, device: req(deviceChoice), cause: opt(cause) }),
  OutOfServiceEvent: message({ ...mon, device: req(deviceChoice), cause: opt(cause) }),
} as const;

// ---- ECMA-354 application session (csta.md §2.3) ----------------------------------------------------------

const applErrorCode = (defined: readonly string[]) =>
  choice({ definedError: enumOf(defined), applError: text });

const SESSION = {
  StartApplicationSession: message({
    applicationInfo: req(seq({ applicationID: req(text), applicationSpecificInfo: opt(raw) })),
    requestedProtocolVersions: req(seq({ protocolVersion: many(text) })),
    requestedSessionDuration: opt(int),
  }),
  StartApplicationSessionPosResponse: message({
    sessionID: req(text),
    actualProtocolVersion: req(text),
    actualSessionDuration: opt(int),
  }),
  StartApplicationSessionNegResponse: message({
    errorCode: req(
      applErrorCode([
        'invalidApplicationInfo',
        'requestedProtocolVersionNotSupported',
        'serverResourcesBusy',
        'maxNumberSessions',
      ]),
    ),
  }),
  StopApplicationSession: message({
    sessionID: req(text),
    sessionEndReason: req(choice({ definedEndReason: text, appEndReason: text })),
  }),
  StopApplicationSessionPosResponse: message(NONE),
  StopApplicationSessionNegResponse: message({
    errorCode: req(choice({ definedError: text, applError: text })),
  }),
  ResetApplicationSessionTimer: message({ sessionID: req(text), requestedSessionDuration: req(int) }),
  ResetApplicationSessionTimerPosResponse: message({ actualSessionDuration: req(int) }),
  ResetApplicationSessionTimerNegResponse: message({
    errorCode: req(applErrorCode(['invalidSessionID', 'serverCannotResetSessionTimer'])),
  }),
  ApplicationSessionTerminated: message({
    sessionID: req(text),
    sessionTermReason: req(
      choice({
        definedTermReason: enumOf(['sessionTimerExpired', 'resourceLimitation']),
        serverTermReason: text,
      }),
    ),
  }),
} as const;

export const MESSAGE_CODECS = { ...SERVICES, ...EVENTS, ...SESSION } as const;
export type MessageName = keyof typeof MESSAGE_CODECS;
export type MessageData<K extends MessageName> = Infer<(typeof MESSAGE_CODECS)[K]>;

/** A decoded or to-be-encoded CSTA message: its root element name plus its fields. */
export type CstaMessage = { [K in MessageName]: { name: K } & MessageData<K> }[MessageName];
export type MessageOf<K extends MessageName> = { name: K } & MessageData<K>;

export const SESSION_MESSAGE_NAMES: ReadonlySet<string> = new Set(Object.keys(SESSION));
export const EVENT_NAMES: ReadonlySet<string> = new Set(Object.keys(EVENTS));

export function isMessageName(name: string): name is MessageName {
  return Object.hasOwn(MESSAGE_CODECS, name);
}

export type CstaErrorCode = MessageData<'CSTAErrorCode'>;

/** Children of `extensions/privateData/private` (vendor data such as `scx:` or `lcs:line`). */
export function privateDataOf(message: { extensions?: Element } & Preserved): Element[] {
  const priv = message.extensions?.find('privateData', 'private');
  return priv === undefined ? [] : priv.elements();
}

export { CstaDecodeError };
