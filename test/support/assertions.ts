// Assertions several test areas share.
import assert from 'node:assert/strict';
import { KompoxError } from '../../src/domain/errors.js';

/** `p` rejects with a KompoxError of `kind` whose message matches `re` (any other error fails with its stack). */
export async function rejectsWith(p: Promise<unknown>, kind: string, re: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof KompoxError, `expected KompoxError, got ${String((e as Error)?.stack ?? e)}`);
    assert.equal(e.kind, kind);
    assert.match(e.message, re);
    return true;
  });
}

/** For assert.rejects: the refusal of a name or symlink target that is not UTF-8 (archive.name.encoding), its message matching `said`. */
export const refusedNotUtf8 = (said: RegExp) => (e: unknown) => {
  assert.ok(e instanceof KompoxError, String(e));
  assert.deepEqual([e.kind, e.code], ['unsupported', 'archive.name.encoding']);
  assert.match(e.message, said);
  assert.match(e.hint ?? '', /UTF-8/);
  return true;
};
