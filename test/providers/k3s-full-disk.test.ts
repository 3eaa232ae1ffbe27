// A full filesystem under the K3s roots (ENOSPC): a disk import, a restore and
// a snapshot stop with one clear error naming what is full and what to do
// (host.disk.full), leave nothing behind, and never crash the process with a
// stray 'error' event. The full filesystem is a LocalHostFs whose writes fail
// with ENOSPC past a budget, as the kernel's do: the write's callback gets the
// error and the stream is destroyed. Over SSH the same comes from the node's
// tools ("No space left on device"): see the sshd tests below.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { packTree, type EntryMeta } from '../../src/archive/archive.js';
import { KompoxError } from '../../src/domain/errors.js';
import { LocalHostFs } from '../../src/providers/k3s/hostfs.js';
import { K3sDriver } from '../../src/providers/k3s/index.js';
import { connectSshHostFs } from '../../src/providers/k3s/ssh-hostfs.js';
import type { HostFsFactory } from '../../src/providers/k3s/driver.js';
import { collect } from '../support/collect.js';
import { sshdMissing, startSshd, type Sshd } from '../support/sshd.js';
import { appCtx, sandbox, snapshotOfTree, writeSampleTree, type Sandbox } from './k3s-fixtures.js';

const enospc = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });

/** This machine's filesystem, with room for `budget` more bytes of file content under `under`. */
class FullHostFs extends LocalHostFs {
  constructor(
    private left: number,
    private readonly under: string,
  ) {
    super();
  }
  private spend(path: string, n: number): void {
    if (!path.startsWith(this.under)) return;
    this.left -= n;
    if (this.left < 0) throw enospc();
  }
  override openWrite(path: string, mode: number): Writable {
    const real = super.openWrite(path, mode);
    // as LocalHostFs's stream: writes are taken into a 4 MiB buffer (write()
    // returns true) and fail later, on the thread pool, when nobody waits on them
    return new Writable({
      highWaterMark: 4 * 1024 * 1024,
      write: (chunk: Buffer, _enc, cb) => {
        try {
          this.spend(path, chunk.length);
        } catch (e) {
          return void setImmediate(() => cb(e as Error));
        }
        real.write(chunk, (err) => cb(err ?? null));
      },
      final: (cb) => real.end(() => cb()),
      destroy: (err, cb) => {
        real.destroy();
        cb(err);
      },
    });
  }
  override async createFile(path: string, data: readonly Buffer[], meta: EntryMeta): Promise<void> {
    this.spend(path, data.reduce((n, b) => n + b.length, 0));
    return super.createFile(path, data, meta);
  }
}

/** An archive of the sample tree and 3 MiB of random bytes (as big compressed): more than the full filesystems below take. */
async function makeArchive(): Promise<Buffer> {
  const own = await sandbox();
  try {
    await writeSampleTree(own.dir);
    const { writeFile } = await import('node:fs/promises');
    await writeFile(`${own.dir}/big.bin`, randomBytes(3 * 1024 * 1024));
    return await collect((out) => packTree(new LocalHostFs(), own.dir, out));
  } finally {
    await own.cleanup();
  }
}

/** What is under ROOT below the volumes' directories (which a first disk or snapshot makes, and which stay). */
async function belowVolumes(root: string): Promise<string[]> {
  return (await snapshotOfTree(root)).filter((p) => p.split('/').filter(Boolean).length > 2);
}

function assertFull(e: unknown, what: RegExp): true {
  assert.ok(e instanceof KompoxError, `not a KompoxError: ${String((e as Error)?.stack ?? e)}`);
  assert.equal(e.code, 'host.disk.full', e.message);
  assert.equal(e.kind, 'unavailable');
  assert.match(e.message, what);
  assert.match(e.message, /no space left/);
  assert.match(e.hint ?? '', /[Ff]ree space/);
  return true;
}

