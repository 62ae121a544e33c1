/**
 * Serializer for the element model: exact escaping, one default-namespace declaration wherever the
 * namespace changes, generated prefixes only for namespaced attributes.
 *
 * Characters that XML 1.0 cannot carry (C0 controls other than TAB/LF/CR, lone surrogates, U+FFFE/FFFF)
 * are dropped, so the output is always well-formed whatever the application put into the model.
 */
import type { Element } from './element.ts';

const INVALID_CHARS = /[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;
// biome-ignore lint/suspicious/noControlCharactersInRegex: presence test for the slow path
const NEEDS_TEXT_WORK = /[&<>\r\x00-\x08\x0B\x0C\x0E-\x1F\uD800-\uDFFF\uFFFE\uFFFF]/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: presence test for the slow path
const NEEDS_ATTR_WORK = /[&<>"'\t\n\r\x00-\x08\x0B\x0C\x0E-\x1F\uD800-\uDFFF\uFFFE\uFFFF]/;

const TEXT_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '\r': '&#xD;' };
const ATTR_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
  '\t': '&#x9;',
  '\n': '&#xA;',
  '\r': '&#xD;',
};

/** Removes characters that cannot appear in an XML 1.0 document. */
export function stripInvalidXmlChars(value: string): string {
  return value.replace(INVALID_CHARS, '');
}

export function escapeText(value: string): string {
  if (!NEEDS_TEXT_WORK.test(value)) return value;
  return stripInvalidXmlChars(value).replace(/[&<>\r]/g, (ch) => TEXT_ESCAPES[ch]!);
}

/** Escapes an attribute value for use inside single or double quotes; TAB/LF/CR survive normalization. */
export function escapeAttr(value: string): string {
  if (!NEEDS_ATTR_WORK.test(value)) return value;
  return stripInvalidXmlChars(value).replace(/[&<>"'\t\n\r]/g, (ch) => ATTR_ESCAPES[ch]!);
}

/**
 * The attributes of a start tag, with namespace declarations, as a string starting with a space
 * (or empty). `parentNs` is the default namespace in scope; pass null to force a declaration.
 */
export function startTagAttrs(element: Element, parentNs: string | null): string {
  let out = '';
  if (element.ns !== parentNs) out += ` xmlns='${escapeAttr(element.ns)}'`;
  let prefixCount = 0;
  for (const key of Object.keys(element.attrs)) {
    const value = escapeAttr(element.attrs[key]!);
    if (key.charCodeAt(0) === 123 /* { */) {
      const close = key.indexOf('}');
      const uri = key.slice(1, close);
      const prefix = `ns${prefixCount++}`;
      out += ` xmlns:${prefix}='${escapeAttr(uri)}' ${prefix}:${key.slice(close + 1)}='${value}'`;
    } else {
      out += ` ${key}='${value}'`;
    }
  }
  return out;
}

/**
 * Serializes an element. `parentNs` is the default namespace already in scope where the element will
 * be written (for a stanza on a client stream: 'jabber:client'); the element declares its own
 * namespace only when it differs.
 */
export function serialize(element: Element, parentNs: string | null = ''): string {
  let out = `<${element.name}${startTagAttrs(element, parentNs)}`;
  if (element.children.length === 0) return `${out}/>`;
  out += '>';
  for (const child of element.children) {
    out += typeof child === 'string' ? escapeText(child) : serialize(child, element.ns);
  }
  return `${out}</${element.name}>`;
}
