// Names and times an archive could lose without a word (found by a review of
// the local round trip): a name or a symlink target that is not UTF-8 (it
// decoded into a name that does not exist, and the walk left it out, with all
// under it, as if removed meanwhile; a symlink came back pointing elsewhere),
// and an mtime before 1970 (Node takes a negative number of seconds for
// "now": every such time came back as the time of the import).
import assert from 'node:assert/strict';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, utimesSync, lutimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { digestTree, packTree, unpackArchive, type ArchiveFormat } from '../../src/archive/archive.js';
import { KompoxError } from '../../src/domain/errors.js';
import { LocalHostFs } from '../../src/providers/k3s/hostfs.js';
import { refusedNotUtf8 } from '../support/assertions.js';

const fs = new LocalHostFs();
const root = mkdtempSync(join(tmpdir(), 'kompox-names-'));
after(() => rmSync(root, { recursive: true, force: true }));
const latin1 = (s: string) => Buffer.from(s, 'latin1');

async function pack(src: string, format?: ArchiveFormat) {
  const sink = new PassThrough();
  const chunks: Buffer[] = [];
  sink.on('data', (c: Buffer) => chunks.push(c));
  const packed = await packTree(fs, src, sink, { format });
  sink.end();
  return { buf: Buffer.concat(chunks), ...packed };
}

const refusedAs = refusedNotUtf8;

describe('names that are not UTF-8 are refused by name, never left out unsaid', () => {
  it('a file, a directory (and what is in it), deep or at the top: the export, the snapshot digest and the size walk fail naming it', async () => {
    for (const [i, bad] of [['top', 'bad\xff.txt'], ['dir', 'dir\xfe'], ['nested', 'sub/deeper\xe9']] as const) {
      const src = join(root, `names-${i}`);
      mkdirSync(join(src, 'sub'), { recursive: true });
      writeFileSync(join(src, 'ok.txt'), 'kept');
      if (i === 'dir') {
        mkdirSync(latin1(join(src, bad)));
        writeFileSync(latin1(join(src, bad, 'inner')), 'would be lost with it');
      } else writeFileSync(latin1(join(src, bad)), 'would be lost');
      const shown = bad.replace(/[\x80-\xff]/g, (c) => `\\\\x${c.charCodeAt(0).toString(16)}`);
      for (const format of ['tar.zst', 'tar.gz'] as const) await assert.rejects(pack(src, format), refusedAs(new RegExp(`/${shown}: its name is not valid UTF-8, which a Kompox archive cannot hold .*; nothing was archived$`)), `${i} ${format}`);
      await assert.rejects(digestTree(fs, src), refusedAs(/is not valid UTF-8/), `${i}: digestTree`);
    }
  });

  it('a name that holds U+FFFD itself (valid UTF-8) goes through; beside one whose bad byte would decode to the same name, the bad one is refused', async () => {
    const src = join(root, 'fffd');
    mkdirSync(src);
    writeFileSync(join(src, 'a\uFFFD'), 'the real one');
    const { buf, sha256 } = await pack(src);
    const out = join(root, 'fffd-out');
    await unpackArchive(fs, Readable.from([buf]), out, { expectedSha256: sha256 });
    assert.deepEqual(readdirSync(out), ['a\uFFFD']);
    writeFileSync(latin1(join(src, 'a\xff')), 'the bad one');
    await assert.rejects(pack(src), refusedAs(/\/a\\xff: its name is not valid UTF-8/));
  });

  it("a symlink whose target is not UTF-8 is refused (it would point elsewhere once restored)", async () => {
    const src = join(root, 'link');
    mkdirSync(src);
    symlinkSync(latin1('target\xff'), join(src, 'link'));
    await assert.rejects(pack(src), refusedAs(/\/link: the target of this symlink \(target\\xff\) is not valid UTF-8/));
  });
});

describe('times before 1970 come back as they were', () => {
  for (const format of ['tar.zst', 'tar.gz'] as const)
  it(`files small and large, a directory, a symlink and the root, 1965 (${format})`, async () => {
    const src = join(root, `old-${format}`);
    mkdirSync(join(src, 'dir'), { recursive: true });
    writeFileSync(join(src, 'small'), 's');
    writeFileSync(join(src, 'large'), Buffer.alloc(3 << 20, 7));
    writeFileSync(join(src, 'dir', 'in'), 'i');
    symlinkSync('small', join(src, 'link'));
    const t = new Date('1965-01-01T23:59:59.750Z');
    for (const p of ['small', 'large', 'dir/in', 'dir', '.']) utimesSync(join(src, p), t, t);
    lutimesSync(join(src, 'link'), t, t);
    const { buf, sha256 } = await pack(src, format);
    const out = join(root, `old-${format}-out`);
    await unpackArchive(fs, Readable.from([buf]), out, { expectedSha256: sha256 });
    for (const p of ['small', 'large', 'dir/in', 'dir', 'link', '.']) assert.equal(lstatSync(join(out, p)).mtime.toISOString(), t.toISOString(), p);
  });
});

describe('a full disk during an import is said as such, never as a damaged archive', () => {
  it('a file created and then cut short by ENOSPC (small files and streamed ones): the filesystem error, not "the archive contains X twice"', async () => {
    const src = join(root, 'full-src');
    mkdirSync(src);
    writeFileSync(join(src, 'small'), 's');
    writeFileSync(join(src, 'large'), Buffer.alloc(3 << 20, 7));
    const { buf, sha256 } = await pack(src);
    const enospc = (p: string) => Object.assign(new Error(`ENOSPC: no space left on device, write '${p}'`), { code: 'ENOSPC', errno: -28, syscall: 'write' });
    // the file is made (as the real write makes it), then its data does not fit
    class Full extends LocalHostFs {
      override async createFile(path: string): Promise<void> {
        writeFileSync(path, '', { flag: 'wx' });
        throw enospc(path);
      }
      override openWrite(path: string, mode: number) {
        const w = super.openWrite(path, mode);
        const write = w._write.bind(w);
        w._write = (chunk, enc, cb) => write(chunk, enc, () => cb(enospc(path)));
        // chunks queued while the file opens (a loaded machine) are written
        // together through _writev: it must fail the same way
        const writev = w._writev?.bind(w);
        if (writev) w._writev = (chunks, cb) => writev(chunks, () => cb(enospc(path)));
        return w;
      }
    }
    for (const only of ['small', 'large']) {
      const one = join(root, `full-src-${only}`);
      mkdirSync(one);
      writeFileSync(join(one, only), only === 'small' ? 's' : Buffer.alloc(3 << 20, 7));
      const packed = await pack(one);
      const out = join(root, `full-out-${only}`);
      await assert.rejects(unpackArchive(new Full(), Readable.from([packed.buf]), out, { expectedSha256: packed.sha256 }), (e: unknown) => {
        assert.equal((e as NodeJS.ErrnoException).code, 'ENOSPC', String(e));
        assert.doesNotMatch(String((e as Error).message), /twice|damaged/);
        return true;
      }, only);
    }
    // and the archive is good where there is room
    await unpackArchive(fs, Readable.from([buf]), join(root, 'full-room'), { expectedSha256: sha256 });
  });
});