describe('K3s driver when the filesystem under its roots is full', () => {
  let sb: Sandbox;
  let archive: Buffer;
  beforeEach(async () => {
    sb = await sandbox();
  });
  afterEach(async () => sb.cleanup());
  before(async () => {
    archive = await makeArchive();
  });

  it('an import stops with host.disk.full and leaves nothing; the process survives the failed writes', async () => {
    const driver = new K3sDriver({ env: {} }, (async () => new FullHostFs(512 * 1024, sb.diskRoot)) as HostFsFactory);
    try {
      const ctx = appCtx(sb);
      const vol = ctx.app.volumes[0]!;
      const before = await belowVolumes(sb.diskRoot);
      await assert.rejects(driver.hostTransfer.importDisk(ctx, vol, { name: 'imp' }, { stream: Readable.from([archive]) }, {}), (e) => assertFull(e, /disk imp/));
      assert.deepEqual(await belowVolumes(sb.diskRoot), before, 'nothing left behind');
    } finally {
      await driver.close();
    }
  });

  it('a snapshot stops with host.disk.full and leaves nothing', async () => {
    const roomy = new K3sDriver({ env: {} });
    const driver = new K3sDriver({ env: {} }, (async () => new FullHostFs(512 * 1024, sb.snapshotRoot)) as HostFsFactory);
    try {
      const ctx = appCtx(sb);
      const vol = ctx.app.volumes[0]!;
      const d = await roomy.hostTransfer.importDisk(ctx, vol, { name: 'src' }, { stream: Readable.from([archive]) }, {});
      const before = await belowVolumes(sb.snapshotRoot);
      await assert.rejects(driver.snapshots.create(ctx, vol, d, 'snap', {}), (e) => assertFull(e, /snapshot snap/));
      assert.deepEqual(await belowVolumes(sb.snapshotRoot), before, 'nothing left behind');
      // a restore into the full disk root
      const snap = await roomy.snapshots.create(ctx, vol, d, 'snap2', {});
      const full = new K3sDriver({ env: {} }, (async () => new FullHostFs(512 * 1024, sb.diskRoot)) as HostFsFactory);
      try {
        const disks = await belowVolumes(sb.diskRoot);
        await assert.rejects(full.disks.create(ctx, vol, { name: 'restored', source: { kind: 'snapshot', id: snap.id } }, {}), (e) => assertFull(e, /disk restored/));
        assert.deepEqual(await belowVolumes(sb.diskRoot), disks, 'nothing left behind');
      } finally {
        await full.close();
      }
    } finally {
      await roomy.close();
      await driver.close();
    }
  });
});

// Over SSH the node's own tools fill the disk: a small filesystem is needed
// for real, so this runs only where tmpfs can be mounted (root).
const canMount = process.getuid?.() === 0 && !sshdMissing() && spawnSync('sh', ['-c', 'command -v mount && command -v umount'], { stdio: 'ignore' }).status === 0;

