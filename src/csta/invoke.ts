/**
 * invokeID handling (csta.md §2.2): requests carry an id chosen by their sender, the response or the
 * CSTAErrorCode comes back with the same id, 9999 is reserved for events. Both directions number
 * independently, so an incoming message is classified by its root element first and only then
 * matched against our own outstanding requests.
 */
import { formatInvokeId } from './framing.ts';

export const EVENT_INVOKE_ID = '9999';
const FIRST_ID = 1;
const LAST_ID = 9998;

/** Hands out 0001..9998 in turn, wrapping around and skipping ids still in flight. */
export class InvokeIdAllocator {
  private next = FIRST_ID;
  private readonly inFlight = new Set<string>();

  /** Returns a free id and marks it in flight; throws when all 9998 are taken. */
  allocate(): string {
    for (let tries = 0; tries < LAST_ID; tries++) {
      const id = formatInvokeId(this.next);
      this.next = this.next === LAST_ID ? FIRST_ID : this.next + 1;
      if (!this.inFlight.has(id)) {
        this.inFlight.add(id);
        return id;
      }
    }
    throw new Error('all 9998 invokeIDs are in flight');
  }

  release(id: string): void {
    this.inFlight.delete(id);
  }

  isInFlight(id: string): boolean {
    return this.inFlight.has(id);
  }

  get size(): number {
    return this.inFlight.size;
  }
}

export type MessageClass = 'event' | 'response' | 'error' | 'request';

/**
 * Classifies a message by the local name of its root element: `…Event` is an event (so is
 * ApplicationSessionTerminated, the one ECMA-354 notification); `…Response`, `…PosResponse`,
 * `…NegResponse` answer one of our requests; `CSTAErrorCode` is a negative answer to one of ours;
 * anything else is a request from the peer.
 */
export function classifyRoot(localName: string): MessageClass {
  if (localName === 'CSTAErrorCode') return 'error';
  if (localName.endsWith('Response')) return 'response';
  if (localName.endsWith('Event') || localName === 'ApplicationSessionTerminated') return 'event';
  return 'request';
}

export class RequestTimeoutError extends Error {
  readonly invokeId: string;
  readonly request: string;
  constructor(invokeId: string, request: string, ms: number) {
    super(`${request} (invokeID ${invokeId}) got no answer within ${ms} ms`);
    this.name = 'RequestTimeoutError';
    this.invokeId = invokeId;
    this.request = request;
  }
}

export class RequestCancelledError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RequestCancelledError';
  }
}

interface Pending<T> {
  request: string;
  resolve(value: T): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * Our outstanding requests keyed by invokeID, each with its own timeout. Settling an entry releases
 * its id back to the allocator.
 */
export class PendingRequests<T> {
  readonly ids = new InvokeIdAllocator();
  private readonly pending = new Map<string, Pending<T>>();

  /** Allocates an id and returns it with a promise settled by resolve/reject/timeout/cancelAll. */
  start(request: string, timeoutMs: number): { invokeId: string; result: Promise<T> } {
    const invokeId = this.ids.allocate();
    const result = new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.settle(invokeId);
        reject(new RequestTimeoutError(invokeId, request, timeoutMs));
      }, timeoutMs);
      this.pending.set(invokeId, { request, resolve, reject, timer });
    });
    return { invokeId, result };
  }

  /** The name of the outstanding request with this id, if any. */
  requestName(invokeId: string): string | undefined {
    return this.pending.get(invokeId)?.request;
  }

  /** Settles the request with this id; false when none is outstanding (a late or stray answer). */
  resolve(invokeId: string, value: T): boolean {
    const entry = this.settle(invokeId);
    if (entry === undefined) return false;
    entry.resolve(value);
    return true;
  }

  reject(invokeId: string, error: Error): boolean {
    const entry = this.settle(invokeId);
    if (entry === undefined) return false;
    entry.reject(error);
    return true;
  }

  /** Rejects every outstanding request (link down, close). */
  cancelAll(reason: string): void {
    for (const id of [...this.pending.keys()]) this.reject(id, new RequestCancelledError(reason));
  }

  get size(): number {
    return this.pending.size;
  }

  private settle(invokeId: string): Pending<T> | undefined {
    const entry = this.pending.get(invokeId);
    if (entry === undefined) return undefined;
    clearTimeout(entry.timer);
    this.pending.delete(invokeId);
    this.ids.release(invokeId);
    return entry;
  }
}
