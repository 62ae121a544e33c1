/**
 * The CSTA message layer, independent of the transport: it turns received documents into typed
 * messages, classifies them (event / answer to one of our requests / request from the peer), matches
 * answers to requests by invokeID with timeouts, and answers the peer's requests.
 *
 * A transport gives it a `send(invokeId, xml)` function and feeds it `receive(invokeId, body)`. The
 * 8-byte-header TCP framing is one such transport (see socket.ts); CSTA over SIP INFO (TR/87) would be
 * another, correlating by SIP transaction and passing a made-up invokeID.
 */
import { EventEmitter } from 'node:events';
import { XmlError } from '../xml/index.ts';
import {
  DEFAULT_EDITION,
  describeErrorCode,
  EDITION_NAMESPACES,
  editionOf,
  parseMessage,
  serializeMessage,
} from './codec.ts';
import { classifyRoot, EVENT_INVOKE_ID, PendingRequests } from './invoke.ts';
import type { CstaErrorCode, CstaMessage, MessageName, MessageOf } from './messages.ts';
import { CstaDecodeError, type Edition } from './schema.ts';

export interface CstaLogger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
}

export const silentLogger: CstaLogger = { debug() {}, info() {}, warn() {} };

/** The answer a request of type K expects: `KResponse`, or `KPosResponse` for ECMA-354. */
export type ResponseName<K extends MessageName> = `${K}Response` extends MessageName
  ? `${K}Response`
  : `${K}PosResponse` extends MessageName
    ? `${K}PosResponse`
    : never;
export type RequestName = {
  [K in MessageName]: ResponseName<K> extends never ? never : K;
}[MessageName];

/** The peer answered with CSTAErrorCode or an ECMA-354 NegResponse. */
export class CstaRequestError extends Error {
  readonly request: string;
  /** The CSTAErrorCode or NegResponse as received. */
  readonly response: CstaMessage;
  constructor(request: string, response: CstaMessage) {
    const detail =
      response.name === 'CSTAErrorCode'
        ? describeErrorCode(response)
        : JSON.stringify('errorCode' in response ? response.errorCode : {});
    super(`${request} failed: ${response.name} ${detail}`);
    this.name = 'CstaRequestError';
    this.request = request;
    this.response = response;
  }
}

/** The peer answered with something that is not the expected response. */
export class CstaProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CstaProtocolError';
  }
}

/** A request from the peer, to be answered once with `reply` or `fail`. */
export interface IncomingRequest {
  invokeId: string;
  /** Local name of the root element (also when the message could not be decoded). */
  root: string;
  /** Undefined when the root is unknown or the message did not decode (see `error`). */
  message: CstaMessage | undefined;
  error: CstaDecodeError | undefined;
  readonly answered: boolean;
  reply(response: CstaMessage): void;
  fail(code: CstaErrorCode): void;
}

export type RequestHandler = (request: IncomingRequest) => void | Promise<void>;

export interface CstaSessionOptions {
  send: (invokeId: string, xml: string) => void;
  /** Edition written until the peer shows its own namespace (and always, with adoptPeerNamespace false). */
  edition?: Edition;
  /** Answer in the namespace of the first CSTA message from the peer (csta.md §1). Default true. */
  adoptPeerNamespace?: boolean;
  requestTimeoutMs?: number;
  log?: CstaLogger;
  /** Requests from the peer; without a handler they are answered with serviceNotSupported. */
  onRequest?: RequestHandler;
}

export interface CstaSessionEvents {
  event: [message: CstaMessage, invokeId: string];
  /** Every message sent and received, for tracing and tools. */
  sent: [invokeId: string, message: CstaMessage];
  received: [invokeId: string, root: string, message: CstaMessage | undefined];
}

export class CstaSession extends EventEmitter<CstaSessionEvents> {
  private readonly sendXml: (invokeId: string, xml: string) => void;
  private readonly pending = new PendingRequests<CstaMessage>();
  private readonly adopt: boolean;
  private readonly requestTimeoutMs: number;
  private readonly log: CstaLogger;
  private closedReason: string | undefined;
  onRequest: RequestHandler | undefined;
  /** Namespace and edition currently written. */
  ns: string;
  edition: Edition;
  private adopted = false;

  constructor(options: CstaSessionOptions) {
    super();
    this.sendXml = options.send;
    this.edition = options.edition ?? DEFAULT_EDITION;
    this.ns = EDITION_NAMESPACES[this.edition];
    this.adopt = options.adoptPeerNamespace ?? true;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.log = options.log ?? silentLogger;
    this.onRequest = options.onRequest;
  }

  get outstanding(): number {
    return this.pending.size;
  }

  get closed(): boolean {
    return this.closedReason !== undefined;
  }

  /**
   * Sends a request and resolves with its typed response. Rejects with CstaRequestError (CSTAErrorCode
   * or NegResponse), RequestTimeoutError, RequestCancelledError (session closed) or CstaProtocolError.
   */
  request<K extends RequestName>(
    message: MessageOf<K>,
    options: { timeoutMs?: number } = {},
  ): Promise<MessageOf<ResponseName<K>>> {
    if (this.closedReason !== undefined) {
      return Promise.reject(new CstaProtocolError(`session closed: ${this.closedReason}`));
    }
    const { invokeId, result } = this.pending.start(message.name, options.timeoutMs ?? this.requestTimeoutMs);
    try {
      this.write(invokeId, message as CstaMessage);
    } catch (e) {
      this.pending.reject(invokeId, e as Error);
    }
    return result as Promise<MessageOf<ResponseName<K>>>;
  }

