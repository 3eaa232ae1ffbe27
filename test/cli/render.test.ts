// The one event renderer of the CLI (src/cli/render.ts): plain lines for notes
// and warnings; on a terminal a live line (progress bar, throttled, with
// percentage and rate; or the state of a wait with the elapsed time); off a
// terminal no bars, one plain line per state.
import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import { byteProgress } from '../../src/domain/events.js';
import { EventRenderer, formatBytes, formatDuration } from '../../src/cli/render.js';

function fakeStream(isTTY: boolean, columns = 120) {
  const writes: string[] = [];
  return { writes, stream: { isTTY, columns, write: (s: string) => (writes.push(s), true) } as unknown as NodeJS.WriteStream };
}

const MiB = 1024 * 1024;

describe('event renderer', () => {
  it('off a terminal: no progress bar, notes and warnings as lines, each new state one line', () => {
    const t = fakeStream(false);
    const r = new EventRenderer({ stream: t.stream, statusPrefix: 'waiting: ' });
    r.render({ type: 'progress', id: 'a', label: 'export d1', done: 0, total: 10, unit: 'bytes' });
    r.render({ type: 'progress', id: 'a', label: 'export d1', done: 10, total: 10, unit: 'bytes', end: true });
    r.render({ type: 'log', message: 'created Deployment/ns/web' });
    r.render({ type: 'warning', diagnostic: { level: 'warning', message: 'w', hint: 'do x.' } });
    r.render({ type: 'status', message: 'deployment web: 0/1 ready' });
    r.render({ type: 'phase', phase: 'rollout', message: 'waiting for web' });
    r.end();
    assert.deepEqual(t.writes, ['created Deployment/ns/web\n', 'warning: w. do x.\n', 'waiting: deployment web: 0/1 ready\n']);
  });

  it('notes can be left out (a dry run prints its changes on stdout)', () => {
    const t = fakeStream(false);
    const r = new EventRenderer({ stream: t.stream, logs: false });
    r.render({ type: 'log', message: 'x' });
    r.render({ type: 'warning', diagnostic: { level: 'warning', message: 'still shown' } });
    assert.deepEqual(t.writes, ['warning: still shown\n']);
  });

  it('on a terminal: draws percentage, amounts and rate, throttled, and ends the line', () => {
    const t = fakeStream(true);
    let now = 1_000;
    const r = new EventRenderer({ stream: t.stream, now: () => now, intervalMs: 100 });
    const total = 4 * MiB;
    r.render({ type: 'progress', id: 'a', label: 'export d1', done: 0, total, unit: 'bytes' });
    now += 1000;
    r.render({ type: 'progress', id: 'a', label: 'export d1', done: MiB, total, unit: 'bytes' });
    r.render({ type: 'progress', id: 'a', label: 'export d1', done: 2 * MiB, total, unit: 'bytes' }); // within the interval: not drawn
    now += 1000;
    r.render({ type: 'progress', id: 'a', label: 'export d1', done: 3 * MiB, total, unit: 'bytes' });
    r.render({ type: 'progress', id: 'a', label: 'export d1', done: 3 * MiB, total, unit: 'bytes', end: true });
    assert.equal(t.writes.length, 5); // start, first advance, third advance, end, newline
    // the first bytes: a rate, but no ETA until it has been measured from them on
    assert.equal(t.writes[1], `\rexport d1 [######..................]  25% 1.0 MiB/4.0 MiB 1.0 MiB/s\x1b[K`);
    // the rate from the first bytes moved on: 2 MiB in the second since then
    assert.equal(t.writes[2], `\rexport d1 [##################......]  75% 3.0 MiB/4.0 MiB 2.0 MiB/s ETA 1s\x1b[K`);
    assert.equal(t.writes[4], '\n');
  });

  it('on a terminal: a total that arrives late (a size walk beside the tar) turns the line into a bar with the ETA', () => {
    const t = fakeStream(true);
    let now = 1_000;
    const r = new EventRenderer({ stream: t.stream, now: () => now, intervalMs: 100 });
    const sink = byteProgress({ events: (e) => r.render(e) }, 'export d1')!;
    sink.start('export');
    now += 1000;
    sink.advance(MiB);
    assert.equal(t.writes.at(-1), `\rexport d1 1.0 MiB 1.0 MiB/s\x1b[K`, 'no total yet: bytes and rate');
    now += 1000;
    sink.total!(4 * MiB);
    assert.equal(t.writes.at(-1), `\rexport d1 [######..................]  25% 1.0 MiB/4.0 MiB 512.0 KiB/s\x1b[K`);
    now += 1000;
    sink.advance(MiB);
    assert.equal(t.writes.at(-1), `\rexport d1 [############............]  50% 2.0 MiB/4.0 MiB 512.0 KiB/s ETA 4s\x1b[K`);
    r.end();
  });

  it('on a terminal: past a total that fell short (files grew after the size walk) the bar is not full until the end, and the end says what moved', () => {
    const t = fakeStream(true);
    let now = 1_000;
    const r = new EventRenderer({ stream: t.stream, now: () => now, intervalMs: 100 });
    const sink = byteProgress({ events: (e) => r.render(e) }, 'export d1')!;
    sink.start('export', 4 * MiB);
    now += 1000;
    sink.advance(4 * MiB);
    assert.equal(t.writes.at(-1), `\rexport d1 [########################] 100% 4.0 MiB/4.0 MiB 4.0 MiB/s\x1b[K`);
    now += 1000;
    sink.advance(2 * MiB); // a file added after the walk: still going
    assert.equal(t.writes.at(-1), `\rexport d1 [#######################.]  99% 6.0 MiB (more than the 4.0 MiB measured) 2.0 MiB/s\x1b[K`);
    now += 1000;
    sink.done({ files: 3, bytes: 7 * MiB - 1 });
    assert.equal(t.writes.at(-2), `\rexport d1 [########################] 100% 6.0 MiB/6.0 MiB 1.0 MiB/s\x1b[K`);
    assert.equal(t.writes.at(-1), '\n');
    // files removed after the walk: the end is 100% of what moved, not a bar stuck short of it
    const u = fakeStream(true);
    const r2 = new EventRenderer({ stream: u.stream, now: () => now, intervalMs: 100 });
    const sink2 = byteProgress({ events: (e) => r2.render(e) }, 'export d2')!;
    sink2.start('export', 4 * MiB);
    now += 1000;
    sink2.advance(3 * MiB);
    sink2.done();
    assert.equal(u.writes.at(-2), `\rexport d2 [########################] 100% 3.0 MiB/3.0 MiB 3.0 MiB/s\x1b[K`);
  });

  it('on a narrow terminal (or with a default disk name) the bar, then the amounts, then the rate give way: the percentage and the ETA stay', () => {
    const draw = (columns: number, label: string) => {
      const t = fakeStream(true, columns);
      let now = 1_000;
      const r = new EventRenderer({ stream: t.stream, now: () => now, intervalMs: 100 });
      const sink = byteProgress({ events: (e) => r.render(e) }, label)!;
      sink.start('import', 190 * MiB);
      now += 1000;
      sink.advance(25 * MiB);
      now += 1000;
      sink.advance(25 * MiB);
      const line = t.writes.at(-1)!.replace(/^\r/, '').replace(/\x1b\[K$/, '');
      assert.ok(line.length <= columns - 1, `${columns} columns: ${JSON.stringify(line)}`);
      return line;
    };
    const name = 'import default-20261206232857'; // a default disk name: the full line is 98 columns
    assert.equal(draw(100, name), `${name} [######..................]  26% 50.0 MiB/190.0 MiB 25.0 MiB/s ETA 6s`);
    assert.equal(draw(80, name), `${name}  26% 50.0 MiB/190.0 MiB 25.0 MiB/s ETA 6s`);
    assert.equal(draw(65, name), `${name}  26% 50.0 MiB 25.0 MiB/s ETA 6s`);
    assert.equal(draw(45, name), `${name}  26% ETA 6s`);
    assert.equal(draw(24, 'export d1'), 'export d1  26% ETA 6s');
    assert.equal(draw(20, 'export d1'), 'export d1  26%');
    assert.equal(draw(20, name), 'import default-202…'); // only now is the text cut
    assert.equal(draw(2, name), '…');
    // without a total: the rate gives way before the amount
    assert.equal(EventRenderer.transferLine({ label: 'import st1', done: 3000, unit: 'bytes', started: 0 }, 2000, 16), 'import st1 2.9 KiB');
  });

  it('on a terminal: the time a transfer takes to get going (an SSH session, a pod exec) does not drag its rate and ETA', () => {
    const t = fakeStream(true);
    let now = 0;
    const r = new EventRenderer({ stream: t.stream, now: () => now, intervalMs: 100 });
    const sink = byteProgress({ events: (e) => r.render(e) }, 'export d1')!;
    sink.start('export', 100 * MiB);
    now += 10_000; // 10 s before the first byte: the session and the tar starting on the node
    sink.advance(MiB);
    // one point: the average since the start is all there is, no base for an ETA (it would say 16m30s)
    assert.equal(t.writes.at(-1), `\rexport d1 [........................]   1% 1.0 MiB/100.0 MiB 102.4 KiB/s\x1b[K`);
    for (let i = 0; i < 4; i++) {
      now += 1000;
      sink.advance(10 * MiB); // then 10 MiB/s, steadily
    }
    // 10 MiB/s and 6 s left, not 2.9 MiB/s over the 14 s since the start and 21 s left
    assert.equal(t.writes.at(-1), `\rexport d1 [#########...............]  41% 41.0 MiB/100.0 MiB 10.0 MiB/s ETA 6s\x1b[K`);
    r.end();
  });

  it('on a terminal: a transfer that stalls is redrawn every second, its rate falling and its ETA growing, not frozen; the end stops that', () => {
    mock.timers.enable({ apis: ['setInterval'] });
    try {
      const t = fakeStream(true);
      let now = 0;
      const r = new EventRenderer({ stream: t.stream, now: () => now, intervalMs: 100 });
      const sink = byteProgress({ events: (e) => r.render(e) }, 'export d1')!;
      sink.start('export', 100 * MiB);
      now = 1000;
      sink.advance(10 * MiB);
      now = 2000;
      sink.advance(10 * MiB);
      assert.equal(t.writes.at(-1), `\rexport d1 [####....................]  20% 20.0 MiB/100.0 MiB 10.0 MiB/s ETA 8s\x1b[K`);
      now = 5000; // nothing moved for 3 s: the node's tar, or the network, hangs
      mock.timers.tick(1000);
      assert.equal(t.writes.at(-1), `\rexport d1 [####....................]  20% 20.0 MiB/100.0 MiB 2.5 MiB/s ETA 32s\x1b[K`);
      sink.done();
      const n = t.writes.length;
      mock.timers.tick(5000);
      assert.equal(t.writes.length, n, 'nothing drawn after the end');
    } finally {
      mock.timers.reset();
    }
  });

  it('on a terminal: a note is printed above the live line, which is drawn again', () => {
    const t = fakeStream(true);
    const now = 0;
    const r = new EventRenderer({ stream: t.stream, now: () => now });
    r.render({ type: 'phase', phase: 'rollout', message: 'waiting for web' }); // not shown
    r.render({ type: 'status', message: 'deployment web: 0/1 ready' });
    r.render({ type: 'log', message: 'released PersistentVolumeClaim ns/old' });
    r.end();
    assert.deepEqual(t.writes, [
      '\r[0s] deployment web: 0/1 ready\x1b[K',
      '\r\x1b[K',
      'released PersistentVolumeClaim ns/old\n',
      '\r[0s] deployment web: 0/1 ready\x1b[K',
      '\n',
    ]);
  });

  it('without a total shows bytes and rate; formats bytes for bars and tables', () => {
    assert.equal(EventRenderer.transferLine({ label: 'import', done: 3000, unit: 'bytes', started: 0 }, 2000), 'import 2.9 KiB 1.5 KiB/s');
    assert.equal(formatBytes(512), '512 B');
  });

  it('with a total shows percent, bytes, rate and the ETA at the average rate so far', () => {
    // (the first bytes were seen at the start: the rate is measured from there)
    const t = { label: 'export d1', done: 25 * 1024 * 1024, total: 100 * 1024 * 1024, unit: 'bytes' as const, started: 0, firstAt: 0, firstDone: 0 };
    // 25 MiB in 10 s: 2.5 MiB/s, 75 MiB to go: 30 s.
    assert.equal(EventRenderer.transferLine(t, 10_000), `export d1 [######..................]  25% 25.0 MiB/100.0 MiB 2.5 MiB/s ETA 30s`);
    assert.match(EventRenderer.transferLine({ ...t, done: 0 }, 10_000), /0 B\/s$/); // nothing moved: no ETA yet
    assert.doesNotMatch(EventRenderer.transferLine({ ...t, done: t.total }, 10_000), /ETA/);
    // the bar is full only when the transfer is, as the percentage reaches 100 only then
    assert.match(EventRenderer.transferLine({ ...t, done: Math.floor(t.total * 0.99) }, 10_000), /\[#{23}\.\]  99% /);
    assert.match(EventRenderer.transferLine({ ...t, done: t.total }, 10_000), /\[#{24}\] 100% /);
    assert.equal(formatDuration(185), '3m05s');
    assert.equal(formatDuration(7620), '2h07m');
    assert.equal(formatBytes(1536, ''), '1.5KiB');
  });

  it('byte progress from a use case arrives coalesced: the start, about one event per percent, and the end', () => {
    const seen: number[] = [];
    const sink = byteProgress({ events: (e) => e.type === 'progress' && void seen.push(e.done) }, 'export d1')!;
    sink.start('ignored label', 1000);
    for (let i = 0; i < 1000; i++) sink.advance(1);
    sink.done();
    assert.equal(seen[0], 0);
    assert.equal(seen.at(-1), 1000);
    assert.ok(seen.length <= 102, `${seen.length} events`);
    assert.equal(byteProgress({}, 'nobody listens'), undefined);
  });
});
