/**
 * Hardened XML readers on top of saxes.
 *
 * `XmlStreamReader` turns an XMPP-style stream (one long root element) into events: stream start,
 * one complete element tree per top-level child, stream end. `parseDocument` reads one whole document
 * (a CSTA message, a WebSocket frame) into an element tree. Both:
 * - decode UTF-8 strictly, across chunk boundaries (invalid bytes are `not-well-formed`);
 * - refuse DOCTYPE, comments and processing instructions (RFC 6120 §11.1: `restricted-xml`); saxes
 *   itself refuses entities other than the five predefined ones and character references;
 * - enforce size, depth and attribute limits before the data reaches the parser: input is fed in
 *   pieces no larger than the remaining byte budget, so a 20 MB token costs the budget, not 20 MB.
 */
import { TextDecoder } from 'node:util';
import { type SaxesAttributeNS, SaxesParser, type SaxesTagNS } from 'saxes';
import { Element, XML_NS } from './element.ts';
import { XmlError } from './errors.ts';
import { DOCUMENT_LIMITS, PRE_AUTH_LIMITS, type XmlLimits } from './limits.ts';

export interface StreamHandlers {
  /** The root element's start tag (no children). */
  onStreamStart(root: Element): void;
  /** One complete top-level child of the root. */
  onStanza(stanza: Element): void;
  /** The root element was closed. */
  onStreamEnd(): void;
  /** The stream is unusable; called once, after which input is ignored. */
  onError(error: XmlError): void;
}

export interface StreamReaderOptions {
  limits?: Partial<XmlLimits>;
  /** Expected root element; any other name or namespace is `invalid-namespace`. */
  root?: { name: string; ns: string };
}

/** Thrown inside saxes callbacks to stop the current write at once. */
class Abort {
  readonly error: XmlError;
  constructor(error: XmlError) {
    this.error = error;
  }
}

type Parser = SaxesParser<{ xmlns: true; position: true }>;

/**
 * saxes stores handlers as properties added by on(); past six added properties V8 turns the parser
 * into a dictionary-mode object and parsing gets about 4x slower. So the handlers saxes invokes with
 * `this` live on a subclass prototype, and only the two it calls as plain functions (text, closetag)
 * are own properties.
 */
class BuilderParser extends SaxesParser<{ xmlns: true; position: true }> {
  readonly builder: TreeBuilder;
  constructor(builder: TreeBuilder) {
    super({ xmlns: true, position: true });
    this.builder = builder;
    this.on('text', (text) => builder.text(text));
    this.on('closetag', () => builder.close());
  }
}
type HandlerThis = BuilderParser;
Object.assign(BuilderParser.prototype, {
  openTagHandler(this: HandlerThis, tag: SaxesTagNS) {
    this.builder.open(tag);
  },
  cdataHandler(this: HandlerThis, text: string) {
    this.builder.text(text);
  },
  // Called without `this`: it must not use it.
  errorHandler(err: Error) {
    throw new Abort(mapSaxesError(err));
  },
  doctypeHandler(this: HandlerThis) {
    this.builder.restricted('a DOCTYPE');
  },
  commentHandler(this: HandlerThis) {
    this.builder.restricted('a comment');
  },
  piHandler(this: HandlerThis) {
    this.builder.restricted('a processing instruction');
  },
  xmldeclHandler(this: HandlerThis, decl: { encoding?: string }) {
    this.builder.xmlDecl(decl.encoding);
  },
});
type Event = { kind: 'start'; el: Element } | { kind: 'stanza'; el: Element } | { kind: 'end' };

const XMLNS_NS = 'http://www.w3.org/2000/xmlns/';

function isXmlWhitespace(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c !== 0x20 && c !== 0x0a && c !== 0x09 && c !== 0x0d) return false;
  }
  return true;
}

