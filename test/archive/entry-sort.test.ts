import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { ManifestEntry } from '../../src/archive/archive.js';
import { EntrySorter, FAN_IN } from '../../src/archive/entry-sort.js';
import { prng } from '../support/prng.js';

const dir = mkdtempSync(join(tmpdir(), 'entry-sort-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Open descriptors of this process on deleted files under `dir` (the sorter's runs). */
const openFiles = () =>
  readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith(dir);
    } catch {
      return false;
    }
  }).length;

function entries(n: number, seed: number): ManifestEntry[] {
  const rnd = prng(seed);
  const names = ['a', 'a-b', 'a.b', 'a b', 'A', 'ü', '日本', '😀', 'z'.repeat(50)];
  const out: ManifestEntry[] = [];
  const seen = new Set<string>();
  while (out.length < n) {
    const depth = 1 + Math.floor(rnd() * 4);
    const parts = Array.from({ length: depth }, () => names[Math.floor(rnd() * names.length)]! + Math.floor(rnd() * 30));
    const path = `data/${parts.join('/')}`;
    if (seen.has(path)) continue;
    seen.add(path);
    const k = rnd();
    if (k < 0.2) out.push({ path, type: 'dir', mode: 0o755, size: 0 });
    else if (k < 0.3) out.push({ path, type: 'symlink', mode: 0o777, size: 0, linkpath: `../${parts[0]}` });
    else out.push({ path, type: 'file', mode: 0o644, size: Math.floor(rnd() * 2 ** 40), sha256: Math.floor(rnd() * 2 ** 32).toString(16).padStart(8, '0').repeat(8) });
  }
  return out;
}

const byPath = (a: ManifestEntry, b: ManifestEntry) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
const dup = (p: string) => new Error(`twice: ${p}`);

function shuffle<T>(xs: T[], seed: number): T[] {
  const rnd = prng(seed);
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

describe('EntrySorter', () => {
  for (const [label, runBytes] of [
    ['in memory', undefined],
    ['in a few runs', 200_000],
    [`in more than ${FAN_IN} runs (merged in stages)`, 20_000],
  ] as const) {
    it(`gives shuffled entries back in path order (${label})`, () => {
      const want = entries(6000, 3).sort(byPath);
      const s = new EntrySorter({ dir, ...(runBytes ? { runBytes } : {}) });
      for (const e of shuffle([...want], 9)) s.add(e);
      assert.equal(s.ordered, false);
      assert.equal(s.count, want.length);
      if (runBytes) assert.ok(openFiles() >= 1, 'runs went to files');
      if (runBytes === 20_000) assert.ok(openFiles() <= FAN_IN, `at most ${FAN_IN} runs are open (${openFiles()})`);
      assert.deepEqual([...s.sorted(dup)], want);
      s.close();
      assert.equal(openFiles(), 0, 'close() releases every file');
    });
  }

  it('merges runs by level: each entry is rewritten once per FAN_IN-fold, not once per FAN_IN runs', async () => {
    const { EntryRecords } = await import('../../src/archive/entry-records.js');
    const want = entries(20_000, 8).sort(byPath);
    // ~550 runs of ~36 entries: merged into runs of 16 (level 1), then of 256 (level 2)
    const s = new EntrySorter({ dir, runBytes: 8_000 });
    const add = EntryRecords.prototype.add;
    let writes = 0;
    EntryRecords.prototype.add = function (this: InstanceType<typeof EntryRecords>, e: ManifestEntry) {
      writes++;
      add.call(this, e);
    };
    try {
      for (const e of shuffle([...want], 10)) s.add(e);
      // fewer than FAN_IN runs of each level wait (their files open, nothing of them in memory)
      assert.ok(openFiles() <= 3 * (FAN_IN - 1), `at most ${FAN_IN - 1} runs per level are open (${openFiles()})`);
      assert.deepEqual([...s.sorted(dup)], want);
    } finally {
      EntryRecords.prototype.add = add;
      s.close();
    }
    // stored as runs, then rewritten at level 1 and most at level 2: under three writes each, where
    // merging everything into one each time FAN_IN runs had gathered rewrote each entry ~18 times
    assert.ok(writes >= 2.5 * want.length, `runs were merged (${writes} writes of ${want.length} entries)`);
    assert.ok(writes <= 3 * want.length + 1, `each entry written at most three times (${writes} writes of ${want.length} entries)`);
  });

  it('stores entries that come in order as they come, in memory while they are few', () => {
    const want = entries(3000, 4).sort(byPath);
    const s = new EntrySorter({ dir, runBytes: 10_000 });
    for (const e of want) s.add(e);
    assert.equal(s.ordered, true);
    assert.equal(openFiles(), 0);
    assert.deepEqual([...s.sorted(dup)], want);
    s.close();
  });

  it('sorts entries that stop coming in order after a while (the ordered part is one run)', () => {
    const want = entries(5000, 5).sort(byPath);
    const s = new EntrySorter({ dir, runBytes: 30_000 });
    const first = want.slice(0, 2000);
    for (const e of first) s.add(e);
    for (const e of shuffle(want.slice(2000), 6)) s.add(e);
    assert.deepEqual([...s.sorted(dup)], want);
    s.close();
  });

  for (const [label, runBytes] of [
    ['in memory', undefined],
    ['in one run', 30_000],
    ['across runs', 2_000],
  ] as const) {
    it(`throws for a path added twice (${label})`, () => {
      const list = entries(2000, 7);
      const s = new EntrySorter({ dir, ...(runBytes ? { runBytes } : {}) });
      for (const e of list) s.add(e);
      s.add({ ...list[1500]!, size: 1 });
      assert.throws(() => {
        for (const _ of s.sorted(dup)) void _;
      }, new RegExp(`twice: ${list[1500]!.path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`));
      s.close();
    });
  }
});

describe('EntryRecords', () => {
  it('refuses a path longer than a record holds with a clear error, and stays usable', async () => {
    const { EntryRecords } = await import('../../src/archive/entry-records.js');
    const { KompoxError } = await import('../../src/domain/errors.js');
    const r = new EntryRecords({ dir });
    r.add({ path: 'data', type: 'dir', mode: 0o755, size: 0 });
    assert.throws(
      () => r.add({ path: `data/${'x'.repeat(70_000)}`, type: 'dir', mode: 0o755, size: 0 }),
      (e: unknown) => e instanceof KompoxError && e.code === 'integrity' && /longer than 64 KiB/.test(e.message) && e.message.length < 300,
    );
    r.add({ path: 'data/y', type: 'dir', mode: 0o755, size: 0 });
    assert.deepEqual([...r.entries()].map((e) => e.path), ['data', 'data/y']);
    r.close();
  });
});
