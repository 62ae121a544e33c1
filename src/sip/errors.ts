/**
 * SIP message errors. Each carries the status code a request that fails this way must be answered
 * with (RFC 3261 §8.2, §21.4), so the transport layer can answer without interpreting messages.
 * A response that fails to parse is never answered: it is logged and dropped (RFC 3261 §18.1.2).
 */
export type SipErrorStatus = 400 | 413 | 414 | 416 | 420 | 483 | 505 | 513;

export class SipParseError extends Error {
  /** Status for a 4xx/5xx answer to a request that failed this way. */
  readonly status: SipErrorStatus;
  /** True when a stream transport can no longer find message boundaries and must close. */
  readonly fatal: boolean;

  constructor(message: string, status: SipErrorStatus = 400, fatal = false) {
    super(message);
    this.name = 'SipParseError';
    this.status = status;
    this.fatal = fatal;
  }
}

/** Message size limits; all checked before the data is parsed further. */
export interface SipLimits {
  /** Bytes of a whole message (start line, headers, body). UDP datagrams are at most 65,535. */
  maxMessageBytes: number;
  /** Bytes of the start line plus header section. */
  maxHeaderBytes: number;
  /** Header fields (lines after unfolding) in one message. */
  maxHeaderCount: number;
  /** Body bytes. */
  maxBodyBytes: number;
}

export const DEFAULT_SIP_LIMITS: Readonly<SipLimits> = Object.freeze({
  maxMessageBytes: 65_535,
  maxHeaderBytes: 16 * 1024,
  maxHeaderCount: 128,
  maxBodyBytes: 48 * 1024,
});
