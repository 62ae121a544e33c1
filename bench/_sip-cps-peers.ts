/**
 * The SIPp scenarios and the Kamailio configuration of the sip-cps benchmark. Both systems under test get
 * the SAME caller and callee scenarios, so the comparison is about the systems, not about the scripts.
 *
 * UDP does not keep order, and a proxy with several receiver processes (Kamailio's `children`) forwards two
 * datagrams that arrive back to back in either order: a 180 can reach the caller after the 200, and the
 * caller's BYE can reach the callee before its ACK. RFC 3261 allows both (a 1xx after the 2xx is stray; a
 * BYE may arrive before the ACK). A strictly ordered SIPp script counts them as failed calls, which is
 * a scripting artefact, so the scripts accept them, while still requiring every message to arrive:
 * - caller: the 100/180 of the authenticated INVITE are `optional="global"` with `advance_state="false"`:
 *   counted and absorbed whenever they come, without moving the call (a late global optional message
 *   WITH a state change parks a SIPp call that is past its receives, and it never ends);
 * - callee: either ACK then BYE, or BYE then the (mandatory) ACK.
 * And a callee that answers later than T1 (500 ms; SIPp starved of CPU on a loaded machine) receives the
 * INVITE retransmissions both systems send (RFC 3261 Timer A) after its 180 and 200; SIPp 3.6 resends the
 * 180 for the first one and aborts the call on the next, so the callee absorbs them explicitly (the
 * INVITE transaction ends when the 200 reaches the server: a lost 200 still fails the call).
 */

const SDP = `      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000
`;

/**
 * The caller (-inf "ext;domain;password;callee"): INVITE, 407, ACK, INVITE with digest, 100/180/200,
 * ACK, hold (-d), BYE, 200. In-dialog requests follow the route set of the 200 (`[routes]`, empty when
 * the server does not record-route, as a B2BUA does not) to its Contact (`[next_url]`).
 */
export const UAC = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="sip-cps caller">
  <send retrans="500">
    <![CDATA[
      INVITE sip:[field3]@[field1] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: <sip:[field0]@[field1]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[field3]@[field1]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:[field0]@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

${SDP}    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="407" auth="true"/>
  <send>
    <![CDATA[
      ACK sip:[field3]@[field1] SIP/2.0
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <send retrans="500">
    <![CDATA[
      INVITE sip:[field3]@[field1] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: <sip:[field0]@[field1]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[field3]@[field1]>
      Call-ID: [call_id]
      CSeq: 2 INVITE
      Contact: <sip:[field0]@[local_ip]:[local_port]>
      [authentication]
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

${SDP}    ]]>
  </send>
  <recv response="100" optional="global" advance_state="false"/>
  <recv response="180" optional="global" advance_state="false"/>
  <recv response="200" rrs="true" rtd="true"/>
  <send>
    <![CDATA[
      ACK [next_url] SIP/2.0
      [routes]
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: <sip:[field0]@[field1]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[field3]@[field1]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 ACK
      Contact: <sip:[field0]@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <pause/>
  <send retrans="500">
    <![CDATA[
      BYE [next_url] SIP/2.0
      [routes]
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: <sip:[field0]@[field1]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[field3]@[field1]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 3 BYE
      Contact: <sip:[field0]@[local_ip]:[local_port]>
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200"/>
</scenario>
`;

const SDP_HEADERS = `      Content-Type: application/sdp
      Content-Length: [len]

${SDP}`;

const uasResponse = (status: string, sdp: boolean) => `  <send>
    <![CDATA[
      SIP/2.0 ${status}
      [last_Via:]
      [last_Record-Route:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
${sdp ? SDP_HEADERS : '      Content-Length: 0\n'}    ]]>
  </send>
`;

const byeOk = `  <send>
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

/**
 * The callee: INVITE, 180 and 200 (echoing Record-Route, as a UA behind a record-routing proxy must),
 * then ACK and BYE in either order (both required), 200 to the BYE.
 */
export const UAS = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="sip-cps callee">
  <recv request="INVITE"/>
${uasResponse('180 Ringing', false)}${uasResponse('200 OK', true)}  <recv request="INVITE" optional="global" advance_state="false"/>
  <recv request="ACK" optional="true" next="acked"/>
  <recv request="BYE"/>
${byeOk}  <recv request="ACK" next="done"/>
  <label id="acked"/>
  <recv request="BYE"/>
${byeOk}  <label id="done"/>
</scenario>
`;

/** REGISTER without digest (Kamailio's location service; -inf "ext;domain;contact_port;expires"). */
export const REGISTER_NO_AUTH = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="REGISTER without auth">
  <send retrans="500">
    <![CDATA[
      REGISTER sip:[field1] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:[field0]@[field1]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[field0]@[field1]>
      Call-ID: [call_id]
      CSeq: 1 REGISTER
      Contact: <sip:[field0]@[local_ip]:[field2]>
      Expires: [field3]
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="200"/>
</scenario>
`;

/**
 * Kamailio 5.6 as a plain stateful proxy: tm, rr (record_route on INVITE, loose_route in dialog) and
 * t_relay to the location registered by the callee. It challenges INVITEs with digest (auth module,
 * the caller's password given inline: no database) because our PBX does, so both see the same traffic.
 * `children` = number of UDP receiver processes.
 */
export function kamailioConfig(port: number, children: number, callerPassword: string): string {
  return `#!KAMAILIO
debug=1
log_stderror=yes
children=${children}
listen=udp:127.0.0.1:${port}
disable_tcp=yes
dns=no
rev_dns=no
dns_try_ipv6=no
use_dns_cache=off
auto_aliases=no

loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "siputils.so"
loadmodule "textops.so"
loadmodule "auth.so"

modparam("usrloc", "db_mode", 0)
modparam("usrloc", "use_domain", 0)

request_route {
	if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
	if (is_method("REGISTER")) {
		if (!save("location")) sl_reply_error();
		exit;
	}
	if (has_totag()) {
		if (loose_route()) { t_relay(); exit; }
		if (is_method("ACK")) { if (t_check_trans()) t_relay(); exit; }
		sl_send_reply("404", "Not here"); exit;
	}
	if (is_method("CANCEL")) { if (t_check_trans()) t_relay(); exit; }
	t_check_trans();
	if (is_method("INVITE")) {
		if (!pv_proxy_authenticate("$fd", "${callerPassword}", "0")) { proxy_challenge("$fd", "0"); exit; }
		consume_credentials();
		record_route();
	}
	if (!lookup("location")) { sl_send_reply("404", "Not Found"); exit; }
	if (!t_relay()) sl_reply_error();
}
`;
}
