// A sync that fails (EIO from fsync/syncfs: the disk could not write the data
// back; ENOSPC) fails the K3s driver's operation like a failed write, and
// nothing is left visible: the data may not be on the disk, so the disk or
// snapshot must not be listed. The failing sync is a LocalHostFs whose
// syncFile, syncDir or syncTree rejects as the kernel's call would.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { packTree } from '../../src/archive/archive.js';
import { KompoxError } from '../../src/domain/errors.js';
import { LocalHostFs } from '../../src/providers/k3s/hostfs.js';
import { K3sDriver } from '../../src/providers/k3s/index.js';
import type { HostFsFactory } from '../../src/providers/k3s/driver.js';
import { collect } from '../support/collect.js';
import { appCtx, sandbox, snapshotOfTree, writeSampleTree, type Sandbox } from './k3s-fixtures.js';

type SyncKind = 'syncFile' | 'syncDir' | 'syncTree';

const failure = (code: 'EIO' | 'ENOSPC', call: string) =>
  Object.assign(new Error(`${code}: ${code === 'EIO' ? 'i/o error' : 'no space left on device'}, ${call}`), { code, syscall: call });

/** This machine's filesystem, where the sync named `kind` fails with `code` (for paths under `under`). */
class FailingSyncFs extends LocalHostFs {
  constructor(
    private readonly kind: SyncKind,
    private readonly code: 'EIO' | 'ENOSPC',
    private readonly under: string,
  ) {
    super();
  }
  private check(kind: SyncKind, path: string): void {
    if (kind === this.kind && path.startsWith(this.under)) throw failure(this.code, kind === 'syncTree' ? 'syncfs' : 'fsync');
  }
  override async syncFile(path: string): Promise<void> {
    this.check('syncFile', path);
    return super.syncFile(path);
  }
  override async syncDir(path: string): Promise<void> {
    this.check('syncDir', path);
    return super.syncDir(path);
  }
  override async syncTree(dir: string): Promise<void> {
    this.check('syncTree', dir);
    return super.syncTree(dir);
  }
}

/** What is under ROOT below the volumes' directories (which stay once made). */
async function belowVolumes(root: string): Promise<string[]> {
  return (await snapshotOfTree(root)).filter((p) => p.split('/').filter(Boolean).length > 2);
}

describe('K3s driver when a sync fails', () => {
  let sb: Sandbox;
  let archive: Buffer;
  beforeEach(async () => {
    sb = await sandbox();
    const own = await sandbox();
    try {
      await writeSampleTree(own.dir);
      archive = await collect((out) => packTree(new LocalHostFs(), own.dir, out));
    } finally {
      await own.cleanup();
    }
  });
  afterEach(async () => sb.cleanup());

  const failing = (kind: SyncKind, code: 'EIO' | 'ENOSPC', under: string) => new K3sDriver({ env: {} }, (async () => new FailingSyncFs(kind, code, under)) as HostFsFactory);

  for (const kind of ['syncFile', 'syncDir'] as const) {
    it(`snapshot create: ${kind} failing with EIO fails it, and no snapshot is left (listed or on the node)`, async () => {
      const roomy = new K3sDriver({ env: {} });
      const driver = failing(kind, 'EIO', sb.snapshotRoot);
      try {
        const ctx = appCtx(sb);
        const vol = ctx.app.volumes[0]!;
        const d = await roomy.hostTransfer.importDisk(ctx, vol, { name: 'src' }, { stream: Readable.from([archive]) }, {});
        const before = await belowVolumes(sb.snapshotRoot);
        await assert.rejects(driver.snapshots.create(ctx, vol, d, 'snap', {}), (e: NodeJS.ErrnoException) => e.code === 'EIO');
        assert.deepEqual(await belowVolumes(sb.snapshotRoot), before, 'nothing left behind');
        assert.deepEqual(await roomy.snapshots.list(ctx, vol, {}), [], 'nothing listed');
      } finally {
        await roomy.close();
        await driver.close();
      }
    });
  }

  for (const kind of ['syncTree', 'syncDir'] as const) {
    it(`disk import: ${kind} failing with EIO fails it, and no disk is left (listed or on the node)`, async () => {
      const driver = failing(kind, 'EIO', sb.diskRoot);
      try {
        const ctx = appCtx(sb);
        const vol = ctx.app.volumes[0]!;
        await assert.rejects(driver.hostTransfer.importDisk(ctx, vol, { name: 'imp' }, { stream: Readable.from([archive]) }, {}), (e: NodeJS.ErrnoException) => e.code === 'EIO');
        assert.deepEqual(await belowVolumes(sb.diskRoot), [], 'nothing left behind');
        assert.deepEqual(await driver.disks.list(ctx, vol, {}, {}), [], 'nothing listed');
      } finally {
        await driver.close();
      }
    });
  }

  it('a restore whose tree cannot be synced for want of space: host.disk.full, nothing left', async () => {
    const roomy = new K3sDriver({ env: {} });
    const driver = failing('syncTree', 'ENOSPC', sb.diskRoot);
    try {
      const ctx = appCtx(sb);
      const vol = ctx.app.volumes[0]!;
      const d = await roomy.hostTransfer.importDisk(ctx, vol, { name: 'src' }, { stream: Readable.from([archive]) }, {});
      const snap = await roomy.snapshots.create(ctx, vol, d, 'snap', {});
      const before = await belowVolumes(sb.diskRoot);
      await assert.rejects(driver.disks.create(ctx, vol, { name: 'restored', source: { kind: 'snapshot', id: snap.id } }, {}), (e) => {
        assert.ok(e instanceof KompoxError, String(e));
        assert.equal(e.code, 'host.disk.full', e.message);
        assert.match(e.message, /disk restored was not created/);
        return true;
      });
      assert.deepEqual(await belowVolumes(sb.diskRoot), before, 'nothing left behind');
    } finally {
      await roomy.close();
      await driver.close();
    }
  });
});
