// Interoperability of the K3s driver's data paths with real processes: a
// tree exported on one path (this machine's filesystem, a node over SSH with
// GNU tar, a node without tar read file by file over SFTP) is the same tree
// imported on another, or the export is refused; never a tree that lost or
// changed something unsaid.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { lstat, mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { KompoxError } from '../../src/domain/errors.js';
import type { KompoxEvent } from '../../src/domain/events.js';
import { K3sDriver } from '../../src/providers/k3s/index.js';
import { rejectsWith } from '../support/assertions.js';
import { collectEvents } from '../support/events.js';
import { sshdMissing, type Sshd } from '../support/sshd.js';
import { appCtx, connectNode, snapshotOfTree, sshdAndSandbox, type Sandbox } from './k3s-fixtures.js';

const skip = sshdMissing();

/** The three host paths: this machine (no SSH), a node over SSH with GNU tar, a node without tar (SFTP). */
function paths(fx: { sshd: Sshd; sb: Sandbox }) {
  const settings = () => ({ K3S_SSH: fx.sshd.target, K3S_SSH_KEY: fx.sshd.keyPath, K3S_SSH_KNOWN_HOSTS: fx.sshd.knownHostsPath });
  return {
    local: () => ({ driver: new K3sDriver(), ctx: appCtx(fx.sb) }),
    ssh: () => ({ driver: new K3sDriver({ env: {} }, async () => connectNode(fx.sshd)), ctx: appCtx(fx.sb, { settings: settings() }) }),
    sftp: () => ({ driver: new K3sDriver({ env: {} }, async () => connectNode(fx.sshd, join(fx.sb.dir, 'bin'))), ctx: appCtx(fx.sb, { settings: settings() }) }),
  };
}
type Path = ReturnType<typeof paths>['local'];

async function exportOn(p: ReturnType<Path>, name: string, format: 'tar.zst' | 'tar.gz' = 'tar.zst', events: KompoxEvent[] = []): Promise<Buffer> {
  const vol = p.ctx.app.volumes[0]!;
  const disk = (await p.driver.disks.list(p.ctx, vol, {}, {})).find((d) => d.name === name)!;
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  await p.driver.hostTransfer.exportDisk(p.ctx, vol, disk, out, { events: (e) => events.push(e) }, { format });
  out.end();
  return Buffer.concat(chunks);
}

async function importOn(p: ReturnType<Path>, name: string, archive: Buffer): Promise<string> {
  const vol = p.ctx.app.volumes[0]!;
  return (await p.driver.hostTransfer.importDisk(p.ctx, vol, { name }, { stream: Readable.from([archive]) }, {})).id;
}

/** Disk names of the volume, pending ones and temp directories included: what a failure must not leave. */
async function volumeEntries(sb: Sandbox): Promise<string[]> {
  const ns = (await readdir(sb.diskRoot))[0];
  return ns ? (await readdir(join(sb.diskRoot, ns, 'default'))).sort() : [];
}


/** A predicate for assert.rejects: the path-too-long refusal (its kind and code), naming a path under `prefix` of PATH_MAX bytes or more, its message matching `message`. */
function refusedAsTooLong(prefix: string, message?: RegExp): (e: unknown) => true {
  return (e: unknown) => {
    assert.ok(e instanceof KompoxError, String(e));
    assert.deepEqual([e.kind, e.code], ['unsupported', 'archive.path-too-long'], e.message);
    if (message) assert.match(e.message, message);
    const path = String(e.details?.path);
    assert.ok(path.startsWith(prefix) && Buffer.byteLength(path) >= 4096, path);
    return true;
  };
}

