// GC pacing (src/archive/memory.ts): the garbage allowed between two paced
// full GCs is GC_EVERY, or a share of the live heap (HEAP_FACTOR) when that is
// larger (a full GC costs in proportion to the live heap).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GC_EVERY, HEAP_FACTOR, nextGcAfter } from '../../src/archive/memory.js';

test('a small heap is paced every GC_EVERY bytes; a large one every heap-size bytes', () => {
  const MiB = 1024 * 1024;
  assert.equal(nextGcAfter(0), GC_EVERY);
  assert.equal(nextGcAfter(5 * MiB), GC_EVERY, 'the host path (a few MiB of heap) keeps the fixed pace');
  assert.equal(nextGcAfter(30 * MiB), HEAP_FACTOR * 30 * MiB, 'the CLI with the Kubernetes client: paced by its heap');
  assert.ok(nextGcAfter(30 * MiB) > GC_EVERY);
  assert.equal(nextGcAfter(MiB, 64), HEAP_FACTOR * MiB, "a caller's smaller minimum");
});
