/**
 * `switchboard pbx`: runs the voice server (SIP registrar + B2BUA) alone until SIGTERM/SIGINT.
 * Options: --sip-port N (env SWITCHBOARD_PBX_SIP_PORT, default 5060), --host ADDR (default 127.0.0.1),
 * --domain D (env SWITCHBOARD_XMPP_DOMAIN, default localhost), --advertise ADDR,
 * --user EXT:NAME:SIP_PASSWORD (repeatable), --config FILE ([pbx] keys; [[users]] with extension and
 * sip_password), --data DIR (its accounts.sqlite, when present, supplies users too),
 * --ring-timeout SECONDS (default 60), --ws-port N (SIP over WebSocket at /sip; off by default).
 * CSTA XML interface: --csta-port N (env SWITCHBOARD_PBX_CSTA_PORT, default 1040),
 * --csta-edition ed3|ed4|ed5|ed6 (env SWITCHBOARD_PBX_CSTA_EDITION, default ed4).
 */

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import { type Config, ConfigError, loadConfig } from '../config/config.ts';
import { CstaInterface } from '../pbx/csta-interface.ts';
import { VoiceServer, type VoiceServerOptions } from '../pbx/server.ts';
import { InMemoryUserDirectory, type UserDirectory } from '../pbx/users.ts';
import { openStore } from '../xmpp-server/server.ts';
import { StoreUserDirectory, usersFromConfig } from './voice.ts';
import { dataDirFor } from './xmpp.ts';

const USAGE = `Usage: switchboard pbx [--sip-port N] [--host ADDR] [--domain D] [--advertise ADDR]
                       [--user EXT:NAME:SIP_PASSWORD ...] [--ring-timeout SECONDS] [--ws-port N]
                       [--csta-port N] [--csta-edition ed3|ed4|ed5|ed6]`;

function fail(message: string): number {
  console.error(`switchboard pbx: ${message}\n${USAGE}`);
  return 2;
}

export async function run(argv: string[]): Promise<number> {
  let values: ReturnType<typeof parse>['values'];
  function parse() {
    return parseArgs({
      args: argv,
      options: {
        'sip-port': { type: 'string' },
        host: { type: 'string' },
        domain: { type: 'string' },
        advertise: { type: 'string' },
        user: { type: 'string', multiple: true },
        'ring-timeout': { type: 'string' },
        'ws-port': { type: 'string' },
        'csta-port': { type: 'string' },
        'csta-edition': { type: 'string' },
        help: { type: 'boolean' },
        config: { type: 'string' },
        data: { type: 'string' },
      },
      strict: true,
    });
  }
  try {
    values = parse().values;
  } catch (e) {
    return fail((e as Error).message);
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  // Flags win over the config file and SWITCHBOARD_… variables, which win over the defaults.
  let config: Config;
  try {
    config = loadConfig({ file: values.config });
  } catch (e) {
    if (e instanceof ConfigError && !/^config: pbx\.(sip_port|csta_port|csta_edition)/.test(e.message)) {
      console.error(e.message);
      return 2;
    }
    if (!(e instanceof ConfigError)) throw e;
    // A bad port or edition in the environment is reported below with the flag's wording.
    config = loadConfig({ file: values.config, env: {} });
  }
  const portText = values['sip-port'] ?? process.env.SWITCHBOARD_PBX_SIP_PORT ?? String(config.pbx.sip_port);
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535)
    return fail(`sip_port: not a port number: ${portText}`);
  const ringText = values['ring-timeout'] ?? '60';
  if (!/^\d{1,5}$/.test(ringText) || Number(ringText) < 1)
    return fail(`ring-timeout: not a number of seconds: ${ringText}`);
  const cstaPortText =
    values['csta-port'] ?? process.env.SWITCHBOARD_PBX_CSTA_PORT ?? String(config.pbx.csta_port);
  if (!/^\d{1,5}$/.test(cstaPortText) || Number(cstaPortText) > 65535)
    return fail(`csta_port: not a port number: ${cstaPortText}`);
  const cstaEdition =
    values['csta-edition'] ?? process.env.SWITCHBOARD_PBX_CSTA_EDITION ?? config.pbx.csta_edition;
  if (cstaEdition !== 'ed3' && cstaEdition !== 'ed4' && cstaEdition !== 'ed5' && cstaEdition !== 'ed6')
    return fail(`csta_edition: expected ed3, ed4, ed5 or ed6, got ${cstaEdition}`);
  // Users: --user flags, then [[users]] with a SIP password, then the data directory's account store.
  const users = new InMemoryUserDirectory();
  const configured = usersFromConfig(config);
  for (const spec of values.user ?? []) {
    const m = /^([^:]+):([^:]+):(.+)$/.exec(spec);
    if (!m) return fail(`user: expected EXT:NAME:SIP_PASSWORD, got ${spec}`);
    try {
      users.add({ extension: m[1]!, name: m[2]!, sipPassword: m[3]! });
    } catch (e) {
      return fail(`user: ${(e as Error).message}`);
    }
  }
  const dataDir = dataDirFor(config, values.data);
  const store = existsSync(join(dataDir, 'accounts.sqlite')) ? openStore(dataDir) : undefined;
  const fromStore = store === undefined ? undefined : new StoreUserDirectory(store);
  const directory: UserDirectory = {
    findUser: (u) => users.findUser(u) ?? configured.findUser(u) ?? fromStore?.findUser(u),
  };
  const logger = pino({ level: config.log_level, base: { part: 'pbx' } });
  if (users.list().length === 0 && configured.list().length === 0 && store === undefined)
    logger.warn('no users configured: every REGISTER and INVITE will be refused');
  const options: VoiceServerOptions = {
    users: directory,
    host: values.host ?? process.env.SWITCHBOARD_PBX_HOST ?? config.pbx.host,
    sipPort: Number(portText),
    domain: values.domain ?? config.xmpp.domain,
    ringTimeoutMs: Number(ringText) * 1000,
    logger,
  };
  if (values.advertise !== undefined) options.advertisedHost = values.advertise;
  const wsText = values['ws-port'] ?? process.env.SWITCHBOARD_PBX_WS_PORT;
  if (wsText !== undefined) {
    if (!/^\d{1,5}$/.test(wsText) || Number(wsText) > 65535)
      return fail(`ws_port: not a port number: ${wsText}`);
    options.wsPort = Number(wsText);
  }
  const server = new VoiceServer(options);
  try {
    await server.start();
  } catch (e) {
    logger.error({ err: (e as Error).message }, 'cannot start the voice server');
    return 1;
  }
  const cstaLog = logger.child({ part: 'pbx-csta' });
  const csta = new CstaInterface(server, {
    host: options.host ?? '127.0.0.1',
    port: Number(cstaPortText),
    edition: cstaEdition,
    log: {
      debug: (m) => cstaLog.debug(m),
      info: (m) => cstaLog.info(m),
      warn: (m) => cstaLog.warn(m),
    },
  });
  try {
    await csta.start();
  } catch (e) {
    logger.error({ err: (e as Error).message }, 'cannot start the CSTA interface');
    await server.stop();
    return 1;
  }
  console.log(`switchboard pbx: CSTA XML (${cstaEdition}) on tcp ${options.host}:${csta.port}`);
  const ws = server.wsPort !== undefined ? `, ws://${options.host}:${server.wsPort}/sip` : '';
  console.log(
    `switchboard pbx: SIP on udp+tcp ${options.host}:${server.sipPort}${ws}, domain ${server.domain}`,
  );
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  logger.info('stopping');
  await csta.stop();
  await server.stop();
  store?.close();
  return 0;
}
