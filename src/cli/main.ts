/**
 * The `switchboard` command line. Each subcommand lives in its own module and is loaded on demand,
 * so `switchboard user list` does not pay for starting a SIP stack.
 */
import { parseArgs } from 'node:util';

interface Command {
  summary: string;
  load: () => Promise<{ run: (argv: string[]) => Promise<number> }>;
}

const COMMANDS: Record<string, Command> = {
  up: {
    summary: 'run every part on this machine (text server, gateway, voice server)',
    load: () => import('./up.ts'),
  },
  xmpp: { summary: 'run the text server (XMPP) alone', load: () => import('./xmpp.ts') },
  pbx: { summary: 'run the voice server (SIP registrar, B2BUA) alone', load: () => import('./pbx.ts') },
  gateway: { summary: 'run the CSTA gateway (XEP-0114 component) alone', load: () => import('./gateway.ts') },
  user: { summary: 'manage users: add|del|list|passwd|set', load: () => import('./user.ts') },
  check: { summary: 'check a running deployment, part by part', load: () => import('./check.ts') },
  'csta-probe': {
    summary: 'connect to a CSTA XML server, monitor a device, print events',
    load: () => import('./csta-probe.ts'),
  },
};

function usage(): string {
  const lines = ['Usage: switchboard <command> [--config FILE] [--data DIR] [options]', '', 'Commands:'];
  for (const [name, cmd] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(10)} ${cmd.summary}`);
  lines.push('  help       this text', '  version    print the version');
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const { positionals } = parseArgs({ args: argv, strict: false, allowPositionals: true });
  const name = positionals[0] ?? 'help';
  if (name === 'help' || name === '--help') {
    console.log(usage());
    return 0;
  }
  if (name === 'version') {
    const pkg = await import('../../package.json', { with: { type: 'json' } });
    console.log(pkg.default.version);
    return 0;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    console.error(`switchboard: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  const module = await command.load();
  return module.run(argv.slice(argv.indexOf(name) + 1));
}

const code = await main(process.argv.slice(2));
if (code !== 0) process.exitCode = code;
