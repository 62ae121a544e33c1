/**
 * `npm run bench -- NAME [args]`: runs bench/NAME.ts, whose default export prints its figures.
 * Benchmarks are measurements, not tests: they print numbers and ratios and never assert timings.
 */
import { readdirSync } from 'node:fs';

const [name, ...args] = process.argv.slice(2).filter((a, i) => !(i === 0 && a === '--'));
const available = readdirSync(new URL('.', import.meta.url))
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.startsWith('_'))
  .map((f) => f.slice(0, -3))
  .sort();

if (name === undefined || !available.includes(name)) {
  console.error(`usage: npm run bench -- NAME [args]\navailable: ${available.join(', ')}`);
  process.exit(name === undefined ? 0 : 2);
}
const module = (await import(`./${name}.ts`)) as { default: (args: string[]) => Promise<void> };
await module.default(args.filter((a) => a !== '--'));
