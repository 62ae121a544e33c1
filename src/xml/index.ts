export { Element, el, type Node, XML_NS } from './element.ts';
export { XmlError, type XmlErrorCondition } from './errors.ts';
export { DOCUMENT_LIMITS, POST_AUTH_LIMITS, PRE_AUTH_LIMITS, type XmlLimits } from './limits.ts';
export { parseDocument, type StreamHandlers, type StreamReaderOptions, XmlStreamReader } from './reader.ts';
export { escapeAttr, escapeText, serialize, startTagAttrs, stripInvalidXmlChars } from './serialize.ts';
