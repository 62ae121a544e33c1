/**
 * JIDs per RFC 7622, prepared with Node built-ins only (no PRECIS library).
 *
 * - localpart: PRECIS UsernameCaseMapped (RFC 8265 §3.3): width mapping, lower case, NFC, then the
 *   IdentifierClass check (letters, digits, printable ASCII), minus the JID-forbidden characters
 *   `" & ' / : < > @` (RFC 7622 §3.3.1).
 * - domainpart: RFC 7622 §3.2: full stops mapped, trailing dot removed, lower case, NFC, validated as
 *   an IDNA host name with `url.domainToASCII`, or an IP literal.
 * - resourcepart: PRECIS OpaqueString (RFC 8265 §4.2): non-ASCII spaces mapped to U+0020, NFC, then the
 *   FreeformClass check (no controls, no unassigned code points).
 * Each part is 1..1023 bytes of UTF-8 after preparation.
 *
 * Approximations, because JavaScript regular expressions know General_Category but not the PRECIS
 * derived property table: IdentifierClass is Ll|Lu|Lo|Lm|Nd|Mn|Mc plus ASCII 0x21-0x7E, code points
 * with a compatibility decomposition (other than width) are refused, and Unicode 15 data (Node 20's ICU)
 * decides what is unassigned.
 */
import { domainToASCII } from 'node:url';

export class JidError extends Error {
  override readonly name = 'JidError';
}

const MAX_PART_BYTES = 1023;
const LOCAL_FORBIDDEN = new Set(['"', '&', "'", '/', ':', '<', '>', '@']);
const IDENTIFIER_LETTER_DIGIT = /^[\p{Ll}\p{Lu}\p{Lo}\p{Lm}\p{Nd}\p{Mn}\p{Mc}]$/u;
const UNASSIGNED_OR_CONTROL = /[\p{Cn}\p{Cc}\p{Cs}\p{Co}]/u;
const NON_ASCII_SPACE = /[\u00A0\u1680\u2000-\u200A\u202F\u205F\u3000]/gu;
const FULL_STOPS = /[\u3002\uFF0E\uFF61]/g;
/** Default ignorable code points; FreeformClass disallows them too. */
const IGNORABLE = /\p{Default_Ignorable_Code_Point}/u;

function byteLength(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/** Width mapping (RFC 8264 §9.3): fullwidth and halfwidth forms to their decomposition. */
function mapWidth(s: string): string {
  // Fast path: the Halfwidth and Fullwidth Forms block is U+FF00-U+FFEF.
  if (!/[\uFF00-\uFFEF]/.test(s)) return s;
  return s.replace(/[\uFF00-\uFFEF]/g, (ch) => ch.normalize('NFKC'));
}

export function prepLocalpart(input: string): string {
  if (input.length === 0) throw new JidError('empty localpart');
  let s = mapWidth(input);
  s = s.toLowerCase().normalize('NFC');
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (cp >= 0x21 && cp <= 0x7e) {
      if (LOCAL_FORBIDDEN.has(ch)) throw new JidError(`localpart contains forbidden character '${ch}'`);
      continue;
    }
    if (!IDENTIFIER_LETTER_DIGIT.test(ch))
      throw new JidError(`localpart contains disallowed code point U+${hex(cp)}`);
    if (ch.normalize('NFKC') !== ch)
      throw new JidError(`localpart contains compatibility character U+${hex(cp)}`);
  }
  if (byteLength(s) > MAX_PART_BYTES) throw new JidError('localpart longer than 1023 bytes');
  return s;
}

export function prepResourcepart(input: string): string {
  if (input.length === 0) throw new JidError('empty resourcepart');
  const s = input.replace(NON_ASCII_SPACE, ' ').normalize('NFC');
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x80) {
      if (cp < 0x20 || cp === 0x7f)
        throw new JidError(`resourcepart contains control character U+${hex(cp)}`);
      continue;
    }
    if (UNASSIGNED_OR_CONTROL.test(ch) || IGNORABLE.test(ch))
      throw new JidError(`resourcepart contains disallowed code point U+${hex(cp)}`);
  }
  if (byteLength(s) > MAX_PART_BYTES) throw new JidError('resourcepart longer than 1023 bytes');
  return s;
}

export function prepDomainpart(input: string): string {
  let s = mapWidth(input).replace(FULL_STOPS, '.');
  if (s.endsWith('.')) s = s.slice(0, -1);
  if (s.length === 0) throw new JidError('empty domainpart');
  if (s.startsWith('[')) {
    // IPv6 literal (RFC 7622 §3.2.1 via RFC 3986 IP-literal).
    if (!s.endsWith(']') || !/^\[[0-9a-fA-F:.]+\]$/.test(s)) throw new JidError('malformed IPv6 literal');
    return s.toLowerCase();
  }
  s = s.toLowerCase().normalize('NFC');
  if (byteLength(s) > MAX_PART_BYTES) throw new JidError('domainpart longer than 1023 bytes');
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (cp <= 0x20 || cp === 0x7f || LOCAL_FORBIDDEN.has(ch) || ch === '[' || ch === ']' || ch === '\\')
      throw new JidError(`domainpart contains forbidden character U+${hex(cp)}`);
  }
  const labels = s.split('.');
  for (const label of labels) {
    if (label.length === 0) throw new JidError('domainpart has an empty label');
  }
  const ascii = domainToASCII(s);
  if (ascii === '') throw new JidError('domainpart is not a valid host name');
  for (const label of ascii.split('.')) {
    if (label.length > 63) throw new JidError('domain label longer than 63 octets');
    if (!/^[a-z0-9_-]+$/.test(label)) throw new JidError('domainpart is not a valid host name');
  }
  return s;
}

