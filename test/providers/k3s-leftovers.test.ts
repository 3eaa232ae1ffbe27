// Crash leftovers of the K3s driver: the sweep removes only old dot-named
// temp/deleting entries (and, in a snapshot directory, old archives without
// metadata and metadata temps), measured against a time from the node's clock, and
// the heartbeat keeps a temp directory that is still being filled fresh.
// Inside a disk's directory, old temps of its metadata files (an attach or a
// reveal killed before its rename) go when the disk is next marked attached
// or the next disk of its volume is made; locally and over SSH.
import assert from 'node:assert/strict';
import { mkdir, readdir, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LEFTOVER_AGE_MS, heartbeat, sweepDiskMetaTemps, sweepLeftovers, type HostFsFactory } from '../../src/providers/k3s/driver.js';
import { LocalHostFs } from '../../src/providers/k3s/hostfs.js';
import type { TreeFile, TreeStat } from '../../src/archive/archive.js';
import { appNamespace } from '../../src/domain/names.js';
import { K3sDriver } from '../../src/providers/k3s/index.js';
import { connectSshHostFs } from '../../src/providers/k3s/ssh-hostfs.js';
import { sshdMissing } from '../support/sshd.js';
import { appCtx, sandbox, sshdAndSandbox, type Sandbox } from './k3s-fixtures.js';

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
  it('a local snapshot create that fails while packing (an unreadable file) leaves no temp archive, not even once the lazy open has run', async () => {
    const eacces = () => Object.assign(new Error('EACCES: permission denied, open'), { code: 'EACCES', errno: -13, syscall: 'open' });
    /** This machine's filesystem, where the files of the disks cannot be read (as a file mode 600 of another user). */
    class Unreadable extends LocalHostFs {
      override async openFile(path: string, listed: TreeStat): Promise<TreeFile | undefined> {
        if (path.includes('/unreadable/')) throw eacces();
        return super.openFile(path, listed);
      }
    }
    const driver = new K3sDriver({ env: {} }, (async () => new Unreadable()) as HostFsFactory);
    try {
      const ctx = appCtx(sb);
      const vol = ctx.app.volumes[0]!;
      const disk = await driver.disks.create(ctx, vol, { name: 'src' }, {});
      await mkdir(join(disk.id, 'unreadable'));
      await writeFile(join(disk.id, 'unreadable', 'secret.txt'), 'root only');
      const snapDir = join(sb.snapshotRoot, appNamespace(ctx), 'default');
      for (const name of ['sn-1', 'sn-2', 'sn-3']) {
        await assert.rejects(driver.snapshots.create(ctx, vol, disk, name, {}), /EACCES/);
      }
      // the open the stream started lazily would have landed by now (it did within a few ms)
      await new Promise((r) => setTimeout(r, 200));
      assert.deepEqual(await readdir(snapDir), [], 'no .tmp-sn-*.tar.zst left');
    } finally {
      await driver.close();
    }
  });
});

/** Writes `names` in `dir` (a name ending in '/' a directory), all but `young` two leftover ages old. */
async function plant(dir: string, names: string[], young: string[] = []): Promise<void> {
  const old = new Date(Date.now() - 2 * LEFTOVER_AGE_MS);
  for (const n of names) {
    if (n.endsWith('/')) await mkdir(join(dir, n), { recursive: true });
    else await writeFile(join(dir, n), '{"attachedAt":');
    if (!young.includes(n)) await utimes(join(dir, n), old, old);
  }
}

