import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  APPL_SESSION_NS,
  decodeMessage,
  describeErrorCode,
  describeMessage,
  EDITION_NAMESPACES,
  editionOf,
  encodeMessage,
  parseMessage,
  plainNumber,
  serializeMessage,
  UnknownMessageError,
} from '../../src/csta/codec.ts';
import { type CstaMessage, type MessageOf, privateDataOf } from '../../src/csta/messages.ts';
import { CstaEncodeError } from '../../src/csta/schema.ts';
import { type Element, parseDocument, serialize, XmlError } from '../../src/xml/index.ts';
import { REFERENCE_EXAMPLES } from './fixtures.ts';

const ED4 = EDITION_NAMESPACES.ed4;

/** Canonical text of a tree: whitespace-only text between elements dropped, attributes sorted. */
function canon(el: Element): string {
  const attrs = Object.keys(el.attrs)
    .sort()
    .map((k) => ` ${k}=${JSON.stringify(el.attrs[k])}`)
    .join('');
  const hasElements = el.children.some((c) => typeof c !== 'string');
  const inner = el.children
    .filter((c) => typeof c !== 'string' || !hasElements || c.trim() !== '')
    .map((c) => (typeof c === 'string' ? JSON.stringify(c) : canon(c)))
    .join('');
  return `{${el.ns}}${el.name}${attrs}[${inner}]`;
}

function hasUnknown(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false;
  if (Array.isArray(value)) return value.some(hasUnknown);
  if ('children' in value && 'attrs' in value) return false; // a kept Element
  return Object.entries(value).some(([k, v]) => k === '$unknown' || hasUnknown(v));
}

function decodeXml(xml: string, logs: string[] = []): CstaMessage {
  return decodeMessage(parseDocument(xml), { log: (m) => logs.push(m) });
}

function roundTrip(xml: string, options: { ns?: string } = {}): string {
  const parsed = parseMessage(xml);
  assert.ok(parsed.message, `decode failed: ${parsed.error?.message}`);
  return serializeMessage(parsed.message, { ns: options.ns ?? parsed.ns });
}

describe('reference examples (csta.md) as fixtures', () => {
  for (const fixture of REFERENCE_EXAMPLES) {
    it(`${fixture.name}: decodes every element, without warnings, and round-trips`, () => {
      const logs: string[] = [];
      const message = decodeXml(fixture.xml, logs);
      assert.equal(message.name, fixture.name);
      assert.deepEqual(logs, []);
      assert.equal(hasUnknown(message), false, `unmodelled elements in ${fixture.name}`);
      const original = parseDocument(fixture.xml);
      const again = parseDocument(roundTrip(fixture.xml));
      assert.equal(canon(again), canon(original));
    });
  }
});

