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
