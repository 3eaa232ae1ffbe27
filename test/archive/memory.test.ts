// GC pacing (src/archive/memory.ts): the garbage allowed between two paced
// full GCs is GC_EVERY, or a share of the live heap (HEAP_FACTOR) when that is
// larger (a full GC costs in proportion to the live heap); buffers that die
// young (the exec stream's) are paced by scavenges instead.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { constants, performance, PerformanceObserver } from 'node:perf_hooks';
import { EntryRecords } from '../../src/archive/entry-records.js';
import { CHUNK_GARBAGE, ENTRY_GARBAGE, GarbagePacer, GC_EVERY, HEAP_FACTOR, HEADROOM_ALLOWANCES, EXTERNAL_GARBAGE, externalPacing, nextGcAfter, noteEntryGarbage, paceByExternal, pacedGarbageLeft, pacingPipe, pacePromptly, PROMOTED_GARBAGE, RSS_CEILING, setExternalMemoryReader, setPacingState } from '../../src/archive/memory.js';

// The process's RSS as the pacers see it: over RSS_CEILING unless a test says
// otherwise, so that a due GC runs at once (this test process's own RSS would
// otherwise decide whether it waits).
let resident = Infinity;
const MIB = 1024 * 1024;
let saved: ReturnType<typeof setPacingState> | undefined;
before(() => {
  saved = setPacingState({ resident: () => resident, prompt: false });
});
after(() => {
  setPacingState(saved!);
});

test('a small heap is paced every GC_EVERY bytes; a large one every heap-size bytes', () => {
  const MiB = 1024 * 1024;
  assert.equal(nextGcAfter(0), GC_EVERY);
  assert.equal(nextGcAfter(5 * MiB), GC_EVERY, 'the host path (a few MiB of heap) keeps the fixed pace');
  assert.equal(nextGcAfter(30 * MiB), HEAP_FACTOR * 30 * MiB, 'the CLI with the Kubernetes client: paced by its heap');
  assert.ok(nextGcAfter(30 * MiB) > GC_EVERY);
  assert.equal(nextGcAfter(MiB, 64), HEAP_FACTOR * MiB, "a caller's smaller minimum");
});

/** GCs node reports (perf_hooks) while `body` runs, by kind; entries are delivered after the GC, asynchronously (late on a busy machine). */
async function gcsDuring(body: () => void): Promise<{ major: number; minor: number }> {
  const seen: { kind: number; start: number }[] = [];
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) seen.push({ kind: (e as unknown as { detail: { kind: number } }).detail.kind, start: e.startTime });
  });
  obs.observe({ entryTypes: ['gc'] });
  try {
    const t0 = performance.now();
    body();
    const t1 = performance.now();
    // a marker GC after the window, so that every GC inside it has been delivered once this one is
    await new Promise((r) => setTimeout(r, 10));
    const t2 = performance.now();
    new GarbagePacer(1).note(1);
    for (let waited = 0; !seen.some((g) => g.start >= t2) && waited < 10_000; waited += 20) await new Promise((r) => setTimeout(r, 20));
    const inside = seen.filter((g) => g.start >= t0 && g.start <= t1);
    return { major: inside.filter((g) => g.kind === constants.NODE_PERFORMANCE_GC_MAJOR).length, minor: inside.filter((g) => g.kind === constants.NODE_PERFORMANCE_GC_MINOR).length };
  } finally {
    obs.disconnect();
  }
}

/** Full GCs node reports (perf_hooks) that started between each two of the marks `body` sets (mark() returns its index). */
async function majorGcsBetween(body: (mark: () => void) => void): Promise<number[]> {
  const seen: { kind: number; start: number }[] = [];
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) seen.push({ kind: (e as unknown as { detail: { kind: number } }).detail.kind, start: e.startTime });
  });
  obs.observe({ entryTypes: ['gc'] });
  try {
    const marks: number[] = [];
    body(() => marks.push(performance.now()));
    const last = marks[marks.length - 1]!;
    // a marker GC after the last mark: once it is delivered, every GC before it is
    await new Promise((r) => setTimeout(r, 10));
    const t = performance.now();
    new GarbagePacer(1).note(1);
    for (let waited = 0; !seen.some((g) => g.start >= t) && waited < 10_000; waited += 20) await new Promise((r) => setTimeout(r, 20));
    assert.ok(last < t);
    const major = seen.filter((g) => g.kind === constants.NODE_PERFORMANCE_GC_MAJOR);
    return marks.slice(1).map((end, i) => major.filter((g) => g.start >= marks[i]! && g.start <= end).length);
  } finally {
    obs.disconnect();
  }
}

