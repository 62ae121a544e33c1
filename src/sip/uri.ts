/**
 * SIP URIs (RFC 3261 §19.1, §25.1) with RFC 5118 IPv6 references, and name-addr / addr-spec values
 * (From, To, Contact, Route, Record-Route). URIs of other schemes are kept opaque.
 */
import { isIPv6 } from 'node:net';
import { SipParseError } from './errors.ts';
import { isHost, isToken, isWsp, Params, quote, readParams, readQuoted } from './grammar.ts';

export interface SipUri {
  scheme: 'sip' | 'sips';
  /** User part as written (escapes kept). */
  user?: string;
  password?: string;
  /** Host; IPv6 addresses keep their brackets, as in the URI. */
  host: string;
  port?: number;
  params: Params;
  /** `?headers` part as written, without the '?'. */
  headers?: string;
}

export interface OtherUri {
  scheme: string;
  /** Everything after "scheme:". */
  opaque: string;
}

export type Uri = SipUri | OtherUri;

export function isSipUri(uri: Uri): uri is SipUri {
  return 'host' in uri;
}

// user = 1*( unreserved / escaped / user-unreserved ); user-unreserved = & = + $ , ; ? /
const USER_RE = /^([A-Za-z0-9\-_.!~*'()&=+$,;?/]|%[0-9A-Fa-f]{2})+$/;
// password = *( unreserved / escaped / & = + $ , )
const PASSWORD_RE = /^([A-Za-z0-9\-_.!~*'()&=+$,]|%[0-9A-Fa-f]{2})*$/;
// paramchar = [ ] / : & + $ / unreserved / escaped
const URI_PARAM_RE = /^([A-Za-z0-9\-_.!~*'()[\]/:&+$]|%[0-9A-Fa-f]{2})+$/;
const HEADERS_RE = /^([A-Za-z0-9\-_.!~*'()[\]/?:+$=&]|%[0-9A-Fa-f]{2})*$/;
const SCHEME_RE = /^[A-Za-z][A-Za-z0-9+\-.]*$/;

/** Decodes %HH escapes (for comparing user parts and parameters, RFC 3261 §19.1.4). */
export function unescapeUri(s: string): string {
  return s.replace(/%([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16)));
}

/** Parses a URI. `allowHeaders` false rejects a `?headers` part (Request-URI, bare addr-spec). */
export function parseUri(text: string, allowHeaders = true): Uri {
  const colon = text.indexOf(':');
  if (colon <= 0) throw new SipParseError(`not a URI: ${text.slice(0, 80)}`);
  const scheme = text.slice(0, colon);
  if (!SCHEME_RE.test(scheme)) throw new SipParseError(`bad URI scheme: ${scheme.slice(0, 40)}`);
  const rest = text.slice(colon + 1);
  if (/[\s<>"]/.test(rest) || rest === '') throw new SipParseError('bad characters in URI');
  const lower = scheme.toLowerCase();
  if (lower !== 'sip' && lower !== 'sips') return { scheme, opaque: rest };

  let hostStart = 0;
  let user: string | undefined;
  let password: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    const userinfo = rest.slice(0, at);
    hostStart = at + 1;
    const pc = userinfo.indexOf(':');
    user = pc >= 0 ? userinfo.slice(0, pc) : userinfo;
    if (pc >= 0) password = userinfo.slice(pc + 1);
    if (!USER_RE.test(user)) throw new SipParseError('bad user part in URI');
    if (password !== undefined && !PASSWORD_RE.test(password)) throw new SipParseError('bad password in URI');
  }
  let i = hostStart;
  let host: string;
  if (rest[i] === '[') {
    const close = rest.indexOf(']', i);
    if (close < 0) throw new SipParseError('unterminated IPv6 reference');
    host = rest.slice(i, close + 1);
    i = close + 1;
  } else {
    let j = i;
    while (j < rest.length && !':;?'.includes(rest[j]!)) j++;
    host = rest.slice(i, j);
    i = j;
  }
  if (!isHost(host)) throw new SipParseError(`bad host in URI: ${host.slice(0, 80)}`);
  let port: number | undefined;
  if (rest[i] === ':') {
    let j = i + 1;
    while (j < rest.length && rest[j]! >= '0' && rest[j]! <= '9') j++;
    const digits = rest.slice(i + 1, j);
    if (digits === '' || digits.length > 5 || Number(digits) > 65535)
      throw new SipParseError('bad port in URI');
    port = Number(digits);
    i = j;
  }
  const params = new Params();
  while (rest[i] === ';') {
    let j = i + 1;
    while (j < rest.length && rest[j] !== ';' && rest[j] !== '?') j++;
    const p = rest.slice(i + 1, j);
    const eq = p.indexOf('=');
    const name = eq >= 0 ? p.slice(0, eq) : p;
    const value = eq >= 0 ? p.slice(eq + 1) : null;
    if (!URI_PARAM_RE.test(name) || (value !== null && !URI_PARAM_RE.test(value))) {
      throw new SipParseError('bad URI parameter');
    }
    if (params.has(name)) throw new SipParseError(`duplicate URI parameter ${name}`);
    params.set(name, value);
    i = j;
  }
  let headers: string | undefined;
  if (rest[i] === '?') {
    if (!allowHeaders) throw new SipParseError('headers not allowed in this URI');
    headers = rest.slice(i + 1);
    if (!HEADERS_RE.test(headers)) throw new SipParseError('bad URI headers');
    i = rest.length;
  }
  if (i !== rest.length) throw new SipParseError('trailing characters in URI');
  const uri: SipUri = { scheme: lower as 'sip' | 'sips', host, params };
  if (user !== undefined) uri.user = user;
  if (password !== undefined) uri.password = password;
  if (port !== undefined) uri.port = port;
  if (headers !== undefined) uri.headers = headers;
  return uri;
}

export function formatUri(uri: Uri): string {
  if (!isSipUri(uri)) return `${uri.scheme}:${uri.opaque}`;
  let s = `${uri.scheme}:`;
  if (uri.user !== undefined) s += `${uri.user}${uri.password !== undefined ? `:${uri.password}` : ''}@`;
  s += uri.host;
  if (uri.port !== undefined) s += `:${uri.port}`;
  s += uri.params.toString();
  if (uri.headers !== undefined) s += `?${uri.headers}`;
  return s;
}

export function cloneUri<T extends Uri>(uri: T): T {
  if (!isSipUri(uri)) return { ...uri };
  return { ...uri, params: uri.params.clone() } as T;
}

/** Host without IPv6 brackets, lower-cased (for comparisons and sockets). */
export function bareHost(host: string): string {
  return (host.startsWith('[') ? host.slice(1, -1) : host).toLowerCase();
}

/** Host as it must appear in a URI or Via (IPv6 in brackets). */
export function uriHost(address: string): string {
  return isIPv6(address) ? `[${address}]` : address;
}

/** A name-addr or addr-spec with header parameters: From, To, Contact, Route, Record-Route. */
export interface NameAddr {
  displayName?: string;
  uri: Uri;
  params: Params;
}

/**
 * Parses `( name-addr / addr-spec ) *( SEMI param )`. In the addr-spec form the URI cannot carry
 * parameters or headers: ';' starts the header parameters and '?' or ',' is an error (RFC 3261 §20).
 */
export function parseNameAddr(text: string): NameAddr {
  const s = text.trim();
  let i = 0;
  let displayName: string | undefined;
  let uriText: string;
  const lt = s.indexOf('<');
  if (s.startsWith('"')) {
    const q = readQuoted(s, 0);
    displayName = q.text;
    i = q.end;
    while (isWsp(s[i])) i++;
    if (s[i] !== '<') throw new SipParseError('expected < after display name');
  } else if (lt >= 0 && !s.slice(0, lt).includes(';')) {
    const name = s.slice(0, lt).trim();
    if (name !== '') {
      // display-name = *(token LWS)
      for (const word of name.split(/[ \t]+/)) {
        if (!isToken(word)) throw new SipParseError('bad characters in display name');
      }
      displayName = name;
    }
    i = lt;
  }
  let params: Params;
  if (s[i] === '<') {
    const gt = s.indexOf('>', i);
    if (gt < 0) throw new SipParseError('missing >');
    uriText = s.slice(i + 1, gt);
    const uri = parseUri(uriText);
    params = readParams(s, gt + 1).params;
    const result: NameAddr = { uri, params };
    if (displayName !== undefined) result.displayName = displayName;
    return result;
  }
  let j = 0;
  while (j < s.length && s[j] !== ';' && !isWsp(s[j])) j++;
  uriText = s.slice(0, j);
  if (uriText.includes(',') || uriText.includes('?')) {
    throw new SipParseError('URI with "," or "?" must be enclosed in <>');
  }
  const uri = parseUri(uriText, false);
  params = readParams(s, j).params;
  return { uri, params };
}

export function formatNameAddr(na: NameAddr): string {
  const name = na.displayName !== undefined && na.displayName !== '' ? `${quote(na.displayName)} ` : '';
  return `${name}<${formatUri(na.uri)}>${na.params.toString()}`;
}

export interface Via {
  /** Transport in upper case: UDP, TCP, TLS, SCTP, WS, WSS or other. */
  transport: string;
  /** sent-by host; IPv6 in brackets. */
  host: string;
  port?: number;
  params: Params;
}

/** Parses one via-parm: sent-protocol LWS sent-by *( SEMI via-params ). */
export function parseVia(text: string): Via {
  const s = text.trim();
  const m =
    /^([A-Za-z0-9\-.!%*_+`'~]+)\s*\/\s*([A-Za-z0-9\-.!%*_+`'~]+)\s*\/\s*([A-Za-z0-9\-.!%*_+`'~]+)[ \t]+/.exec(
      s,
    );
  if (!m) throw new SipParseError('bad Via sent-protocol');
  if (m[1]!.toUpperCase() !== 'SIP' || m[2] !== '2.0') throw new SipParseError('bad Via protocol version');
  let i = m[0].length;
  let host: string;
  if (s[i] === '[') {
    const close = s.indexOf(']', i);
    if (close < 0) throw new SipParseError('unterminated IPv6 reference in Via');
    host = s.slice(i, close + 1);
    i = close + 1;
  } else {
    let j = i;
    while (j < s.length && /[A-Za-z0-9.-]/.test(s[j]!)) j++;
    host = s.slice(i, j);
    i = j;
  }
  if (!isHost(host)) throw new SipParseError('bad Via host');
  while (isWsp(s[i])) i++;
  let port: number | undefined;
  if (s[i] === ':') {
    i++;
    while (isWsp(s[i])) i++;
    let j = i;
    while (j < s.length && s[j]! >= '0' && s[j]! <= '9') j++;
    const digits = s.slice(i, j);
    if (digits === '' || digits.length > 5 || Number(digits) > 65535) throw new SipParseError('bad Via port');
    port = Number(digits);
    i = j;
  }
  const { params } = readParams(s, i);
  const branch = params.get('branch');
  if (branch === null) throw new SipParseError('Via branch without value');
  const rport = params.get('rport');
  if (rport !== undefined && rport !== null && !/^\d{1,5}$/.test(rport)) throw new SipParseError('bad rport');
  const received = params.get('received');
  if (received !== undefined) {
    const r = received === null ? '' : received.replace(/^\[(.*)\]$/, '$1');
    if (!isHost(r) && !isIPv6(r)) throw new SipParseError('bad received');
  }
  const via: Via = { transport: m[3]!.toUpperCase(), host, params };
  if (port !== undefined) via.port = port;
  return via;
}

export function formatVia(via: Via): string {
  return `SIP/2.0/${via.transport} ${via.host}${via.port !== undefined ? `:${via.port}` : ''}${via.params.toString()}`;
}