function toElement(tag: SaxesTagNS, limits: XmlLimits): Element {
  const raw = tag.attributes as Record<string, SaxesAttributeNS>;
  const element = new Element(tag.local, tag.uri);
  const attrs = element.attrs;
  let count = 0;
  for (const key in raw) {
    if (++count > limits.maxAttributes) {
      throw new Abort(
        new XmlError(
          'policy-violation',
          `element <${tag.name}> has more than ${limits.maxAttributes} attributes`,
        ),
      );
    }
    const a = raw[key]!;
    if (a.uri === XMLNS_NS || a.name === 'xmlns') continue;
    if (a.uri === '') attrs[a.local] = a.value;
    else if (a.uri === XML_NS) attrs[`xml:${a.local}`] = a.value;
    else attrs[`{${a.uri}}${a.local}`] = a.value;
  }
  return element;
}

function mapSaxesError(err: Error): XmlError {
  const message = err.message;
  if (/XML declaration|processing instruction/i.test(message)) return new XmlError('restricted-xml', message);
  return new XmlError('not-well-formed', message);
}

function appendText(parent: Element, text: string): void {
  const last = parent.children.length - 1;
  if (last >= 0 && typeof parent.children[last] === 'string') {
    parent.children[last] = (parent.children[last] as string) + text;
  } else {
    parent.children.push(text);
  }
}

/**
 * Shared core: a saxes parser with restricted-XML handlers and an element builder.
 * `stanzaLevel` is the depth of the elements reported whole: 2 for a stream, 1 for a document.
 */
class TreeBuilder {
  readonly parser: Parser;
  readonly events: Event[] = [];
  /** 0 outside the root, 1 inside the root element, and so on. */
  depth = 0;
  private readonly stack: Element[] = [];
  private readonly limits: () => XmlLimits;
  private readonly stanzaLevel: number;
  private readonly root: { name: string; ns: string } | undefined;
  private readonly onBoundary: (what: 'stream header' | 'stanza') => void;

  constructor(
    stanzaLevel: number,
    limits: () => XmlLimits,
    root: { name: string; ns: string } | undefined,
    onBoundary: (what: 'stream header' | 'stanza') => void,
  ) {
    this.stanzaLevel = stanzaLevel;
    this.limits = limits;
    this.root = root;
    this.onBoundary = onBoundary;
    this.parser = new BuilderParser(this);
  }

  restricted(what: string): never {
    throw new Abort(new XmlError('restricted-xml', `${what} is not allowed (RFC 6120 §11.1)`));
  }

  xmlDecl(encoding: string | undefined): void {
    if (encoding !== undefined && encoding.toLowerCase() !== 'utf-8') {
      throw new Abort(new XmlError('unsupported-encoding', `encoding ${encoding} is not supported`));
    }
  }

  open(tag: SaxesTagNS): void {
    const limits = this.limits();
    this.depth++;
    if (this.depth - this.stanzaLevel + 1 > limits.maxDepth) {
      throw new Abort(new XmlError('policy-violation', `nesting deeper than ${limits.maxDepth} elements`));
    }
    const element = toElement(tag, limits);
    if (this.depth === 1) {
      if (this.root !== undefined && (element.name !== this.root.name || element.ns !== this.root.ns)) {
        throw new Abort(
          new XmlError(
            'invalid-namespace',
            `expected <${this.root.name}> in ${this.root.ns}, got <${tag.name}>`,
          ),
        );
      }
      if (this.stanzaLevel === 2) {
        this.onBoundary('stream header');
        this.events.push({ kind: 'start', el: element });
        return;
      }
    }
    const parent = this.stack[this.stack.length - 1];
    if (parent !== undefined) parent.children.push(element);
    this.stack.push(element);
  }

  close(): void {
    if (this.depth === 1 && this.stanzaLevel === 2) {
      this.depth = 0;
      this.events.push({ kind: 'end' });
      return;
    }
    const element = this.stack.pop()!;
    this.depth--;
    if (this.depth === this.stanzaLevel - 1) {
      this.onBoundary('stanza');
      this.events.push({ kind: 'stanza', el: element });
    }
  }

