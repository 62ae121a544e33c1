/**
 * SIPp scenarios for the end-to-end tests, assembled from pieces so each outcome is one short file.
 * UAC (the caller) always goes through the 407 digest challenge first. Fields come from -inf files:
 * caller.csv "ext;domain;password;callee".
 */

const HEAD = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="NAME">
`;

const SDP_BODY = `
      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000
`;

const invite = (cseq: number, auth: boolean) => `  <send retrans="500">
    <![CDATA[
      INVITE sip:[field3]@[field1] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: <sip:[field0]@[field1]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[field3]@[field1]>
      Call-ID: [call_id]
      CSeq: ${cseq} INVITE
      Contact: <sip:[field0]@[local_ip]:[local_port]>
${auth ? '      [authentication]\n' : ''}      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]
${SDP_BODY}
    ]]>
  </send>
`;

const ackLast = (cseq: number) => `  <send>
    <![CDATA[
      ACK sip:[field3]@[field1] SIP/2.0
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      CSeq: ${cseq} ACK
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
`;

const inDialog = (method: string, cseq: number) => `  <send${method === 'ACK' ? '' : ' retrans="500"'}>
    <![CDATA[
      ${method} [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: <sip:[field0]@[field1]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[field3]@[field1]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: ${cseq} ${method}
      Contact: <sip:[field0]@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
`;

const reply200 = `  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
`;

export type UacOutcome = 'answer' | 'remote-bye' | 'busy' | 'noanswer' | 'cancel';

export function uacScenario(outcome: UacOutcome): string {
  let s = HEAD.replace('NAME', `UAC ${outcome}`);
  s += invite(1, false);
  s += '  <recv response="100" optional="true"/>\n  <recv response="407" auth="true"/>\n';
  s += ackLast(1);
  s += invite(2, true);
  s += '  <recv response="100" optional="true"/>\n';
  switch (outcome) {
    case 'answer':
      s += '  <recv response="180" optional="true"/>\n  <recv response="200" rrs="true"/>\n';
      s += inDialog('ACK', 2);
      s += '  <pause/>\n';
      s += inDialog('BYE', 3);
      s += '  <recv response="200"/>\n';
      break;
    case 'remote-bye':
      s += '  <recv response="180" optional="true"/>\n  <recv response="200" rrs="true"/>\n';
      s += inDialog('ACK', 2);
      s += '  <recv request="BYE"/>\n';
      s += reply200;
      break;
    case 'busy':
      s += '  <recv response="180" optional="true"/>\n  <recv response="486"/>\n';
      s += ackLast(2);
      break;
    case 'noanswer':
      s += '  <recv response="180"/>\n  <recv response="480"/>\n';
      s += ackLast(2);
      break;
    case 'cancel':
      s += '  <recv response="180"/>\n';
      s += `  <send>
    <![CDATA[
      CANCEL sip:[field3]@[field1] SIP/2.0
      [last_Via:]
      From: <sip:[field0]@[field1]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[field3]@[field1]>
      Call-ID: [call_id]
      CSeq: 2 CANCEL
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200"/>
  <recv response="487"/>
`;
      s += ackLast(2);
      break;
  }
  return `${s}</scenario>\n`;
}

export type UasBehaviour = 'answer' | 'hangup' | 'busy' | 'ring';

const uasResponse = (status: string, withSdp: boolean, cseq = '[last_CSeq:]') => `  <send>
    <![CDATA[
      SIP/2.0 ${status}
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      ${cseq}
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
${withSdp ? '      Content-Type: application/sdp\n' : ''}      Content-Length: ${withSdp ? '[len]' : '0'}
${withSdp ? SDP_BODY : ''}
    ]]>
  </send>
`;

/** The callee: a SIPp UAS whose Contact was registered by the register scenario. */
export function uasScenario(behaviour: UasBehaviour): string {
  let s = HEAD.replace('NAME', `UAS ${behaviour}`);
  if (behaviour === 'hangup') {
    s += `  <recv request="INVITE">
    <action>
      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="from"/>
      <ereg regexp=".*" search_in="hdr" header="To:" assign_to="to"/>
      <ereg regexp="sip:[^>;]*" search_in="hdr" header="Contact:" assign_to="contact"/>
    </action>
  </recv>
`;
  } else s += '  <recv request="INVITE"/>\n';
  switch (behaviour) {
    case 'answer':
      s += uasResponse('180 Ringing', false);
      s += uasResponse('200 OK', true);
      s += '  <recv request="ACK"/>\n  <recv request="BYE"/>\n';
      s += reply200;
      break;
    case 'hangup':
      s += uasResponse('180 Ringing', false);
      s += uasResponse('200 OK', true);
      s += `  <recv request="ACK"/>
  <pause milliseconds="300"/>
  <send retrans="500">
    <![CDATA[
      BYE [$contact] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: [$to];tag=[pid]SIPpTag01[call_number]
      To: [$from]
      Call-ID: [call_id]
      CSeq: 1 BYE
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200"/>
`;
      break;
    case 'busy':
      s += uasResponse('486 Busy Here', false);
      s += '  <recv request="ACK"/>\n';
      break;
    case 'ring':
      s += uasResponse('180 Ringing', false);
      s += '  <recv request="CANCEL"/>\n';
      s += reply200;
      s += uasResponse('487 Request Terminated', false, 'CSeq: 1 INVITE');
      s += '  <recv request="ACK"/>\n';
      break;
  }
  return `${s}</scenario>\n`;
}

// ---- phones that stay in the call: hold, retrieve, transfers ----------------------------------------

/**
 * The media direction a re-INVITE from the voice server must carry (`any`: none checked, as for the
 * offer a transfer target made), answered as RFC 3264 §6.1 says (sendonly → recvonly).
 */
export type Direction = 'sendonly' | 'inactive' | 'sendrecv' | 'any' | 'offerless';

/** One thing a SIPp phone does (or waits for) once its call is up, in order. */
export type Step =
  /**
   * The voice server re-INVITEs this phone: the offer must have `direction` (and, when given, the
   * other phone's media port); answered with SDP, then its ACK (`ackOptional`: a BYE may overtake it).
   * `offerless`: the re-INVITE has no SDP, the phone's 200 has the offer and the ACK must bring the
   * answer (with `media`).
   */
  | { recvReinvite: Direction; media?: number; ackOptional?: boolean }
  /**
   * The phone re-INVITEs with its own SDP in `sendReinvite` direction (hold / retrieve from the phone);
   * `c=0.0.0.0` is the RFC 2543 hold that older phones still send (RFC 3264 §8.4). The answer must show
   * the other phone's `media` when given. `offerless`: no SDP (RFC 3261 §14.1), the 200 must bring an
   * offer and the phone's ACK has the answer.
   */
  | { sendReinvite: 'sendonly' | 'inactive' | 'sendrecv' | 'c=0.0.0.0' | 'offerless'; media?: number }
  /** A session refresh (RFC 4028) by UPDATE without a body; 200 expected. */
  | 'update'
  /** The phone hangs up. */
  | 'bye'
  /** The voice server hangs the phone up. */
  | 'recv-bye'
  /** `-d` milliseconds of talking. */
  | 'pause';

/** Checks on a received message: SIPp fails the call when a regular expression does not match. */
export interface Checks {
  headers?: Array<[header: string, regexp: string]>;
  body?: string[];
}

const ANSWER_DIRECTION: Record<Direction, string> = {
  sendonly: 'a=recvonly',
  inactive: 'a=inactive',
  sendrecv: 'a=sendrecv',
  any: '',
  offerless: '',
};

let checkCounter = 0;

/** `<recv>` with ereg actions that fail the call when a check does not match. */
function recvChecked(what: string, checks: Checks | undefined, capture = ''): string {
  const actions: string[] = [];
  for (const [header, regexp] of checks?.headers ?? [])
    actions.push(
      `      <ereg regexp="${xmlAttr(regexp)}" search_in="hdr" header="${header}:" check_it="true" assign_to="chk${++checkCounter}"/>`,
    );
  for (const regexp of checks?.body ?? [])
    actions.push(
      `      <ereg regexp="${xmlAttr(regexp)}" search_in="body" check_it="true" assign_to="chk${++checkCounter}"/>`,
    );
  if (actions.length === 0 && capture === '') return `  <recv ${what}/>\n`;
  return `  <recv ${what}>\n    <action>\n${capture}${actions.join('\n')}\n    </action>\n  </recv>\n`;
}

function xmlAttr(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
}

/** The phone's SDP with a media direction line and its own o= version (RFC 3264 §8: raised per offer). */
function sdp(version: number, direction: string): string {
  return SDP_BODY.replace('2353687637', String(2353687637 + version)).replace(
    'a=rtpmap:0 PCMU/8000\n',
    `a=rtpmap:0 PCMU/8000\n${direction === '' ? '' : `      ${direction}\n`}`,
  );
}

/** Ends a scenario; SIPp refuses variables assigned and never read, so the check results are referenced. */
function closed(s: string): string {
  const assigned = [...s.matchAll(/assign_to="(\w+)"/g)].map((m) => m[1]);
  return `${s}${assigned.length > 0 ? `  <Reference variables="${assigned.join(',')}"/>\n` : ''}</scenario>\n`;
}

/** Checks of a re-INVITE offer: its direction, and the other phone's media port when known. */
function offerChecks(direction: Direction, media: number | undefined): Checks {
  const body = [direction === 'any' ? 'm=audio ' : `a=${direction}`];
  if (media !== undefined) body.push(`m=audio ${media} `);
  // an offer that takes a call off hold must say where the media is (never an RFC 2543 0.0.0.0)
  if (media !== undefined && direction === 'sendrecv') body.push('c=IN IP4 127\\.0\\.0\\.1');
  return { body };
}

/** Which side of the dialog the phone is: its own requests are built differently. */
interface DialogSide {
  /** An in-dialog request line and From/To/Call-ID/Contact headers. */
  request(method: string, cseq: number): string;
}

const UAC_SIDE: DialogSide = {
  request: (method, cseq) => `      ${method} [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: <sip:[field0]@[field1]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[field3]@[field1]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: ${cseq} ${method}
      Contact: <sip:[field0]@[local_ip]:[local_port]>
      Max-Forwards: 70
`,
};

/** The callee's own requests go to the Contact of the INVITE it answered (captured as $contact). */
const UAS_SIDE: DialogSide = {
  request: (method, cseq) => `      ${method} [$contact] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: [$to];tag=[pid]SIPpTag01[call_number]
      To: [$from]
      Call-ID: [call_id]
      CSeq: ${cseq} ${method}
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
`,
};

/** The steps after the answer; `cseq` is the phone's last CSeq in the dialog. */
function steps(list: Step[], side: DialogSide, cseq: number): string {
  let s = '';
  let version = 0;
  for (const step of list) {
    if (step === 'pause') s += '  <pause/>\n';
    else if (step === 'bye') {
      cseq++;
      s += `  <send retrans="500">\n    <![CDATA[\n${side.request('BYE', cseq)}      Content-Length: 0\n    ]]>\n  </send>\n`;
      s += '  <recv response="200"/>\n';
    } else if (step === 'update') {
      cseq++;
      s += `  <send retrans="500">\n    <![CDATA[\n${side.request('UPDATE', cseq)}      Content-Length: 0\n    ]]>\n  </send>\n`;
      s += '  <recv response="200"/>\n';
    } else if (step === 'recv-bye') {
      s += '  <recv request="BYE"/>\n';
      s += reply200;
    } else if ('recvReinvite' in step) {
      const offerless = step.recvReinvite === 'offerless';
      s += recvChecked(
        'request="INVITE"',
        offerless ? { headers: [['Content-Length', '^ *0 *$']] } : offerChecks(step.recvReinvite, step.media),
      );
      s += `  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]
${sdp(++version, ANSWER_DIRECTION[step.recvReinvite])}
    ]]>
  </send>
`;
      const answer = offerless ? offerChecks('any', step.media) : undefined;
      s += recvChecked(`request="ACK"${step.ackOptional === true ? ' optional="true"' : ''}`, answer);
    } else {
      cseq++;
      const body =
        step.sendReinvite === 'offerless'
          ? '      Content-Length: 0\n'
          : `      Content-Type: application/sdp\n      Content-Length: [len]\n${
              step.sendReinvite === 'c=0.0.0.0'
                ? sdp(++version, '').replace('c=IN IP[media_ip_type] [media_ip]', 'c=IN IP4 0.0.0.0')
                : sdp(++version, `a=${step.sendReinvite}`)
            }\n`;
      s += `  <send retrans="500">\n    <![CDATA[\n${side.request('INVITE', cseq)}${body}    ]]>\n  </send>\n`;
      s += '  <recv response="100" optional="true"/>\n';
      s += recvChecked(
        'response="200"',
        step.media === undefined ? undefined : { body: [`m=audio ${step.media} `] },
      );
      const ackBody =
        step.sendReinvite === 'offerless'
          ? `      Content-Type: application/sdp\n      Content-Length: [len]\n${sdp(++version, '')}\n`
          : '      Content-Length: 0\n';
      s += `  <send>\n    <![CDATA[\n${side.request('ACK', cseq)}${ackBody}    ]]>\n  </send>\n`;
    }
  }
  return s;
}

/**
 * A calling SIPp phone (caller.csv "ext;domain;password;callee") whose call is answered, perhaps after
 * ringback from more than one phone (deflect, forwarding), then does `after`.
 */
export function uacPhone(after: Step[], options: { ringbacks?: number; name?: string } = {}): string {
  let s = HEAD.replace('NAME', `UAC ${options.name ?? 'answered'}`);
  s += invite(1, false);
  s += '  <recv response="100" optional="true"/>\n  <recv response="407" auth="true"/>\n';
  s += ackLast(1);
  s += invite(2, true);
  s += '  <recv response="100" optional="true"/>\n';
  for (let i = 0; i < (options.ringbacks ?? 1); i++) s += '  <recv response="180" optional="true"/>\n';
  s += '  <recv response="200" rrs="true"/>\n';
  s += inDialog('ACK', 2);
  s += steps(after, UAC_SIDE, 2);
  return closed(s);
}

/**
 * A called SIPp phone that answers (with an SDP offer when the INVITE had none, as third-party call
 * control sends it), then does `after`. `invite` and `ack` check what the voice server sent.
 */
export function uasPhone(
  after: Step[],
  options: { invite?: Checks; ack?: Checks; name?: string } = {},
): string {
  let s = HEAD.replace('NAME', `UAS ${options.name ?? 'answers'}`);
  const capture = `      <ereg regexp=".*" search_in="hdr" header="From:" assign_to="from"/>
      <ereg regexp=".*" search_in="hdr" header="To:" assign_to="to"/>
      <ereg regexp="sip:[^>;]*" search_in="hdr" header="Contact:" assign_to="contact"/>
`;
  s += recvChecked('request="INVITE"', options.invite, capture);
  s += uasResponse('180 Ringing', false);
  s += uasResponse('200 OK', true);
  s += recvChecked('request="ACK"', options.ack);
  s += steps(after, UAS_SIDE, 0);
  return closed(s);
}
