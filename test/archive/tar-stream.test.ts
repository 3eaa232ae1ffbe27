// The portable archive ⇄ plain tar streams (src/archive/tar-stream.ts), with
// the real tar programs a helper pod has: GNU tar here, and busybox tar when
// busybox is installed (the helper image is busybox). The manifests must be
// what packTree computes from the same files, and the trees extracted by
// either tar must have the tree digest of the source.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { link, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { createReadStream } from 'node:fs';
import { digestTree, measureTree, packTree, unpackArchive } from '../../src/archive/archive.js';
import { archivePathOf, archiveToTar, packTarStream } from '../../src/archive/tar-stream.js';
import { KompoxError } from '../../src/domain/errors.js';
import { LocalHostFs } from '../../src/providers/k3s/hostfs.js';
import { writeSampleTree } from '../providers/k3s-fixtures.js';
import { collect } from '../support/collect.js';

const fs = new LocalHostFs();
const BUSYBOX = '/usr/bin/busybox';
const tars: { name: string; argv: string[]; skip?: string }[] = [
  { name: 'GNU tar', argv: ['tar'] },
  { name: 'busybox tar', argv: [BUSYBOX, 'tar'], skip: existsSync(BUSYBOX) ? undefined : `${BUSYBOX} is not installed (apt-get install busybox)` },
];