describe('decode: typed values from the reference examples', () => {
  const byName = (name: string) => REFERENCE_EXAMPLES.find((f) => f.name === name)!.xml;

  it('DeliveredEvent', () => {
    const m = decodeXml(byName('DeliveredEvent')) as MessageOf<'DeliveredEvent'>;
    assert.equal(m.monitorCrossRefID, 'mon202');
    assert.deepEqual(m.connection, { callID: 'c1', deviceID: '202' });
    assert.deepEqual(m.alertingDevice, { deviceIdentifier: '202' });
    assert.deepEqual(m.lastRedirectionDevice, { notRequired: true });
    assert.equal(m.localConnectionInfo, 'alerting');
    assert.equal(m.cause, 'newCall');
  });

  it('TransferCallResponse connection list', () => {
    const m = decodeXml(byName('TransferCallResponse')) as MessageOf<'TransferCallResponse'>;
    assert.deepEqual(m.transferredCall, { callID: 'c1', deviceID: '203' });
    assert.equal(m.connections?.length, 2);
    assert.deepEqual(m.connections?.[1], {
      newConnection: { callID: 'c1', deviceID: '203' },
      oldConnection: { callID: 'c2', deviceID: '203' },
    });
  });

  it('GetForwardingResponse, SnapshotDeviceResponse and SnapshotCallResponse', () => {
    const f = decodeXml(byName('GetForwardingResponse')) as MessageOf<'GetForwardingResponse'>;
    assert.deepEqual(f.forwardingList, [
      { forwardingType: 'forwardImmediate', forwardStatus: true, forwardDN: '203' },
      { forwardingType: 'forwardNoAns', forwardStatus: false, ringCount: 4 },
    ]);
    const d = decodeXml(byName('SnapshotDeviceResponse')) as MessageOf<'SnapshotDeviceResponse'>;
    assert.ok('snapshotData' in d.crossRefIDorSnapshotData);
    assert.deepEqual(
      d.crossRefIDorSnapshotData.snapshotData.snapshotDeviceResponseInfo?.[0]?.localCallState,
      {
        compoundCallState: { localConnectionState: ['connected'] },
      },
    );
    const c = decodeXml(byName('SnapshotCallResponse')) as MessageOf<'SnapshotCallResponse'>;
    assert.ok('snapshotData' in c.crossRefIDorSnapshotData);
    assert.equal(c.crossRefIDorSnapshotData.snapshotData.snapshotCallResponseInfo?.length, 2);
  });

  it('system messages and errors', () => {
    const reg = decodeXml(byName('SystemRegister')) as MessageOf<'SystemRegister'>;
    assert.deepEqual(reg.requestTypes, { systemStatus: true, requestSystemStatus: false });
    const err = decodeXml(byName('CSTAErrorCode')) as MessageOf<'CSTAErrorCode'>;
    assert.equal(describeErrorCode(err), 'operation/invalidDeviceID');
    const start = decodeXml(byName('StartApplicationSession')) as MessageOf<'StartApplicationSession'>;
    assert.equal(start.applicationInfo.applicationID, 'gw');
    assert.deepEqual(start.requestedProtocolVersions.protocolVersion, [ED4]);
    assert.equal(start.requestedSessionDuration, 180);
    const login = start.applicationInfo.applicationSpecificInfo?.getChild('SessionLoginInfo');
    assert.equal(login?.ns, 'http://www.avaya.com/csta');
    const pos = decodeXml(
      byName('StartApplicationSessionPosResponse'),
    ) as MessageOf<'StartApplicationSessionPosResponse'>;
    assert.equal(pos.sessionID, '009968951');
    assert.equal(pos.actualSessionDuration, 600);
    const neg = decodeXml(
      byName('StartApplicationSessionNegResponse'),
    ) as MessageOf<'StartApplicationSessionNegResponse'>;
    assert.deepEqual(neg.errorCode, { definedError: 'requestedProtocolVersionNotSupported' });
  });

  it('the CME FailedEvent (ed3, uaCSTA)', () => {
    const xml = REFERENCE_EXAMPLES.filter((f) => f.name === 'FailedEvent').at(-1)!.xml;
    const parsed = parseMessage(xml);
    assert.equal(parsed.edition, 'ed3');
    const m = parsed.message as MessageOf<'FailedEvent'>;
    assert.equal(m.cause, 'busy');
    assert.equal(m.localConnectionInfo, 'fail');
    assert.deepEqual(m.callingDevice, { deviceIdentifier: 'tel:4922429236541060;device=0014F29CD919' });
  });
});

