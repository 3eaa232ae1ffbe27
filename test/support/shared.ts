// The shared data folder: `shared/` beside the project (../shared from the
// project root), as in the CI checkout. Found relative to the project, never
// by an absolute path; KOMPOX_TEST_SHARED=DIR points elsewhere (a git
// worktree whose parent folder has no shared/).
import { existsSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { ROOT } from './cli.js';

export const SHARED = process.env.KOMPOX_TEST_SHARED ? resolve(process.env.KOMPOX_TEST_SHARED) : resolve(ROOT, '..', 'shared');

/**
 * A folder of the shared data (e.g. 'corpus/compose') and, when it is absent,
 * the reason to skip the tests that need it (for `{ skip }` on a describe).
 */
export function sharedData(rel: string): { dir: string; skip: string | false } {
  const dir = join(SHARED, rel);
  if (existsSync(dir)) return { dir, skip: false };
  return { dir, skip: `the shared data folder ${relative(ROOT, dir)} is missing (shared/ beside the project; KOMPOX_TEST_SHARED=DIR points to another)` };
}