describe('K3s driver over SSH when the node\'s filesystem is full (a small tmpfs)', { skip: canMount ? false : 'needs root (to mount a small tmpfs) and sshd' }, () => {
  let sshd: Sshd;
  let sb: Sandbox;
  let small: string;
  let archive: Buffer;
  /** The settings that reach this machine's sshd. */
  const sshSettings = () => ({ K3S_SSH: sshd.target, K3S_SSH_KEY: sshd.keyPath, K3S_SSH_KNOWN_HOSTS: sshd.knownHostsPath });
  /** A driver reaching this machine's sshd (the roots come from each context's settings). */
  const overSsh = () => new K3sDriver({ env: {} }, (async () => connectSshHostFs({ target: sshd.target, keyPath: sshd.keyPath, knownHosts: sshd.knownHostsPath })) as HostFsFactory);
  before(async () => {
    archive = await makeArchive();
    sshd = await startSshd();
    sb = await sandbox();
    small = `${sb.dir}/small`;
    spawnSync('mkdir', ['-p', small]);
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', small], { encoding: 'utf8' });
    assert.equal(m.status, 0, m.stderr);
  });
  after(async () => {
    spawnSync('umount', [small]);
    await sshd?.close();
    await sb?.cleanup();
  });

  it("an export into a file on a full filesystem says so (export.output-failed) and keeps nothing; over SSH it does not hang", async () => {
    const { writeArchiveFile } = await import('../../src/cli/files.js');
    const { exportThrough } = await import('../../src/usecases/disk.js');
    const { readdir } = await import('node:fs/promises');
    const local = new K3sDriver({ env: {} });
    const remote = overSsh();
    try {
      const ctx = appCtx(sb);
      const vol = ctx.app.volumes[0]!;
      const d = await local.hostTransfer.importDisk(ctx, vol, { name: 'src' }, { stream: Readable.from([archive]) }, {});
      const sshCtx = appCtx(sb, { settings: sshSettings() });
      for (const [driver, c, name] of [[local, ctx, 'local.tar.zst'], [remote, sshCtx, 'ssh.tar.zst']] as const) {
        const path = `${small}/${name}`;
        await assert.rejects(
          writeArchiveFile(path, (out) => exportThrough(out, 'disk src', (w) => driver.hostTransfer.exportDisk(c, vol, d, w, {}))),
          (e: unknown) => {
            assert.ok(e instanceof KompoxError, String(e));
            assert.equal(e.code, 'export.output-failed', e.message);
            assert.match(e.message, new RegExp(`cannot write ${path}: no space left on device`));
            assert.match(e.hint ?? '', /-O/);
            return true;
          },
        );
        assert.deepEqual((await readdir(small)).filter((n) => n.includes('.tar.zst')), [], `${name}: nothing kept`);
      }
    } finally {
      await local.close();
      await remote.close();
    }
  });

  it('a snapshot and a disk copy on the node stop with host.disk.full and leave nothing', async () => {
    const local = new K3sDriver({ env: {} });
    const remote = overSsh();
    try {
      const ctx = appCtx(sb);
      const vol = ctx.app.volumes[0]!;
      const d = await local.hostTransfer.importDisk(ctx, vol, { name: 'copy-src' }, { stream: Readable.from([archive]) }, {});
      const ssh = sshSettings();
      const events: string[] = [];
      const onEvent = { events: (e: { type: string; message?: string }) => void (e.type === 'log' && events.push(e.message ?? '')) };
      await assert.rejects(remote.snapshots.create(appCtx(sb, { settings: { ...ssh, K3S_SNAPSHOT_ROOT: `${small}/snaps` } }), vol, d, 'snap', onEvent as never), (e) => assertFull(e, /snapshot snap/));
      assert.ok(events.some((m) => /snapshot snap: on the node/.test(m)), events.join('\n'));
      // the disk root on the small filesystem: the copy is made there (its source is read from the sandbox's)
      await assert.rejects(
        remote.disks.create(appCtx(sb, { settings: { ...ssh, K3S_DISK_ROOT: `${small}/disks` } }), vol, { name: 'copied', source: { kind: 'disk', id: d.id } }, onEvent as never),
        (e) => assertFull(e, /disk copied/),
      );
      assert.ok(events.some((m) => /copy copy-src: on the node .*cp -a/.test(m)), events.join('\n'));
      const left = spawnSync('find', [small, '-mindepth', '4'], { encoding: 'utf8' }).stdout.trim();
      assert.equal(left, '', 'nothing left behind');
    } finally {
      await local.close();
      await remote.close();
    }
  });

  it('an import on the node stops with host.disk.full and leaves nothing', async () => {
    const settings = { ...sshSettings(), K3S_DISK_ROOT: `${small}/disks` };
    const driver = overSsh();
    try {
      const ctx = appCtx(sb, { settings });
      const vol = ctx.app.volumes[0]!;
      await assert.rejects(driver.hostTransfer.importDisk(ctx, vol, { name: 'imp' }, { stream: Readable.from([archive]) }, {}), (e) => assertFull(e, /disk imp/));
      const left = spawnSync('find', [`${small}/disks`, '-mindepth', '3'], { encoding: 'utf8' }).stdout.trim();
      assert.equal(left, '', 'nothing left behind');
    } finally {
      await driver.close();
    }
  });
});
