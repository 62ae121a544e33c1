/**
 * CSTA negative responses as XMPP stanza errors (SPEC.md §3): the condition comes from the CSTA error
 * class, and the CSTAErrorCode element itself rides along as the application-specific condition.
 */
import type { CstaErrorCode } from '../csta/index.ts';

export const STANZA_ERRORS_NS = 'urn:ietf:params:xml:ns:xmpp-stanzas';

export type StanzaErrorType = 'cancel' | 'continue' | 'modify' | 'auth' | 'wait';

export interface StanzaErrorSpec {
  type: StanzaErrorType;
  condition: string;
  /** Human-readable text for logs and clients. */
  text?: string;
  /** The CSTAErrorCode to include; undefined when the failure is not a CSTA one. */
  csta?: CstaErrorCode;
}

/** operation errors that name something that does not exist (the rest are malformed requests). */
const NOT_FOUND_OPERATIONS = new Set([
  'invalidCallID',
  'invalidConnectionID',
  'invalidDeviceID',
  'invalidCalledDeviceID',
  'invalidCallingDeviceID',
  'invalidDestinationDeviceID',
  'invalidMonitorObject',
  'invalidMonitorCrossRefID',
  'invalidForwardingDestination',
  'objectNotKnown',
]);

const UNSUPPORTED_OPERATIONS = new Set(['serviceNotSupported', 'parameterNotSupported']);

/** Maps a CSTAErrorCode to the XMPP error type and condition of SPEC.md §3. */
export function stanzaErrorFor(code: CstaErrorCode): StanzaErrorSpec {
  const c = code as unknown as Record<string, unknown>;
  if ('operation' in c) {
    const value = String(c.operation);
    if (value === 'privilegeViolationSpecifiedDevice')
      return { type: 'auth', condition: 'forbidden', csta: code };
    if (UNSUPPORTED_OPERATIONS.has(value))
      return { type: 'cancel', condition: 'feature-not-implemented', csta: code };
    if (NOT_FOUND_OPERATIONS.has(value)) return { type: 'cancel', condition: 'item-not-found', csta: code };
    return { type: 'modify', condition: 'bad-request', csta: code };
  }
  if ('security' in c) return { type: 'auth', condition: 'forbidden', csta: code };
  if ('stateIncompatibility' in c) return { type: 'cancel', condition: 'unexpected-request', csta: code };
  if (
    'systemResourceAvailibility' in c ||
    'subscribedResourceAvailability' in c ||
    'performanceManagement' in c
  ) {
    return { type: 'wait', condition: 'resource-constraint', csta: code };
  }
  return { type: 'cancel', condition: 'undefined-condition', csta: code };
}

/** The PBX link is down: every request fails this way until it is back. */
export const LINK_DOWN: StanzaErrorSpec = {
  type: 'wait',
  condition: 'service-unavailable',
  text: 'the voice server link is down',
  csta: { systemResourceAvailibility: 'resourceOutOfService' } as CstaErrorCode,
};

export const FORBIDDEN_DEVICE: StanzaErrorSpec = {
  type: 'auth',
  condition: 'forbidden',
  text: 'you may not monitor or control this device',
  csta: { operation: 'privilegeViolationSpecifiedDevice' } as CstaErrorCode,
};
