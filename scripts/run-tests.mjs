#!/usr/bin/env node
// Runs every test file under test/ with node:test through tsx.
// Node 20 does not discover .ts test files on its own, so the list is built here.
// Usage: npm test [-- PATH_PREFIX ...]   e.g. npm test -- test/xml
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;

function collect(dir, out) {
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) collect(path, out);
    else if (name.endsWith('.test.ts')) out.push(relative(root, path));
  }
  return out;
}

const filters = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const passThrough = process.argv.slice(2).filter((a) => a.startsWith('--'));
const files = collect(join(root, 'test'), []).filter(
  (f) => filters.length === 0 || filters.some((p) => f.startsWith(p.replace(/^\.\//, ''))),
);
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ') || 'test/'}`);
  process.exit(1);
}

const child = spawn(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=120000', ...passThrough, ...files],
  { cwd: root, stdio: 'inherit' },
);
child.on('exit', (code, signal) => process.exit(signal ? 1 : (code ?? 1)));
