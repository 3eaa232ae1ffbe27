// Tar members whose name or link target is not UTF-8 (the export by the
// node's plain tar stream, the import through tar -x, the manifest of the
// export packed on the node): the decoder read them as text with U+FFFD, and
// the archive came out with files renamed and symlinks re-pointed, its
// manifest agreeing. Every such member is refused by its bytes, in each way a
// header reaches the decoder: a ustar field, a pax record, a GNU long name,
// and the `tar` package's fallback (a base-256 time, a global pax header).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { ByteReader, TarReader, packTree, type TarEntry } from '../../src/archive/archive.js';
import { archiveToTar, packTarStream } from '../../src/archive/tar-stream.js';
import { KompoxError } from '../../src/domain/errors.js';
import { LocalHostFs } from '../../src/providers/k3s/hostfs.js';
import { collect } from '../support/collect.js';
import { refusedNotUtf8 } from '../support/assertions.js';

const root = mkdtempSync(join(tmpdir(), 'kompox-tar-utf8-'));
// rm -rf: the trees hold names Node's rm may not remove by their decoded names
after(() => void spawnSync('rm', ['-rf', '--', root]));
const latin1 = (s: string) => Buffer.from(s, 'latin1');
let n = 0;

/** A fresh directory built by `fill` (given its path as bytes). */
function tree(fill: (dir: Buffer) => void): string {
  const dir = join(root, `t${n++}`);
  mkdirSync(dir);
  writeFileSync(join(dir, 'ok.txt'), 'kept');
  fill(Buffer.from(dir));
  return dir;
}
const at = (dir: Buffer, name: string) => Buffer.concat([dir, latin1(`/${name}`)]);

/** GNU tar's stream of DIR (`-c -C DIR .`, as the node's tar writes it), with extra options. */
function tarOf(dir: string, ...opts: string[]): Readable {
  return spawn('tar', ['-c', '-f', '-', ...opts, '-C', dir, '.'], { stdio: ['ignore', 'pipe', 'inherit'] }).stdout;
}

const refusedAs = refusedNotUtf8;

const packed = (dir: string, ...opts: string[]) => collect((out) => packTarStream(tarOf(dir, ...opts), out, { format: 'tar.zst' }));

describe('tar members whose names are not UTF-8 are refused by their bytes', () => {
  for (const [label, opts] of [
    ['GNU format (ustar fields)', [] as string[]],
    ['pax format (pax records)', ['--format=posix']],
    ['pax format with a global header (the `tar` package decodes them)', ['--format=posix', '--pax-option=comment=kompox']],
  ] as const) {
    it(`${label}: a file, a directory, a symlink target`, async () => {
      await assert.rejects(packed(tree((d) => writeFileSync(at(d, 'bad\xff.txt'), 'x')), ...opts), refusedAs(/bad\\xff\.txt, whose name is not valid UTF-8/));
      await assert.rejects(
        packed(
          tree((d) => {
            mkdirSync(at(d, 'dir\xfe'));
            writeFileSync(at(d, 'dir\xfe/inner'), 'x');
          }),
          ...opts,
        ),
        refusedAs(/dir\\xfe/),
      );
      await assert.rejects(packed(tree((d) => symlinkSync(latin1('target\xff'), at(d, 'link'))), ...opts), refusedAs(/the link \.\/link, whose target \(target\\xff\)/));
    });
  }

  it('a time before 1970 in GNU format (base-256: the `tar` package decodes the header)', async () => {
    const dir = tree((d) => writeFileSync(at(d, 'old\xff'), 'x'));
    utimesSync(latin1(`${dir}/old\xff`), new Date('1965-06-01T00:00:00Z'), new Date('1965-06-01T00:00:00Z'));
    await assert.rejects(packed(dir), refusedAs(/old\\xff/));
  });

  it('GNU long names (over 100 bytes): a bad name and a bad link target are refused; a good one cut mid-character in its header is not', async () => {
    const long = 'n'.repeat(120);
    await assert.rejects(packed(tree((d) => writeFileSync(at(d, `${long}\xff`), 'x'))), refusedAs(new RegExp(`${long}\\\\xff, whose name`)));
    await assert.rejects(packed(tree((d) => symlinkSync(latin1(`${long}\xff`), at(d, 'link')))), refusedAs(/the link \.\/link, whose target/));
    // 99 ASCII bytes then a 3-byte character: the header's 100-byte field ends inside it
    const good = `${'a'.repeat(97)}名前.txt`;
    const dir = tree(() => writeFileSync(join(root, `t${n - 1}`, good), 'x'));
    const archive = await packed(dir);
    const names = await membersOf(archive);
    assert.ok(names.includes(`data/${good}`), names.join(', '));
  });

  it('a name that holds U+FFFD itself (valid UTF-8) is packed as it is', async () => {
    const archive = await packed(tree((d) => writeFileSync(at(d, Buffer.from('real\uFFFD.txt').toString('latin1')), 'x')));
    assert.ok((await membersOf(archive)).includes('data/real\uFFFD.txt'));
  });

  it("an archive holding such a member (a packed-on-node export's, before this fix) is refused by archiveToTar (the import through tar -x)", async () => {
    const dir = tree((d) => writeFileSync(at(d, 'badZ.txt'), 'x'));
    const good = await collect((out) => packTree(new LocalHostFs(), dir, out, { format: 'tar.zst' }));
    // badZ -> bad\xff: same length (pax length prefixes stay right), header checksums recomputed
    const tar = zstdDecompressSync(good);
    const from = latin1('badZ');
    for (let i = tar.indexOf(from); i >= 0; i = tar.indexOf(from, i + 1)) tar[i + 3] = 0xff;
    for (let b = 0; b + 512 <= tar.length; b += 512) {
      const block = tar.subarray(b, b + 512);
      if (block.toString('latin1', 257, 262) !== 'ustar') continue;
      block.fill(0x20, 148, 156);
      let sum = 0;
      for (const x of block) sum += x;
      block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    }
    const bad = zstdCompressSync(tar);
    await assert.rejects(
      collect((out) => archiveToTar(Readable.from([bad]), out)),
      refusedAs(/the archive holds data\/bad\\xff\.txt, whose name/),
    );
  });
});

/** The member names of a tar.zst archive, as TarReader reads them. */
async function membersOf(archive: Buffer): Promise<string[]> {
  const tr = new TarReader(new ByteReader(Readable.from([zstdDecompressSync(archive)])[Symbol.asyncIterator]()));
  const out: string[] = [];
  for (let e: TarEntry | undefined = await tr.next(); e; e = await tr.next()) {
    out.push(e.path.replace(/\/$/, ''));
    await tr.skip(e.size, e.path);
  }
  return out;
}
