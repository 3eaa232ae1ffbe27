// Test helper: writes a small project into a temp dir and loads it.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after } from 'node:test';
import type { LoadedProject } from '../../src/compose/index.js';
import { loadDir, type DirLoadOptions } from '../support/source.js';
import { KompoxError, formatError } from '../../src/domain/errors.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Creates a project directory (its basename is `name`) with the given files. */
export function project(files: Record<string, string>, name = 'proj'): string {
  const root = mkdtempSync(join(tmpdir(), 'kompox-compose-'));
  dirs.push(root);
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  for (const [rel, text] of Object.entries(files)) {
    const p = join(dir, rel);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, text);
  }
  return dir;
}

export async function load(files: Record<string, string>, opts: DirLoadOptions = {}): Promise<LoadedProject> {
  const dir = project(files);
  return loadDir(dir, { env: {}, ...opts });
}

/** Loads and returns the KompoxError it must fail with (fails the test otherwise). */
export async function loadError(files: Record<string, string>, opts: DirLoadOptions = {}): Promise<KompoxError & { text: string }> {
  try {
    await load(files, opts);
  } catch (e) {
    if (e instanceof KompoxError) return Object.assign(e, { text: formatError(e) });
    throw e;
  }
  throw new Error('expected the load to fail');
}
