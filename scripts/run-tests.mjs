#!/usr/bin/env node
// Runs the test files (test/**/*.test.ts) through node:test with tsx and our
// reporter, which ends with the line "N passed, N failed" (", N skipped"
// follows when anything was skipped).
// Usage: node scripts/run-tests.mjs [substring-filter ...]
//   With filters, only the files whose path contains one of them run
//   (`node scripts/run-tests.mjs test/kube cli/options`).
// node --test expands the glob itself (Node >= 22); we expand it here only to
// apply the filters. tsx stays: the tests import `.js` specifiers of `.ts`
// sources, which Node's own type stripping does not map.
import { globSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const GLOB = 'test/**/*.test.ts';
const filters = process.argv.slice(2);

let files = [GLOB];
if (filters.length) {
  files = globSync(GLOB, { cwd: root })
    .sort()
    .filter((f) => filters.some((s) => f.includes(s)));
  if (files.length === 0) {
    console.error(`no test file matched ${filters.join(' or ')}`);
    process.exit(1);
  }
}
const r = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-reporter', join(root, 'scripts/reporter.mjs'), '--test-reporter-destination', 'stdout', ...files],
  { cwd: root, stdio: 'inherit', env: { ...process.env, KOMPOX_TEST: '1' } },
);
process.exit(r.status ?? 1);