  /** Sends an unsolicited event (invokeID 9999). */
  sendEvent(message: CstaMessage): void {
    if (this.closedReason !== undefined) return;
    this.write(EVENT_INVOKE_ID, message);
  }

  /** Feeds one received document. Never throws: bad input is logged and dropped or answered. */
  receive(invokeId: string, body: string | Uint8Array): void {
    if (this.closedReason !== undefined) return;
    let parsed: ReturnType<typeof parseMessage>;
    try {
      parsed = parseMessage(body, { log: (m) => this.log.warn(`csta: ${m}`) });
    } catch (e) {
      const reason = e instanceof XmlError ? `${e.condition}: ${e.message}` : String(e);
      this.log.warn(`csta: dropped an unreadable message (invokeID ${invokeId}): ${reason}`);
      // A request we cannot read still deserves an answer, or the peer waits for its timeout.
      if (invokeId !== EVENT_INVOKE_ID && !this.pending.requestName(invokeId)) {
        this.answerError(invokeId, { operation: 'generic' });
      }
      return;
    }
    const { root, message, error } = parsed;
    if (this.adopt && !this.adopted && editionOf(root.ns) !== undefined) {
      this.adopted = true;
      this.ns = root.ns;
      this.edition = editionOf(root.ns)!;
    }
    this.emit('received', invokeId, root.name, message);
    switch (classifyRoot(root.name)) {
      case 'event':
        if (message === undefined) this.log.warn(`csta: dropped event <${root.name}>: ${error?.message}`);
        else this.emit('event', message, invokeId);
        return;
      case 'response':
      case 'error':
        this.settle(invokeId, root.name, message, error);
        return;
      case 'request':
        this.dispatchRequest(invokeId, root.name, message, error);
        return;
    }
  }

  /** Ends the session: outstanding requests are rejected, later input and sends are ignored. */
  close(reason: string): void {
    if (this.closedReason !== undefined) return;
    this.closedReason = reason;
    this.pending.cancelAll(`CSTA session closed: ${reason}`);
  }

  private write(invokeId: string, message: CstaMessage): void {
    const xml = serializeMessage(message, { ns: this.ns, edition: this.edition });
    this.sendXml(invokeId, xml);
    this.emit('sent', invokeId, message);
  }

  private settle(
    invokeId: string,
    root: string,
    message: CstaMessage | undefined,
    error: CstaDecodeError | undefined,
  ): void {
    const request = this.pending.requestName(invokeId);
    if (request === undefined) {
      this.log.warn(`csta: <${root}> with invokeID ${invokeId} answers no outstanding request; dropped`);
      return;
    }
    if (message === undefined) {
      this.pending.reject(invokeId, error ?? new CstaDecodeError(`unreadable <${root}>`));
      return;
    }
    if (message.name === 'CSTAErrorCode' || message.name.endsWith('NegResponse')) {
      this.pending.reject(invokeId, new CstaRequestError(request, message));
      return;
    }
    const expected = isResponseTo(request, message.name);
    if (!expected) {
      this.pending.reject(invokeId, new CstaProtocolError(`${request} was answered with <${message.name}>`));
      return;
    }
    this.pending.resolve(invokeId, message);
  }

  private dispatchRequest(
    invokeId: string,
    root: string,
    message: CstaMessage | undefined,
    error: CstaDecodeError | undefined,
  ): void {
    let answered = false;
    const request: IncomingRequest = {
      invokeId,
      root,
      message,
      error,
      get answered() {
        return answered;
      },
      reply: (response) => {
        if (answered) throw new Error(`request ${root} (${invokeId}) was already answered`);
        answered = true;
        this.write(invokeId, response);
      },
      fail: (code) => {
        if (answered) throw new Error(`request ${root} (${invokeId}) was already answered`);
        answered = true;
        this.answerError(invokeId, code);
      },
    };
    if (message === undefined) {
      this.log.warn(`csta: cannot serve <${root}> (invokeID ${invokeId}): ${error?.message}`);
      request.fail(
        error?.name === 'UnknownMessageError'
          ? { operation: 'serviceNotSupported' }
          : { operation: 'invalidParameterValue' },
      );
      return;
    }
    const handler = this.onRequest;
    if (handler === undefined) {
      request.fail({ operation: 'serviceNotSupported' });
      return;
    }
    const failed = (e: unknown) => {
      this.log.warn(`csta: handler for <${root}> failed: ${e instanceof Error ? e.message : String(e)}`);
      if (!request.answered && this.closedReason === undefined) request.fail({ operation: 'generic' });
    };
    try {
      const result = handler(request);
      if (result instanceof Promise) result.catch(failed);
    } catch (e) {
      failed(e);
    }
  }

  private answerError(invokeId: string, code: CstaErrorCode): void {
    try {
      this.write(invokeId, { name: 'CSTAErrorCode', ...code } as CstaMessage);
    } catch (e) {
      this.log.warn(`csta: could not send CSTAErrorCode: ${(e as Error).message}`);
    }
  }
}

function isResponseTo(request: string, response: string): boolean {
  return response === `${request}Response` || response === `${request}PosResponse`;
}
