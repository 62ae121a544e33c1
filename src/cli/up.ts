/**
 * `switchboard up` (= `npm start`): every part on this machine in one process — text server, gateway,
 * voice server — with demo users on first start, a banner saying what listens where, metrics, and a
 * clean stop on SIGTERM.
 */

import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import pino from 'pino';
import { type Config, gatewayJid } from '../config/config.ts';
import { Registry } from '../metrics/registry.ts';
import type { Store } from '../xmpp-server/store.ts';
import { credentialsFor } from '../xmpp-server/store.ts';
import { startCommand } from './command.ts';
import { startGatewayPart } from './gateway.ts';
import { startHttp } from './http.ts';
import { StoreUserDirectory, startVoicePart } from './voice.ts';
import { webRoute } from './web.ts';
import { componentSecret, dataDirFor, startTextServer } from './xmpp.ts';

const USAGE = `Usage: switchboard up [--config FILE] [--data DIR]

Runs the text server, the gateway and the voice server on this machine. On first start it creates the
demo users alice (1001), bob (1002) and carol (1003) and prints their passwords once; they are kept in
DATA/demo-users.txt.`;

const DEMO_USERS = [
  { name: 'alice', extension: '1001' },
  { name: 'bob', extension: '1002' },
  { name: 'carol', extension: '1003' },
];

interface DemoUser {
  name: string;
  extension: string;
  password: string;
  sipPassword: string;
}

/** Creates the demo users when the store has no account at all (first start). */
async function ensureDemoUsers(store: Store, dataDir: string): Promise<DemoUser[] | undefined> {
  if (store.listAccounts().length > 0) return undefined;
  const created: DemoUser[] = [];
  for (const u of DEMO_USERS) {
    const password = randomBytes(9).toString('base64url');
    const sipPassword = randomBytes(9).toString('base64url');
    store.createAccount(u.name, await credentialsFor(password), { extension: u.extension, sipPassword });
    created.push({ ...u, password, sipPassword });
  }
  const lines = created.map(
    (u) => `${u.name}\textension ${u.extension}\tpassword ${u.password}\tSIP password ${u.sipPassword}`,
  );
  writeFileSync(join(dataDir, 'demo-users.txt'), `${lines.join('\n')}\n`, { mode: 0o600 });
  return created;
}

function banner(
  config: Config,
  ports: { c2s: number; component: number; http: number; sip: number; csta: number },
  demo: DemoUser[] | undefined,
  dataDir: string,
): string {
  const d = config.xmpp.domain;
  const lines = [
    '',
    'Switchboard is up.',
    `  text server   XMPP c2s ${config.xmpp.host}:${ports.c2s} (domain ${d}), components ${config.xmpp.host}:${ports.component}`,
    `  voice server  SIP ${config.pbx.host}:${ports.sip} (UDP and TCP, domain ${d}), CSTA XML ${config.pbx.host}:${ports.csta}`,
    `  gateway       ${gatewayJid(config)} (CSTA over XMPP), linked to the voice server`,
    `  web client    http://${config.http.host}:${ports.http}/`,
    `  web           ws://${config.http.host}:${ports.http}/xmpp-websocket (XMPP over WebSocket), metrics http://${config.http.host}:${ports.http}/metrics`,
    '',
  ];
  if (demo !== undefined) {
    lines.push(`Demo users (passwords shown once; also in ${join(dataDir, 'demo-users.txt')}):`);
    for (const u of demo)
      lines.push(
        `  ${u.name}@${d}  password ${u.password}  phone ${u.extension}, SIP password ${u.sipPassword}`,
      );
  } else {
    lines.push(`Users: switchboard user list --data ${dataDir}`);
  }
  lines.push(
    '',
    'Log in with any XMPP client, for example:',
    `  profanity: /connect alice@${d} server ${config.xmpp.host} port ${ports.c2s} tls allow`,
    `  Gajim: account alice@${d}, custom host ${config.xmpp.host} port ${ports.c2s}`,
    `Then send "help" to ${gatewayJid(config)} for phone commands, or use CSTA over XMPP (docs/protocol.md).`,
    '',
    "Register a SIP phone (baresip, Linphone, a desk phone) as the user's extension, for example:",
    `  baresip: /uanew <sip:1001@${d}>;auth_user=1001;auth_pass=SIP_PASSWORD;outbound="sip:${config.pbx.host}:${ports.sip}"`,
    `  Linphone: username 1001, domain ${d}, proxy sip:${config.pbx.host}:${ports.sip}, password = the SIP password`,
    '',
  );
  return lines.join('\n');
}

export async function run(argv: string[]): Promise<number> {
  const started = startCommand('up', argv, USAGE);
  if (typeof started === 'number') return started;
  const { config, values } = started;
  // On one machine the web client and local chat clients log in over loopback without TLS (the HTTP
  // listener has no TLS); connections from anywhere else still need STARTTLS. Configurable as usual.
  config.xmpp.allow_plain_loopback ??= true;
  const log = pino({ level: config.log_level });
  const dataDir = resolve(dataDirFor(config, values.data));
  if (!existsSync(dataDir)) mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const registry = new Registry();
  const stops: (() => Promise<void> | void)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) {
      try {
        await stop();
      } catch (e) {
        log.warn({ err: (e as Error).message }, 'error while stopping');
      }
    }
  };
  try {
    const { server, store } = await startTextServer(config, dataDir, log);
    stops.push(
      () => store.close(),
      () => server.stop(),
    );
    registry.gauge(
      'switchboard_xmpp_sessions',
      'Client sessions on the text server',
      () => server.gauges().switchboard_xmpp_sessions,
    );
    registry.gauge(
      'switchboard_xmpp_components',
      'Components connected to the text server',
      () => server.gauges().switchboard_xmpp_components,
    );
    const demo = await ensureDemoUsers(store, dataDir);
    const grants = store
      .listAccounts()
      .filter((a) => a.extension !== undefined)
      .map((a) => ({ jid: `${a.username}@${config.xmpp.domain}`, devices: [a.extension!] }));
    const http = await startHttp(config.http.host, config.http.port, registry);
    stops.push(() => http.close());
    http.mountUpgrade((req, socket, head) => server.websocket.handleUpgrade(req, socket, head));
    http.mount(webRoute());
    const voice = await startVoicePart(config, new StoreUserDirectory(store), log, registry);
    stops.push(() => voice.stop());
    const { secret } = componentSecret(config, dataDir);
    const gateway = startGatewayPart(
      {
        ...config,
        gateway: {
          ...config.gateway,
          xmpp_host: config.xmpp.host,
          xmpp_port: server.componentPort,
          csta_host: config.pbx.host,
          csta_port: voice.csta.port,
        },
      },
      { secret, grants, log, registry, dataDir },
    );
    stops.push(() => gateway.stop());
    console.log(
      banner(
        config,
        {
          c2s: server.c2sPort,
          component: server.componentPort,
          http: http.port,
          sip: voice.server.sipPort,
          csta: voice.csta.port,
        },
        demo,
        dataDir,
      ),
    );
  } catch (e) {
    console.error(`switchboard up: ${(e as Error).message}`);
    await stopAll();
    return 1;
  }
  await new Promise<void>((resolveStop) => {
    process.once('SIGTERM', () => resolveStop());
    process.once('SIGINT', () => resolveStop());
  });
  log.info('stopping');
  await stopAll();
  return 0;
}