describe('K3s data paths: paths of 4096 bytes or more are refused on every path, never left out', { skip }, () => {
  const fx = sshdAndSandbox(async (sb) => {
    // a node without tar: every tool of this machine but tar and zstd on the commands' PATH
    const bin = join(sb.dir, 'bin');
    await mkdir(bin);
    for (const name of await readdir('/usr/bin')) if (!/^(tar|zstd|zstdmt|unzstd|zstdcat|pzstd)$/.test(name)) await symlink(join('/usr/bin', name), join(bin, name));
  });

  /**
   * A disk holding a small file and, under deep/, a chain of 22 directories
   * of 200-byte names whose last paths pass 4096 bytes: two halves made
   * apart, each path short enough for mkdir, then one moved into the other.
   */
  async function deepDisk(p: ReturnType<Path>, name: string): Promise<string> {
    const d = await p.driver.disks.create(p.ctx, p.ctx.app.volumes[0]!, { name }, {});
    await writeFile(join(d.id, 'small.txt'), 'kept\n');
    const half = (from: number) => Array.from({ length: 11 }, (_, i) => `${String(from + i).padStart(2, '0')}${'p'.repeat(198)}`).join('/');
    const [a, b] = [join(d.id, 'deep', half(1)), join(fx.sb.dir, 'half', half(12))];
    await mkdir(a, { recursive: true });
    await mkdir(b, { recursive: true });
    await writeFile(join(b, 'leaf.txt'), 'leaf\n');
    const r = spawnSync('mv', ['--', join(fx.sb.dir, 'half', half(12).split('/')[0]!), a]);
    assert.equal(r.status, 0, String(r.stderr));
    return d.id;
  }
  const rmDeep = (dir: string) => spawnSync('rm', ['-rf', '--', join(dir, 'deep')]);

  it('an export over SFTP (a node without tar) refuses a directory too deep for the server to list whole (sftp-server leaves such entries out unsaid)', async () => {
    const p = paths(fx).sftp();
    const id = await deepDisk(p, 'deep-sftp');
    try {
      const events: KompoxEvent[] = [];
      await rejectsWith(exportOn(p, 'deep-sftp', 'tar.zst', events), 'unsupported', /too deep to list over SFTP.*nothing was archived/);
      assert.ok(events.some((e) => e.type === 'warning' && /file by file over SFTP/.test(e.diagnostic.message)), 'the export went over SFTP');
    } finally {
      rmDeep(id);
      await p.driver.close();
    }
  });

  it('a local export refuses such a path with its code (was: a bare ENAMETOOLONG)', async () => {
    const p = paths(fx).local();
    const id = await deepDisk(p, 'deep-local');
    try {
      await assert.rejects(exportOn(p, 'deep-local'), (e: unknown) => (e as { code?: string }).code === 'archive.path-too-long' && /4096-byte limit.*nothing was archived/.test(String(e)));
    } finally {
      rmDeep(id);
      await p.driver.close();
    }
  });

  it("a snapshot and a disk copy made on the node over SSH refuse such a tree with that code, naming the path, and leave the disk and snapshot lists as they were (was: 'listing ... failed' with the tail of sha256sum's message)", async () => {
    const p = paths(fx).ssh();
    const vol = p.ctx.app.volumes[0]!;
    const id = await deepDisk(p, 'deep-on-node');
    try {
      const disk = (await p.driver.disks.list(p.ctx, vol, {}, {})).find((d) => d.name === 'deep-on-node')!;
      const lists = async () => ({
        disks: (await p.driver.disks.list(p.ctx, vol, {}, {})).map((d) => d.name).sort(),
        snapshots: (await p.driver.snapshots.list(p.ctx, vol, {})).map((s) => s.name).sort(),
        // temp files and directories too: nothing half-made is left
        entries: await volumeEntries(fx.sb),
        // files only: a snapshot's directories are made before its archive
        snapshotFiles: (await snapshotOfTree(fx.sb.snapshotRoot)).filter((e) => !e.endsWith('/')),
      });
      const before = await lists();
      const tooLong = refusedAsTooLong(`${id}/deep/`, /4096-byte limit.*nothing was archived/);
      const snap = collectEvents();
      await assert.rejects(p.driver.snapshots.create(p.ctx, vol, disk, 'deep-snap', snap.op), tooLong);
      // the node made it (not this machine, whose walk refuses such paths too)
      assert.ok(snap.events.some((e) => e.type === 'log' && /^snapshot deep-snap: on the node/.test(e.message)), 'the snapshot was made on the node');
      assert.deepEqual(await lists(), before, 'the snapshot left nothing');
      const copy = collectEvents();
      await assert.rejects(p.driver.disks.create(p.ctx, vol, { name: 'deep-copy', source: { kind: 'native', id } }, copy.op), tooLong);
      // the node copied it (its failure comes before the log saying so; a copy through this machine says why)
      assert.ok(!copy.events.some((e) => e.type === 'log' && /through this machine/.test(e.message)), 'the copy was made on the node');
      assert.deepEqual(await lists(), before, 'the copy left nothing');
    } finally {
      rmDeep(id);
      await p.driver.close();
    }
  });

  it("a disk copy on the node of a tree whose paths pass 4096 bytes only from the node's root (the listing hashes it from the disk's top, cp -a fails on it) is refused with that code, naming the path, and leaves nothing", async () => {
    const p = paths(fx).ssh();
    const vol = p.ctx.app.volumes[0]!;
    const d = await p.driver.disks.create(p.ctx, vol, { name: 'abs-deep' }, {});
    // 20 directories of 199-byte names and an 80-byte file: 4080 bytes from the disk's top (`./` and
    // the NUL still fit in 4096), more from the node's root (the disk's path before them)
    const dirs = Array.from({ length: 20 }, (_, i) => `${String(i).padStart(2, '0')}${'q'.repeat(197)}`);
    const rel = [...dirs, 'f'.repeat(80)].join('/');
    assert.ok(Buffer.byteLength(`./${rel}`) < 4096 && Buffer.byteLength(`${d.id}/${rel}`) >= 4096);
    // two halves made apart, each path short enough for mkdir, then one moved into the other
    const [a, b] = [join(d.id, ...dirs.slice(0, 10)), join(fx.sb.dir, 'abs-half', ...dirs.slice(10))];
    await mkdir(a, { recursive: true });
    await mkdir(b, { recursive: true });
    await writeFile(join(b, 'f'.repeat(80)), 'leaf\n');
    const r = spawnSync('mv', ['--', join(fx.sb.dir, 'abs-half', dirs[10]!), a]);
    assert.equal(r.status, 0, String(r.stderr));
    try {
      const before = await volumeEntries(fx.sb);
      const copy = collectEvents();
      await assert.rejects(p.driver.disks.create(p.ctx, vol, { name: 'abs-copy', source: { kind: 'native', id: d.id } }, copy.op), refusedAsTooLong(`${d.id}/${dirs[0]}/`));
      assert.ok(!copy.events.some((e) => e.type === 'log' && /through this machine/.test(e.message)), 'the copy was made on the node');
      assert.deepEqual(await volumeEntries(fx.sb), before, 'the copy left nothing');
    } finally {
      spawnSync('rm', ['-rf', '--', join(d.id, dirs[0]!)]);
      await p.driver.close();
    }
  });

  it("an archive of such a tree (exported by the node's GNU tar) is refused with that code on every import path, and leaves nothing (was: ENAMETOOLONG, SFTP's status 5, or 'truncated or corrupt' over SSH)", async () => {
    const ssh = paths(fx).ssh();
    const id = await deepDisk(ssh, 'deep-ssh');
    const drivers = [ssh.driver];
    try {
      const archive = await exportOn(ssh, 'deep-ssh');
      rmDeep(id);
      const before = await volumeEntries(fx.sb);
      for (const [label, make] of Object.entries(paths(fx))) {
        const p = make();
        drivers.push(p.driver);
        await assert.rejects(importOn(p, `deep-in-${label}`, archive), (e: unknown) => {
          assert.equal((e as { code?: string }).code, 'archive.path-too-long', `${label}: ${String(e)}`);
          assert.match(String(e), /4096-byte limit.*nothing was extracted/);
          return true;
        });
        assert.deepEqual(await volumeEntries(fx.sb), before, `${label}: nothing left`);
      }
    } finally {
      rmDeep(id);
      for (const d of drivers) await d.close();
    }
  });
});

