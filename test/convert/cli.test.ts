// End to end: `kompoxops -C <fixture> app validate --out-manifest -` (the real
// binary, compiled dist/) prints exactly the golden manifest, and a failing
// case exits non-zero with every error on stderr, no stack trace, nothing on stdout.
// Cases with disks.yaml are left out: the CLI validates without disks (placeholders).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { ROOT, runCli } from '../support/cli.js';

const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));
const noDist = existsSync(join(ROOT, 'dist/cli/kompoxops/main.js')) ? undefined : 'dist/ is not built (run npx tsc -p tsconfig.json, or npm test)';
const cases = readdirSync(FIXTURES)
  .filter((n) => existsSync(join(FIXTURES, n, 'kompoxops.yml')) && !existsSync(join(FIXTURES, n, 'disks.yaml')))
  .sort();

for (const name of cases) {
  const dir = join(FIXTURES, name);
  test(`cli: app validate --out-manifest - for ${name}`, { skip: noDist }, async () => {
    const envFile = join(dir, 'env.yaml');
    const env = existsSync(envFile) ? (parse(readFileSync(envFile, 'utf8')) as Record<string, string>) : {};
    const r = await runCli(['-C', dir, 'app', 'validate', '--out-manifest', '-'], { env });
    const errorsFile = join(dir, 'errors.txt');
    if (existsSync(errorsFile)) {
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stdout, '');
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
      for (const line of readFileSync(errorsFile, 'utf8').trim().split('\n')) {
        // The message after the position (positions are printed relative to where the CLI runs).
        const message = line.replace(/^error: (\S+:\d+:\d+: )?/, '');
        assert.ok(r.stderr.includes(message), `stderr lacks: ${message}\n--- stderr:\n${r.stderr}`);
      }
      return;
    }
    assert.equal(r.code, 0, r.stderr);
    const got = parseAllDocuments(r.stdout).map((d) => d.toJSON());
    const want = parseAllDocuments(readFileSync(join(dir, 'expected.yaml'), 'utf8')).map((d) => d.toJSON());
    assert.deepEqual(got, want);
  });
}
