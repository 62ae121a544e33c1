/**
 * `switchboard user add|del|list|passwd|set`: manages text server accounts in the data directory's
 * SQLite store (SCRAM keys only), with each user's phone extension and SIP password.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { type Config, ConfigError, loadConfig } from '../config/config.ts';
import { type JidError, prepLocalpart } from '../xmpp/jid.ts';
import { openStore } from '../xmpp-server/server.ts';
import { credentialsFor } from '../xmpp-server/store.ts';
import { dataDirFor } from './xmpp.ts';

const USAGE = `Usage: switchboard user <command> [--config FILE] [--data DIR]

  add NAME [--password P] [--extension EXT] [--sip-password S]   create an account
  del NAME                                                        delete it (roster and offline messages too)
  list                                                            list accounts and extensions
  passwd NAME [--password P]                                      set a new password
  set NAME [--extension EXT] [--sip-password S]                   change extension or SIP password

A password that is not given is generated and printed once.`;

function generated(): string {
  return randomBytes(12).toString('base64url');
}

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    options: {
      config: { type: 'string' },
      data: { type: 'string' },
      password: { type: 'string' },
      extension: { type: 'string' },
      'sip-password': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: true,
  });
}

export async function run(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (e) {
    console.error(`switchboard user: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const [command, rawName, ...extra] = positionals;
  if (values.help === true || command === undefined) {
    console.log(USAGE);
    return command === undefined && values.help !== true ? 2 : 0;
  }
  if (extra.length > 0) {
    console.error(`switchboard user: unexpected argument '${extra[0]}'`);
    return 2;
  }
  let config: Config;
  try {
    config = loadConfig({ file: values.config });
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      return 2;
    }
    throw e;
  }
  if (values.extension !== undefined && !/^[0-9*#+]{1,32}$/.test(values.extension)) {
    console.error('switchboard user: --extension: digits only');
    return 2;
  }
  const needsName = command !== 'list';
  let name = '';
  if (needsName) {
    if (rawName === undefined) {
      console.error(`switchboard user ${command}: NAME is required`);
      return 2;
    }
    try {
      name = prepLocalpart(rawName);
    } catch (e) {
      console.error(`switchboard user: invalid user name '${rawName}': ${(e as JidError).message}`);
      return 2;
    }
  }
  const store = openStore(dataDirFor(config, values.data));
  try {
    switch (command) {
      case 'add': {
        if (store.hasAccount(name)) {
          console.error(`switchboard user: ${name} already exists`);
          return 1;
        }
        const password = values.password ?? generated();
        const sipPassword =
          values['sip-password'] ?? (values.extension !== undefined ? generated() : undefined);
        store.createAccount(name, await credentialsFor(password), {
          extension: values.extension,
          sipPassword,
        });
        console.log(
          `added ${name}@${config.xmpp.domain}${values.extension ? ` (extension ${values.extension})` : ''}`,
        );
        if (values.password === undefined) console.log(`password: ${password}`);
        if (values['sip-password'] === undefined && sipPassword !== undefined)
          console.log(`SIP password: ${sipPassword}`);
        return 0;
      }
      case 'del':
        if (!store.deleteAccount(name)) {
          console.error(`switchboard user: no such user ${name}`);
          return 1;
        }
        console.log(`deleted ${name}`);
        return 0;
      case 'list':
        for (const a of store.listAccounts()) console.log(`${a.username}\t${a.extension ?? '-'}`);
        return 0;
      case 'passwd': {
        if (!store.hasAccount(name)) {
          console.error(`switchboard user: no such user ${name}`);
          return 1;
        }
        const password = values.password ?? generated();
        store.setCredentials(name, await credentialsFor(password));
        console.log(`password changed for ${name}`);
        if (values.password === undefined) console.log(`password: ${password}`);
        return 0;
      }
      case 'set': {
        const ok = store.setAccountExtras(name, {
          ...(values.extension !== undefined ? { extension: values.extension } : {}),
          ...(values['sip-password'] !== undefined ? { sipPassword: values['sip-password'] } : {}),
        });
        if (!ok) {
          console.error(`switchboard user: no such user ${name}`);
          return 1;
        }
        console.log(`updated ${name}`);
        return 0;
      }
      default:
        console.error(`switchboard user: unknown command '${command}'\n\n${USAGE}`);
        return 2;
    }
  } finally {
    store.close();
  }
}
