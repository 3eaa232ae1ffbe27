// The golden fixture cases (test/convert/fixtures/<case>/), shared by the
// golden test and the tests that feed the printed manifests to YAML 1.1
// readers and kubectl.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { loadConfig, requireApp } from '../../src/config/index.js';
import { loadDir } from '../support/source.js';
import { buildAppManifest } from '../../src/usecases/app-manifest.js';
import type { Disk } from '../../src/domain/model.js';
import { volumeInputs } from '../support/volumes.js';

export const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));

export function readOptional(path: string): string | undefined {
  return existsSync(path) ? readFileSync(path, 'utf8') : undefined;
}

/** Every case folder (with a kompoxops.yml), sorted. */
export const goldenCases: string[] = existsSync(FIXTURES) ? readdirSync(FIXTURES).filter((n) => existsSync(join(FIXTURES, n, 'kompoxops.yml'))).sort() : [];

/** Cases that convert (no errors.txt). */
export const convertingCases: string[] = goldenCases.filter((n) => !existsSync(join(FIXTURES, n, 'errors.txt')));

/** Runs one case through the real config loader, compose loader and buildAppManifest. */
export async function runGoldenCase(dir: string) {
  const ops = await loadConfig(join(dir, 'kompoxops.yml'), process.cwd());
  const ctx = requireApp(ops);
  const env = (parse(readOptional(join(dir, 'env.yaml')) ?? '{}') ?? {}) as Record<string, string>;
  const disks = (parse(readOptional(join(dir, 'disks.yaml')) ?? '{}') ?? {}) as Record<string, Disk>;
  const loaded = await loadDir(ctx.app.projectDir!, { files: [ctx.app.composePath!], env });
  return { ctx, loaded, result: await buildAppManifest(ctx, loaded, { disks, locateConfig: ops.locate, volumes: volumeInputs(ctx, disks) }) };
}
