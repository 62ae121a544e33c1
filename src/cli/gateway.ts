/**
 * `switchboard gateway [--config FILE] [--data DIR]`: runs the gateway alone, as an XEP-0114 component
 * of any text server (ours, Prosody, ejabberd) linked to any CSTA XML voice server.
 * `startGatewayPart` is also what `switchboard up` uses.
 */

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import { type Config, gatewayJid } from '../config/config.ts';
import { CstaLink, type CstaLogger } from '../csta/index.ts';
import { AdHocCommands } from '../gateway/adhoc.ts';
import { DeviceAuthorization, type DeviceGrant } from '../gateway/authorization.ts';
import { ComponentConnection } from '../gateway/component.ts';
import { Gateway } from '../gateway/gateway.ts';
import { registerGatewayMetrics, registerPepMetrics } from '../gateway/metrics.ts';
import { PepPublisher } from '../gateway/pep.ts';
import { PhoneService } from '../gateway/phone.ts';
import { Registry } from '../metrics/registry.ts';
import { startCommand } from './command.ts';
import { startHttp } from './http.ts';
import { componentSecret, dataDirFor } from './xmpp.ts';

const USAGE = `Usage: switchboard gateway [--config FILE] [--data DIR]

Runs the CSTA gateway: an XEP-0114 component ([gateway] jid, xmpp_host, xmpp_port, component_secret)
linked to a CSTA XML voice server ([gateway] csta_host, csta_port). Users and their extensions come from
[[users]] (jid defaults to name@[xmpp] domain). Stops cleanly on SIGTERM.`;

export interface GatewayPart {
  gateway: Gateway;
  component: ComponentConnection;
  link: CstaLink;
  phone: PhoneService;
  pep: PepPublisher;
  stop(): Promise<void>;
}

/** Device grants from [[users]]: each user may monitor and control their own extension. */
export function grantsFromConfig(config: Config): DeviceGrant[] {
  return config.users
    .filter((u) => u.extension !== undefined)
    .map((u) => ({ jid: u.jid ?? `${u.name}@${config.xmpp.domain}`, devices: [u.extension!] }));
}

function cstaLogger(log: Logger): CstaLogger {
  return { debug: (m) => log.debug(m), info: (m) => log.info(m), warn: (m) => log.warn(m) };
}

export function startGatewayPart(
  config: Config,
  options: { secret: string; grants: DeviceGrant[]; log: Logger; registry?: Registry; dataDir?: string },
): GatewayPart {
  const log = options.log.child({ part: 'gateway' });
  const jid = gatewayJid(config);
  const component = new ComponentConnection({
    host: config.gateway.xmpp_host,
    port: config.gateway.xmpp_port ?? config.xmpp.component_port,
    domain: jid,
    secret: options.secret,
  });
  const link = new CstaLink({
    host: config.gateway.csta_host,
    port: config.gateway.csta_port ?? config.pbx.csta_port,
    edition: config.pbx.csta_edition,
    log: cstaLogger(log.child({ link: 'csta' })),
  });
  const gateway = new Gateway({
    jid,
    xmpp: component,
    pbx: link,
    authorization: new DeviceAuthorization(options.grants),
    eventAckTimeoutS: config.gateway.event_ack_timeout_s,
    log,
  });
  if (options.registry !== undefined) registerGatewayMetrics(options.registry, gateway);
  let everOnline = false;
  const users = options.grants
    .filter((g) => g.devices.length > 0)
    .map((g) => ({ jid: g.jid, name: g.jid.split('@')[0]!, extension: g.devices[0]! }));
  const pep = new PepPublisher({
    jid,
    serverDomain: component.options.serverDomain,
    xmpp: component,
    setting: config.gateway.pep,
    ...(users[0] === undefined ? {} : { probeUser: users[0].jid }),
    log,
  });
  if (options.registry !== undefined) registerPepMetrics(options.registry, pep);
  const phone = new PhoneService({
    gateway,
    xmpp: component,
    jid,
    users,
    onPhoneState: (owner, presence) => pep.phoneState(owner.jid, presence),
    ...(options.dataDir === undefined
      ? {}
      : {
          subscriptionsFile: join(options.dataDir, 'phone-subscriptions.json'),
          sharingFile: join(options.dataDir, 'phone-sharing.json'),
        }),
    sharing: { default: config.gateway.sharing, devices: config.gateway.sharing_devices },
    log,
  });
  const adhoc = new AdHocCommands(jid, component, phone);
  component.on('stanza', (stanza) => {
    // XEP-0356 privileges and the answers to PEP publishes.
    if (pep.handleStanza(stanza)) return;
    // Messages are chat commands; presence concerns phone contacts and, when unavailable, monitors.
    if (stanza.name === 'message') phone.handleStanza(stanza);
    else if (stanza.name === 'presence') {
      phone.handleStanza(stanza);
      gateway.handleStanza(stanza);
    } else if (stanza.name === 'iq' && adhoc.handles(stanza)) adhoc.handle(stanza);
    else gateway.handleStanza(stanza);
  });
  component.on('online', () => {
    log.info({ jid }, 'connected to the text server');
    // After a reconnect, clients may have gone while we were away.
    if (everOnline) gateway.probeClients();
    everOnline = true;
    pep.onOnline();
  });
  component.on('offline', (reason) => {
    log.warn({ reason }, 'text server link down');
    pep.onOffline();
  });
  link.on('up', (info) => log.info({ ns: info.ns, systemStatus: info.systemStatus }, 'voice server link up'));
  link.on('down', (info) => {
    if (info.wasUp) log.warn({ reason: info.reason, retryInMs: info.retryInMs }, 'voice server link down');
    else log.debug({ reason: info.reason, retryInMs: info.retryInMs }, 'voice server not reachable');
  });
  component.start();
  link.start();
  return {
    gateway,
    component,
    link,
    phone,
    pep,
    async stop() {
      phone.close();
      pep.close();
      await gateway.close();
      await component.stop();
      await link.stop();
    },
  };
}

export async function run(argv: string[]): Promise<number> {
  const started = startCommand('gateway', argv, USAGE);
  if (typeof started === 'number') return started;
  const { config, values } = started;
  const log = pino({ level: config.log_level });
  const dataDir = dataDirFor(config, values.data);
  const { secret } = componentSecret(config, dataDir);
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const registry = new Registry();
  let http: Awaited<ReturnType<typeof startHttp>>;
  try {
    http = await startHttp(config.http.host, config.http.port, registry);
  } catch (e) {
    console.error(`switchboard gateway: http: ${(e as Error).message}`);
    return 1;
  }
  const part = startGatewayPart(config, { secret, grants: grantsFromConfig(config), log, registry, dataDir });
  console.log(
    `gateway ${gatewayJid(config)}: text server ${config.gateway.xmpp_host}:${config.gateway.xmpp_port ?? config.xmpp.component_port}, voice server ${config.gateway.csta_host}:${config.gateway.csta_port ?? config.pbx.csta_port}, metrics http://${config.http.host}:${http.port}/metrics`,
  );
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
  await part.stop();
  await http.close();
  return 0;
}
