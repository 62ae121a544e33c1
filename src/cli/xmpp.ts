/**
 * `switchboard xmpp [--config FILE] [--data DIR]`: runs the text server alone until SIGTERM/SIGINT.
 * `startTextServer` is also what `switchboard up` uses to run it beside the other parts.
 */

import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import { type Config, gatewayJid } from '../config/config.ts';
import { prepDomainpart, prepLocalpart } from '../xmpp/jid.ts';
import {
  GATEWAY_DEFAULT_GRANT,
  makeGrant,
  PrivilegeConfigError,
  type PrivilegeGrant,
} from '../xmpp-server/privilege.ts';
import { openStore, XmppServer } from '../xmpp-server/server.ts';
import { credentialsFor, type Store } from '../xmpp-server/store.ts';
import { startCommand } from './command.ts';

const USAGE = `Usage: switchboard xmpp [--config FILE] [--data DIR]

Runs the embedded XMPP text server (c2s with STARTTLS, XEP-0114 components) until SIGTERM.
Every config key can also be set as SWITCHBOARD_SECTION_KEY, e.g. SWITCHBOARD_XMPP_C2S_PORT=5223.`;

/** The gateway's component secret: from config, else made once and kept in the data directory. */
export function componentSecret(config: Config, dataDir: string): { secret: string; created: boolean } {
  const configured = config.xmpp.component_secret ?? config.gateway.component_secret;
  if (configured !== undefined) return { secret: configured, created: false };
  const file = join(dataDir, 'component-secret');
  if (existsSync(file)) return { secret: readFileSync(file, 'utf8').trim(), created: false };
  const secret = randomBytes(18).toString('base64url');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  return { secret, created: true };
}

/** Creates the [[users]] of the config that do not exist yet; updates their extension and SIP password. */
export async function ensureConfiguredUsers(store: Store, config: Config, log: Logger): Promise<void> {
  for (const user of config.users) {
    if (user.jid !== undefined && !user.jid.endsWith(`@${config.xmpp.domain}`)) continue;
    const name = prepLocalpart(user.name);
    if (!store.hasAccount(name)) {
      const password = user.password ?? randomBytes(12).toString('base64url');
      store.createAccount(name, await credentialsFor(password), {
        extension: user.extension,
        sipPassword: user.sip_password,
      });
      if (user.password === undefined)
        log.warn({ user: name, password }, 'created account with a generated password');
      else log.info({ user: name }, 'created account from config');
    } else if (user.extension !== undefined || user.sip_password !== undefined) {
      store.setAccountExtras(name, {
        ...(user.extension !== undefined ? { extension: user.extension } : {}),
        ...(user.sip_password !== undefined ? { sipPassword: user.sip_password } : {}),
      });
    }
  }
}

/**
 * XEP-0356 grants per component domain: the gateway's default (unless `gateway_privileges` is false),
 * then [xmpp.privileges] entries, each replacing whatever its component had. Throws for an entry
 * whose domain is not a component of this server.
 */
export function privilegeGrants(
  config: Config,
  components: ReadonlyMap<string, string>,
  gateway: string,
): Map<string, PrivilegeGrant> {
  const grants = new Map<string, PrivilegeGrant>();
  if (config.xmpp.gateway_privileges) grants.set(gateway, GATEWAY_DEFAULT_GRANT);
  for (const [raw, p] of Object.entries(config.xmpp.privileges)) {
    let domain: string;
    try {
      domain = prepDomainpart(raw);
    } catch {
      throw new PrivilegeConfigError(`config: xmpp.privileges: "${raw}" is not a domain`);
    }
    if (!components.has(domain))
      throw new PrivilegeConfigError(`config: xmpp.privileges: ${raw} is not a component of this server`);
    try {
      grants.set(
        domain,
        makeGrant({
          roster: p.roster,
          ...(p.roster_push === undefined ? {} : { rosterPush: p.roster_push }),
          message: p.message,
          presence: p.presence,
          iq: p.iq,
        }),
      );
    } catch (e) {
      throw new PrivilegeConfigError(`config: xmpp.privileges.${raw}: ${(e as Error).message}`);
    }
  }
  return grants;
}