describe('encode: typed messages give the reference XML', () => {
  const cases: Array<[CstaMessage, string]> = [
    [{ name: 'MonitorStart', monitorObject: { deviceObject: '201' }, monitorType: 'device' }, 'MonitorStart'],
    [
      { name: 'MakeCall', callingDevice: '201', calledDirectoryNumber: '202', autoOriginate: 'prompt' },
      'MakeCall',
    ],
    [
      {
        name: 'DeliveredEvent',
        monitorCrossRefID: 'mon202',
        connection: { callID: 'c1', deviceID: '202' },
        alertingDevice: { deviceIdentifier: '202' },
        callingDevice: { deviceIdentifier: '201' },
        calledDevice: { deviceIdentifier: '202' },
        lastRedirectionDevice: { notRequired: true },
        localConnectionInfo: 'alerting',
        cause: 'newCall',
      },
      'DeliveredEvent',
    ],
    [{ name: 'SystemRegisterResponse', sysStatRegisterID: '27ss' }, 'SystemRegisterResponse'],
    [{ name: 'RequestSystemStatus' }, 'RequestSystemStatus'],
    [{ name: 'CSTAErrorCode', operation: 'invalidDeviceID' }, 'CSTAErrorCode'],
    [
      {
        name: 'SetForwarding',
        device: '202',
        forwardingType: 'forwardImmediate',
        activateForward: true,
        forwardDN: '203',
      },
      'SetForwarding',
    ],
    [
      {
        name: 'DeflectCall',
        callToBeDiverted: { callID: 'c1', deviceID: '202' },
        newDestination: '203',
      },
      'DeflectCall',
    ],
    [
      {
        name: 'StartApplicationSessionNegResponse',
        errorCode: { definedError: 'requestedProtocolVersionNotSupported' },
      },
      'StartApplicationSessionNegResponse',
    ],
  ];
  for (const [message, fixtureName] of cases) {
    it(fixtureName, () => {
      const expected = parseDocument(REFERENCE_EXAMPLES.find((f) => f.name === fixtureName)!.xml);
      assert.equal(canon(encodeMessage(message, { edition: 'ed4' })), canon(expected));
    });
  }

  it('writes the XML declaration and one default namespace declaration', () => {
    const xml = serializeMessage({ name: 'MonitorStop', monitorCrossRefID: 'mon201' }, { edition: 'ed6' });
    assert.equal(
      xml,
      `<?xml version="1.0" encoding="UTF-8"?><MonitorStop xmlns='${EDITION_NAMESPACES.ed6}'><monitorCrossRefID>mon201</monitorCrossRefID></MonitorStop>`,
    );
  });

  it('writes fields in XSD order whatever order the object (or the peer) used', () => {
    const xml = serializeMessage({
      name: 'MakeCall',
      autoOriginate: 'doNotPrompt',
      calledDirectoryNumber: '202',
      callingDevice: '201',
    } as CstaMessage);
    assert.match(
      xml,
      /<callingDevice>201<\/callingDevice><calledDirectoryNumber>202<\/calledDirectoryNumber><autoOriginate>/,
    );
    const swapped = `<AnswerCall xmlns="${ED4}"><callToBeAnswered><deviceID>202</deviceID><callID>c1</callID></callToBeAnswered></AnswerCall>`;
    assert.match(roundTrip(swapped), /<callID>c1<\/callID><deviceID>202<\/deviceID>/);
  });

  it('refuses to encode a message without a required field', () => {
    assert.throws(() => encodeMessage({ name: 'MonitorStop' } as CstaMessage), CstaEncodeError);
  });

  it('ECMA-354 messages always use the appl_session namespace', () => {
    const el = encodeMessage(
      { name: 'ResetApplicationSessionTimer', sessionID: 's1', requestedSessionDuration: 180 },
      { edition: 'ed3' },
    );
    assert.equal(el.ns, APPL_SESSION_NS);
    assert.equal(el.getChild('sessionID')?.ns, APPL_SESSION_NS);
  });
});

