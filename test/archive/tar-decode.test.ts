import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { link, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Header, Pax } from 'tar';
import { headerBlocks, libraryHeader, TarReader, ByteReader } from '../../src/archive/archive.js';
import { decodeHeader, parsePax, type PaxFields } from '../../src/archive/tar-decode.js';
import { prng } from '../support/prng.js';

const BLOCK = 512;

/**
 * Every header of a tar stream decoded both ways: directly (when the direct
 * decoder takes it) and by the `tar` package. Returns how many the direct
 * decoder took and how many it left.
 */
function compareAll(tar: Buffer): { direct: number; library: number } {
  let at = 0;
  let bodies: Buffer[] = [];
  let direct = 0;
  let library = 0;
  while (at + BLOCK <= tar.length) {
    const block = tar.subarray(at, at + BLOCK);
    at += BLOCK;
    if (block.every((b) => b === 0)) continue;
    const lib = libraryHeader(block, bodies, undefined);
    let fast: PaxFields | undefined | null;
    for (const b of bodies) if (fast !== null) fast = parsePax(b, fast ?? {}) ?? null;
    const d = fast === null ? undefined : decodeHeader(block, fast);
    if (d) {
      assert.deepEqual(d, lib, `header at ${at - BLOCK}`);
      direct++;
    } else library++;
    const body = tar.subarray(at, at + lib.size);
    at += Math.ceil(lib.size / BLOCK) * BLOCK;
    if (lib.type === 'ExtendedHeader') bodies.push(body);
    else bodies = [];
  }
  return { direct, library };
}

