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
import { existsSync, readdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { loadConfig, requireApp } from '../../src/config/index.js';
import { loadDir } from '../support/source.js';
import { buildAppManifest } from '../../src/usecases/app-manifest.js';
import { volumeInputs } from '../support/volumes.js';
import { DiagnosticsError, formatDiagnostic, type Diagnostic } from '../../src/domain/errors.js';
import type { Disk } from '../../src/domain/model.js';
import { checkServerRules, validateObjects } from './helpers.js';

const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));
const UPDATE = process.env.UPDATE_GOLDEN === '1';

function lines(diags: Diagnostic[], dir: string): string {
  const rel = relative(process.cwd(), dir);
  return diags.map((d) => formatDiagnostic(d).split(`${dir}/`).join('').split(`${rel}/`).join('')).join('\n') + (diags.length ? '\n' : '');
}

function readOptional(path: string): string | undefined {
  return existsSync(path) ? readFileSync(path, 'utf8') : undefined;
}

async function runCase(dir: string) {
  const ops = await loadConfig(join(dir, 'kompoxops.yml'), process.cwd());
  const ctx = requireApp(ops);
  const env = (parse(readOptional(join(dir, 'env.yaml')) ?? '{}') ?? {}) as Record<string, string>;
  const disks = (parse(readOptional(join(dir, 'disks.yaml')) ?? '{}') ?? {}) as Record<string, Disk>;
  const loaded = await loadDir(ctx.app.projectDir!, { files: [ctx.app.composePath!], env });
  return { loaded, result: await buildAppManifest(ctx, loaded, { disks, locateConfig: ops.locate, volumes: volumeInputs(ctx, disks) }) };
}

const cases = existsSync(FIXTURES) ? readdirSync(FIXTURES).filter((n) => existsSync(join(FIXTURES, n, 'kompoxops.yml'))).sort() : [];

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
        writeFileSync(join(dir, 'expected.yaml'), outcome!.objects.map((o) => `---\n${stringify(o, { lineWidth: 0 })}`).join(''));
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
