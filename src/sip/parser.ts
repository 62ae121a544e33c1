/**
 * SIP message parser (RFC 3261 §7, §25). Works on one whole message: a UDP datagram, or a message the
 * stream framer (framing.ts) has cut from a TCP byte stream. Every failure is a SipParseError carrying
 * the status to answer a request with; nothing else is thrown.
 */
import { DEFAULT_SIP_LIMITS, type SipLimits, SipParseError } from './errors.ts';
import { isToken, isWsp } from './grammar.ts';
import { canonicalHeaderName } from './headers.ts';
import { type HeaderField, type SipMessage, SipRequest, SipResponse } from './message.ts';
import { parseUri } from './uri.ts';

export interface ParseOptions {
  limits?: SipLimits;
  /** Stream transports need Content-Length and take the body length from it exactly (§18.3). */
  stream?: boolean;
}

/** What is known about a message that failed to parse, so a 400 can still be sent. */
export interface PartialMessage {
  isRequest: boolean;
  method?: string;
  headers: HeaderField[];
}

export class SipMessageError extends SipParseError {
  readonly partial: PartialMessage | undefined;

  constructor(cause: SipParseError, partial: PartialMessage | undefined) {
    super(cause.message, cause.status, cause.fatal);
    this.partial = partial;
  }
}

/** Index just after the blank line ending the header section, or -1. Accepts bare LF line ends. */
export function findHeaderEnd(buf: Buffer, from = 0): number {
  for (let i = from; i < buf.length; i++) {
    if (buf[i] !== 0x0a) continue;
    if (buf[i + 1] === 0x0a) return i + 2;
    if (buf[i + 1] === 0x0d && buf[i + 2] === 0x0a) return i + 3;
  }
  return -1;
}

/** Splits a header section into unfolded fields (§7.3.1: CRLF followed by WSP is folding). */
export function parseHeaderLines(lines: string[], limits: SipLimits): HeaderField[] {
  const headers: HeaderField[] = [];
  let current: { name: string; value: string } | undefined;
  const flush = () => {
    if (current === undefined) return;
    const colon = current.value.indexOf(':');
    const rawName = current.value.slice(0, colon).replace(/[ \t]+$/, '');
    if (colon < 0 || !isToken(rawName)) throw new SipParseError('malformed header line');
    headers.push({ name: canonicalHeaderName(rawName), value: current.value.slice(colon + 1).trim() });
    if (headers.length > limits.maxHeaderCount) throw new SipParseError('too many header fields', 400);
    current = undefined;
  };
  for (const line of lines) {
    if (isWsp(line[0])) {
      if (current === undefined) throw new SipParseError('continuation line without a header');
      current.value += ` ${line.trim()}`;
      continue;
    }
    flush();
    current = { name: '', value: line };
  }
  flush();
  return headers;
}

