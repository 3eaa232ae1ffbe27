import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { treeDigestOf, type ManifestEntry } from '../../src/archive/archive.js';
import { ManifestLog } from '../../src/archive/manifest-log.js';
import { ChunkSpool } from '../../src/archive/spool.js';
import { KompoxError } from '../../src/domain/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'spool-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Open descriptors of this process that point at a deleted file under `dir`. */
const deletedUnder = () =>
  readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith(dir) && readlinkSync(`/proc/self/fd/${fd}`).endsWith('(deleted)');
    } catch {
      return false;
    }
  }).length;

const chunk = (i: number, n: number) => Buffer.alloc(n, i % 251);

describe('ChunkSpool', () => {
  it('a temporary directory it cannot write to is said as such (tmp.unwritable, naming the directory), not as a raw errno', () => {
    const missing = join(dir, 'no-such-dir');
    const spool = new ChunkSpool({ dir: missing, memoryBytes: 10 });
    spool.push(chunk(1, 8));
    assert.throws(
      () => spool.push(chunk(2, 100)),
      (e: unknown) => {
        assert.ok(e instanceof KompoxError, String(e));
        assert.equal(e.code, 'tmp.unwritable');
        assert.equal(e.message, `cannot write a temporary file under ${missing}: the directory does not exist`);
        assert.match(e.hint ?? '', /TMPDIR/);
        return true;
      },
    );
    assert.equal(spool.length, 1, 'the chunk that could not be written is not counted');
    spool.close();
  });

  it('keeps chunks in memory up to its limit, then in an unlinked file, and reads every one back', () => {
    const spool = new ChunkSpool({ dir, memoryBytes: 10_000 });
    const sizes = [4000, 4000, 4000, 1, 70_000, 0, 300_000, 5];
    for (const [i, n] of sizes.entries()) assert.equal(spool.push(chunk(i, n)), i);
    assert.equal(spool.memoryBytes, 8000, 'the first two chunks fit; the third would pass the limit');
    assert.equal(spool.spilledBytes, sizes.slice(2).reduce((a, b) => a + b, 0), 'every later chunk goes to the file, small ones too');
    assert.deepEqual(readdirSync(dir), [], 'nothing named is left in the directory');
    assert.equal(deletedUnder(), 1, 'the file is open, unlinked');
    for (const [i, n] of sizes.entries()) assert.ok(spool.read(i).equals(chunk(i, n)), `chunk ${i}`);
    // in reverse too (random access), and into a caller's buffer
    const own = Buffer.alloc(400_000);
    for (let i = sizes.length - 1; i >= 0; i--) assert.ok(spool.read(i, own).equals(chunk(i, sizes[i]!)), `chunk ${i} backwards`);
    assert.equal([...spool.chunks()].length, sizes.length);
    spool.close();
    assert.equal(deletedUnder(), 0, 'close() closes the file');
    assert.throws(() => spool.read(0), /closed/);
    spool.close();
  });

  it('never touches a file while under its limit', () => {
    const spool = new ChunkSpool({ dir: join(dir, 'does-not-exist'), memoryBytes: 1000 });
    spool.push(chunk(1, 600));
    spool.push(chunk(2, 400));
    assert.equal(spool.spilledBytes, 0);
    assert.throws(() => spool.push(chunk(3, 1)), /the directory does not exist/, 'the next chunk needs the file, in a directory that is not there');
    spool.close();
  });
});

describe('ManifestLog past its memory', () => {
  it('spills its records and still gives the same entries, manifest text and digest, with readers interleaved', () => {
    const entries: ManifestEntry[] = [{ path: 'data', type: 'dir', mode: 0o755, size: 0 }];
    for (let i = 0; i < 30_000; i++) {
      const path = `data/dir-${String(Math.floor(i / 300)).padStart(3, '0')}/file-${String(i).padStart(6, '0')}-${'n'.repeat(i % 40)}`;
      entries.push({ path, type: 'file', mode: 0o644, size: i * 7, sha256: (i.toString(16).padStart(8, '0')).repeat(8) });
    }
    entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    const log = new ManifestLog({ dir, memoryBytes: 512 * 1024 });
    for (const e of entries) log.add(e);
    assert.ok(log.storedBytes > 1024 * 1024, 'the records are larger than the memory allowance');
    assert.ok(log.memoryBytes <= 512 * 1024 + 256 * 1024, `memory stays at the allowance plus one chunk (${log.memoryBytes})`);
    const a = log.entries();
    const b = log.entries();
    for (let i = 0; i < entries.length; i++) {
      // two readers at different places: each must keep its own chunk
      const x = a.next().value as ManifestEntry;
      assert.deepEqual(x, entries[i]);
      if (i % 2 === 0) {
        const y = b.next().value as ManifestEntry;
        assert.deepEqual(y, entries[i / 2]);
      }
    }
    assert.equal(log.treeDigest(), treeDigestOf(entries));
    const head = { format: 'kompox-disk-archive', version: 2, createdAt: 'x', fileCount: 1, dirCount: 1, symlinkCount: 0, totalBytes: 0, treeDigest: 'y' } as never;
    const { length, pieces } = log.body(head);
    const copies: Buffer[] = [];
    for (const p of pieces()) copies.push(Buffer.from(p)); // a piece is valid until the next
    const text = Buffer.concat(copies).toString('utf8');
    assert.equal(text, `${JSON.stringify({ ...(head as object), entries }, null, 2)}\n`);
    assert.equal(Buffer.byteLength(text), length);
    log.close();
    assert.equal(deletedUnder(), 0);
  });
});