test('entries are paced too: a full GC per GC_EVERY / ENTRY_GARBAGE entries (small files leave more garbage than bytes)', async () => {
  const perGc = GC_EVERY / ENTRY_GARBAGE;
  assert.ok(perGc >= 4096 && perGc <= 65536, `a full GC every ${perGc} entries: neither constant nor never`);
  const [before, at] = await majorGcsBetween((mark) => {
    new GarbagePacer(1).note(1); // a paced GC: the budget starts afresh
    const entries = pacedGarbageLeft() / ENTRY_GARBAGE;
    assert.ok(entries >= perGc, `at least GC_EVERY of entries (${entries})`);
    mark();
    for (let i = 0; i < entries - 1; i++) noteEntryGarbage();
    mark();
    noteEntryGarbage();
    mark();
  });
  assert.equal(before, 0, 'no full GC before the allowance is used up');
  assert.equal(at, 1, 'a full GC once it is');
});

test('every full-GC pacer of the process spends one budget: two data paths noting half of it each get one GC (a pacer of half the minimum counts double)', async () => {
  const [halves, weighted] = await majorGcsBetween((mark) => {
    new GarbagePacer(1).note(1);
    const left = pacedGarbageLeft();
    const a = new GarbagePacer();
    const b = new GarbagePacer();
    mark();
    a.note(left / 2 - 1);
    b.note(left / 2 - 1);
    a.note(1);
    b.note(2); // the budget used up by both together (each alone would still have half of its own)
    mark();
    const half = new GarbagePacer(GC_EVERY / 2);
    const rest = pacedGarbageLeft();
    assert.ok(rest >= GC_EVERY);
    half.note(rest / 2 + 1); // counts double
    mark();
  });
  assert.equal(halves, 1, 'one full GC once the two pacers together have used the budget');
  assert.equal(weighted, 1, 'a pacer of half the minimum: one full GC after half the bytes');
});

test('under RSS_CEILING a due GC waits, up to HEADROOM_ALLOWANCES allowances; once the RSS reaches the ceiling it runs', async () => {
  assert.ok(HEADROOM_ALLOWANCES >= 1.5 && HEADROOM_ALLOWANCES <= 4, 'a wait, but a bounded one');
  assert.ok(RSS_CEILING <= 92 * 1024 * 1024, 'room under the 100 MiB line for what grows between two readings');
  try {
    const [due, waitedOut, stillUnder, reached] = await majorGcsBetween((mark) => {
      new GarbagePacer(1).note(1); // a paced GC: the budget starts afresh
      const allowance = pacedGarbageLeft();
      const p = new GarbagePacer();
      resident = RSS_CEILING - 1;
      mark();
      p.note(allowance); // due, but the process is under the ceiling
      mark();
      p.note((HEADROOM_ALLOWANCES - 1) * allowance - 1024 * 1024);
      p.note(1024 * 1024); // the whole wait used up
      mark();
      p.note(allowance); // afresh after that GC: due again, and under the ceiling
      mark();
      resident = RSS_CEILING;
      p.note(allowance / 4); // the next reading of the RSS finds it at the ceiling
      mark();
    });
    assert.equal(due, 0, 'no full GC while under the ceiling');
    assert.equal(waitedOut, 1, 'one full GC once HEADROOM_ALLOWANCES allowances are noted');
    assert.equal(stillUnder, 0);
    assert.equal(reached, 1, 'a full GC at the first reading at the ceiling');
  } finally {
    resident = Infinity;
  }
});

test('a process that paces promptly (over SSH, through the cluster) collects when the allowance is used, under the ceiling too', async () => {
  try {
    const [due] = await majorGcsBetween((mark) => {
      new GarbagePacer(1).note(1);
      const allowance = pacedGarbageLeft();
      const p = new GarbagePacer();
      resident = 0;
      pacePromptly();
      mark();
      p.note(allowance);
      mark();
    });
    assert.equal(due, 1);
  } finally {
    resident = Infinity;
    setPacingState({ resident: () => resident, prompt: false });
  }
});