/** Best-effort header fields of a message that failed to parse (bad lines skipped), for the 400. */
function salvageHeaders(lines: string[], limits: SipLimits): HeaderField[] {
  const out: HeaderField[] = [];
  for (const line of lines) {
    if (out.length >= limits.maxHeaderCount) break;
    if (isWsp(line[0])) {
      const last = out[out.length - 1];
      if (last !== undefined) last.value += ` ${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).replace(/[ \t]+$/, '');
    if (colon > 0 && isToken(name))
      out.push({ name: canonicalHeaderName(name), value: line.slice(colon + 1).trim() });
  }
  return out;
}

const DATE_RE =
  /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;

/** Content-Length from the headers; undefined when absent; error when malformed or conflicting. */
export function contentLengthOf(headers: HeaderField[]): number | undefined {
  let length: number | undefined;
  for (const h of headers) {
    if (h.name !== 'Content-Length') continue;
    if (!/^\d{1,10}$/.test(h.value)) throw new SipParseError('bad Content-Length');
    const n = Number(h.value);
    if (length !== undefined && length !== n) throw new SipParseError('conflicting Content-Length values');
    length = n;
  }
  return length;
}

function parseStartLine(line: string): SipRequest | SipResponse {
  if (line.startsWith('SIP/')) {
    const m = /^SIP\/(\d+\.\d+) (\d{3}) ([^\r\n]*)$/.exec(line);
    if (!m) throw new SipParseError('bad status line');
    if (m[1] !== '2.0') throw new SipParseError('unsupported SIP version', 505);
    const status = Number(m[2]);
    if (status < 100) throw new SipParseError('bad status code');
    return new SipResponse(status, m[3]!);
  }
  // Request-Line = Method SP Request-URI SP SIP-Version: exactly one SP between elements (§25.1)
  const parts = line.split(' ');
  if (parts.length !== 3) throw new SipParseError('bad request line');
  const [method, uriText, version] = parts as [string, string, string];
  if (!isToken(method)) throw new SipParseError('bad method');
  const v = /^SIP\/(\d+\.\d+)$/.exec(version);
  if (!v) throw new SipParseError('bad request line');
  if (v[1] !== '2.0') throw new SipParseError('unsupported SIP version', 505);
  if (uriText.length > 4096) throw new SipParseError('Request-URI too long', 414);
  return new SipRequest(method, parseUri(uriText, false));
}

/**
 * Parses one message. Requests with errors throw SipMessageError whose `partial` carries the headers
 * (to build the 400); a stream caller checks `fatal` to know whether the connection must close.
 */
export function parseMessage(input: Buffer | string, options: ParseOptions = {}): SipMessage {
  const limits = options.limits ?? DEFAULT_SIP_LIMITS;
  const buf = typeof input === 'string' ? Buffer.from(input) : input;
  if (buf.length > limits.maxMessageBytes) {
    throw new SipMessageError(new SipParseError('message too large', 513), undefined);
  }
  // §7.5: CRLFs before the start line are ignored
  let start = 0;
  while (buf[start] === 0x0d || buf[start] === 0x0a) start++;
  let headerEnd = findHeaderEnd(buf, start);
  let bodyStart = headerEnd;
  if (headerEnd < 0) {
    // a datagram may end right after the last header line
    if (options.stream) throw new SipMessageError(new SipParseError('incomplete header section'), undefined);
    headerEnd = buf.length;
    bodyStart = buf.length;
  }
  if (headerEnd - start > limits.maxHeaderBytes) {
    throw new SipMessageError(new SipParseError('header section too large', 513, true), undefined);
  }
  const text = buf.toString('utf8', start, headerEnd);
  const lines = text.split(/\r?\n/);
  while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const startLine = lines.shift() ?? '';
  let partial: PartialMessage | undefined;
  let message: SipMessage;
  try {
    const isRequest = !startLine.startsWith('SIP/');
    partial = { isRequest, headers: [] };
    const method = isRequest ? startLine.split(' ')[0] : undefined;
    if (method !== undefined) partial.method = method;
    try {
      partial.headers = parseHeaderLines(lines, limits);
    } catch (e) {
      partial.headers = salvageHeaders(lines, limits);
      throw e;
    }
    message = parseStartLine(startLine);
    message.headers = partial.headers;
    const length = contentLengthOf(message.headers);
    if (options.stream && length === undefined)
      throw new SipParseError('missing Content-Length on a stream', 400, true);
    const available = buf.length - bodyStart;
    if (length !== undefined && length > available)
      throw new SipParseError('body shorter than Content-Length');
    const bodyLength = length ?? available;
    if (bodyLength > limits.maxBodyBytes) throw new SipParseError('body too large', 413);
    // a datagram may carry bytes after the body; they are ignored (§18.3)
    message.body = Buffer.from(buf.subarray(bodyStart, bodyStart + bodyLength));
    message.validateCore();
    if (message instanceof SipRequest) {
      void message.contacts;
      const date = message.get('Date');
      if (date !== undefined && !DATE_RE.test(date)) throw new SipParseError('bad Date');
    }
  } catch (e) {
    if (e instanceof SipParseError) throw new SipMessageError(e, partial);
    throw new SipMessageError(new SipParseError(`unparseable message: ${String(e)}`), partial);
  }
  return message;
}