describe('K3s data paths: sub-second mtimes through the plain tar stream of a node with GNU tar', { skip }, () => {
  const fx = sshdAndSandbox();

  it('an export over SSH in tar.gz (the node tar stream Kompox packs) keeps the milliseconds of mtimes, as tar.zst (packed on the node) and the local path do', async () => {
    const all = paths(fx);
    const local = all.local();
    const ssh = all.ssh();
    try {
      const d = await local.driver.disks.create(local.ctx, local.ctx.app.volumes[0]!, { name: 'subsec' }, {});
      await mkdir(join(d.id, 'dir'));
      await writeFile(join(d.id, 'dir', 'file'), 'x');
      await symlink('file', join(d.id, 'dir', 'link'));
      // exact milliseconds (touch: no binary fraction below them)
      for (const [p, at] of [['dir/file', '1600000000.123'], ['dir/link', '1600000001.456'], ['dir', '1600000002.789']]) {
        assert.equal(spawnSync('touch', ['-h', '-d', `@${at}`, '--', join(d.id, p!)]).status, 0);
      }
      const times = async (root: string) =>
        Promise.all(['dir', 'dir/file', 'dir/link'].map(async (p) => `${p} ${Math.round((await lstat(join(root, p))).mtimeMs)}`));
      const want = await times(d.id);
      assert.deepEqual(want, ['dir 1600000002789', 'dir/file 1600000000123', 'dir/link 1600000001456']);
      for (const format of ['tar.gz', 'tar.zst'] as const) {
        const id = await importOn(local, `subsec-${format.replace('.', '-')}`, await exportOn(ssh, 'subsec', format));
        assert.deepEqual(await times(id), want, `exported over SSH as ${format}`);
      }
    } finally {
      await local.driver.close();
      await ssh.driver.close();
    }
  });
});