describe('tar header decoding', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tar-decode-'));
    const t = join(dir, 'tree');
    await mkdir(join(t, 'sub', 'deeper'), { recursive: true });
    await writeFile(join(t, 'plain.txt'), 'hello');
    await writeFile(join(t, 'ünïcödé-名前.txt'), 'x'.repeat(1000));
    const long = `${'long-directory-name-'.repeat(6)}`;
    await mkdir(join(t, long), { recursive: true });
    await writeFile(join(t, long, `${'a-very-long-file-name-'.repeat(8)}.txt`), 'long');
    await symlink('plain.txt', join(t, 'link'));
    await symlink(`${'../'.repeat(20)}${'target-'.repeat(20)}`, join(t, 'long-link'));
    await link(join(t, 'plain.txt'), join(t, 'hard'));
    execFileSync('mkfifo', [join(t, 'fifo')]);
    await writeFile(join(t, 'sub', 'deeper', 'space name'), '');
  });
  after(() => rm(dir, { recursive: true, force: true }));

  for (const format of ['posix', 'gnu', 'ustar', 'v7', 'oldgnu']) {
    it(`reads GNU tar's ${format} format as the tar package does`, () => {
      let tar: Buffer;
      try {
        tar = execFileSync('tar', ['-c', '-f', '-', `--format=${format}`, '-C', join(dir, 'tree'), '.'], { maxBuffer: 1 << 26, stdio: ['ignore', 'pipe', 'ignore'] });
      } catch (e) {
        // ustar and v7 cannot hold the long names: tar says so and exits 2 with what it could write
        tar = (e as { stdout: Buffer }).stdout;
      }
      const { direct } = compareAll(tar);
      assert.ok(direct >= 8, `most headers decoded directly (${direct})`);
    });
  }

  it("reads busybox tar's output as the tar package does", () => {
    const tar = execFileSync('busybox', ['tar', '-c', '-f', '-', '-C', join(dir, 'tree'), '.'], { maxBuffer: 1 << 26, stdio: ['ignore', 'pipe', 'ignore'] });
    assert.ok(compareAll(tar).direct >= 8);
  });

  it('reads what Kompox writes, on random entries, as the tar package does', () => {
    const rnd = prng(11);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
    const names = ['a', 'ü', '名前', 'x'.repeat(120), 'sp ace', 'q"uote', 'PaxHeader', '😀'];
    const blocks: Buffer[] = [];
    for (let i = 0; i < 2000; i++) {
      const path = Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => pick(names)).join('/') + i;
      const type = pick(['File', 'Directory', 'SymbolicLink'] as const);
      const mtime = new Date(pick([0, 1_700_000_000_123, 1_733_000_000_999, -86_400_500, 2 ** 34 * 1000 + 7]));
      blocks.push(
        ...headerBlocks({
          path,
          type,
          mode: pick([0o644, 0o755, 0o4755, 0o7777, 0o600]),
          uid: pick([0, 1000, 65534, 2 ** 21 + 1, 2 ** 31]),
          gid: pick([0, 100, 2 ** 22]),
          size: type === 'File' ? pick([0, 1, 511, 512, 2 ** 33 + 1]) : 0,
          mtime,
          ...(type === 'SymbolicLink' ? { linkpath: pick(names) } : {}),
        }),
      );
      // a body for files: the decoder walks sizes, so give each its (zero) blocks only when small
    }
    // headers alone (no bodies): compare them one entry at a time
    let direct = 0;
    let bodies: Buffer[] = [];
    for (const b of blocks) {
      for (let at = 0; at < b.length; ) {
        const block = b.subarray(at, at + BLOCK);
        const lib = libraryHeader(block, bodies, undefined);
        at += BLOCK;
        if (lib.type === 'ExtendedHeader') {
          bodies.push(b.subarray(at, at + lib.size));
          at += Math.ceil(lib.size / BLOCK) * BLOCK;
          continue;
        }
        let fast: PaxFields | undefined | null;
        for (const x of bodies) if (fast !== null) fast = parsePax(x, fast ?? {}) ?? null;
        const d = fast === null ? undefined : decodeHeader(block, fast);
        if (d) {
          assert.deepEqual(d, lib);
          direct++;
        }
        bodies = [];
      }
    }
    assert.ok(direct > 1900, `nearly every entry decoded directly (${direct} of 2000)`);
  });

  it('gives up on what it does not read exactly: base-256 numbers, bad checksums, unknown types, odd pax records', () => {
    const h = new Header({ path: 'a', type: 'File', mode: 0o644, uid: 2 ** 40, gid: 0, size: 3, mtime: new Date(0) });
    h.encode();
    assert.equal(decodeHeader(h.block!, undefined), undefined, 'base-256 uid');
    const ok = new Header({ path: 'a', type: 'File', mode: 0o644, uid: 1, gid: 0, size: 3, mtime: new Date(0) });
    ok.encode();
    assert.ok(decodeHeader(ok.block!, undefined));
    const bad = Buffer.from(ok.block!);
    bad[0] = 0x62;
    assert.equal(decodeHeader(bad, undefined), undefined, 'bad checksum');
    const unknown = Buffer.from(ok.block!);
    unknown[156] = 0x53; // 'S', sparse
    assert.equal(decodeHeader(unknown, undefined), undefined);
    assert.equal(parsePax(Buffer.from('12 type=5\n')), undefined, 'a pax type record');
    assert.equal(parsePax(Buffer.from('13 size=1e3\n')), undefined);
    assert.equal(parsePax(Buffer.from('12 path=ab\n')), undefined, 'a wrong length');
    assert.deepEqual(parsePax(Buffer.from('28 mtime=1733000000.1239999\n18 atime=1.000001\n')), { mtimeMs: 1733000000123 });
    assert.deepEqual(parsePax(Buffer.from('18 mtime=-86400.5\n')), { mtimeMs: -86400500 });
  });

  it('reads a pax path holding a newline whole (records go by their length)', async () => {
    // longer than a ustar name: only the pax record holds it
    const path = `data/${'long-name-'.repeat(12)}line\nbreak`;
    const blocks = headerBlocks({ path, type: 'File', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: new Date(1_000) });
    const tar = Buffer.concat([...blocks, Buffer.alloc(1024)]);
    const tr = new TarReader(new ByteReader((async function* () { yield tar; })()));
    const e = await tr.next();
    assert.equal(e?.path, path);
    const paxSize = libraryHeader(tar.subarray(0, BLOCK), [], undefined).size;
    const body = tar.subarray(BLOCK, BLOCK + paxSize);
    assert.ok(body.includes('line\nbreak'), 'the pax record holds the whole path');
    assert.notEqual(Pax.parse(body.toString('utf8'), undefined, false).path, path, 'the tar package splits records at newlines and loses it');
    assert.notEqual(libraryHeader(tar.subarray(BLOCK + Math.ceil(paxSize / BLOCK) * BLOCK), [body], undefined).path, path);
  });

  it('writes and reads back sub-second times before 1970 (tar cannot encode them in base-256), and GNU tar reads them too', async () => {
    for (const ms of [-86_400_500, 2 ** 34 * 1000 + 7]) {
      const blocks = headerBlocks({ path: 'data/ü-old', type: 'File', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: new Date(ms) });
      const tar = Buffer.concat([...blocks, Buffer.alloc(1024)]);
      const tr = new TarReader(new ByteReader((async function* () { yield tar; })()));
      const e = await tr.next();
      assert.equal(e?.mtimeMs, ms);
      assert.equal(e?.path, 'data/ü-old');
      const listed = execFileSync('tar', ['-t', '-v', '--full-time', '-f', '-'], { input: tar }).toString();
      assert.match(listed, /data\/ü-old/);
    }
  });
  it("hands an entry's body out in pieces, hashed, its padding skipped, and names the stream when it is cut short", async () => {
    const body = Buffer.from('x'.repeat(700));
    const file = (path: string) => [...headerBlocks({ path, type: 'File', mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: new Date(1_000) }), body, Buffer.alloc(1024 - body.length)];
    const tar = Buffer.concat([...file('data/a'), ...file('data/b'), Buffer.alloc(1024)]);
    const head = Buffer.concat(file('data/a')).length - 1024; // the header blocks (with any pax header) before a's body
    // delivered in small pieces, so that a body arrives in several
    const pieces = async function* (b: Buffer) {
      for (let i = 0; i < b.length; i += 300) yield b.subarray(i, i + 300);
    };
    const tr = new TarReader(new ByteReader(pieces(tar)));
    const h = createHash('sha256');
    const got: Buffer[] = [];
    assert.equal((await tr.next())?.path, 'data/a');
    for await (const p of tr.pieces(body.length, 'data/a', h)) got.push(p);
    assert.ok(got.length > 1);
    assert.deepEqual(Buffer.concat(got), body);
    assert.equal(h.digest('hex'), createHash('sha256').update(body).digest('hex'));
    // the padding was skipped: the next header is where the reader now is
    assert.equal((await tr.next())?.path, 'data/b');

    const cut = new TarReader(new ByteReader(pieces(tar.subarray(0, head + 400))), "the node's tar stream");
    await cut.next();
    await assert.rejects(
      async () => {
        for await (const _ of cut.pieces(body.length, 'data/a'));
      },
      (e: Error & { kind?: string }) => e.kind === 'integrity' && e.message === "the node's tar stream is truncated (in the middle of data/a)",
    );
    const noPad = new TarReader(new ByteReader(pieces(tar.subarray(0, head + 800))));
    await noPad.next();
    await assert.rejects(noPad.skip(body.length, 'data/a'), { message: 'the archive is truncated (after data/a)' });
  });
});
