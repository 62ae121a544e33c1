/**
 * CSTA XML over TCP without SOAP (ECMA-323 annex "CSTA XML without SOAP"; used by OpenScape Voice,
 * Avaya AES/DMCC, Zultys MX): every document is preceded by an 8-byte header
 *
 *   bytes 0-1  version, binary zero (ignored when not zero, as some clients send ASCII '00')
 *   bytes 2-3  uint16 big-endian TOTAL length = 8 + body length in BYTES
 *   bytes 4-7  invokeID as four ASCII digits
 *
 * The splitter is a pure state machine over byte chunks, so partial and merged frames are handled the
 * same way whatever the socket delivers. A header that cannot be right (length ≤ 8, over the limit,
 * non-digit invokeID, body not starting with '<') stops the splitter for good with a FramingError:
 * once a length is wrong every later boundary is a guess, so the only safe move is to drop the link.
 */

/** Largest total frame length the 16-bit field can express. */
export const MAX_FRAME_BYTES = 0xffff;
export const HEADER_BYTES = 8;
/** The writer refuses bodies longer than this (65 535 − 8). */
export const MAX_BODY_BYTES = MAX_FRAME_BYTES - HEADER_BYTES;

export class FramingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FramingError';
  }
}

export interface Frame {
  /** Four ASCII digits, "0000".."9999". */
  invokeId: string;
  /** The XML document, UTF-8 bytes. */
  body: Buffer;
}

export interface FrameHandlers {
  onFrame(frame: Frame): void;
  /** Called once; the splitter ignores all later input. */
  onError(error: FramingError): void;
  /** Bytes 0-1 were not zero (tolerated, reported once per splitter). */
  onOddVersion?(version: number): void;
}

/**
 * A transport framing: how documents are cut out of a byte stream and wrapped for sending. The header
 * framing is the only one in use over TCP here; a NUL-terminated or WebSocket framing would implement
 * the same interface.
 */
export interface Framer {
  push(chunk: Uint8Array): void;
  readonly failed: boolean;
}

export interface HeaderFramerOptions {
  /** Largest accepted total frame length (header included); at most 65 535. */
  maxFrameBytes?: number;
}

function isDigit(b: number): boolean {
  return b >= 0x30 && b <= 0x39;
}

/** First byte of the body that is not a BOM or XML whitespace must be '<'. */
function bodyLooksLikeXml(body: Buffer): boolean {
  let i = 0;
  if (body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf) i = 3;
  while (i < body.length) {
    const b = body[i]!;
    if (b === 0x3c) return true;
    if (b !== 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d) return false;
    i++;
  }
  return false;
}

export class HeaderFrameSplitter implements Framer {
  private readonly handlers: FrameHandlers;
  private readonly maxFrameBytes: number;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private failedFlag = false;
  private versionReported = false;
  /** Total length of the frame being read, once its header is complete. */
  private frameLength = 0;
  private invokeId = '';

  constructor(handlers: FrameHandlers, options: HeaderFramerOptions = {}) {
    this.handlers = handlers;
    const max = options.maxFrameBytes ?? MAX_FRAME_BYTES;
    if (!Number.isInteger(max) || max <= HEADER_BYTES || max > MAX_FRAME_BYTES) {
      throw new RangeError(`maxFrameBytes must be an integer in ${HEADER_BYTES + 1}..${MAX_FRAME_BYTES}`);
    }
    this.maxFrameBytes = max;
  }

  get failed(): boolean {
    return this.failedFlag;
  }

  /** Bytes received and not yet delivered as a frame. */
  get bufferedBytes(): number {
    return this.pendingBytes;
  }

  push(chunk: Uint8Array): void {
    if (this.failedFlag || chunk.byteLength === 0) return;
    this.pending.push(
      Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength),
    );
    this.pendingBytes += chunk.byteLength;
    while (!this.failedFlag) {
      if (this.frameLength === 0) {
        if (this.pendingBytes < HEADER_BYTES) return;
        if (!this.readHeader()) return;
      }
      if (this.pendingBytes < this.frameLength) return;
      const frame = this.take(this.frameLength);
      const body = frame.subarray(HEADER_BYTES);
      this.frameLength = 0;
      if (!bodyLooksLikeXml(body)) {
        this.fail(`frame ${this.invokeId}: body of ${body.length} bytes does not start with '<'`);
        return;
      }
      this.handlers.onFrame({ invokeId: this.invokeId, body });
    }
  }

  private readHeader(): boolean {
    const header = this.peek(HEADER_BYTES);
    const version = header.readUInt16BE(0);
    const length = header.readUInt16BE(2);
    if (length <= HEADER_BYTES) {
      this.fail(`frame length ${length} is not more than the ${HEADER_BYTES}-byte header`);
      return false;
    }
    if (length > this.maxFrameBytes) {
      this.fail(`frame length ${length} is over the limit of ${this.maxFrameBytes} bytes`);
      return false;
    }
    for (let i = 4; i < 8; i++) {
      if (!isDigit(header[i]!)) {
        this.fail(`frame invokeID is not four ASCII digits (header ${header.toString('hex')})`);
        return false;
      }
    }
    if (version !== 0 && !this.versionReported) {
      this.versionReported = true;
      this.handlers.onOddVersion?.(version);
    }
    this.frameLength = length;
    this.invokeId = header.toString('latin1', 4, 8);
    return true;
  }

  private peek(n: number): Buffer {
    const first = this.pending[0]!;
    if (first.length >= n) return first.subarray(0, n);
    const joined = Buffer.concat(this.pending);
    this.pending = [joined];
    return joined.subarray(0, n);
  }

  private take(n: number): Buffer {
    let first = this.pending[0]!;
    if (first.length < n) {
      first = Buffer.concat(this.pending);
      this.pending = [first];
    }
    const out = first.subarray(0, n);
    if (first.length === n) this.pending.shift();
    else this.pending[0] = first.subarray(n);
    this.pendingBytes -= n;
    return out;
  }

  private fail(message: string): void {
    this.failedFlag = true;
    this.pending = [];
    this.pendingBytes = 0;
    this.handlers.onError(new FramingError(message));
  }
}

/** Formats an invokeID number as the four digits of the header. */
export function formatInvokeId(id: number): string {
  if (!Number.isInteger(id) || id < 0 || id > 9999) throw new RangeError(`invokeID ${id} is not in 0..9999`);
  return id.toString().padStart(4, '0');
}

/** Builds one frame. Throws FramingError when the body does not fit the 16-bit length. */
export function encodeFrame(invokeId: string, body: string | Uint8Array): Buffer {
  if (!/^[0-9]{4}$/.test(invokeId)) throw new FramingError(`invokeID '${invokeId}' is not four ASCII digits`);
  const bodyBytes = typeof body === 'string' ? Buffer.byteLength(body, 'utf8') : body.byteLength;
  if (bodyBytes > MAX_BODY_BYTES) {
    throw new FramingError(`body of ${bodyBytes} bytes is over the ${MAX_BODY_BYTES}-byte frame limit`);
  }
  const frame = Buffer.allocUnsafe(HEADER_BYTES + bodyBytes);
  frame.writeUInt16BE(0, 0);
  frame.writeUInt16BE(HEADER_BYTES + bodyBytes, 2);
  frame.write(invokeId, 4, 'latin1');
  if (typeof body === 'string') frame.write(body, HEADER_BYTES, 'utf8');
  else frame.set(body, HEADER_BYTES);
  return frame;
}