/** Starts the text server for a config and data directory; the caller stops it (and closes the store). */
export async function startTextServer(
  config: Config,
  dataDir: string,
  log: Logger,
): Promise<{ server: XmppServer; store: Store }> {
  const store = openStore(dataDir);
  try {
    await ensureConfiguredUsers(store, config, log);
    const components = new Map<string, string>();
    for (const [domain, secret] of Object.entries(config.xmpp.components))
      components.set(prepDomainpart(domain), secret);
    const gateway = prepDomainpart(gatewayJid(config));
    if (!components.has(gateway)) {
      const { secret, created } = componentSecret(config, dataDir);
      if (created)
        log.warn(
          { component: gateway, file: join(dataDir, 'component-secret') },
          'generated a component secret',
        );
      components.set(gateway, secret);
    }
    const privileges = privilegeGrants(config, components, gateway);
    for (const [component, grant] of privileges)
      log.info(
        {
          component,
          roster: grant.roster,
          message: grant.message,
          presence: grant.presence,
          iq: Object.fromEntries(grant.iq),
        },
        'XEP-0356 privileges granted',
      );
    const server = new XmppServer(
      {
        domain: prepDomainpart(config.xmpp.domain),
        host: config.xmpp.host,
        c2sPort: config.xmpp.c2s_port,
        componentPort: config.xmpp.component_port,
        components,
        privileges,
        allowPlainLoopback: config.xmpp.allow_plain_loopback ?? false,
        tlsCert: config.xmpp.tls_cert,
        tlsKey: config.xmpp.tls_key,
        dataDir,
        offlineLimit: config.xmpp.offline_limit,
        pingIntervalS: config.xmpp.ping_interval_s,
        pingTimeoutS: config.xmpp.ping_timeout_s,
        negotiationTimeoutS: config.xmpp.negotiation_timeout_s,
        outputBufferLimit: config.xmpp.output_buffer_limit,
        maxSessionsPerAccount: config.xmpp.max_sessions_per_account,
        connectionsPerMinute: config.xmpp.connections_per_minute,
        authFailuresPerMinute: config.xmpp.auth_failures_per_minute,
        rateLimitExempt: config.xmpp.rate_limit_exempt,
        resumeTimeoutS: config.xmpp.resume_timeout_s,
        iqDuringResumption: config.xmpp.iq_during_resumption,
      },
      { store, log: log.child({ part: 'text server' }) },
    );
    await server.start();
    return { server, store };
  } catch (e) {
    store.close();
    throw e;
  }
}

export function dataDirFor(config: Config, flag: string | undefined): string {
  return flag ?? config.data_dir ?? 'data';
}

export async function run(argv: string[]): Promise<number> {
  const command = startCommand('xmpp', argv, USAGE);
  if (typeof command === 'number') return command;
  const { config, values } = command;
  const log = pino({ level: config.log_level });
  const dataDir = dataDirFor(config, values.data);
  let started: { server: XmppServer; store: Store };
  try {
    started = await startTextServer(config, dataDir, log);
  } catch (e) {
    console.error(`switchboard xmpp: ${(e as Error).message}`);
    return 1;
  }
  const { server, store } = started;
  console.log(
    `text server for ${server.config.domain}: c2s ${server.config.host}:${server.c2sPort}, components ${server.config.host}:${server.componentPort}`,
  );
  // Run alone, the text server owns the HTTP port for XMPP over WebSocket (`switchboard up` mounts
  // server.websocket.handleUpgrade on its shared HTTP listener instead). A busy port costs only WebSocket.
  try {
    const port = await server.websocket.listen(config.http.port, config.http.host);
    console.log(`websocket ws://${config.http.host}:${port}/xmpp-websocket`);
  } catch (e) {
    log.warn({ err: (e as Error).message, port: config.http.port }, 'no WebSocket listener');
  }
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
  await server.stop();
  store.close();
  return 0;
}
