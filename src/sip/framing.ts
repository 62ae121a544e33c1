/**
 * Cuts SIP messages out of a byte stream (TCP, TLS) by Content-Length (RFC 3261 §18.3). Handles
 * pipelined messages, messages split anywhere, and RFC 5626 §3.5.1 CRLF keep-alives. Memory is bounded:
 * a header section longer than the limit or a body larger than the limit is a fatal error (the caller
 * answers if it can and closes the connection, because the framing is lost).
 */
import { DEFAULT_SIP_LIMITS, type SipLimits, SipParseError } from './errors.ts';
import type { SipMessage } from './message.ts';
import { contentLengthOf, findHeaderEnd, parseHeaderLines, parseMessage, SipMessageError } from './parser.ts';

export type FramedItem =
  | { kind: 'message'; message: SipMessage; bytes: number }
  | { kind: 'error'; error: SipMessageError }
  /** A "\r\n\r\n" ping; the answer is a single "\r\n" pong. */
  | { kind: 'ping' };

export class SipStreamFramer {
  private buffer: Buffer = Buffer.alloc(0);
  private store: Buffer = Buffer.allocUnsafeSlow(0);
  private scanFrom = 0;
  private failed = false;
  private readonly limits: SipLimits;

  constructor(limits: SipLimits = DEFAULT_SIP_LIMITS) {
    this.limits = limits;
  }

  /** Feeds bytes; returns the complete items found. After a fatal error it returns nothing more. */
  push(chunk: Buffer): FramedItem[] {
    if (this.failed) return [];
    this.append(chunk);
    const items: FramedItem[] = [];
    for (;;) {
      // keep-alives and stray CRLFs between messages
      let skip = 0;
      while (this.buffer[skip] === 0x0d || this.buffer[skip] === 0x0a) skip++;
      if (skip > 0) {
        if (skip >= 4 && this.buffer.subarray(0, 4).toString('latin1') === '\r\n\r\n')
          items.push({ kind: 'ping' });
        this.buffer = this.buffer.subarray(skip);
        this.scanFrom = 0;
      }
      if (this.buffer.length === 0) return items;
      const headerEnd = findHeaderEnd(this.buffer, Math.max(0, this.scanFrom - 3));
      if (headerEnd < 0) {
        this.scanFrom = this.buffer.length;
        if (this.buffer.length > this.limits.maxHeaderBytes) {
          return this.fail(items, new SipParseError('header section too large', 513, true));
        }
        return items;
      }
      if (headerEnd > this.limits.maxHeaderBytes) {
        return this.fail(items, new SipParseError('header section too large', 513, true));
      }
      let length: number | undefined;
      try {
        const lines = this.buffer.toString('utf8', 0, headerEnd).split(/\r?\n/);
        lines.shift();
        while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
        length = contentLengthOf(parseHeaderLines(lines, this.limits));
      } catch (e) {
        const err = e instanceof SipParseError ? e : new SipParseError(String(e));
        return this.fail(items, new SipParseError(err.message, err.status, true), headerEnd);
      }
      if (length === undefined) {
        return this.fail(
          items,
          new SipParseError('missing Content-Length on a stream', 400, true),
          headerEnd,
        );
      }
      if (length > this.limits.maxBodyBytes || headerEnd + length > this.limits.maxMessageBytes) {
        return this.fail(items, new SipParseError('message too large', 513, true), headerEnd);
      }
      if (this.buffer.length < headerEnd + length) {
        this.scanFrom = headerEnd;
        // wait for the body; the scan position is reset since headerEnd is known
        this.scanFrom = 0;
        return items;
      }
      const raw = this.buffer.subarray(0, headerEnd + length);
      this.buffer = this.buffer.subarray(headerEnd + length);
      this.scanFrom = 0;
      try {
        items.push({
          kind: 'message',
          message: parseMessage(raw, { limits: this.limits, stream: true }),
          bytes: raw.length,
        });
      } catch (e) {
        // framing is intact (Content-Length was valid), so a bad message is answered and the stream goes on
        const err =
          e instanceof SipMessageError ? e : new SipMessageError(new SipParseError(String(e)), undefined);
        items.push({ kind: 'error', error: err });
      }
    }
  }

  /** Appends with capacity doubling, so a message trickled one byte at a time costs linear time. */
  private append(chunk: Buffer): void {
    const needed = this.buffer.length + chunk.length;
    const offset = this.buffer.byteOffset - this.store.byteOffset;
    if (this.buffer.buffer === this.store.buffer && offset >= 0 && offset + needed <= this.store.length) {
      chunk.copy(this.store, offset + this.buffer.length);
      this.buffer = this.store.subarray(offset, offset + needed);
      return;
    }
    const store = Buffer.allocUnsafeSlow(Math.max(needed * 2, 4096));
    this.buffer.copy(store, 0);
    chunk.copy(store, this.buffer.length);
    this.store = store;
    this.buffer = store.subarray(0, needed);
  }

  /** Bytes held waiting for the rest of a message. */
  get buffered(): number {
    return this.buffer.length;
  }

  private fail(items: FramedItem[], error: SipParseError, headerEnd?: number): FramedItem[] {
    this.failed = true;
    let partial: SipMessageError['partial'];
    if (headerEnd !== undefined) {
      try {
        const text = this.buffer.toString('utf8', 0, headerEnd);
        const lines = text.split(/\r?\n/);
        const start = lines.shift() ?? '';
        while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
        const isRequest = !start.startsWith('SIP/');
        partial = { isRequest, headers: parseHeaderLines(lines, this.limits) };
        const method = start.split(' ')[0];
        if (isRequest && method !== undefined) partial.method = method;
      } catch {
        partial = undefined;
      }
    }
    this.buffer = Buffer.alloc(0);
    items.push({ kind: 'error', error: new SipMessageError(error, partial) });
    return items;
  }
}
