// Live (not quiesced) exports and snapshots on the host path while a real
// writer changes the disk: the archive either verifies and restores (a
// crash-consistent copy) or the command fails clearly at once.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { packTree, unpackArchive } from '../../src/archive/archive.js';
import { LocalHostFs } from '../../src/providers/k3s/hostfs.js';
import type { TreeStat } from '../../src/archive/archive.js';
import { sandbox } from './k3s-fixtures.js';

/** A LocalHostFs on which an app (a real `rm -rf`) removes DIR right after the walk's Nth lstat of it found it. */
class RemovedAfterLstat extends LocalHostFs {
  seen = 0;
  constructor(
    private readonly victim: string,
    private readonly at: number,
  ) {
    super();
  }
  override async lstat(path: string): Promise<TreeStat | undefined> {
    const st = await super.lstat(path);
    if (path === this.victim && st && ++this.seen === this.at) assert.equal(spawnSync('rm', ['-rf', path]).status, 0);
    return st;
  }
}

describe('host path: a live disk changing while it is archived', () => {
  // 1: during the size walk that measures the tree; 2: during the walk that packs it
  for (const at of [1, 2])
    it(`a subdirectory removed (rm -rf) after its parent was listed, before it is read (walk ${at}): the export succeeds and the archive restores`, async () => {
      const sb = await sandbox();
      try {
        const disk = join(sb.dir, 'disk');
        await mkdir(join(disk, 'cache', 'a', 'b'), { recursive: true });
        await writeFile(join(disk, 'cache', 'a', 'b', 'tmp'), 'scratch\n');
        await writeFile(join(disk, 'keep.txt'), 'kept\n');
        const fs = new RemovedAfterLstat(join(disk, 'cache'), at);
        const out = new PassThrough();
        const chunks: Buffer[] = [];
        out.on('data', (c: Buffer) => chunks.push(c));
        // a progress sink: the size walk (walk 1) runs before the packing walk (walk 2)
        const progress = { start() {}, advance() {}, done() {} };
        const packed = await packTree(fs, disk, out, { progress });
        assert.equal(fs.seen, at, 'the directory was removed mid-walk');
        const paths = packed.manifest.entries.map((e) => e.path);
        assert.ok(paths.includes('data/keep.txt'), JSON.stringify(paths));
        assert.ok(!paths.some((p) => p.startsWith('data/cache/')), `nothing under the removed directory: ${JSON.stringify(paths)}`);
        const back = join(sb.dir, 'back');
        const restored = await unpackArchive(new LocalHostFs(), PassThrough.from(Buffer.concat(chunks)), back);
        assert.equal(restored.manifest.treeDigest, packed.manifest.treeDigest);
      } finally {
        await sb.cleanup();
      }
    });
});
