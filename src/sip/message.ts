/**
 * SIP messages (RFC 3261 §7). Headers are kept as an ordered list of (canonical name, value) so that
 * unknown headers and their order survive; the fields every layer needs (Via, From, To, Call-ID, CSeq,
 * Contact, Max-Forwards) are parsed on first use and cached. Setting a header drops its cached form.
 */
import { SipParseError } from './errors.ts';
import { splitList } from './grammar.ts';
import { canonicalHeaderName, LIST_HEADERS } from './headers.ts';
import {
  formatNameAddr,
  formatUri,
  formatVia,
  type NameAddr,
  parseNameAddr,
  parseVia,
  type Uri,
  type Via,
} from './uri.ts';

export interface HeaderField {
  name: string;
  value: string;
}

export interface CSeq {
  seq: number;
  method: string;
}

const CALL_ID_WORD = /^[A-Za-z0-9\-.!%*_+`'~()<>:\\"/[\]?{}]+$/;

abstract class SipMessageBase {
  headers: HeaderField[] = [];
  body: Buffer = Buffer.alloc(0);
  private cache = new Map<string, unknown>();

  /** First value of a header (case-insensitive, compact forms allowed). */
  get(name: string): string | undefined {
    const canonical = canonicalHeaderName(name);
    for (const h of this.headers) if (h.name === canonical) return h.value;
    // names are stored canonically; other spellings only for unknown headers (or set by hand)
    const key = canonical.toLowerCase();
    for (const h of this.headers)
      if (h.name.length === key.length && h.name.toLowerCase() === key) return h.value;
    return undefined;
  }

  /** All values of a header; list headers are split at their commas. */
  getAll(name: string): string[] {
    const canonical = canonicalHeaderName(name);
    const key = canonical.toLowerCase();
    const out: string[] = [];
    for (const h of this.headers) {
      if (h.name !== canonical && (h.name.length !== canonical.length || h.name.toLowerCase() !== key))
        continue;
      if (LIST_HEADERS.has(canonical)) out.push(...splitList(h.value).filter((v) => v !== ''));
      else out.push(h.value);
    }
    return out;
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  /** Replaces every occurrence of a header with one value (or removes it when value is undefined). */
  set(name: string, value: string | undefined): this {
    const canonical = canonicalHeaderName(name);
    const key = canonical.toLowerCase();
    const i = this.headers.findIndex((h) => h.name.toLowerCase() === key);
    this.headers = this.headers.filter((h) => h.name.toLowerCase() !== key);
    if (value !== undefined)
      this.headers.splice(i >= 0 ? i : this.headers.length, 0, { name: canonical, value });
    this.cache.delete(key);
    return this;
  }

  append(name: string, value: string): this {
    const canonical = canonicalHeaderName(name);
    this.headers.push({ name: canonical, value });
    this.cache.delete(canonical.toLowerCase());
    return this;
  }

  prepend(name: string, value: string): this {
    const canonical = canonicalHeaderName(name);
    this.headers.unshift({ name: canonical, value });
    this.cache.delete(canonical.toLowerCase());
    return this;
  }

  remove(name: string): this {
    return this.set(name, undefined);
  }

  private cached<T>(key: string, compute: () => T): T {
    if (this.cache.has(key)) return this.cache.get(key) as T;
    const value = compute();
    this.cache.set(key, value);
    return value;
  }

  private single(name: string): string {
    const values = this.headers.filter((h) => h.name === name);
    if (values.length === 0) throw new SipParseError(`missing ${name}`);
    if (values.length > 1) throw new SipParseError(`more than one ${name}`);
    return values[0]!.value;
  }

  get vias(): Via[] {
    return this.cached('via', () => {
      const values = this.getAll('Via');
      if (values.length === 0) throw new SipParseError('missing Via');
      return values.map(parseVia);
    });
  }

  /** The top Via; throws SipParseError when there is none. */
  get via(): Via {
    return this.vias[0]!;
  }

  get from(): NameAddr {
    return this.cached('from', () => parseNameAddr(this.single('From')));
  }

  get to(): NameAddr {
    return this.cached('to', () => parseNameAddr(this.single('To')));
  }

  get callId(): string {
    return this.cached('call-id', () => {
      const v = this.single('Call-ID');
      const at = v.indexOf('@');
      const words = at >= 0 ? [v.slice(0, at), v.slice(at + 1)] : [v];
      if (!words.every((w) => CALL_ID_WORD.test(w))) throw new SipParseError('bad Call-ID');
      return v;
    });
  }

  get cseq(): CSeq {
    return this.cached('cseq', () => {
      const m = /^(\d{1,10})[ \t]+([A-Za-z0-9\-.!%*_+`'~]+)$/.exec(this.single('CSeq'));
      if (!m) throw new SipParseError('bad CSeq');
      const seq = Number(m[1]);
      if (seq > 2 ** 31 - 1) throw new SipParseError('CSeq number too large');
      return { seq, method: m[2]! };
    });
  }

  /** Max-Forwards, or undefined when absent (RFC 2543 peers). */
  get maxForwards(): number | undefined {
    return this.cached('max-forwards', () => {
      const values = this.headers.filter((h) => h.name === 'Max-Forwards');
      if (values.length === 0) return undefined;
      const v = this.single('Max-Forwards');
      if (!/^\d{1,10}$/.test(v) || Number(v) > 255) throw new SipParseError('bad Max-Forwards');
      return Number(v);
    });
  }

  /** Contact values; '*' is returned as the string '*'. */
  get contacts(): Array<NameAddr | '*'> {
    return this.cached('contact', () =>
      this.getAll('Contact').map((v) => (v.trim() === '*' ? ('*' as const) : parseNameAddr(v))),
    );
  }

  get contentLength(): number {
    return this.body.length;
  }

  /** Replaces the Via headers, keeping their place among the other headers. */
  setVias(vias: Via[]): this {
    let at = this.headers.findIndex((h) => h.name === 'Via');
    if (at < 0) at = 0;
    this.headers = this.headers.filter((h) => h.name !== 'Via');
    this.headers.splice(at, 0, ...vias.map((v) => ({ name: 'Via', value: formatVia(v) })));
    this.cache.delete('via');
    return this;
  }

  /**
   * Rewrites the top Via after its parameters changed (received, rport). Only its own header line is
   * rewritten when it holds that Via alone; a line listing several Vias is split as setVias does.
   */
  setTopVia(via: Via): this {
    const vias = this.vias;
    if (vias[0] !== via) throw new Error('setTopVia: not the top Via of this message');
    const first = this.headers.find((h) => h.name === 'Via');
    if (first === undefined || first.value.includes(',')) return this.setVias(vias);
    first.value = formatVia(via);
    return this;
  }

  setNameAddr(name: 'From' | 'To' | 'Contact', value: NameAddr): this {
    return this.set(name, formatNameAddr(value));
  }

  /** Checks the fields every request and response must carry (RFC 3261 §8.1.1); throws SipParseError. */
  validateCore(): void {
    void this.vias;
    void this.from;
    void this.to;
    void this.callId;
    void this.cseq;
    void this.maxForwards;
  }

  protected abstract startLine(): string;

  /** Wire form; Content-Length always equals the body length. */
  serialize(): Buffer {
    let head = `${this.startLine()}\r\n`;
    for (const h of this.headers) {
      if (h.name === 'Content-Length') continue;
      head += `${h.name}: ${h.value}\r\n`;
    }
    head += `Content-Length: ${this.body.length}\r\n\r\n`;
    if (this.body.length === 0) return Buffer.from(head);
    // one allocation for head and body
    const headBytes = Buffer.byteLength(head);
    const out = Buffer.allocUnsafe(headBytes + this.body.length);
    out.write(head, 0, 'utf8');
    this.body.copy(out, headBytes);
    return out;
  }

  toString(): string {
    return this.serialize().toString('utf8');
  }
}