describe('K3s leftovers inside disk directories (metadata temps)', () => {
  let sb: Sandbox;
  before(async () => {
    sb = await sandbox();
  });
  after(async () => sb?.cleanup());

  it('sweepDiskMetaTemps removes old temps of kompox-disk.json and kompox-attached.json only; keeps young ones, other names, directories and the data', async () => {
    const dir = join(sb.dir, 'vol', 'd1');
    await mkdir(join(dir, 'data'), { recursive: true });
    const gone = ['kompox-attached.json.tmp-ab12cd34', 'kompox-disk.json.tmp-0z9y8x7w'];
    const kept = ['kompox-attached.json.tmp-young123', 'notes.json.tmp-ab12cd34', 'kompox-attached.json.tmp-ab12cd34.bak', 'kompox-disk.json.tmp-dir/', 'data/kompox-attached.json.tmp-ab12cd34'];
    await plant(dir, [...gone, ...kept], ['kompox-attached.json.tmp-young123']);
    const removed = await sweepDiskMetaTemps(fs, [dir, join(sb.dir, 'missing')], Date.now());
    assert.deepEqual(removed, gone.map((n) => `${dir}/${n}`));
    assert.deepEqual((await readdir(dir)).sort(), ['data', 'kompox-attached.json.tmp-ab12cd34.bak', 'kompox-attached.json.tmp-young123', 'kompox-disk.json.tmp-dir', 'notes.json.tmp-ab12cd34']);
    assert.deepEqual(await readdir(join(dir, 'data')), ['kompox-attached.json.tmp-ab12cd34']);
  });

  it('the driver sweeps them when the disk is marked attached, and in every disk of the volume when a disk is made', async () => {
    const driver = new K3sDriver();
    try {
      const ctx = appCtx(sb);
      const vol = ctx.app.volumes[0]!;
      const d1 = await driver.disks.create(ctx, vol, { name: 'd1' }, {});
      const d2 = await driver.disks.create(ctx, vol, { name: 'd2' }, {});
      const dir1 = d1.id.replace(/\/data$/, '');
      const dir2 = d2.id.replace(/\/data$/, '');
      await plant(dir1, ['kompox-attached.json.tmp-aaaa1111', 'kompox-attached.json.tmp-bbbb2222'], ['kompox-attached.json.tmp-bbbb2222']);
      await plant(dir2, ['kompox-attached.json.tmp-cccc3333', 'kompox-disk.json.tmp-dddd4444']);
      await driver.disks.markAttached!(ctx, vol, d1, '2026-01-02T03:04:05.678Z', {});
      assert.deepEqual((await readdir(dir1)).sort(), ['data', 'kompox-attached.json', 'kompox-attached.json.tmp-bbbb2222', 'kompox-disk.json'], 'the old temp went, the young one stays');
      assert.equal((await readdir(dir2)).length, 4, 'another disk is not touched by an attach');
      await driver.disks.create(ctx, vol, { name: 'd3' }, {});
      assert.deepEqual((await readdir(dir2)).sort(), ['data', 'kompox-disk.json'], 'a disk made sweeps the other disks of the volume');
      assert.deepEqual((await readdir(dir1)).sort(), ['data', 'kompox-attached.json', 'kompox-attached.json.tmp-bbbb2222', 'kompox-disk.json']);
      assert.equal((await driver.disks.list(ctx, vol, {}, {})).find((d) => d.name === 'd1')!.tags['kompox-attached-at'], '2026-01-02T03:04:05.678Z');
    } finally {
      await driver.close();
    }
  });
});

describe('K3s leftovers inside disk directories, over SSH', { skip: sshdMissing() }, () => {
  const fx = sshdAndSandbox();

  it('marking a disk attached on the node sweeps its old metadata temps (ages on the node clock), keeps a young one', async () => {
    const factory: HostFsFactory = async () => connectSshHostFs({ target: fx.sshd.target, keyPath: fx.sshd.keyPath, knownHosts: fx.sshd.knownHostsPath });
    const driver = new K3sDriver({ env: {} }, factory);
    try {
      const ctx = appCtx(fx.sb, { settings: { K3S_SSH: fx.sshd.target, K3S_SSH_KEY: fx.sshd.keyPath, K3S_SSH_KNOWN_HOSTS: fx.sshd.knownHostsPath } });
      const vol = ctx.app.volumes[0]!;
      const d = await driver.disks.create(ctx, vol, { name: 'remote' }, {});
      const dir = d.id.replace(/\/data$/, '');
      await plant(dir, ['kompox-attached.json.tmp-eeee5555', 'kompox-attached.json.tmp-ffff6666'], ['kompox-attached.json.tmp-ffff6666']);
      // SFTP renames never replace: the second mark goes through its remove-then-write path
      await driver.disks.markAttached!(ctx, vol, d, '2026-01-02T03:04:05.678Z', {});
      await driver.disks.markAttached!(ctx, vol, d, '2026-01-03T03:04:05.678Z', {});
      assert.deepEqual((await readdir(dir)).sort(), ['data', 'kompox-attached.json', 'kompox-attached.json.tmp-ffff6666', 'kompox-disk.json']);
    } finally {
      await driver.close();
    }
  });
});