function hex(cp: number): string {
  return cp.toString(16).toUpperCase().padStart(4, '0');
}

/** An immutable, prepared JID. Compare with `equals` or by `toString()`. */
export class Jid {
  readonly local: string;
  readonly domain: string;
  readonly resource: string;
  private text: string | undefined;

  /** Parts must already be prepared; use `parseJid` or `Jid.of` for untrusted input. */
  constructor(local: string, domain: string, resource = '') {
    this.local = local;
    this.domain = domain;
    this.resource = resource;
  }

  static of(local: string, domain: string, resource = ''): Jid {
    return new Jid(
      local === '' ? '' : prepLocalpart(local),
      prepDomainpart(domain),
      resource === '' ? '' : prepResourcepart(resource),
    );
  }

  get isBare(): boolean {
    return this.resource === '';
  }

  /** True for a domain-only JID (a server or component address). */
  get isDomain(): boolean {
    return this.local === '' && this.resource === '';
  }

  bare(): Jid {
    return this.resource === '' ? this : new Jid(this.local, this.domain);
  }

  withResource(resource: string): Jid {
    return new Jid(this.local, this.domain, resource);
  }

  bareString(): string {
    return this.local === '' ? this.domain : `${this.local}@${this.domain}`;
  }

  toString(): string {
    if (this.text === undefined) {
      const bare = this.bareString();
      this.text = this.resource === '' ? bare : `${bare}/${this.resource}`;
    }
    return this.text;
  }

  equals(other: Jid | undefined): boolean {
    return (
      other !== undefined &&
      other.local === this.local &&
      other.domain === this.domain &&
      other.resource === this.resource
    );
  }
}

const cache = new Map<string, Jid>();
const CACHE_MAX = 20_000;

/**
 * Parses and prepares a JID (RFC 7622 §3.1: the first '/' starts the resource; before it, the first
 * '@' ends the localpart). Throws JidError. Results are cached, so hot JIDs cost one Map lookup.
 */
export function parseJid(input: string): Jid {
  const hit = cache.get(input);
  if (hit !== undefined) return hit;
  if (input.length > 3 * 1024 + 2) throw new JidError('JID too long');
  const slash = input.indexOf('/');
  const head = slash === -1 ? input : input.slice(0, slash);
  const resource = slash === -1 ? undefined : input.slice(slash + 1);
  const at = head.indexOf('@');
  const local = at === -1 ? undefined : head.slice(0, at);
  const domain = at === -1 ? head : head.slice(at + 1);
  if (local !== undefined && local.length === 0) throw new JidError('empty localpart before @');
  if (resource !== undefined && resource.length === 0) throw new JidError('empty resourcepart after /');
  const jid = new Jid(
    local === undefined ? '' : prepLocalpart(local),
    prepDomainpart(domain),
    resource === undefined ? '' : prepResourcepart(resource),
  );
  if (cache.size >= CACHE_MAX) cache.clear();
  cache.set(input, jid);
  return jid;
}

/** parseJid that returns undefined instead of throwing. */
export function tryParseJid(input: string | undefined): Jid | undefined {
  if (input === undefined) return undefined;
  try {
    return parseJid(input);
  } catch {
    return undefined;
  }
}

/**
 * The bare part of a JID string as it came off the wire (everything before the first '/'), without
 * preparation: for keys and comparisons of JIDs the server already prepared, where parseJid is too slow.
 */
export function bareOf(jid: string): string {
  const slash = jid.indexOf('/');
  return slash < 0 ? jid : jid.slice(0, slash);
}

// XEP-0106 JID escaping: for turning arbitrary user names (e.g. from a directory) into localparts.
const ESCAPES: Array<[string, string]> = [
  ['\\', '\\5c'],
  [' ', '\\20'],
  ['"', '\\22'],
  ['&', '\\26'],
  ["'", '\\27'],
  ['/', '\\2f'],
  [':', '\\3a'],
  ['<', '\\3c'],
  ['>', '\\3e'],
  ['@', '\\40'],
];

/** XEP-0106 §4.2: escapes the ten characters; a backslash only where it would read as an escape. */
export function escapeLocal(raw: string): string {
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i]!;
    if (ch === '\\') {
      const next = raw.slice(i, i + 3).toLowerCase();
      out += ESCAPES.some(([, esc]) => esc === next) ? '\\5c' : '\\';
      continue;
    }
    const pair = ESCAPES.find(([c]) => c === ch);
    out += pair === undefined ? ch : pair[1];
  }
  return out;
}

/** XEP-0106 §4.3: the display form of an escaped localpart. */
export function unescapeLocal(escaped: string): string {
  return escaped.replace(/\\(20|22|26|27|2f|3a|3c|3e|40|5c)/gi, (_, code: string) =>
    String.fromCharCode(Number.parseInt(code, 16)),
  );
}
