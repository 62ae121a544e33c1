/**
 * The voice server as a part of a process: SIP registrar + B2BUA (`src/pbx`) with its CSTA XML
 * interface, users from the text server's account store (`switchboard up`) or from [[users]].
 */
import type { Logger } from 'pino';
import type { Config } from '../config/config.ts';
import type { Registry } from '../metrics/registry.ts';
import { CstaInterface } from '../pbx/csta-interface.ts';
import { VoiceServer } from '../pbx/server.ts';
import { InMemoryUserDirectory, type PbxUser, type UserDirectory } from '../pbx/users.ts';
import type { Store } from '../xmpp-server/store.ts';

/** The account store seen as the voice server's user directory: extension and SIP password per account. */
export class StoreUserDirectory implements UserDirectory {
  private readonly store: Store;
  constructor(store: Store) {
    this.store = store;
  }
  findUser(userPart: string): PbxUser | undefined {
    const account = this.store.accountByExtension(userPart) ?? this.store.getAccount(userPart);
    if (account?.extension === undefined || account.sipPassword === undefined) return undefined;
    return { name: account.username, extension: account.extension, sipPassword: account.sipPassword };
  }
}

/** [[users]] with an extension and a SIP password, for a voice server run on its own. */
export function usersFromConfig(config: Config): InMemoryUserDirectory {
  const users = new InMemoryUserDirectory();
  for (const u of config.users) {
    if (u.extension !== undefined && u.sip_password !== undefined) {
      users.add({ name: u.name, extension: u.extension, sipPassword: u.sip_password });
    }
  }
  return users;
}

export interface VoicePart {
  server: VoiceServer;
  csta: CstaInterface;
  stop(): Promise<void>;
}

export async function startVoicePart(
  config: Config,
  users: UserDirectory,
  log: Logger,
  registry?: Registry,
): Promise<VoicePart> {
  const plog = log.child({ part: 'voice server' });
  const server = new VoiceServer({
    users,
    host: config.pbx.host,
    sipPort: config.pbx.sip_port,
    domain: config.xmpp.domain,
    logger: plog,
  });
  await server.start();
  const clog = plog.child({ link: 'csta' });
  const csta = new CstaInterface(server, {
    host: config.pbx.host,
    port: config.pbx.csta_port,
    edition: config.pbx.csta_edition,
    log: { debug: (m) => clog.debug(m), info: (m) => clog.info(m), warn: (m) => clog.warn(m) },
  });
  try {
    await csta.start();
  } catch (e) {
    await server.stop();
    throw e;
  }
  if (registry !== undefined) {
    registry.gauge(
      'switchboard_pbx_registered_devices',
      'Extensions with at least one registered contact',
      () => server.registrar.registeredExtensions.length,
    );
    registry.gauge(
      'switchboard_pbx_active_calls',
      'Calls bridged by the voice server',
      () => server.b2bua.activeCalls.length,
    );
    registry.gauge(
      'switchboard_pbx_csta_monitors',
      'CSTA device monitors held by CSTA clients',
      () => csta.monitorCount,
    );
  }
  return {
    server,
    csta,
    async stop() {
      await csta.stop();
      await server.stop();
    },
  };
}
