/**
 * Whole-message encode and decode: XML document ⇄ typed `CstaMessage`.
 *
 * Input: any ECMA-323 edition namespace (or a misspelt one, or none), prefixed roots, matched by
 * local name. Output: the configured edition's namespace (or an explicit one, e.g. the namespace the
 * peer used first), XSD spelling and element order; ECMA-354 messages always in their own namespace.
 */
import { Element, parseDocument, serialize, type XmlLimits } from '../xml/index.ts';
import {
  type CstaErrorCode,
  type CstaMessage,
  isMessageName,
  MESSAGE_CODECS,
  type MessageName,
  SESSION_MESSAGE_NAMES,
} from './messages.ts';
import { type Codec, CstaDecodeError, type Edition } from './schema.ts';

export const EDITION_NAMESPACES: Readonly<Record<Edition, string>> = Object.freeze({
  ed2: 'http://www.ecma.ch/standards/ecma-323/csta/ed2',
  ed3: 'http://www.ecma-international.org/standards/ecma-323/csta/ed3',
  ed4: 'http://www.ecma-international.org/standards/ecma-323/csta/ed4',
  ed5: 'http://www.ecma-international.org/standards/ecma-323/csta/ed5',
  ed6: 'http://www.ecma-international.org/standards/ecma-323/csta/ed6',
});
export const APPL_SESSION_NS = 'http://www.ecma-international.org/standards/ecma-354/appl_session';
export const DEFAULT_EDITION: Edition = 'ed4';
export const XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>';

/**
 * The edition a namespace names, read from its `/edN` part so that misspelt domains
 * (`www.ecmainternational.org`, `ecma.ch/…/ed6`) and Avaya's `…/ed3/privN` still count.
 */
export function editionOf(ns: string): Edition | undefined {
  const m = /ecma-?323\/csta\/ed([2-6])(?:\/|$)/.exec(ns);
  return m === null ? undefined : (`ed${m[1]}` as Edition);
}

export class UnknownMessageError extends CstaDecodeError {
  readonly root: string;
  constructor(root: string) {
    super(`unknown CSTA message <${root}>`);
    this.name = 'UnknownMessageError';
    this.root = root;
  }
}

export interface DecodeOptions {
  /** Tolerated problems (invalid enum values, fields kept raw); default: ignored. */
  log?: (message: string) => void;
}

const ignore = () => {};

function codecOf(name: MessageName): Codec<unknown> {
  return MESSAGE_CODECS[name] as Codec<unknown>;
}

/** Decodes a parsed message. Throws UnknownMessageError or CstaDecodeError. */
export function decodeMessage(root: Element, options: DecodeOptions = {}): CstaMessage {
  if (!isMessageName(root.name)) throw new UnknownMessageError(root.name);
  const data = codecOf(root.name).decode(root, { log: options.log ?? ignore, path: root.name }) as object;
  return { name: root.name, ...data } as CstaMessage;
}

export interface ParsedMessage {
  root: Element;
  /** Namespace of the root element as sent ('' when none). */
  ns: string;
  edition: Edition | undefined;
  /** Undefined when the root element is not a message this codec knows (see `error`). */
  message: CstaMessage | undefined;
  error: CstaDecodeError | undefined;
}

export interface ParseOptions extends DecodeOptions {
  limits?: Partial<XmlLimits>;
}

/**
 * Parses a document and decodes it. XML errors (XmlError) are thrown; a well-formed document that is
 * not a known or valid message comes back with `message` undefined and `error` set, so the caller can
 * still answer by root name and invokeID.
 */
export function parseMessage(body: string | Uint8Array, options: ParseOptions = {}): ParsedMessage {
  const root = parseDocument(body, options.limits === undefined ? {} : { limits: options.limits });
  let message: CstaMessage | undefined;
  let error: CstaDecodeError | undefined;
  try {
    message = decodeMessage(root, options);
  } catch (e) {
    if (!(e instanceof CstaDecodeError)) throw e;
    error = e;
  }
  return { root, ns: root.ns, edition: editionOf(root.ns), message, error };
}

export interface EncodeOptions {
  /** Edition whose spelling and optional fields are written; default ed4 (OpenScape Voice). */
  edition?: Edition;
  /** Namespace for CSTA elements; default: the edition's. Use it to echo the peer's namespace. */
  ns?: string;
}

/** Builds the element tree of a message. Throws CstaEncodeError when a required field is missing. */
export function encodeMessage(message: CstaMessage, options: EncodeOptions = {}): Element {
  const edition =
    options.edition ?? (options.ns === undefined ? undefined : editionOf(options.ns)) ?? DEFAULT_EDITION;
  const ns = SESSION_MESSAGE_NAMES.has(message.name)
    ? APPL_SESSION_NS
    : (options.ns ?? EDITION_NAMESPACES[edition]);
  const root = new Element(message.name, ns);
  codecOf(message.name).encode(root, message, { ns, edition });
  return root;
}

/** The complete document text: XML declaration plus the message. */
export function serializeMessage(message: CstaMessage, options: EncodeOptions = {}): string {
  return XML_DECLARATION + serialize(encodeMessage(message, options), null);
}

// ---- helpers for logs and tools -------------------------------------------------------------------------

function describeValue(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value === '' ? '""' : value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value instanceof Element) return undefined;
  if (Array.isArray(value)) return `[${value.length}]`;
  if (typeof value === 'object') {
    const record = value as Record<string, unknown>;
    if ('callID' in record || 'deviceID' in record) {
      return `${record.callID ?? '?'}/${record.deviceID ?? '?'}`;
    }
    const keys = Object.keys(record).filter((k) => !k.startsWith('$'));
    if (keys.length === 1) {
      const key = keys[0]!;
      const inner = record[key];
      return inner === true ? key : describeValue(inner);
    }
  }
  return undefined;
}

/** One readable line: the message name then `field=value` for each simple field. */
export function describeMessage(message: CstaMessage): string {
  const parts: string[] = [message.name];
  for (const [key, value] of Object.entries(message)) {
    if (key === 'name' || key.startsWith('$')) continue;
    const text = describeValue(value);
    if (text !== undefined) parts.push(`${key}=${text}`);
  }
  return parts.join(' ');
}

/** A CSTAErrorCode as "category/value" (e.g. "operation/invalidDeviceID"). */
export function describeErrorCode(code: CstaErrorCode): string {
  for (const [key, value] of Object.entries(code)) {
    if (key === 'name' || key.startsWith('$')) continue;
    if (value === true) return key;
    if (typeof value === 'string') return `${key}/${value}`;
    return key;
  }
  return 'unknown';
}

/** The number in an OpenScape Voice deviceIdentifier such as `N<302118840100>;noa=nk` (§4). */
export function plainNumber(deviceIdentifier: string): string {
  const m = /^N<([^>]*)>/.exec(deviceIdentifier);
  return m === null ? deviceIdentifier : m[1]!;
}
