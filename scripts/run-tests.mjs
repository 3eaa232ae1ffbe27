#!/usr/bin/env node
// Runs every test file under test/ through node:test with tsx, and ends with
// the line "N passed, N failed" (our reporter). We list the files ourselves
// so that a substring filter runs one area.
// Usage: node scripts/run-tests.mjs [substring-filter ...]
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const filters = process.argv.slice(2);

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    if (name === 'node_modules' || name === 'fixtures') continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const files = walk(join(root, 'test'))
  .map((f) => relative(root, f))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)));
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
const r = spawnSync(
  process.execPath,
  [
    '--import', 'tsx',
    '--test',
    '--test-reporter', join(root, 'scripts/reporter.mjs'),
    '--test-reporter-destination', 'stdout',
    ...files,
  ],
  { cwd: root, stdio: 'inherit', env: { ...process.env, KOMPOX_TEST: '1' } },
);
process.exit(r.status ?? 1);