export class SipRequest extends SipMessageBase {
  method: string;
  uri: Uri;

  constructor(method: string, uri: Uri) {
    super();
    this.method = method;
    this.uri = uri;
  }

  get isRequest(): true {
    return true;
  }

  protected startLine(): string {
    return `${this.method} ${formatUri(this.uri)} SIP/2.0`;
  }

  override validateCore(): void {
    super.validateCore();
    const cseq = this.cseq;
    if (cseq.method !== this.method) throw new SipParseError('CSeq method does not match the request method');
  }
}

export class SipResponse extends SipMessageBase {
  status: number;
  reason: string;

  constructor(status: number, reason: string) {
    super();
    this.status = status;
    this.reason = reason;
  }

  get isRequest(): false {
    return false;
  }

  protected startLine(): string {
    return `SIP/2.0 ${this.status} ${this.reason}`;
  }
}

export type SipMessage = SipRequest | SipResponse;

/** Default reason phrases (RFC 3261 §21). */
export const REASON_PHRASES: Record<number, string> = {
  100: 'Trying',
  180: 'Ringing',
  181: 'Call Is Being Forwarded',
  182: 'Queued',
  183: 'Session Progress',
  200: 'OK',
  202: 'Accepted',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  407: 'Proxy Authentication Required',
  408: 'Request Timeout',
  413: 'Request Entity Too Large',
  414: 'Request-URI Too Long',
  415: 'Unsupported Media Type',
  416: 'Unsupported URI Scheme',
  420: 'Bad Extension',
  423: 'Interval Too Brief',
  480: 'Temporarily Unavailable',
  481: 'Call/Transaction Does Not Exist',
  482: 'Loop Detected',
  483: 'Too Many Hops',
  486: 'Busy Here',
  487: 'Request Terminated',
  488: 'Not Acceptable Here',
  491: 'Request Pending',
  500: 'Server Internal Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
  504: 'Server Time-out',
  505: 'Version Not Supported',
  513: 'Message Too Large',
  600: 'Busy Everywhere',
  603: 'Decline',
};

/** Builds a response to `request` as RFC 3261 §8.2.6.2 says: Via, From, To, Call-ID, CSeq copied. */
export function createResponse(
  request: SipRequest,
  status: number,
  reason?: string,
  toTag?: string,
): SipResponse {
  const response = new SipResponse(status, reason ?? REASON_PHRASES[status] ?? 'Unknown');
  for (const h of request.headers) {
    if (h.name === 'Via' || h.name === 'From' || h.name === 'Call-ID' || h.name === 'CSeq') {
      response.headers.push({ ...h });
    } else if (h.name === 'To') {
      let value = h.value;
      if (toTag !== undefined && status !== 100) {
        try {
          if (!request.to.params.has('tag')) value = `${value};tag=${toTag}`;
        } catch {
          // an unparseable To is copied as it is (only a 400 is sent for such a request)
        }
      }
      response.headers.push({ name: 'To', value });
    }
  }
  if (status === 100) {
    const ts = request.get('Timestamp');
    if (ts !== undefined) response.append('Timestamp', ts);
  }
  return response;
}
