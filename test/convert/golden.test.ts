// Golden fixtures, one folder per case (Kompose style):
//   test/convert/fixtures/<case>/{kompoxops.yml, compose.yml, ...files}
//   expected.yaml   the manifest (multi-document, apply order), compared as parsed objects
//   warnings.txt    every warning, one per line, exactly (an unexpected warning fails)
//   errors.txt      for cases that must fail: every error, one per line
//   disks.yaml      optional: current disk per app volume
//   env.yaml        optional: environment for interpolation and `environment:` secrets
// The case goes through the real config loader, compose loader and buildAppManifest.
// UPDATE_GOLDEN=1 rewrites expected.yaml/warnings.txt/errors.txt: review every diff by hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { toYamlDocuments } from '../../src/domain/yaml-text.js';
import { DiagnosticsError, formatDiagnostic, type Diagnostic } from '../../src/domain/errors.js';
import { checkServerRules, validateObjects } from './helpers.js';
import { FIXTURES, goldenCases as cases, readOptional, runGoldenCase as runCase } from './golden-cases.js';

const UPDATE = process.env.UPDATE_GOLDEN === '1';

function lines(diags: Diagnostic[], dir: string): string {
  const rel = relative(process.cwd(), dir);
  return diags.map((d) => formatDiagnostic(d).split(`${dir}/`).join('').split(`${rel}/`).join('')).join('\n') + (diags.length ? '\n' : '');
}

test('there are golden cases', () => {
  assert.ok(cases.length >= 10, `only ${cases.length} cases in ${FIXTURES}`);
});

for (const name of cases) {
  const dir = join(FIXTURES, name);
  test(`golden: ${name}`, async () => {
    const wantErrors = readOptional(join(dir, 'errors.txt'));
    let outcome: { objects: unknown[]; warnings: Diagnostic[] } | undefined;
    let errors: Diagnostic[] | undefined;
    try {
      const { result } = await runCase(dir);
      outcome = result;
    } catch (e) {
      if (!(e instanceof DiagnosticsError)) throw e;
      errors = e.diagnostics;
    }
    if (UPDATE) {
      if (errors) {
        writeFileSync(join(dir, 'errors.txt'), lines(errors, dir));
        rmSync(join(dir, 'expected.yaml'), { force: true });
        rmSync(join(dir, 'warnings.txt'), { force: true });
      } else {
        writeFileSync(join(dir, 'expected.yaml'), toYamlDocuments(outcome!.objects));
        writeFileSync(join(dir, 'warnings.txt'), lines(outcome!.warnings, dir));
        rmSync(join(dir, 'errors.txt'), { force: true });
      }
      return;
    }
    if (wantErrors !== undefined) {
      assert.ok(errors, `${name}: expected the conversion to fail, but it succeeded`);
      assert.equal(lines(errors, dir), wantErrors);
      return;
    }
    assert.ok(!errors, `${name}: unexpected errors:\n${errors ? lines(errors, dir) : ''}`);
    const expected = parseAllDocuments(readFileSync(join(dir, 'expected.yaml'), 'utf8')).map((d) => d.toJSON());
    assert.deepEqual(outcome!.objects, expected);
    assert.equal(lines(outcome!.warnings, dir), readOptional(join(dir, 'warnings.txt')) ?? '');
    validateObjects(outcome!.objects as never);
    checkServerRules(outcome!.objects as never);
  });
}
