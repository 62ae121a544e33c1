/** Per-reader limits. Every one is checked before or while data reaches the parser, never after. */
export interface XmlLimits {
  /** Bytes of one top-level element of a stream, or of a whole document. */
  maxStanzaBytes: number;
  /** Element nesting depth below the stanza (stream) or including the root (document). */
  maxDepth: number;
  /** Attributes on one element, namespace declarations included. */
  maxAttributes: number;
  /**
   * Bytes held that have not yet formed a complete event: a stream header still open, a stanza in
   * progress, text after the last stanza. A memory bound for every phase of the stream.
   */
  maxBufferedBytes: number;
}

/** RFC 6120 leaves limits to the server; these follow Prosody 0.12 (10,000 bytes before auth). */
export const PRE_AUTH_LIMITS: Readonly<XmlLimits> = Object.freeze({
  maxStanzaBytes: 10 * 1024,
  maxDepth: 64,
  maxAttributes: 64,
  maxBufferedBytes: 16 * 1024,
});

export const POST_AUTH_LIMITS: Readonly<XmlLimits> = Object.freeze({
  maxStanzaBytes: 256 * 1024,
  maxDepth: 64,
  maxAttributes: 256,
  maxBufferedBytes: 264 * 1024,
});

/** CSTA messages are small documents; the framing layer applies its own frame size cap first. */
export const DOCUMENT_LIMITS: Readonly<XmlLimits> = Object.freeze({
  maxStanzaBytes: 256 * 1024,
  maxDepth: 64,
  maxAttributes: 256,
  maxBufferedBytes: 256 * 1024,
});
