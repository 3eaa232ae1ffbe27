// The summary reporter (scripts/reporter.mjs) on real node:test runs of small
// fixture files: every skipped test and suite is named with its reason and
// counted, failures are counted once, and the last line is what CI reads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from '../support/cli.js';

const FIXTURES = join(ROOT, 'test/scripts/fixtures/reporter');

/** `node --test` over fixture files with our reporter: its whole output, and the lines that are not failure details. */
function run(...files: string[]): Promise<{ code: number; out: string; lines: string[] }> {
  // This test itself runs under node --test, which tells its children through
  // NODE_TEST_CONTEXT to report to it; the run below must be a top-level one.
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  delete env.KOMPOX_TEST_VERBOSE;
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--test', '--test-reporter', join(ROOT, 'scripts/reporter.mjs'), '--test-reporter-destination', 'stdout', ...files],
      { cwd: FIXTURES, env, maxBuffer: 16 << 20 },
      (err, stdout) => {
        if (err && typeof err.code !== 'number') return reject(err);
        const lines = stdout.split('\n').filter((l) => l !== '' && !l.startsWith(' '));
        resolve({ code: typeof err?.code === 'number' ? err.code : 0, out: stdout, lines });
      },
    );
  });
}

/** The lines of a run up to (not including) the failure details. */
function progress(lines: string[]): string[] {
  const i = lines.findIndex((l, k) => l.startsWith('FAIL') && lines.slice(0, k).includes(l));
  return i < 0 ? lines : lines.slice(0, i);
}

test('every kind of skip is named with its reason and counted; the last line adds ", N skipped"', async () => {
  const r = await run('skips.mjs');
  assert.equal(r.code, 0, r.out);
  assert.deepEqual(r.lines, [
    'skip  skips.mjs › needs sshd (suite, not run) — sshd is not installed',
    'skip  skips.mjs › skipped with describe.skip (suite, not run) — no reason given',
    'skip  skips.mjs › every test skipped › a — corpus folder ../shared/corpus is missing',
    'skip  skips.mjs › every test skipped › b — the openssl CLI is not installed',
    'skip  skips.mjs › every test skipped (suite: all 2 tests skipped)',
    'skip  skips.mjs › outer › inner skipped (suite, not run) — no reason given',
    'todo  skips.mjs › later › planned — not written yet',
    'skip  skips.mjs › later (suite: its only test skipped)',
    'skip  skips.mjs › empty: its tests come from data that is absent (suite, not run) — it has no tests',
    'skip  skips.mjs › a skipped test — KOMPOX_TEST_KUBECONFIG is not set',
    'todo  skips.mjs › a todo test — waits for the AKS driver',
    'skip  skips.mjs › a test with subtests › second — no pseudo-terminal here',
    'skip  skips.mjs › a test whose hook skips it — the hook found nothing to test (its 1 subtest ran and is counted)',
    'ok    skips.mjs (5)',
    'skipped: 7 tests, 4 suites not run, 2 suites with every test skipped (each named above with the reason)',
    '5 passed, 0 failed, 11 skipped',
  ]);
});

test('failures are counted once each (a suite only for its own hook or body), a failing todo test is not one', async () => {
  const r = await run('failures.mjs');
  assert.equal(r.code, 1, r.out);
  assert.deepEqual(progress(r.lines), [
    'FAIL  failures.mjs › a suite whose before hook fails › never gets to run',
    'FAIL  failures.mjs › a suite whose before hook fails',
    'FAIL  failures.mjs › a suite whose before hook tries t.skip › x',
    'FAIL  failures.mjs › a suite whose before hook tries t.skip',
    'FAIL  failures.mjs › a suite whose body throws',
    'FAIL  failures.mjs › a suite with one failing test › fails',
    'FAIL  failures.mjs › a test with a failing subtest › sub fails',
    'todo  failures.mjs › a failing todo test is not a failure — known bug (fails, as expected)',
    'ok    failures.mjs (1)',
  ]);
  assert.deepEqual(r.lines.slice(-2), ['skipped: 1 test (each named above with the reason)', '1 passed, 7 failed, 1 skipped']);
  // The details say why.
  for (const why of ['the fixture could not be made', 't.skip is not a function', 'bad data file', 'expected 1, got 2', 'Error: sub']) {
    assert.ok(r.out.includes(why), `the failure details mention "${why}"`);
  }
  assert.ok(!r.out.includes('Error: known'), 'the expected failure of a todo test is not printed as a failure');
});

test('a file that does not load is a failure that shows what node printed', async () => {
  const r = await run('broken.mjs');
  assert.equal(r.code, 1);
  assert.equal(r.lines[0], 'FAIL  broken.mjs');
  assert.match(r.out, /stderr:\n\s+[\s\S]*Cannot find module '[^']*no-such-module\.mjs'/);
  assert.equal(r.lines.at(-1), '0 passed, 1 failed');
});

test('a clean run ends with "N passed, 0 failed" and nothing about skips', async () => {
  const r = await run('passing.mjs');
  assert.equal(r.code, 0);
  assert.deepEqual(r.lines, ['ok    passing.mjs (3)', '3 passed, 0 failed']);
});

test('several files in one run (node runs them in parallel): counts add up, paths stay per file', async () => {
  const r = await run('passing.mjs', 'skips.mjs', 'failures.mjs');
  assert.equal(r.code, 1);
  assert.equal(r.lines.at(-1), '9 passed, 7 failed, 12 skipped');
  assert.ok(r.lines.includes('skip  skips.mjs › every test skipped › a — corpus folder ../shared/corpus is missing'));
  assert.ok(r.lines.includes('FAIL  failures.mjs › a suite with one failing test › fails'));
  assert.ok(r.lines.includes('ok    passing.mjs (3)'));
});