test('a pacing pipe counts each chunk as well as its bytes: many small chunks get the full GCs their objects need', async () => {
  const chunk = Buffer.alloc(16);
  // what one chunk counts: 2 bytes per byte and CHUNK_GARBAGE
  const perChunk = 2 * chunk.length + CHUNK_GARBAGE;
  // a buffer big enough that every write is transformed at once (no reader needed)
  const roomy = 64 * 1024 * 1024;
  const [counted, , bytesOnly] = await majorGcsBetween((mark) => {
    new GarbagePacer(1).note(1); // a paced GC: the budget starts afresh
    const n = Math.ceil(pacedGarbageLeft() / perChunk) + 1;
    const pipe = pacingPipe(new GarbagePacer(), 2, { highWaterMark: roomy, perChunk: CHUNK_GARBAGE });
    mark();
    for (let i = 0; i < n; i++) pipe.write(chunk);
    mark();
    new GarbagePacer(1).note(1); // afresh again (between the marks: not counted)
    mark();
    const plain = pacingPipe(new GarbagePacer(), 2, { highWaterMark: roomy });
    for (let i = 0; i < n; i++) plain.write(chunk);
    mark();
    pipe.destroy();
    plain.destroy();
  });
  assert.equal(counted, 1, 'a full GC once the chunks used the budget');
  assert.equal(bytesOnly, 0, 'counting their bytes alone, as many small chunks never get one');
});

test('storing entries counts them (EntryRecords: every data path keeps or reads back its entries there)', async () => {
  const recs = new EntryRecords();
  try {
    // beyond the first paced GC's allowance whatever the heap: twice the larger of the two
    const n = (2 * Math.max(GC_EVERY, HEAP_FACTOR * 64 * 1024 * 1024)) / ENTRY_GARBAGE;
    const adding = await gcsDuring(() => {
      for (let i = 0; i < n; i++) recs.add({ path: `data/f${String(i).padStart(7, '0')}`, type: 'file', mode: 0o644, size: 1 });
    });
    assert.ok(adding.major >= 1, `full GCs while ${n} entries were stored (${JSON.stringify(adding)})`);
    let read = 0;
    const reading = await gcsDuring(() => {
      for (const _ of recs.entries()) read++;
    });
    assert.equal(read, n);
    assert.ok(reading.major >= 1, `full GCs while they were read back (${JSON.stringify(reading)})`);
  } finally {
    recs.close();
  }
});


test('the SFTP fallback is paced by external memory: a scavenge per EXTERNAL_GARBAGE of growth, a full GC once what the scavenges left has grown by PROMOTED_GARBAGE', async () => {
  let ext = 100 * MIB;
  const saved = setExternalMemoryReader(() => ext);
  try {
    assert.equal(paceByExternal(), undefined, 'the first reading is the baseline');
    ext += EXTERNAL_GARBAGE - 1;
    assert.equal(paceByExternal(), undefined, 'under EXTERNAL_GARBAGE of growth: no GC');
    ext += 1;
    const gcs = await gcsDuring(() => assert.equal(paceByExternal(), 'minor'));
    assert.deepEqual(gcs, { major: 0, minor: 1 }, 'a real scavenge, not a full GC');
    // the fake's reading after the scavenge is unchanged: all of it was left (promoted)
    ext += EXTERNAL_GARBAGE - 1;
    assert.equal(paceByExternal(), undefined, 'counted from what the last GC left');
    ext = 100 * MIB + PROMOTED_GARBAGE;
    assert.equal(paceByExternal(), 'major', 'what the scavenges left reached PROMOTED_GARBAGE: a full GC');
    ext += EXTERNAL_GARBAGE;
    assert.equal(paceByExternal(), 'minor', 'counted from what the full GC left');
    assert.deepEqual(externalPacing(), { minors: 3, majors: 1 });
    ext = 50 * MIB;
    assert.equal(paceByExternal(), undefined, 'memory freed elsewhere (V8 collected on its own): a new baseline');
    ext += EXTERNAL_GARBAGE - 1;
    assert.equal(paceByExternal(), undefined);
  } finally {
    setExternalMemoryReader(saved);
  }
});
