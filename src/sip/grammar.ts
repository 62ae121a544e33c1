/**
 * RFC 3261 §25 grammar pieces shared by the URI and header parsers: tokens, quoted strings, LWS,
 * generic parameters and the comma split of list headers. All functions throw SipParseError (400).
 */
import { isIPv4, isIPv6 } from 'node:net';
import { SipParseError } from './errors.ts';

/** token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~") */
const TOKEN_RE = /^[A-Za-z0-9\-.!%*_+`'~]+$/;
export function isToken(s: string): boolean {
  return TOKEN_RE.test(s);
}

/** A table of the ASCII characters in `chars` (a character class body as in a regex, ranges a-z). */
function charTable(chars: string): Uint8Array {
  const table = new Uint8Array(128);
  for (let i = 0; i < chars.length; i++) {
    if (chars[i + 1] === '-' && i + 2 < chars.length) {
      for (let c = chars.charCodeAt(i); c <= chars.charCodeAt(i + 2); c++) table[c] = 1;
      i += 2;
    } else table[chars.charCodeAt(i)] = 1;
  }
  return table;
}
/** token characters (the parameter name of readParams) */
const TOKEN_CHARS = charTable("A-Za-z0-9-.!%*_+`'~");
/** token characters plus ':' '[' ']' (an unquoted gen-value: token or host with IPv6) */
const GEN_VALUE_CHARS = charTable("A-Za-z0-9-.!%*_+`'~:[]");

function inTable(table: Uint8Array, code: number): boolean {
  return code < 128 && table[code] === 1;
}

export function isWsp(c: string | undefined): boolean {
  return c === ' ' || c === '\t';
}

/** Ordered, case-insensitive parameters (`;name=value`). A value of null means a flag (`;lr`). */
export class Params {
  private readonly entries: Array<[string, string | null]> = [];

  static from(list: Array<[string, string | null]>): Params {
    const p = new Params();
    for (const [k, v] of list) p.set(k, v);
    return p;
  }

  get(name: string): string | null | undefined {
    const key = name.toLowerCase();
    for (const [k, v] of this.entries) if (k.toLowerCase() === key) return v;
    return undefined;
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  set(name: string, value: string | null): this {
    const key = name.toLowerCase();
    const existing = this.entries.find(([k]) => k.toLowerCase() === key);
    if (existing) existing[1] = value;
    else this.entries.push([name, value]);
    return this;
  }

  delete(name: string): this {
    const key = name.toLowerCase();
    const i = this.entries.findIndex(([k]) => k.toLowerCase() === key);
    if (i >= 0) this.entries.splice(i, 1);
    return this;
  }

  get size(): number {
    return this.entries.length;
  }

  [Symbol.iterator](): IterableIterator<[string, string | null]> {
    return this.entries[Symbol.iterator]();
  }

  clone(): Params {
    return Params.from(this.entries.map(([k, v]) => [k, v]));
  }

  toString(): string {
    return this.entries.map(([k, v]) => (v === null ? `;${k}` : `;${k}=${v}`)).join('');
  }
}

/** Reads a quoted-string starting at `s[i] === '"'`; returns the decoded text and the index after it. */
export function readQuoted(s: string, i: number): { text: string; end: number } {
  let text = '';
  let j = i + 1;
  while (j < s.length) {
    const c = s[j]!;
    if (c === '\\') {
      const next = s[j + 1];
      // quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
      if (next === undefined || next === '\r' || next === '\n' || next.charCodeAt(0) > 0x7f) {
        throw new SipParseError('bad escape in quoted string');
      }
      text += next;
      j += 2;
      continue;
    }
    if (c === '"') return { text, end: j + 1 };
    text += c;
    j++;
  }
  throw new SipParseError('unterminated quoted string');
}

export function quote(text: string): string {
  return `"${text.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

function skipWs(s: string, i: number): number {
  while (isWsp(s[i])) i++;
  return i;
}

/** Valid `host` of RFC 3261 (hostname, IPv4address or an IPv6reference in brackets). */
export function isHost(host: string): boolean {
  if (host.startsWith('[')) return host.endsWith(']') && isIPv6(host.slice(1, -1));
  if (isIPv4(host)) return true;
  // hostname = *( domainlabel "." ) toplabel [ "." ]; lenient on label starts for real-world names
  return /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$/.test(host);
}

/**
 * Parses `*( SEMI generic-param )` from `s` starting at `i` (which must be at ';' or the end).
 * gen-value = token / host / quoted-string. Quoted values keep their quotes.
 * `stop` ends the list early (',' between list elements).
 */
export function readParams(s: string, i: number, stop = ''): { params: Params; end: number } {
  const params = new Params();
  i = skipWs(s, i);
  while (i < s.length && s[i] === ';') {
    i = skipWs(s, i + 1);
    let j = i;
    while (j < s.length && inTable(TOKEN_CHARS, s.charCodeAt(j))) j++;
    const name = s.slice(i, j);
    if (name === '') throw new SipParseError('empty parameter');
    i = skipWs(s, j);
    let value: string | null = null;
    if (s[i] === '=') {
      i = skipWs(s, i + 1);
      if (s[i] === '"') {
        const q = readQuoted(s, i);
        value = s.slice(i, q.end);
        i = q.end;
      } else {
        let k = i;
        while (k < s.length && inTable(GEN_VALUE_CHARS, s.charCodeAt(k))) k++;
        value = s.slice(i, k);
        if (value === '') throw new SipParseError(`empty value for parameter ${name}`);
        if (value.includes('[') || value.includes(':')) {
          if (!isHost(value) && !isIPv6(value)) throw new SipParseError(`bad value for parameter ${name}`);
        }
        i = k;
      }
      i = skipWs(s, i);
    }
    if (params.has(name)) throw new SipParseError(`duplicate parameter ${name}`);
    params.set(name, value);
  }
  if (i < s.length && !stop.includes(s[i]!)) throw new SipParseError(`unexpected '${s[i]}' after parameters`);
  return { params, end: i };
}

/** Splits a list header value at top-level commas (outside quotes and <>). */
export function splitList(value: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c === '"') {
      i = readQuoted(value, i).end - 1;
    } else if (c === '<') depth++;
    else if (c === '>') depth = Math.max(0, depth - 1);
    else if (c === ',' && depth === 0) {
      out.push(value.slice(start, i).trim());
      start = i + 1;
    }
  }
  out.push(value.slice(start).trim());
  return out;
}

/** Unquotes a parameter value if it is a quoted-string. */
export function unquote(value: string): string {
  return value.startsWith('"') ? readQuoted(value, 0).text : value;
}
