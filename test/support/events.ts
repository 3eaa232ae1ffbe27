// Collecting what an operation emits (src/domain/events.ts), for assertions.
import assert from 'node:assert/strict';
import type { KompoxEvent, Op } from '../../src/domain/events.js';

export interface Collected {
  op: Op;
  events: KompoxEvent[];
  /** The messages of `log` events, in order. */
  logs: string[];
}

export function collectEvents(signal?: AbortSignal): Collected {
  const events: KompoxEvent[] = [];
  const logs: string[] = [];
  return {
    op: {
      ...(signal ? { signal } : {}),
      events: (e) => {
        events.push(e);
        if (e.type === 'log') logs.push(e.message);
      },
    },
    events,
    logs,
  };
}

/** An Op whose `log` messages go into `lines`. */
export function logInto(lines: string[]): Op {
  return { events: (e) => e.type === 'log' && void lines.push(e.message) };
}

/**
 * The progress of a transfer got its total (the tree's bytes) before its
 * end, and the end counted every file and byte once: a size walk beside the
 * transfer (over SSH, in a helper pod) and the -o json summary's counts.
 */
export function assertTotalBeforeEnd(events: readonly KompoxEvent[], want: { totalBytes: number; fileCount: number }): void {
  const progress = events.filter((e) => e.type === 'progress');
  const firstTotal = progress.findIndex((e) => e.total !== undefined);
  const end = progress.findIndex((e) => e.end);
  assert.ok(firstTotal >= 0 && firstTotal < end, `a total before the end: ${JSON.stringify(progress)}`);
  assert.equal(progress[firstTotal]!.total, want.totalBytes);
  assert.deepEqual(progress[end]!.counts, { files: want.fileCount, bytes: want.totalBytes });
}
