/** The gateway's Prometheus metrics (SPEC.md §5). */
import type { Registry } from '../metrics/registry.ts';
import type { Gateway, MonitorEndReason } from './gateway.ts';
import { PEP_MODES, type PepPublisher } from './pep.ts';

export function registerGatewayMetrics(registry: Registry, gateway: Gateway): void {
  registry.gauge(
    'switchboard_gateway_client_monitors',
    'Monitors held by clients (each with its own monitorCrossRefID)',
    () => gateway.clientMonitorCount,
  );
  registry.gauge(
    'switchboard_gateway_device_monitors',
    'Voice-server monitors held by the gateway (one per monitored device)',
    () => gateway.deviceMonitorCount,
  );
  registry.gauge(
    'switchboard_gateway_csta_link_up',
    'Whether the CSTA link to the voice server is up (0/1)',
    () => (gateway.linkUp ? 1 : 0),
  );
  registry.collectedCounter(
    'switchboard_gateway_events_sent_total',
    'CSTA events sent to clients as iq stanzas',
    () => gateway.counters.eventsSent,
  );
  registry.collectedCounter(
    'switchboard_gateway_monitors_ended_total',
    'Client monitors ended, by reason',
    () =>
      (Object.entries(gateway.counters.monitorsEnded) as [MonitorEndReason, number][]).map(([reason, n]) => [
        { reason },
        n,
      ]),
  );
  registry.collectedCounter(
    'switchboard_gateway_requests_total',
    'CSTA requests relayed to the voice server',
    () => gateway.counters.requestsRelayed,
  );
}

/** How users' phone state reaches their contacts besides phone-contact presence (pep.ts). */
export function registerPepMetrics(registry: Registry, pep: PepPublisher): void {
  registry.gauge(
    'switchboard_gateway_pep_mode',
    'How phone state is published to contacts: 1 for the current mode (pep-iq, pep-message, presence-only)',
    () => PEP_MODES.map((mode) => [{ mode }, pep.mode === mode ? 1 : 0]),
  );
  registry.collectedCounter(
    'switchboard_gateway_pep_publishes_total',
    'Phone-state publishes (PEP items or notification rounds), by result',
    () => [
      [{ result: 'ok' }, pep.counters.published],
      [{ result: 'failed' }, pep.counters.failed],
    ],
  );
}