describe('editions and namespaces', () => {
  it('recognises ed2..ed6, misspelt domains and Avaya privN namespaces', () => {
    assert.equal(editionOf(EDITION_NAMESPACES.ed2), 'ed2');
    assert.equal(editionOf(EDITION_NAMESPACES.ed3), 'ed3');
    assert.equal(editionOf('http://www.ecmainternational.org/standards/ecma-323/csta/ed5'), 'ed5');
    assert.equal(editionOf('http://www.ecma.ch/standards/ecma-323/csta/ed6'), 'ed6');
    assert.equal(editionOf('http://www.ecma-international.org/standards/ecma-323/csta/ed3/priv5'), 'ed3');
    assert.equal(editionOf(''), undefined);
  });

  for (const ns of [
    EDITION_NAMESPACES.ed3,
    EDITION_NAMESPACES.ed4,
    EDITION_NAMESPACES.ed5,
    EDITION_NAMESPACES.ed6,
    'http://www.ecmainternational.org/standards/ecma-323/csta/ed5',
    '',
  ]) {
    it(`decodes the same DeliveredEvent in namespace '${ns}'`, () => {
      const xml = REFERENCE_EXAMPLES.find((f) => f.name === 'DeliveredEvent')!.xml.replace(ED4, ns);
      const m = decodeXml(xml) as MessageOf<'DeliveredEvent'>;
      assert.equal(m.cause, 'newCall');
      assert.equal(m.localConnectionInfo, 'alerting');
    });
  }

  it('accepts a prefixed (JAXB) root and unqualified children', () => {
    const jaxb = `<ns3:SystemStatus xmlns:ns3="${ED4}"/>`;
    const parsed = parseMessage(jaxb);
    assert.equal(parsed.message?.name, 'SystemStatus');
    assert.equal(parsed.ns, ED4);
    const pys = `<aps:StartApplicationSessionPosResponse xmlns:aps="${APPL_SESSION_NS}"><sessionID>42</sessionID><actualProtocolVersion>${ED4}</actualProtocolVersion><actualSessionDuration>600</actualSessionDuration><extensions><privateData><private><actualHBT>30</actualHBT></private></privateData></extensions></aps:StartApplicationSessionPosResponse>`;
    const pos = decodeXml(pys) as MessageOf<'StartApplicationSessionPosResponse'>;
    assert.equal(pos.sessionID, '42');
    assert.equal(privateDataOf(pos)[0]?.text(), '30');
  });

  it('emits the configured edition, and echoes a given namespace', () => {
    const xml = REFERENCE_EXAMPLES.find((f) => f.name === 'HeldEvent')!.xml;
    const m = decodeXml(xml);
    for (const edition of ['ed3', 'ed5', 'ed6'] as const) {
      const out = parseDocument(serializeMessage(m, { edition }));
      assert.equal(out.ns, EDITION_NAMESPACES[edition]);
      assert.ok(out.elements().every((c) => c.ns === EDITION_NAMESPACES[edition]));
    }
    const weird = 'http://www.ecmainternational.org/standards/ecma-323/csta/ed5';
    assert.equal(parseDocument(serializeMessage(m, { ns: weird })).ns, weird);
  });
});