  text(text: string): void {
    const parent = this.stack[this.stack.length - 1];
    if (parent !== undefined) {
      appendText(parent, text);
    } else if (!isXmlWhitespace(text)) {
      throw new Abort(new XmlError('bad-format', 'text is not allowed at stream level'));
    }
  }
}

export class XmlStreamReader {
  private readonly handlers: StreamHandlers;
  private readonly rootSpec: { name: string; ns: string } | undefined;
  private limits: XmlLimits;
  private builder!: TreeBuilder;
  private decoder!: TextDecoder;
  private failed = false;
  /** Bumped by reset(): input of an older generation is discarded (STARTTLS, SASL restarts). */
  private generation = 0;
  // Byte accounting. Positions are UTF-16 offsets into the text written to the current parser.
  private fedChars = 0;
  private fedBytes = 0;
  private boundaryChar = 0;
  private boundaryBytes = 0;
  private piece = '';
  private pieceStartChar = 0;
  private pieceStartBytes = 0;
  private pieceAscii = true;
  private atBoundary = true;

  constructor(handlers: StreamHandlers, options: StreamReaderOptions = {}) {
    this.handlers = handlers;
    this.rootSpec = options.root;
    this.limits = { ...PRE_AUTH_LIMITS, ...options.limits };
    this.reset();
  }

  /** Starts a new stream (after STARTTLS or SASL success). Unprocessed input is discarded. */
  reset(): void {
    this.generation++;
    this.builder = new TreeBuilder(
      2,
      () => this.limits,
      this.rootSpec,
      (what) => this.markBoundary(what),
    );
    this.decoder = new TextDecoder('utf-8', { fatal: true });
    this.fedChars = 0;
    this.fedBytes = 0;
    this.boundaryChar = 0;
    this.boundaryBytes = 0;
    this.atBoundary = true;
  }

  setLimits(limits: Partial<XmlLimits>): void {
    this.limits = { ...this.limits, ...limits };
  }

  getLimits(): Readonly<XmlLimits> {
    return this.limits;
  }

  /** True once an error was reported; all later input is ignored. */
  get isFailed(): boolean {
    return this.failed;
  }

  /** Feeds raw bytes (decoded as UTF-8) or already-decoded text. */
  feed(chunk: Uint8Array | string): void {
    if (this.failed) return;
    let text: string;
    if (typeof chunk === 'string') {
      text = chunk;
    } else {
      try {
        text = this.decoder.decode(chunk, { stream: true });
      } catch {
        this.fail(new XmlError('not-well-formed', 'invalid UTF-8'));
        return;
      }
    }
    this.write(text);
  }

  private write(text: string): void {
    const generation = this.generation;
    const length = text.length;
    let i = 0;
    while (i < length) {
      if (this.atBoundary) {
        // Whitespace between stanzas (keep-alives) is insignificant: never buffer it.
        while (i < length && isWs(text.charCodeAt(i))) i++;
        if (i === length) return;
      }
      const held = this.fedBytes - this.boundaryBytes;
      const budget = this.budget() - held;
      if (budget <= 0) {
        this.fail(this.limitError());
        return;
      }
      let end = Math.min(length, i + budget);
      // Never split a surrogate pair between two writes.
      if (end < length && isHighSurrogate(text.charCodeAt(end - 1))) end = end + 1 <= length ? end + 1 : end;
      const piece = i === 0 && end === length ? text : text.slice(i, end);
      const pieceBytes = Buffer.byteLength(piece, 'utf8');
      this.piece = piece;
      this.pieceStartChar = this.fedChars;
      this.pieceStartBytes = this.fedBytes;
      this.pieceAscii = pieceBytes === piece.length;
      this.atBoundary = false;
      let error: XmlError | undefined;
      try {
        this.builder.parser.write(piece);
      } catch (e) {
        if (!(e instanceof Abort)) throw e;
        error = e.error;
      }
      this.fedChars += piece.length;
      this.fedBytes += pieceBytes;
      if (!this.dispatch(generation)) return;
      if (error !== undefined) {
        this.fail(error);
        return;
      }
      if (this.fedBytes - this.boundaryBytes > this.budget()) {
        this.fail(this.limitError());
        return;
      }
      this.atBoundary = this.boundaryChar === this.fedChars;
      i = end;
    }
  }