describe('K3s data paths: an import over SFTP (a node without tar) sets mtimes SFTP cannot carry', { skip }, () => {
  const fx = sshdAndSandbox(async (sb) => {
    const bin = join(sb.dir, 'bin');
    await mkdir(bin);
    for (const name of await readdir('/usr/bin')) if (!/^(tar|zstd|zstdmt|unzstd|zstdcat|pzstd)$/.test(name)) await symlink(join('/usr/bin', name), join(bin, name));
  });

  it('times before 1970 and after 2106 (SFTP v3: unsigned 32-bit seconds) come out as they went in, to the second, on files, directories and symlinks', async () => {
    const all = paths(fx);
    const local = all.local();
    const sftp = all.sftp();
    try {
      const d = await local.driver.disks.create(local.ctx, local.ctx.app.volumes[0]!, { name: 'far' }, {});
      await mkdir(join(d.id, 'dir'));
      await writeFile(join(d.id, 'dir', 'future'), 'x');
      await writeFile(join(d.id, 'past'), 'y');
      await writeFile(join(d.id, 'usual'), 'z');
      await symlink('past', join(d.id, 'link'));
      const at: Record<string, string> = { 'dir/future': '7258118400', past: '-2', usual: '1600000000', link: '13569465600', dir: '7258118400' };
      for (const [p, t] of Object.entries(at)) assert.equal(spawnSync('touch', ['-h', '-d', `@${t}`, '--', join(d.id, p)]).status, 0);
      const times = async (root: string) => Promise.all(Object.keys(at).map(async (p) => `${p} ${Math.floor((await lstat(join(root, p))).mtimeMs / 1000)}`));
      const want = Object.entries(at).map(([p, t]) => `${p} ${t}`);
      assert.deepEqual(await times(d.id), want);
      const events: KompoxEvent[] = [];
      const vol = sftp.ctx.app.volumes[0]!;
      const id = (await sftp.driver.hostTransfer.importDisk(sftp.ctx, vol, { name: 'far-in' }, { stream: Readable.from([await exportOn(local, 'far')]) }, { events: (e) => events.push(e) })).id;
      assert.ok(events.some((e) => e.type === 'warning' && /file by file over SFTP/.test(e.diagnostic.message)), 'the import went over SFTP');
      assert.deepEqual(await times(id), want);
    } finally {
      await local.driver.close();
      await sftp.driver.close();
    }
  });
});
