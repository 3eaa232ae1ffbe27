// Files of 8 GiB and more (a database's data file, a repository pack) in the
// tar streams every data path reads and writes, with the real tar programs:
// GNU tar (a node over SSH, a helper image with GNU tar) and busybox tar (the
// default helper image). Tar's ustar size field holds at most 8 GiB - 1 in
// octal with its terminator; beyond that GNU tar writes a pax `size` record
// (--format=pax, as Kompox runs it) or a base-256 number (--format=gnu), and
// busybox writes all 12 octal digits with no terminator up to 64 GiB, then
// base-256. Kompox writes a pax `size` record and a base-256 ustar field.
//
// Sparse files make the sizes cheap: the tools write an entry's header
// before its data, so the first blocks of their stream are read and the tool
// stopped; and the archives Kompox writes are made sparse on disk, which
// both tars list and extract members from by seeking over the big one. (A
// whole round trip of a 9 GiB file through every path was run by hand:
// docs/disks-and-snapshots.md, "Big files".)
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, ftruncateSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { ByteReader, TarReader } from '../../src/archive/archive.js';
import { headerBlocks } from '../../src/archive/tar-header.js';

const GiB = 1024 ** 3;
/** Sizes past the ustar field's 8 GiB - 1 and past busybox's 12 octal digits (64 GiB - 1); odd, so padding shows. */
const SIZES = [8 * GiB + 4097, 65 * GiB + 4097];
const BUSYBOX = '/usr/bin/busybox';
const noBusybox = existsSync(BUSYBOX) ? undefined : `${BUSYBOX} is not installed (apt-get install busybox)`;
const gnuTar = spawnSync('tar', ['--version'], { encoding: 'utf8' }).stdout?.includes('GNU tar') ? 'tar' : undefined;
const noGnuTar = gnuTar ? undefined : 'GNU tar is not installed as `tar`';

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'kompox-tar-big-'));
});
after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A sparse file of `size` bytes: `HEAD` at its start and `TAIL` at its end, holes between. */
function sparseFile(path: string, size: number): void {
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, Buffer.from('HEAD'), 0, 4, 0);
    writeSync(fd, Buffer.from('TAIL'), 0, 4, size - 4);
    ftruncateSync(fd, size);
  } finally {
    closeSync(fd);
  }
}

/** The first `bytes` of what `argv` writes to stdout; the command is stopped then (it would go on reading the file). */
async function streamHead(argv: string[], bytes: number): Promise<Buffer> {
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const got: Buffer[] = [];
  let n = 0;
  for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
    got.push(chunk);
    n += chunk.length;
    if (n >= bytes) break;
  }
  child.kill('SIGKILL');
  const out = Buffer.concat(got);
  assert.ok(out.length >= bytes, `${argv.join(' ')} wrote ${out.length} bytes: ${stderr}`);
  return out.subarray(0, bytes);
}

/** The first entry of a tar stream's head, as Kompox's reader decodes it, and the first bytes of its body. */
async function firstEntry(head: Buffer): Promise<{ path: string; size: number; type: string; body: Buffer }> {
  const tr = new TarReader(new ByteReader(Readable.from([head])[Symbol.asyncIterator]()));
  const e = await tr.next();
  assert.ok(e, 'an entry');
  const body = (await tr.reader.read(4)) as Buffer;
  return { path: e.path, size: e.size, type: e.type, body: Buffer.from(body) };
}

describe("Kompox's reader on big files as the real tars write them", () => {
  for (const size of SIZES) {
    const tools = [
      { name: 'busybox tar', argv: [BUSYBOX, 'tar'], skip: noBusybox },
      { name: 'GNU tar --format=pax (the node, a GNU helper image)', argv: ['tar', '--format=pax'], skip: noGnuTar },
      { name: 'GNU tar --format=gnu (base-256)', argv: ['tar', '--format=gnu'], skip: noGnuTar },
    ];
    for (const tool of tools) {
      it(`${tool.name}: a file of ${size} bytes has its exact size, and its body starts where the reader says`, { skip: tool.skip }, async () => {
        const name = `f-${size}`;
        sparseFile(join(dir, name), size);
        try {
          const head = await streamHead([...tool.argv, '-c', '-f', '-', '-C', dir, name], 8 * 512);
          const e = await firstEntry(head);
          assert.equal(e.path, name);
          assert.equal(e.type, 'File');
          assert.equal(e.size, size, 'the size read back');
          assert.equal(e.body.toString('latin1'), 'HEAD', "the body starts right after the header (the header's length read right)");
        } finally {
          rmSync(join(dir, name), { force: true });
        }
      });
    }
  }
});

describe('the real tars on big files as Kompox writes them (an import through a helper pod, or on a node)', () => {
  /**
   * A sparse tar file as Kompox's writer makes one: `data/big` of `size` bytes (HEAD ... TAIL), then
   * `data/after` holding `hello`, then the end-of-archive marker.
   */
  function ourArchive(path: string, size: number): void {
    const fd = openSync(path, 'w');
    let at = 0;
    const put = (b: Buffer) => {
      writeSync(fd, b, 0, b.length, at);
      at += b.length;
    };
    const mtime = new Date(1_700_000_000_000);
    try {
      for (const b of headerBlocks({ path: 'data/big', type: 'File', mode: 0o644, uid: 0, gid: 0, size, mtime })) put(b);
      put(Buffer.from('HEAD'));
      at += size - 8;
      put(Buffer.from('TAIL'));
      at += (512 - (size % 512)) % 512;
      for (const b of headerBlocks({ path: 'data/after', type: 'File', mode: 0o644, uid: 0, gid: 0, size: 5, mtime })) put(b);
      put(Buffer.from('hello'));
      at += 507 + 1024;
      ftruncateSync(fd, at);
    } finally {
      closeSync(fd);
    }
  }

  for (const size of SIZES) {
    for (const tool of [
      { name: 'busybox tar', argv: [BUSYBOX, 'tar'], skip: noBusybox },
      { name: 'GNU tar', argv: ['tar'], skip: noGnuTar },
    ]) {
      it(`${tool.name} lists data/big at ${size} bytes and extracts the member after it`, { skip: tool.skip }, () => {
        const file = join(dir, `ours-${size}.tar`);
        ourArchive(file, size);
        try {
          // both seek over a member's body in a regular file: nothing of the 8+ GiB is read
          const list = spawnSync(tool.argv[0]!, [...tool.argv.slice(1), '-t', '-v', '-f', file], { encoding: 'utf8', timeout: 20_000 });
          assert.equal(list.status, 0, list.stderr);
          const big = list.stdout.split('\n').find((l) => l.endsWith(' data/big'));
          assert.ok(big, list.stdout);
          assert.match(big, new RegExp(`\\s${size}\\s`), `the listed size of data/big: ${big}`);
          const after = spawnSync(tool.argv[0]!, [...tool.argv.slice(1), '-x', '-O', '-f', file, 'data/after'], { encoding: 'utf8', timeout: 20_000 });
          assert.equal(after.status, 0, after.stderr);
          assert.equal(after.stdout, 'hello', 'the member after the big one is found where its size puts it');
        } finally {
          rmSync(file, { force: true });
        }
      });
    }
  }
});
