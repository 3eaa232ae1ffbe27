// Crash leftovers of the K3s driver: the sweep removes only old dot-named
// temp/deleting entries (and, in a snapshot directory, old archives without
// metadata and metadata temps), measured against a time from the node's clock, and
// the heartbeat keeps a temp directory that is still being filled fresh.
import assert from 'node:assert/strict';
import { mkdir, readdir, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LEFTOVER_AGE_MS, heartbeat, sweepLeftovers } from '../../src/providers/k3s/driver.js';
import { LocalHostFs } from '../../src/providers/k3s/hostfs.js';
import { sandbox, type Sandbox } from './k3s-fixtures.js';

const fs = new LocalHostFs();

describe('K3s leftovers', () => {
  let sb: Sandbox;
  before(async () => {
    sb = await sandbox();
  });
  after(async () => sb?.cleanup());

  it('sweeps .tmp-* and .deleting-* older than an hour on the node clock; keeps young ones and everything else', async () => {
    const dir = join(sb.dir, 'vol');
    await mkdir(dir);
    const names = ['.tmp-a-1', '.tmp-b-2', '.deleting-c-3', 'disk1', '.other', '.tmp-s-4.tar.gz'];
    for (const n of names) {
      if (n.endsWith('.tar.gz')) await writeFile(join(dir, n), 'x');
      else await mkdir(join(dir, n, 'data'), { recursive: true });
    }
    const now = Date.now();
    const old = new Date(now - LEFTOVER_AGE_MS - 60_000);
    for (const n of ['.tmp-a-1', '.deleting-c-3', 'disk1', '.other', '.tmp-s-4.tar.gz']) await utimes(join(dir, n), old, old);
    const removed = await sweepLeftovers(fs, dir, now);
    assert.deepEqual(removed, ['.deleting-c-3', '.tmp-a-1', '.tmp-s-4.tar.gz']);
    assert.deepEqual((await readdir(dir)).sort(), ['.other', '.tmp-b-2', 'disk1']);
    // a node clock behind the entries' mtimes (or a missing dir) removes nothing
    assert.deepEqual(await sweepLeftovers(fs, dir, now - 2 * LEFTOVER_AGE_MS), []);
    assert.deepEqual(await sweepLeftovers(fs, join(sb.dir, 'missing'), now), []);
  });

  it('in a snapshot directory also sweeps old archives without metadata and old metadata temps; keeps snapshots and young ones', async () => {
    const dir = join(sb.dir, 'snaps');
    await mkdir(dir);
    const names = ['kept.tar.zst', 'kept.json', 'orphan.tar.zst', 'orphan-gz.tar.gz', 'young.tar.zst', 'v1.tar.gz', 'v1.json', 'cut.json.tmp-ab12cd34', 'notes.txt'];
    for (const n of names) await writeFile(join(dir, n), 'x');
    const now = Date.now();
    const old = new Date(now - LEFTOVER_AGE_MS - 60_000);
    for (const n of names.filter((n) => n !== 'young.tar.zst')) await utimes(join(dir, n), old, old);
    assert.deepEqual(await sweepLeftovers(fs, dir, now), ['cut.json.tmp-ab12cd34', 'orphan-gz.tar.gz', 'orphan.tar.zst']);
    assert.deepEqual((await readdir(dir)).sort(), ['kept.json', 'kept.tar.zst', 'notes.txt', 'v1.json', 'v1.tar.gz', 'young.tar.zst']);
  });

  it('the heartbeat refreshes a temp directory being filled and leaves nothing in it', { timeout: 60_000 /* a guard against a heartbeat that never beats, not a measure */ }, async () => {
    const tmp = join(sb.dir, '.tmp-busy-1');
    await mkdir(join(tmp, 'data'), { recursive: true });
    const old = new Date(Date.now() - 2 * LEFTOVER_AGE_MS);
    await utimes(tmp, old, old);
    const beat = heartbeat(fs, tmp, 20);
    // Wait for the first beat by what it does (the directory's mtime moves on), not for a fixed time.
    while ((await stat(tmp)).mtimeMs <= old.getTime()) await new Promise((r) => setImmediate(r));
    await beat.stop();
    assert.ok((await stat(tmp)).mtimeMs > old.getTime() + LEFTOVER_AGE_MS, 'mtime refreshed: no longer a leftover');
    assert.deepEqual(await readdir(tmp), ['data']);
    assert.deepEqual(await sweepLeftovers(fs, sb.dir, Date.now()), []);
  });
});