describe('documented variants', () => {
  it('DeflectCall newDestination: plain in ed3/ed4, <device> in ed5/ed6, both read', () => {
    const plain = `<DeflectCall xmlns="${EDITION_NAMESPACES.ed3}"><callToBeDiverted><callID>c1</callID><deviceID>202</deviceID></callToBeDiverted><newDestination>203</newDestination></DeflectCall>`;
    const wrapped = `<DeflectCall xmlns="${EDITION_NAMESPACES.ed6}"><callToBeDiverted><callID>c1</callID><deviceID>202</deviceID></callToBeDiverted><newDestination><device>203</device></newDestination></DeflectCall>`;
    for (const xml of [plain, wrapped]) {
      const m = decodeXml(xml) as MessageOf<'DeflectCall'>;
      assert.equal(m.newDestination, '203');
      assert.match(serializeMessage(m, { edition: 'ed4' }), /<newDestination>203<\/newDestination>/);
      assert.match(serializeMessage(m, { edition: 'ed3' }), /<newDestination>203<\/newDestination>/);
      assert.match(
        serializeMessage(m, { edition: 'ed5' }),
        /<newDestination><device>203<\/device><\/newDestination>/,
      );
      assert.match(
        serializeMessage(m, { edition: 'ed6' }),
        /<newDestination><device>203<\/device><\/newDestination>/,
      );
    }
  });

  it('systemResourceAvailability is read, systemResourceAvailibility is written', () => {
    const xml = `<CSTAErrorCode xmlns="${ED4}"><systemResourceAvailability>deviceOutOfService</systemResourceAvailability></CSTAErrorCode>`;
    const m = decodeXml(xml) as MessageOf<'CSTAErrorCode'>;
    assert.equal(describeErrorCode(m), 'systemResourceAvailibility/deviceOutOfService');
    assert.match(
      serializeMessage(m),
      /<systemResourceAvailibility>deviceOutOfService<\/systemResourceAvailibility>/,
    );
  });

  it('Zultys privateErrorCode and an empty unspecified', () => {
    const z = decodeXml(
      `<CSTAErrorCode xmlns="${ED4}"><privateErrorCode>URM Denied</privateErrorCode></CSTAErrorCode>`,
    );
    assert.equal(describeErrorCode(z as MessageOf<'CSTAErrorCode'>), 'privateErrorCode/URM Denied');
    const u = decodeXml(`<CSTAErrorCode xmlns="${ED4}"><unspecified/></CSTAErrorCode>`);
    assert.equal(describeErrorCode(u as MessageOf<'CSTAErrorCode'>), 'unspecified');
  });

  it('an invalid cause is read as normal and logged (UNI "Normal Clearing")', () => {
    const logs: string[] = [];
    const xml = `<CallClearedEvent xmlns="http://www.ecma.ch/standards/ecma-323/csta/ed6"><monitorCrossRefID>m</monitorCrossRefID><clearedCall><callID>c1</callID></clearedCall><cause>Normal Clearing</cause></CallClearedEvent>`;
    const m = decodeXml(xml, logs) as MessageOf<'CallClearedEvent'>;
    assert.equal(m.cause, 'normal');
    assert.equal(logs.length, 1);
    assert.match(logs[0]!, /CallClearedEvent\/cause: invalid value 'Normal Clearing' read as 'normal'/);
  });

  it('an empty <SystemStatus/> is accepted', () => {
    const m = decodeXml(`<SystemStatus xmlns="${ED4}"/>`) as MessageOf<'SystemStatus'>;
    assert.equal(m.systemStatus, undefined);
  });

  it('ClearConnection with free-text reason keeps the text unparsed, logged', () => {
    const logs: string[] = [];
    const xml = `<ClearConnection xmlns="${ED4}"><connectionToBeCleared><callID>c1</callID><deviceID>201</deviceID></connectionToBeCleared><reason>hang up please</reason></ClearConnection>`;
    const m = decodeXml(xml, logs) as MessageOf<'ClearConnection'>;
    assert.equal(m.reason, undefined);
    assert.equal(logs.length, 1);
    assert.match(roundTrip(xml), /<reason>hang up please<\/reason><\/ClearConnection>/);
  });

  it('MonitorFilter callControl (ASN.1 spelling) is read; callcontrol is written', () => {
    const xml = `<MonitorStart xmlns="${ED4}"><monitorObject><deviceObject>201</deviceObject></monitorObject><requestedMonitorFilter><callControl><digitsDialed>true</digitsDialed></callControl></requestedMonitorFilter></MonitorStart>`;
    const m = decodeXml(xml) as MessageOf<'MonitorStart'>;
    assert.equal(m.requestedMonitorFilter?.callcontrol?.digitsDialed, true);
    assert.match(serializeMessage(m), /<callcontrol><digitsDialed>true<\/digitsDialed><\/callcontrol>/);
  });

  it('lastRedirectionDevice/deviceIdentifier is read as numberDialed', () => {
    const xml = REFERENCE_EXAMPLES.find((f) => f.name === 'DeliveredEvent')!.xml.replace(
      '<notRequired/>',
      '<deviceIdentifier>201</deviceIdentifier>',
    );
    const m = decodeXml(xml) as MessageOf<'DeliveredEvent'>;
    assert.deepEqual(m.lastRedirectionDevice, { numberDialed: '201' });
  });

  it('ed6 ringDuration and ServiceInitiated calledDevice are written only in ed6', () => {
    const fwd: CstaMessage = {
      name: 'SetForwarding',
      device: '202',
      forwardingType: 'forwardNoAns',
      activateForward: true,
      forwardDN: '203',
      ringDuration: 20,
    };
    assert.match(serializeMessage(fwd, { edition: 'ed6' }), /<ringDuration>20<\/ringDuration>/);
    assert.doesNotMatch(serializeMessage(fwd, { edition: 'ed4' }), /ringDuration/);
  });

  it('OpenScape Voice deviceIdentifier values keep their escaped text and attributes', () => {
    const xml = `<EstablishedEvent xmlns="${ED4}"><monitorCrossRefID>m</monitorCrossRefID><establishedConnection><callID>FF000100000000002D65C85C1C750000</callID><deviceID typeOfNumber="explicitPublic:subscriber">7868772298</deviceID></establishedConnection><answeringDevice><deviceIdentifier>N&lt;7868772298&gt;Line71001;displayNumber=7868772298;uid=x</deviceIdentifier></answeringDevice><callingDevice><deviceIdentifier>N&lt;302118840100&gt;;noa=nk</deviceIdentifier></callingDevice><calledDevice><deviceIdentifier>7868772298</deviceIdentifier></calledDevice><lastRedirectionDevice><notKnown/></lastRedirectionDevice><cause>enteringDistribution</cause><servicesPermitted><callControlServices><clearConnection>true</clearConnection></callControlServices><callAssociatedServices/><mediaAttachementServices/></servicesPermitted><networkCalledDevice><deviceIdentifier>N&lt;1&gt;</deviceIdentifier></networkCalledDevice><associatedCallingDevice><notKnown/></associatedCallingDevice><extensions><privateData><private><scx:staticOndDN xmlns:scx="http://www.siemens.com/schema/csta">4711</scx:staticOndDN></private></privateData></extensions></EstablishedEvent>`;
    const m = decodeXml(xml) as MessageOf<'EstablishedEvent'>;
    assert.ok('deviceIdentifier' in m.callingDevice);
    assert.equal(plainNumber(m.callingDevice.deviceIdentifier), '302118840100');
    assert.equal(m.cause, 'enteringDistribution');
    assert.equal(privateDataOf(m)[0]?.ns, 'http://www.siemens.com/schema/csta');
    assert.equal(canon(parseDocument(roundTrip(xml))), canon(parseDocument(xml)));
  });
});