  /** Delivers queued events; false when a handler reset the reader (or it failed) meanwhile. */
  private dispatch(generation: number): boolean {
    const events = this.builder.events;
    if (events.length === 0) return true;
    const batch = events.splice(0, events.length);
    for (const event of batch) {
      if (event.kind === 'stanza') this.handlers.onStanza(event.el);
      else if (event.kind === 'start') this.handlers.onStreamStart(event.el);
      else this.handlers.onStreamEnd();
      if (this.generation !== generation || this.failed) return false;
    }
    return true;
  }

  private budget(): number {
    // Inside the root start tag (depth 0) only the buffer cap applies; inside a stanza, the stanza cap.
    return this.builder.depth >= 1
      ? Math.min(this.limits.maxStanzaBytes, this.limits.maxBufferedBytes)
      : this.limits.maxBufferedBytes;
  }

  private limitError(): XmlError {
    return this.builder.depth >= 1
      ? new XmlError('policy-violation', `stanza larger than ${this.budget()} bytes`)
      : new XmlError('policy-violation', `stream header larger than ${this.budget()} bytes`);
  }

  private markBoundary(what: 'stream header' | 'stanza'): void {
    const pos = this.builder.parser.position;
    const from = Math.max(this.boundaryChar, this.pieceStartChar);
    const base = this.boundaryChar >= this.pieceStartChar ? this.boundaryBytes : this.pieceStartBytes;
    const bytes = this.pieceAscii
      ? base + (pos - from)
      : base +
        Buffer.byteLength(this.piece.slice(from - this.pieceStartChar, pos - this.pieceStartChar), 'utf8');
    // A stanza that completed inside one piece is checked here; one still open, after the write.
    const size = bytes - this.boundaryBytes;
    const limit = what === 'stanza' ? this.limits.maxStanzaBytes : this.limits.maxBufferedBytes;
    if (size > limit) {
      throw new Abort(new XmlError('policy-violation', `${what} of ${size} bytes is larger than ${limit}`));
    }
    this.boundaryChar = pos;
    this.boundaryBytes = bytes;
  }

  private fail(error: XmlError): void {
    if (this.failed) return;
    this.failed = true;
    this.handlers.onError(error);
  }
}

function isWs(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x09 || c === 0x0d;
}

function isHighSurrogate(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}

/** Stateless when used without `stream`: one instance serves every document. */
const DOCUMENT_DECODER = new TextDecoder('utf-8', { fatal: true });

export interface DocumentOptions {
  limits?: Partial<XmlLimits>;
}

/**
 * Parses one complete document (XML declaration allowed, one root element) into an element tree.
 * Throws XmlError; never returns a partial tree.
 */
export function parseDocument(input: string | Uint8Array, options: DocumentOptions = {}): Element {
  const limits: XmlLimits = { ...DOCUMENT_LIMITS, ...options.limits };
  const size = typeof input === 'string' ? Buffer.byteLength(input, 'utf8') : input.byteLength;
  if (size > limits.maxStanzaBytes) {
    throw new XmlError(
      'policy-violation',
      `document of ${size} bytes is larger than ${limits.maxStanzaBytes}`,
    );
  }
  let text: string;
  if (typeof input === 'string') {
    text = input;
  } else {
    try {
      text = DOCUMENT_DECODER.decode(input);
    } catch {
      throw new XmlError('not-well-formed', 'invalid UTF-8');
    }
  }
  const builder = new TreeBuilder(
    1,
    () => limits,
    undefined,
    () => {},
  );
  try {
    builder.parser.write(text);
    builder.parser.close();
  } catch (e) {
    if (e instanceof Abort) throw e.error;
    throw e;
  }
  const root = builder.events.find((e) => e.kind === 'stanza');
  if (root === undefined || root.kind !== 'stanza') throw new XmlError('bad-format', 'no root element');
  return root.el;
}
