/**
 * What every part's command does first: parse `--config FILE --data DIR --help` (plus its own string
 * options), print usage on --help or a bad flag, and load the configuration with its one-line errors.
 */
import { parseArgs } from 'node:util';
import { type Config, ConfigError, loadConfig } from '../config/config.ts';

export interface CommandStart {
  config: Config;
  /** --data, and the command's own string options, by name. */
  values: Record<string, string | undefined>;
}

/** Returns the parsed start, or the exit code to return at once (0 after --help, 2 on a bad flag or config). */
export function startCommand(
  name: string,
  argv: string[],
  usage: string,
  extraStringOptions: readonly string[] = [],
): CommandStart | number {
  const options: Record<string, { type: 'string' } | { type: 'boolean'; short: string }> = {
    config: { type: 'string' },
    data: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  };
  for (const option of extraStringOptions) options[option] = { type: 'string' };
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false }));
  } catch (e) {
    console.error(`switchboard ${name}: ${(e as Error).message}\n\n${usage}`);
    return 2;
  }
  if (values.help === true) {
    console.log(usage);
    return 0;
  }
  let config: Config;
  try {
    config = loadConfig({ file: values.config as string | undefined });
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(e.message);
      return 2;
    }
    throw e;
  }
  const strings: Record<string, string | undefined> = {};
  for (const [key, value] of Object.entries(values)) if (typeof value === 'string') strings[key] = value;
  return { config, values: strings };
}
