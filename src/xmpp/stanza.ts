/**
 * Stanza and stream-error helpers shared by servers, components and clients (RFC 6120 §8, §4.9).
 */
import { Element, escapeText } from '../xml/index.ts';
import { NS } from './ns.ts';

export type ErrorType = 'auth' | 'cancel' | 'continue' | 'modify' | 'wait';

/** RFC 6120 §8.3.3 defined conditions. */
export type StanzaErrorCondition =
  | 'bad-request'
  | 'conflict'
  | 'feature-not-implemented'
  | 'forbidden'
  | 'gone'
  | 'internal-server-error'
  | 'item-not-found'
  | 'jid-malformed'
  | 'not-acceptable'
  | 'not-allowed'
  | 'not-authorized'
  | 'policy-violation'
  | 'recipient-unavailable'
  | 'redirect'
  | 'registration-required'
  | 'remote-server-not-found'
  | 'remote-server-timeout'
  | 'resource-constraint'
  | 'service-unavailable'
  | 'subscription-required'
  | 'undefined-condition'
  | 'unexpected-request';

/** RFC 6120 §4.9.3 defined conditions. */
export type StreamErrorCondition =
  | 'bad-format'
  | 'bad-namespace-prefix'
  | 'conflict'
  | 'connection-timeout'
  | 'host-gone'
  | 'host-unknown'
  | 'improper-addressing'
  | 'internal-server-error'
  | 'invalid-from'
  | 'invalid-namespace'
  | 'invalid-xml'
  | 'not-authorized'
  | 'not-well-formed'
  | 'policy-violation'
  | 'remote-connection-failed'
  | 'reset'
  | 'resource-constraint'
  | 'restricted-xml'
  | 'see-other-host'
  | 'system-shutdown'
  | 'undefined-condition'
  | 'unsupported-encoding'
  | 'unsupported-feature'
  | 'unsupported-stanza-type'
  | 'unsupported-version';

export function isStanza(el: Element): boolean {
  return el.name === 'message' || el.name === 'presence' || el.name === 'iq';
}

/** The RFC 6120 §8.3 rule: an error stanza is never answered with another error. */
export function mayAnswerWithError(stanza: Element): boolean {
  const type = stanza.attr('type');
  if (type === 'error') return false;
  if (stanza.name === 'iq' && type === 'result') return false;
  return true;
}

/**
 * Builds the error reply to a stanza: addresses swapped, same id and name, type='error', plus the
 * `<error>` element (RFC 6120 §8.3.1). The original payload is not echoed (it MAY be; we keep replies small).
 */
export function errorReply(
  stanza: Element,
  type: ErrorType,
  condition: StanzaErrorCondition,
  text?: string,
  ns: string = stanza.ns,
): Element {
  const reply = new Element(stanza.name, ns, {
    type: 'error',
    id: stanza.attr('id'),
    from: stanza.attr('to'),
    to: stanza.attr('from'),
  });
  reply.append(stanzaError(type, condition, text, ns));
  return reply;
}

export function stanzaError(
  type: ErrorType,
  condition: StanzaErrorCondition,
  text?: string,
  ns: string = NS.client,
): Element {
  const error = new Element('error', ns, { type });
  error.append(new Element(condition, NS.stanzas));
  if (text !== undefined) error.append(new Element('text', NS.stanzas, { 'xml:lang': 'en' }, [text]));
  return error;
}

/** Reads the condition and type of an error stanza (for clients and tests). */
export function readStanzaError(
  stanza: Element,
): { type: string | undefined; condition: string | undefined; text: string | undefined } | undefined {
  const error = stanza.getChild('error');
  if (error === undefined) return undefined;
  const condition = error.elements().find((e) => e.ns === NS.stanzas && e.name !== 'text');
  return {
    type: error.attr('type'),
    condition: condition?.name,
    text: error.getChildText('text', NS.stanzas),
  };
}

export function iqResult(iq: Element, ns: string = iq.ns): Element {
  return new Element('iq', ns, {
    type: 'result',
    id: iq.attr('id'),
    from: iq.attr('to'),
    to: iq.attr('from'),
  });
}

/** `<stream:error>` with a condition and optional text (RFC 6120 §4.9.2); serialize with parentNs null. */
export function streamErrorXml(condition: StreamErrorCondition, text?: string): string {
  const body =
    `<${condition} xmlns='${NS.streams}'/>` +
    (text === undefined ? '' : `<text xmlns='${NS.streams}' xml:lang='en'>${escapeText(text)}</text>`);
  return `<stream:error>${body}</stream:error>`;
}

let idCounter = 0;
const idPrefix = Math.random().toString(36).slice(2, 8);
/** A short id unique within this process, for stanzas the server originates (pushes, pings). */
export function newStanzaId(): string {
  idCounter = (idCounter + 1) % Number.MAX_SAFE_INTEGER;
  return `${idPrefix}${idCounter.toString(36)}`;
}
