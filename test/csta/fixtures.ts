/**
 * Every XML example of shared/reference/csta.md (§2.3, §2.5, §2.6, §3, §4), with `…/csta/ed4` written out.
 * The one change: the XML comment in the StartApplicationSession example (comments are refused by the
 * XML layer) is replaced by the Avaya login element it describes.
 */
export interface Fixture {
  name: string;
  xml: string;
}

export const REFERENCE_EXAMPLES: Fixture[] = [
  {
    name: 'StartApplicationSession',
    xml: '<StartApplicationSession xmlns="http://www.ecma-international.org/standards/ecma-354/appl_session">\n  <applicationInfo>\n    <applicationID>gw</applicationID>\n    <applicationSpecificInfo><csta:SessionLoginInfo xmlns:csta="http://www.avaya.com/csta"><csta:userName>gw</csta:userName><csta:password>secret</csta:password><csta:sessionCleanupDelay>60</csta:sessionCleanupDelay></csta:SessionLoginInfo></applicationSpecificInfo>\n  </applicationInfo>\n  <requestedProtocolVersions>\n    <protocolVersion>http://www.ecma-international.org/standards/ecma-323/csta/ed4</protocolVersion>\n  </requestedProtocolVersions>\n  <requestedSessionDuration>180</requestedSessionDuration>\n</StartApplicationSession>',
  },
  {
    name: 'StartApplicationSessionPosResponse',
    xml: '<StartApplicationSessionPosResponse xmlns="http://www.ecma-international.org/standards/ecma-354/appl_session">\n  <sessionID>009968951</sessionID>\n  <actualProtocolVersion>http://www.ecma-international.org/standards/ecma-323/csta/ed4</actualProtocolVersion>\n  <actualSessionDuration>600</actualSessionDuration>\n</StartApplicationSessionPosResponse>',
  },
  {
    name: 'StartApplicationSessionNegResponse',
    xml: '<StartApplicationSessionNegResponse xmlns="http://www.ecma-international.org/standards/ecma-354/appl_session">\n  <errorCode><definedError>requestedProtocolVersionNotSupported</definedError></errorCode>\n</StartApplicationSessionNegResponse>',
  },
  {
    name: 'CSTAErrorCode',
    xml: '<CSTAErrorCode xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4">\n  <operation>invalidDeviceID</operation>\n</CSTAErrorCode>',
  },
  {
    name: 'MonitorStart',
    xml: '<MonitorStart xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><monitorObject><deviceObject>201</deviceObject></monitorObject><monitorType>device</monitorType></MonitorStart>',
  },
  {
    name: 'MonitorStartResponse',
    xml: '<MonitorStartResponse xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><monitorCrossRefID>mon201</monitorCrossRefID></MonitorStartResponse>',
  },
  {
    name: 'MonitorStop',
    xml: '<MonitorStop xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><monitorCrossRefID>mon201</monitorCrossRefID></MonitorStop>',
  },
  {
    name: 'MonitorStopResponse',
    xml: '<MonitorStopResponse xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"/>',
  },
  {
    name: 'MakeCall',
    xml: '<MakeCall xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><callingDevice>201</callingDevice><calledDirectoryNumber>202</calledDirectoryNumber><autoOriginate>prompt</autoOriginate></MakeCall>',
  },
  {
    name: 'MakeCallResponse',
    xml: '<MakeCallResponse xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><callingDevice><callID>c1</callID><deviceID>201</deviceID></callingDevice></MakeCallResponse>',
  },
  {
    name: 'AnswerCall',
    xml: '<AnswerCall xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><callToBeAnswered><callID>c1</callID><deviceID>202</deviceID></callToBeAnswered></AnswerCall>',
  },
  {
    name: 'AnswerCallResponse',
    xml: '<AnswerCallResponse xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"/>',
  },
  {
    name: 'ClearConnection',
    xml: '<ClearConnection xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><connectionToBeCleared><callID>c1</callID><deviceID>201</deviceID></connectionToBeCleared></ClearConnection>',
  },
  {
    name: 'ClearConnectionResponse',
    xml: '<ClearConnectionResponse xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"/>',
  },
  {
    name: 'ClearCall',
    xml: '<ClearCall xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><callToBeCleared><callID>c1</callID></callToBeCleared></ClearCall>',
  },
  {
    name: 'ClearCallResponse',
    xml: '<ClearCallResponse xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"/>',
  },
  {
    name: 'HoldCall',
    xml: '<HoldCall xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><callToBeHeld><callID>c1</callID><deviceID>201</deviceID></callToBeHeld></HoldCall>',
  },
  {
    name: 'HoldCallResponse',
    xml: '<HoldCallResponse xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"/>',
  },
  {
    name: 'RetrieveCall',
    xml: '<RetrieveCall xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><callToBeRetrieved><callID>c1</callID><deviceID>201</deviceID></callToBeRetrieved></RetrieveCall>',
  },
  {
    name: 'RetrieveCallResponse',
    xml: '<RetrieveCallResponse xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"/>',
  },
  {
    name: 'ConsultationCall',
    xml: '<ConsultationCall xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><existingCall><callID>c1</callID><deviceID>201</deviceID></existingCall><consultedDevice>203</consultedDevice></ConsultationCall>',
  },
  {
    name: 'ConsultationCallResponse',
    xml: '<ConsultationCallResponse xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><initiatedCall><callID>c2</callID><deviceID>201</deviceID></initiatedCall></ConsultationCallResponse>',
  },
  {
    name: 'TransferCall',
    xml: '<TransferCall xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><heldCall><callID>c1</callID><deviceID>201</deviceID></heldCall><activeCall><callID>c2</callID><deviceID>201</deviceID></activeCall></TransferCall>',
  },
  {
    name: 'TransferCallResponse',
    xml: '<TransferCallResponse xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><transferredCall><callID>c1</callID><deviceID>203</deviceID></transferredCall>\n  <connections>\n    <connectionListItem><newConnection><callID>c1</callID><deviceID>202</deviceID></newConnection><oldConnection><callID>c1</callID><deviceID>202</deviceID></oldConnection></connectionListItem>\n    <connectionListItem><newConnection><callID>c1</callID><deviceID>203</deviceID></newConnection><oldConnection><callID>c2</callID><deviceID>203</deviceID></oldConnection></connectionListItem>\n  </connections></TransferCallResponse>',
  },
  {
    name: 'SingleStepTransferCall',
    xml: '<SingleStepTransferCall xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><activeCall><callID>c1</callID><deviceID>201</deviceID></activeCall><transferredTo>203</transferredTo></SingleStepTransferCall>',
  },
  {
    name: 'SingleStepTransferCallResponse',
    xml: '<SingleStepTransferCallResponse xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><transferredCall><callID>c1</callID><deviceID>203</deviceID></transferredCall></SingleStepTransferCallResponse>',
  },
  {
    name: 'DeflectCall',
    xml: '<DeflectCall xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><callToBeDiverted><callID>c1</callID><deviceID>202</deviceID></callToBeDiverted><newDestination>203</newDestination></DeflectCall>',
  },
  {
    name: 'DeflectCallResponse',
    xml: '<DeflectCallResponse xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"/>',
  },
  {
    name: 'ConferenceCall',
    xml: '<ConferenceCall xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><heldCall><callID>c1</callID><deviceID>201</deviceID></heldCall><activeCall><callID>c2</callID><deviceID>201</deviceID></activeCall></ConferenceCall>',
  },
  {
    name: 'ConferenceCallResponse',
    xml: '<ConferenceCallResponse xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><conferenceCall><callID>c1</callID><deviceID>201</deviceID></conferenceCall></ConferenceCallResponse>',
  },
  {
    name: 'SetForwarding',
    xml: '<SetForwarding xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><device>202</device><forwardingType>forwardImmediate</forwardingType><activateForward>true</activateForward><forwardDN>203</forwardDN></SetForwarding>',
  },
  {
    name: 'SetForwardingResponse',
    xml: '<SetForwardingResponse xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"/>',
  },
  {
    name: 'GetForwarding',
    xml: '<GetForwarding xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><device>202</device></GetForwarding>',
  },
  {
    name: 'GetForwardingResponse',
    xml: '<GetForwardingResponse xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><forwardingList>\n  <forwardListItem><forwardingType>forwardImmediate</forwardingType><forwardStatus>true</forwardStatus><forwardDN>203</forwardDN></forwardListItem>\n  <forwardListItem><forwardingType>forwardNoAns</forwardingType><forwardStatus>false</forwardStatus><ringCount>4</ringCount></forwardListItem>\n</forwardingList></GetForwardingResponse>',
  },
  {
    name: 'SetDoNotDisturb',
    xml: '<SetDoNotDisturb xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><device>202</device><doNotDisturbOn>true</doNotDisturbOn></SetDoNotDisturb>',
  },
  {
    name: 'SetDoNotDisturbResponse',
    xml: '<SetDoNotDisturbResponse xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"/>',
  },
  {
    name: 'GetDoNotDisturb',
    xml: '<GetDoNotDisturb xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><device>202</device></GetDoNotDisturb>',
  },
  {
    name: 'GetDoNotDisturbResponse',
    xml: '<GetDoNotDisturbResponse xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><doNotDisturbOn>true</doNotDisturbOn></GetDoNotDisturbResponse>',
  },
  {
    name: 'SnapshotDevice',
    xml: '<SnapshotDevice xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><snapshotObject>201</snapshotObject></SnapshotDevice>',
  },
  {
    name: 'SnapshotDeviceResponse',
    xml: '<SnapshotDeviceResponse xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><crossRefIDorSnapshotData><snapshotData>\n  <snapshotDeviceResponseInfo>\n    <connectionIdentifier><callID>c1</callID><deviceID>201</deviceID></connectionIdentifier>\n    <localCallState><compoundCallState><localConnectionState>connected</localConnectionState></compoundCallState></localCallState>\n  </snapshotDeviceResponseInfo>\n</snapshotData></crossRefIDorSnapshotData></SnapshotDeviceResponse>',
  },
  {
    name: 'SnapshotCall',
    xml: '<SnapshotCall xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><snapshotObject><callID>c1</callID><deviceID>201</deviceID></snapshotObject></SnapshotCall>',
  },
  {
    name: 'SnapshotCallResponse',
    xml: '<SnapshotCallResponse xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><crossRefIDorSnapshotData><snapshotData>\n  <snapshotCallResponseInfo><deviceOnCall><deviceIdentifier>201</deviceIdentifier></deviceOnCall><callIdentifier><callID>c1</callID><deviceID>201</deviceID></callIdentifier><localConnectionInfo>connected</localConnectionInfo></snapshotCallResponseInfo>\n  <snapshotCallResponseInfo><deviceOnCall><deviceIdentifier>202</deviceIdentifier></deviceOnCall><callIdentifier><callID>c1</callID><deviceID>202</deviceID></callIdentifier><localConnectionInfo>connected</localConnectionInfo></snapshotCallResponseInfo>\n</snapshotData></crossRefIDorSnapshotData></SnapshotCallResponse>',
  },
  {
    name: 'GetLogicalDeviceInformation',
    xml: '<GetLogicalDeviceInformation xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><device>201</device></GetLogicalDeviceInformation>',
  },
  {
    name: 'GetLogicalDeviceInformationResponse',
    xml: '<GetLogicalDeviceInformationResponse xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><deviceCategory>station</deviceCategory><hasPhysicalElement>true</hasPhysicalElement><acdModels/><appearanceAddressable>false</appearanceAddressable><appearanceType>basicStandard</appearanceType><maxActiveCalls>1</maxActiveCalls><maxHeldCalls>1</maxHeldCalls></GetLogicalDeviceInformationResponse>',
  },
  {
    name: 'GetPhysicalDeviceInformation',
    xml: '<GetPhysicalDeviceInformation xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><device>201</device></GetPhysicalDeviceInformation>',
  },
  {
    name: 'GetPhysicalDeviceInformationResponse',
    xml: '<GetPhysicalDeviceInformationResponse xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><deviceCategory>station</deviceCategory><hasLogicalElement>true</hasLogicalElement><deviceModelName>SIP phone</deviceModelName></GetPhysicalDeviceInformationResponse>',
  },
  {
    name: 'SystemStatus',
    xml: '<SystemStatus xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><systemStatus>normal</systemStatus></SystemStatus>',
  },
  {
    name: 'SystemStatusResponse',
    xml: '<SystemStatusResponse xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"/>',
  },
  {
    name: 'RequestSystemStatus',
    xml: '<RequestSystemStatus xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"/>',
  },
  {
    name: 'RequestSystemStatusResponse',
    xml: '<RequestSystemStatusResponse xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><systemStatus>normal</systemStatus></RequestSystemStatusResponse>',
  },
  {
    name: 'SystemRegister',
    xml: '<SystemRegister xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><requestTypes><systemStatus>true</systemStatus><requestSystemStatus>false</requestSystemStatus></requestTypes></SystemRegister>',
  },
  {
    name: 'SystemRegisterResponse',
    xml: '<SystemRegisterResponse xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><sysStatRegisterID>27ss</sysStatRegisterID></SystemRegisterResponse>',
  },
  {
    name: 'Escape',
    xml: '<Escape xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><privateData><private><x:Ping xmlns:x="urn:example:pbx"/></private></privateData></Escape>',
  },
  {
    name: 'EscapeResponse',
    xml: '<EscapeResponse xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"/>',
  },
  {
    name: 'ServiceInitiatedEvent',
    xml: '<ServiceInitiatedEvent xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><monitorCrossRefID>mon201</monitorCrossRefID><initiatedConnection><callID>c1</callID><deviceID>201</deviceID></initiatedConnection><initiatingDevice><deviceIdentifier>201</deviceIdentifier></initiatingDevice><localConnectionInfo>initiated</localConnectionInfo><cause>makeCall</cause></ServiceInitiatedEvent>',
  },
  {
    name: 'OriginatedEvent',
    xml: '<OriginatedEvent xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><monitorCrossRefID>mon201</monitorCrossRefID><originatedConnection><callID>c1</callID><deviceID>201</deviceID></originatedConnection><callingDevice><deviceIdentifier>201</deviceIdentifier></callingDevice><calledDevice><deviceIdentifier>202</deviceIdentifier></calledDevice><localConnectionInfo>connected</localConnectionInfo><cause>newCall</cause></OriginatedEvent>',
  },
  {
    name: 'DeliveredEvent',
    xml: '<DeliveredEvent xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><monitorCrossRefID>mon202</monitorCrossRefID><connection><callID>c1</callID><deviceID>202</deviceID></connection><alertingDevice><deviceIdentifier>202</deviceIdentifier></alertingDevice><callingDevice><deviceIdentifier>201</deviceIdentifier></callingDevice><calledDevice><deviceIdentifier>202</deviceIdentifier></calledDevice><lastRedirectionDevice><notRequired/></lastRedirectionDevice><localConnectionInfo>alerting</localConnectionInfo><cause>newCall</cause></DeliveredEvent>',
  },
  {
    name: 'EstablishedEvent',
    xml: '<EstablishedEvent xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><monitorCrossRefID>mon201</monitorCrossRefID><establishedConnection><callID>c1</callID><deviceID>202</deviceID></establishedConnection><answeringDevice><deviceIdentifier>202</deviceIdentifier></answeringDevice><callingDevice><deviceIdentifier>201</deviceIdentifier></callingDevice><calledDevice><deviceIdentifier>202</deviceIdentifier></calledDevice><lastRedirectionDevice><notRequired/></lastRedirectionDevice><localConnectionInfo>connected</localConnectionInfo><cause>newCall</cause></EstablishedEvent>',
  },
  {
    name: 'ConnectionClearedEvent',
    xml: '<ConnectionClearedEvent xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><monitorCrossRefID>mon202</monitorCrossRefID><droppedConnection><callID>c1</callID><deviceID>201</deviceID></droppedConnection><releasingDevice><deviceIdentifier>201</deviceIdentifier></releasingDevice><localConnectionInfo>connected</localConnectionInfo><cause>normalClearing</cause></ConnectionClearedEvent>',
  },
  {
    name: 'HeldEvent',
    xml: '<HeldEvent xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><monitorCrossRefID>mon201</monitorCrossRefID><heldConnection><callID>c1</callID><deviceID>201</deviceID></heldConnection><holdingDevice><deviceIdentifier>201</deviceIdentifier></holdingDevice><localConnectionInfo>hold</localConnectionInfo><cause>normal</cause></HeldEvent>',
  },
  {
    name: 'RetrievedEvent',
    xml: '<RetrievedEvent xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><monitorCrossRefID>mon201</monitorCrossRefID><retrievedConnection><callID>c1</callID><deviceID>201</deviceID></retrievedConnection><retrievingDevice><deviceIdentifier>201</deviceIdentifier></retrievingDevice><localConnectionInfo>connected</localConnectionInfo><cause>normal</cause></RetrievedEvent>',
  },
  {
    name: 'TransferedEvent',
    xml: '<TransferedEvent xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><monitorCrossRefID>mon202</monitorCrossRefID><primaryOldCall><callID>c1</callID><deviceID>201</deviceID></primaryOldCall><secondaryOldCall><callID>c2</callID><deviceID>201</deviceID></secondaryOldCall><transferringDevice><deviceIdentifier>201</deviceIdentifier></transferringDevice><transferredToDevice><deviceIdentifier>203</deviceIdentifier></transferredToDevice><transferredConnections><connectionListItem><newConnection><callID>c1</callID><deviceID>202</deviceID></newConnection><oldConnection><callID>c1</callID><deviceID>202</deviceID></oldConnection></connectionListItem><connectionListItem><newConnection><callID>c1</callID><deviceID>203</deviceID></newConnection><oldConnection><callID>c2</callID><deviceID>203</deviceID></oldConnection></connectionListItem></transferredConnections><localConnectionInfo>connected</localConnectionInfo><cause>transfer</cause></TransferedEvent>',
  },
  {
    name: 'ConferencedEvent',
    xml: '<ConferencedEvent xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><monitorCrossRefID>mon202</monitorCrossRefID><primaryOldCall><callID>c1</callID><deviceID>201</deviceID></primaryOldCall><secondaryOldCall><callID>c2</callID><deviceID>201</deviceID></secondaryOldCall><conferencingDevice><deviceIdentifier>201</deviceIdentifier></conferencingDevice><addedParty><deviceIdentifier>203</deviceIdentifier></addedParty><conferenceConnections><connectionListItem><newConnection><callID>c1</callID><deviceID>201</deviceID></newConnection><oldConnection><callID>c1</callID><deviceID>201</deviceID></oldConnection></connectionListItem><connectionListItem><newConnection><callID>c1</callID><deviceID>202</deviceID></newConnection><oldConnection><callID>c1</callID><deviceID>202</deviceID></oldConnection></connectionListItem><connectionListItem><newConnection><callID>c1</callID><deviceID>203</deviceID></newConnection><oldConnection><callID>c2</callID><deviceID>203</deviceID></oldConnection></connectionListItem></conferenceConnections><localConnectionInfo>connected</localConnectionInfo><cause>conference</cause></ConferencedEvent>',
  },
  {
    name: 'DivertedEvent',
    xml: '<DivertedEvent xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><monitorCrossRefID>mon202</monitorCrossRefID><connection><callID>c1</callID><deviceID>202</deviceID></connection><divertingDevice><deviceIdentifier>202</deviceIdentifier></divertingDevice><newDestination><deviceIdentifier>203</deviceIdentifier></newDestination><callingDevice><deviceIdentifier>201</deviceIdentifier></callingDevice><calledDevice><deviceIdentifier>202</deviceIdentifier></calledDevice><lastRedirectionDevice><notRequired/></lastRedirectionDevice><localConnectionInfo>null</localConnectionInfo><cause>redirected</cause></DivertedEvent>',
  },
  {
    name: 'CallClearedEvent',
    xml: '<CallClearedEvent xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><monitorCrossRefID>mon202</monitorCrossRefID><clearedCall><callID>c1</callID></clearedCall><cause>normalClearing</cause></CallClearedEvent>',
  },
  {
    name: 'DoNotDisturbEvent',
    xml: '<DoNotDisturbEvent xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><monitorCrossRefID>mon202</monitorCrossRefID><device><deviceIdentifier>202</deviceIdentifier></device><doNotDisturbOn>true</doNotDisturbOn></DoNotDisturbEvent>',
  },
  {
    name: 'ForwardingEvent',
    xml: '<ForwardingEvent xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><monitorCrossRefID>mon202</monitorCrossRefID><device><deviceIdentifier>202</deviceIdentifier></device><forwardingType>forwardImmediate</forwardingType><forwardStatus>true</forwardStatus><forwardTo>203</forwardTo></ForwardingEvent>',
  },
  {
    name: 'BackInServiceEvent',
    xml: '<BackInServiceEvent xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed4"><monitorCrossRefID>mon202</monitorCrossRefID><device><deviceIdentifier>202</deviceIdentifier></device></BackInServiceEvent>',
  },
  {
    name: 'FailedEvent',
    xml: '<FailedEvent xmlns="http://www.ecma-international.org/standards/ecma-323/csta/ed3">\n<monitorCrossRefID>00000867</monitorCrossRefID>\n<failedConnection><callID>D7450D5A-376D11E1-8B73D83D-527A71D5</callID><deviceID>tel:1062</deviceID></failedConnection>\n<failingDevice><deviceIdentifier>tel:1062</deviceIdentifier></failingDevice>\n<callingDevice><deviceIdentifier>tel:4922429236541060;device=0014F29CD919</deviceIdentifier></callingDevice>\n<calledDevice><deviceIdentifier>tel:1062</deviceIdentifier></calledDevice>\n<lastRedirectionDevice><notRequired/></lastRedirectionDevice>\n<localConnectionInfo>fail</localConnectionInfo>\n<cause>busy</cause>\n</FailedEvent>',
  },
];