describe('unknown content survives decode and encode', () => {
  it('unknown elements keep their place, also across an edition change', () => {
    const xml = `<MakeCallResponse xmlns="${ED4}"><callingDevice><callID>c1</callID><deviceID>201</deviceID></callingDevice><calledDevice>1099</calledDevice><extensions><privateData><private><lcs:line xmlns:lcs="http://schemas.microsoft.com/Lcs/2005/04/RCCExtension">tel:1</lcs:line></private></privateData></extensions></MakeCallResponse>`;
    const m = decodeXml(xml) as MessageOf<'MakeCallResponse'>;
    assert.equal(m.$unknown?.[0]?.element.name, 'calledDevice');
    assert.equal(canon(parseDocument(roundTrip(xml))), canon(parseDocument(xml)));
    const ed6 = parseDocument(serializeMessage(m, { edition: 'ed6' }));
    assert.equal(ed6.getChild('calledDevice')?.ns, EDITION_NAMESPACES.ed6);
    const line = ed6.find('extensions', 'privateData', 'private')!.elements()[0]!;
    assert.equal(line.ns, 'http://schemas.microsoft.com/Lcs/2005/04/RCCExtension');
    assert.equal(ed6.find('extensions', 'privateData')!.ns, EDITION_NAMESPACES.ed6);
  });

  it('property: random unknown elements inserted anywhere survive a round trip', () => {
    const base = parseDocument(REFERENCE_EXAMPLES.find((f) => f.name === 'DeliveredEvent')!.xml);
    const nameArb = fc.stringMatching(/^x[a-zA-Z]{0,8}$/);
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(20), nameArb, fc.stringMatching(/^[a-z0-9 ]{0,10}$/)), { maxLength: 5 }),
        (inserts) => {
          const doc = base.clone();
          for (const [pos, name, value] of inserts) {
            const child = doc.c(name);
            if (value !== '') child.append(value);
            doc.children.pop();
            doc.children.splice(pos % (doc.children.length + 1), 0, child);
          }
          const xml = serialize(doc, null);
          // Only unknown elements before extensions matter here; the canonical trees must match.
          assert.equal(canon(parseDocument(roundTrip(xml))), canon(parseDocument(xml)));
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('hostile and malformed input', () => {
  it('unknown roots and invalid messages come back as errors, not throws', () => {
    const unknown = parseMessage(`<Foo xmlns="${ED4}"/>`);
    assert.equal(unknown.message, undefined);
    assert.ok(unknown.error instanceof UnknownMessageError);
    const missing = parseMessage(`<MonitorStop xmlns="${ED4}"/>`);
    assert.match(missing.error?.message ?? '', /MonitorStop: required <monitorCrossRefID> is missing/);
    const badBool = parseMessage(
      `<SetDoNotDisturb xmlns="${ED4}"><device>1</device><doNotDisturbOn>maybe</doNotDisturbOn></SetDoNotDisturb>`,
    );
    assert.match(badBool.error?.message ?? '', /'maybe' is not a boolean/);
    const badChoice = parseMessage(`<CSTAErrorCode xmlns="${ED4}"/>`);
    assert.match(badChoice.error?.message ?? '', /none of operation\|security/);
  });

  it('XML errors are XmlError: DOCTYPE/entities, comments, bad UTF-8, deep nesting, oversize', () => {
    assert.throws(() => parseMessage('<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'), XmlError);
    assert.throws(() => parseMessage(`<SystemStatus xmlns="${ED4}"><!-- c --></SystemStatus>`), XmlError);
    assert.throws(() => parseMessage(Buffer.from([0x3c, 0x61, 0xff, 0x2f, 0x3e])), XmlError);
    assert.throws(() => parseMessage(`${'<a>'.repeat(200)}${'</a>'.repeat(200)}`), XmlError);
    assert.throws(
      () => parseMessage(`<a>${'x'.repeat(70_000)}</a>`, { limits: { maxStanzaBytes: 65_535 } }),
      XmlError,
    );
  });

  it('property: random mutations of fixtures never throw anything but XmlError', () => {
    const docs = REFERENCE_EXAMPLES.map((f) => f.xml);
    fc.assert(
      fc.property(
        fc.constantFrom(...docs),
        fc.nat(),
        fc.nat(),
        fc.string({ maxLength: 8 }),
        (xml, a, b, junk) => {
          const i = a % xml.length;
          const j = Math.min(xml.length, i + (b % 12));
          const mutated = xml.slice(0, i) + junk + xml.slice(j);
          try {
            const parsed = parseMessage(mutated);
            if (parsed.message !== undefined) serializeMessage(parsed.message);
          } catch (e) {
            if (!(e instanceof XmlError)) throw e;
          }
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('describeMessage', () => {
  it('prints one readable line', () => {
    const m = decodeXml(REFERENCE_EXAMPLES.find((f) => f.name === 'DeliveredEvent')!.xml);
    assert.equal(
      describeMessage(m),
      'DeliveredEvent monitorCrossRefID=mon202 connection=c1/202 alertingDevice=202 callingDevice=201 calledDevice=202 lastRedirectionDevice=notRequired localConnectionInfo=alerting cause=newCall',
    );
  });
});
