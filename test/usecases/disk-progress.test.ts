// The transfer progress bar (src/cli/progress.ts): drawn on a terminal only,
// throttled, with percentage and rate when the total is known.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProgressBar, formatBytes, terminalProgress } from '../../src/cli/progress.js';

function fakeTty(isTTY: boolean) {
  const writes: string[] = [];
  return { writes, stream: { isTTY, columns: 120, write: (s: string) => (writes.push(s), true) } as unknown as NodeJS.WriteStream };
}

describe('progress bar', () => {
  it('is not drawn when stderr is not a terminal', () => {
    assert.equal(terminalProgress({ stream: fakeTty(false).stream }), undefined);
    assert.ok(terminalProgress({ stream: fakeTty(true).stream }) instanceof ProgressBar);
  });

  it('draws percentage, amounts and rate, throttled, and ends the line', () => {
    const t = fakeTty(true);
    let now = 1_000;
    const bar = new ProgressBar({ stream: t.stream, now: () => now, intervalMs: 100 });
    bar.start('export d1', 4 * 1024 * 1024);
    now += 1000;
    bar.advance(1024 * 1024);
    bar.advance(1024 * 1024); // within the interval: not drawn
    now += 1000;
    bar.advance(1024 * 1024);
    bar.done();
    assert.equal(t.writes.length, 5); // start, first advance, third advance, done, newline
    assert.equal(t.writes[1], `\rexport d1 [######..................]  25% 1.0 MiB/4.0 MiB 1.0 MiB/s\x1b[K`);
    assert.equal(t.writes[3], `\rexport d1 [##################......]  75% 3.0 MiB/4.0 MiB 1.5 MiB/s\x1b[K`);
    assert.equal(t.writes[4], '\n');
  });

  it('without a total shows bytes and rate', () => {
    const t = fakeTty(true);
    let now = 0;
    const bar = new ProgressBar({ stream: t.stream, now: () => now });
    bar.start('import', undefined);
    now = 2000;
    bar.advance(3000);
    assert.equal(bar.line(), 'import 2.9 KiB 1.5 KiB/s');
    assert.equal(formatBytes(512), '512 B');
  });
});
