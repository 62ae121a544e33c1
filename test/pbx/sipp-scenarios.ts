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
      ${auth ? '[authentication]' : ''}
      Max-Forwards: 70
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
      ${withSdp ? 'Content-Type: application/sdp' : ''}
      Content-Length: ${withSdp ? '[len]' : '0'}
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