/** `tar -c -f - -C dir .` as a stream. */
function tarCreate(argv: string[], dir: string): Readable {
  const child = spawn(argv[0]!, [...argv.slice(1), '-c', '-f', '-', '-C', dir, '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
  return child.stdout;
}

/** Feeds `tar -x -f - -C dir` and waits for it. */
async function tarExtract(argv: string[], dir: string, data: Buffer): Promise<void> {
  const child = spawn(argv[0]!, [...argv.slice(1), '-x', '-f', '-', '-C', dir], { stdio: ['pipe', 'inherit', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  child.stdin.end(data);
  const code = await new Promise<number | null>((r) => child.on('close', r));
  assert.equal(code, 0, `${argv.join(' ')} -x failed: ${err}`);
}

describe('archive ⇄ plain tar streams', () => {
  let root: string;
  let src: string;
  let srcDigest: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'tar-stream-'));
    src = join(root, 'src');
    await mkdir(src);
    await writeSampleTree(src);
    await link(join(src, 'run.sh'), join(src, 'sub', 'hard-link-to-run.sh'));
    srcDigest = (await digestTree(fs, src)).treeDigest;
    // not data: left out by packTree and by packTarStream alike
    spawnSync('mkfifo', [join(src, 'a-fifo')]);
  });
  after(async () => rm(root, { recursive: true, force: true }));

  test('tar paths map into the archive and never out of it', () => {
    assert.equal(archivePathOf('./'), 'data');
    assert.equal(archivePathOf('.'), 'data');
    assert.equal(archivePathOf('./a/b/'), 'data/a/b');
    assert.equal(archivePathOf('a'), 'data/a');
    assert.throws(() => archivePathOf('./../etc/passwd'), (e: unknown) => e instanceof KompoxError && e.kind === 'integrity');
    assert.throws(() => archivePathOf('/etc/passwd'), (e: unknown) => e instanceof KompoxError && e.kind === 'integrity');
  });

  for (const t of tars) {
    test(`${t.name} -c → packTarStream: the manifest packTree computes; hard links become files; a FIFO is left out`, { skip: t.skip }, async () => {
      let r!: Awaited<ReturnType<typeof packTarStream>>;
      const archive = await collect(async (out) => {
        r = await packTarStream(tarCreate(t.argv, src), out, { readLinkTarget: async (p) => createReadStream(join(src, p)) });
      });
      assert.equal(r.manifest.treeDigest, srcDigest);
      assert.deepEqual(r.skipped, ['data/a-fifo (FIFO)']);
      assert.ok(r.manifest.entries.some((e) => e.path === 'data/sub/hard-link-to-run.sh' && e.type === 'file' && e.size > 0));
      // a valid archive: it unpacks to the same tree
      const dest = join(root, `unpacked-${t.argv.length}`);
      const u = await unpackArchive(fs, Readable.from([archive]), dest, { expectedSha256: r.sha256 });
      assert.equal(u.manifest.treeDigest, srcDigest);
      assert.equal((await digestTree(fs, dest)).treeDigest, srcDigest);
    });

    test(`${t.name} -c → packTarStream: a hard link to a FIFO or a device is left out with it, its target never read`, { skip: t.skip ?? (process.getuid?.() === 0 ? undefined : 'mknod needs root') }, async () => {
      const dir = await mkdtemp(join(root, 'specials-'));
      await writeFile(join(dir, 'kept.txt'), 'kept\n');
      const made = spawnSync('sh', ['-c', 'mkfifo a-fifo && ln a-fifo fifo-link && mknod a-char c 1 3 && ln a-char char-link'], { cwd: dir });
      assert.equal(made.status, 0, String(made.stderr));
      const want = (await digestTree(fs, dir)).treeDigest;
      const read: string[] = [];
      const r = await packTarStream(tarCreate(t.argv, dir), new PassThrough().resume(), {
        readLinkTarget: async (p) => {
          read.push(p);
          throw new Error(`read ${p}`);
        },
      });
      assert.deepEqual(read, []);
      assert.equal(r.manifest.treeDigest, want);
      assert.deepEqual(
        r.skipped.map((x) => x.split(' ')[0]).sort(),
        ['data/a-char', 'data/a-fifo', 'data/char-link', 'data/fifo-link'],
      );
    });

    test(`archiveToTar → ${t.name} -x: the extracted tree has the source's digest`, { skip: t.skip }, async () => {
      for (const format of ['tar.zst', 'tar.gz'] as const) {
        let sha = '';
        const archive = await collect(async (out) => (sha = (await packTree(fs, src, out, { format })).sha256));
        const plain = await collect((out) => archiveToTar(Readable.from([archive]), out, { expectedSha256: sha }));
        assert.equal(plain.length % 10240, 0, 'padded to whole tar records');
        const dest = join(root, `x-${t.argv.length}-${format}`);
        await mkdir(dest);
        await tarExtract(t.argv, dest, plain);
        assert.equal((await digestTree(fs, dest)).treeDigest, srcDigest);
      }
    });
  }

  test('an empty lost+found at the top is filesystem metadata, left out; one with files is kept', async () => {
    const d = join(root, 'lf');
    await mkdir(join(d, 'lost+found'), { recursive: true });
    await writeFile(join(d, 'f'), 'x');
    const a = await packTarStream(tarCreate(['tar'], d), new PassThrough().resume());
    assert.deepEqual(a.manifest.entries.map((e) => e.path).sort(), ['data', 'data/f']);
    await writeFile(join(d, 'lost+found', '#123'), 'recovered');
    const b = await packTarStream(tarCreate(['tar'], d), new PassThrough().resume());
    assert.deepEqual(b.manifest.entries.map((e) => e.path).sort(), ['data', 'data/f', 'data/lost+found', 'data/lost+found/#123']);
  });

  test('archiveToTar refuses a damaged archive, a wrong checksum and a truncated stream (integrity)', async () => {
    const archive = await collect((out) => packTree(fs, src, out, { format: 'tar.gz' }));
    const isIntegrity = (e: unknown) => e instanceof KompoxError && e.kind === 'integrity';
    await assert.rejects(collect((out) => archiveToTar(Readable.from([archive]), out, { expectedSha256: '0'.repeat(64) })), isIntegrity);
    await assert.rejects(collect((out) => archiveToTar(Readable.from([archive.subarray(0, archive.length - 100)]), out)), isIntegrity);
    const bad = Buffer.from(archive);
    bad[Math.floor(bad.length / 2)] ^= 0xff;
    await assert.rejects(collect((out) => archiveToTar(Readable.from([bad]), out)), isIntegrity);
  });

  test('both directions end their progress with the files and bytes the archive holds (the transfer summary)', async () => {
    const ended: Array<{ files: number; bytes: number } | undefined> = [];
    const progress = { start: () => undefined, advance: () => undefined, done: (c?: { files: number; bytes: number }) => ended.push(c) };
    const d = join(root, 'counted');
    await mkdir(join(d, 'dir'), { recursive: true });
    await writeFile(join(d, 'a'), 'abc');
    await writeFile(join(d, 'dir', 'b'), '12345');
    const archive = await collect((out) => packTarStream(tarCreate(['tar'], d), out, { progress }));
    await archiveToTar(Readable.from([archive]), new PassThrough().resume(), { progress });
    assert.deepEqual(ended, [
      { files: 2, bytes: 8 },
      { files: 2, bytes: 8 },
    ]);
  });

  test('packTarStream: a total known up front or arriving later (a walk alongside) reaches the progress; one after the end, or a failed walk, does not; the end has the counts', async () => {
    const want = await measureTree(fs, src);
    type Call = [string, ...unknown[]];
    const recorder = () => {
      const calls: Call[] = [];
      return { calls, progress: { start: (l: string, t?: number) => calls.push(['start', l, t]), advance: () => undefined, total: (t: number) => calls.push(['total', t]), done: (c?: unknown) => calls.push(['done', c]) } };
    };
    const counts = { files: want.fileCount, bytes: want.totalBytes };
    const pack = (opts: Parameters<typeof packTarStream>[2]) =>
      packTarStream(tarCreate(['tar'], src), new PassThrough().resume(), { readLinkTarget: async (p) => createReadStream(join(src, p)), ...opts });

    const upFront = recorder();
    await pack({ progress: upFront.progress, progressLabel: 'x', totalBytes: 42 });
    assert.deepEqual(upFront.calls, [['start', 'x', 42], ['done', counts]]);

    // already known when packing starts: still after start()
    const atOnce = recorder();
    await pack({ progress: atOnce.progress, totalBytes: Promise.resolve(7) });
    assert.deepEqual(atOnce.calls, [['start', 'export', undefined], ['total', 7], ['done', counts]]);

    let resolveLate!: (n: number) => void;
    const late = recorder();
    await pack({ progress: late.progress, totalBytes: new Promise<number>((r) => (resolveLate = r)) });
    resolveLate(9);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(late.calls, [['start', 'export', undefined], ['done', counts]], 'a total after the end is dropped');

    const failed = recorder();
    await pack({ progress: failed.progress, totalBytes: Promise.reject(new Error('walk failed')) });
    assert.deepEqual(failed.calls, [['start', 'export', undefined], ['done', counts]]);
  });

  test('archiveToTar reads zstd frames that carry their content size and start mid-chunk (concatenated `zstd FILE` outputs)', async () => {
    const { zstdCompressSync, zstdDecompressSync } = await import('node:zlib');
    const archive = await collect((out) => packTree(fs, src, out));
    const plain = zstdDecompressSync(archive);
    // three frames cut at arbitrary places, each with its content size in the header (zlib's streaming
    // decoder alone stops after the first of these when the next begins inside the same chunk)
    const cuts = [0, Math.floor(plain.length / 3) + 7, Math.floor((2 * plain.length) / 3) - 5, plain.length];
    const frames = cuts.slice(1).map((end, i) => zstdCompressSync(plain.subarray(cuts[i], end)));
    assert.ok(frames.every((f) => (f[4]! & 0xc0) !== 0), 'each frame header says its content size');
    const joined = Buffer.concat(frames);
    const pieces: Buffer[] = [];
    for (let i = 0; i < joined.length; i += 7777) pieces.push(joined.subarray(i, i + 7777));
    const out = await collect((o) => archiveToTar(Readable.from(pieces), o));
    const dest = await mkdtemp(join(root, 'frames-'));
    const x = spawnSync('tar', ['-x', '-f', '-', '-C', dest], { input: out });
    assert.equal(x.status, 0, String(x.stderr));
    assert.equal((await digestTree(fs, dest)).treeDigest, (await digestTree(fs, src)).treeDigest);
  });

  test('a tar stream that ends without its end-of-archive marker is an incomplete export', async () => {
    const plain = await collect(async (out) => {
      for await (const c of tarCreate(['tar'], src)) out.write(c);
    });
    const cut = plain.subarray(0, 512 * 8);
    await assert.rejects(packTarStream(Readable.from([cut]), new PassThrough().resume()), (e: unknown) => e instanceof KompoxError && e.kind === 'integrity');
  });
});
