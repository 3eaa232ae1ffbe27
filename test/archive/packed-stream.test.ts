// Archives the node packed itself (adoptPackedStream in src/archive/tar-stream.ts):
// the node's script (packedTarScript in src/providers/k3s/ssh-hostfs.ts) run
// here with the real GNU tar, head and zstd, its stream adopted. The result
// must be an archive like any other: the manifest packTree makes of the same
// files, imported with the source's tree digest, read by the standard tools;
// and every way the node's stream can be wrong must be refused.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { link, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { ChecksumWriter, digestTree, packTree, readManifest, unpackArchive } from '../../src/archive/archive.js';
import { adoptPackedStream } from '../../src/archive/tar-stream.js';
import { KompoxError } from '../../src/domain/errors.js';
import { LocalHostFs } from '../../src/providers/k3s/hostfs.js';
import { packedTarScript } from '../../src/providers/k3s/ssh-hostfs.js';
import { writeSampleTree } from '../providers/k3s-fixtures.js';
import { collect } from '../support/collect.js';
import { zstdFrameCount } from '../support/zstd-frames.js';

const fs = new LocalHostFs();
const missing = ['tar', 'zstd', 'head'].filter((t) => spawnSync('sh', ['-c', `command -v ${t}`]).status !== 0);
const skip = missing.length ? `needs ${missing.join(', ')} on this machine` : undefined;

/** What a shell script prints on stdout, as the node's channel would carry it. */
async function run(script: string): Promise<Buffer> {
  const child = spawn('sh', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  let err = '';
  child.stdout.on('data', (c: Buffer) => out.push(c));
  child.stderr.on('data', (c: Buffer) => (err += c));
  const code = await new Promise<number | null>((r) => child.on('close', r));
  assert.equal(code, 0, `${script}: ${err}`);
  return Buffer.concat(out);
}

const isIntegrity = (re: RegExp) => (e: unknown) => e instanceof KompoxError && e.kind === 'integrity' && re.test(e.message);

describe('archives the node packed (adoptPackedStream)', { skip }, () => {
  let root: string;
  let src: string;
  let packed: Buffer;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'packed-stream-'));
    src = join(root, 'src');
    await mkdir(src);
    await writeSampleTree(src);
    await link(join(src, 'run.sh'), join(src, 'sub', 'hard-link-to-run.sh'));
    // a file ending in zero blocks: the end-of-archive marker is cut by count, never by looking for zeros
    await writeFile(join(src, 'zz-last-zeros.bin'), Buffer.concat([Buffer.from('head'), Buffer.alloc(4096)]));
    packed = await run(packedTarScript(src, { zstdWindowLog: true }));
  });
  after(async () => rm(root, { recursive: true, force: true }));

  const adopt = (input: Buffer | Readable, opts: Parameters<typeof adoptPackedStream>[2] = {}) =>
    collect(async (out) => adoptPackedStream(Buffer.isBuffer(input) ? Readable.from([input]) : (input as Readable), out, { createdAt: '2026-12-03T00:00:00Z', ...opts }));

  test("the node's zstd: the archives' level and minimum match, the link's window where it takes --zstd= (else its defaults)", () => {
    assert.match(packedTarScript('/d', { zstdWindowLog: true }), /\| zstd -T0 -5 --zstd=wlog=19,mml=6 -q -c$/);
    assert.match(packedTarScript('/d', {}), /\| zstd -T0 -5 -q -c$/);
    // another level (--level): the link's window still, zstd's own minimum match for that level
    assert.match(packedTarScript('/d', { zstdWindowLog: true }, 1), /\| zstd -T0 -1 --zstd=wlog=19 -q -c$/);
    assert.match(packedTarScript('/d', {}, 8), /\| zstd -T0 -8 -q -c$/);
  });

  test('a tree packed at another level adopts to the same manifest', async () => {
    const fast = await run(packedTarScript(src, { zstdWindowLog: true }, 1));
    const [a, b] = [await adopt(fast), await adopt(packed)];
    assert.equal((await readManifest(Readable.from([a]))).treeDigest, (await readManifest(Readable.from([b]))).treeDigest);
  });

  test("keeps the node's frame as it is and adds the manifest's: the manifest packTree makes, and the tree imports whole", async () => {
    const archive = await adopt(packed);
    assert.ok(archive.subarray(0, packed.length).equals(packed), "the node's bytes come first, unchanged");
    assert.equal(zstdFrameCount(archive), 2);
    const walked = await collect(async (out) => packTree(fs, src, out, { createdAt: '2026-12-03T00:00:00Z' }));
    const [mine, theirs] = [await readManifest(Readable.from([archive])), await readManifest(Readable.from([walked]))];
    assert.deepEqual(mine.entries, theirs.entries);
    assert.equal(mine.treeDigest, theirs.treeDigest);
    assert.ok(mine.entries.some((e) => e.path === 'data/sub/hard-link-to-run.sh' && e.type === 'file'), 'a hard link is a file of its own');

    const dest = join(root, 'imported');
    const r = await unpackArchive(fs, Readable.from([archive]), dest);
    assert.equal(r.manifest.treeDigest, mine.treeDigest);
    assert.equal((await digestTree(fs, dest)).treeDigest, (await digestTree(fs, src)).treeDigest);
    await rm(dest, { recursive: true, force: true }).catch(() => spawnSync('chmod', ['-R', 'u+w', dest]));

    // the standard tools read it: zstd checks both frames, tar lists the manifest last
    const listed = spawnSync('sh', ['-c', 'zstd -dc | tar -tf -'], { input: archive, maxBuffer: 64 * 1024 * 1024 });
    assert.equal(listed.status, 0, String(listed.stderr));
    assert.equal(String(listed.stdout).trim().split('\n').at(-1), 'kompox-archive.json');
  });

  test('the result, its SHA-256 and byte count are of the whole archive (a ChecksumWriter adopts that digest)', async () => {
    const sink = new PassThrough();
    const chunks: Buffer[] = [];
    sink.on('data', (c: Buffer) => chunks.push(c));
    const cw = new ChecksumWriter(sink);
    const r = await adoptPackedStream(Readable.from([packed]), cw);
    await new Promise<void>((res) => cw.end(res));
    const whole = Buffer.concat(chunks);
    const { createHash } = await import('node:crypto');
    assert.equal(r.bytes, whole.length);
    assert.equal(r.sha256, createHash('sha256').update(whole).digest('hex'));
    assert.equal(cw.sha256(), r.sha256);
  });

  test("waits for the node's command before the manifest: a failed tar leaves no manifest, so no import takes the bytes", async () => {
    const failure = new Error('tar -c failed (exit code 2)');
    const chunks: Buffer[] = [];
    const out = new PassThrough();
    out.on('data', (c: Buffer) => chunks.push(c));
    const finished = Promise.reject(failure);
    finished.catch(() => undefined); // awaited once the stream has been read
    await assert.rejects(adoptPackedStream(Readable.from([packed]), out, { finished }), (e: unknown) => e === failure);
    const written = Buffer.concat(chunks);
    assert.ok(written.length <= packed.length, 'nothing after the node bytes');
    await assert.rejects(readManifest(Readable.from([written])), (e: unknown) => e instanceof KompoxError && e.kind === 'integrity');
  });

  test("refuses a stream with the end-of-archive marker (the manifest could not come after it)", async () => {
    const whole = await run(packedTarScript(src, { zstdWindowLog: true }).replace(/head -c -\d+/, 'cat'));
    await assert.rejects(adopt(whole), isIntegrity(/end-of-archive marker/));
  });

  test('refuses a stream cut short, a member outside data/, a FIFO, a corrupt frame', async () => {
    await assert.rejects(adopt(packed.subarray(0, packed.length - 100)), (e: unknown) => e instanceof KompoxError && e.kind === 'integrity');
    const unmapped = await run(packedTarScript(src, { zstdWindowLog: true }).replace(/'--transform=[^']*'/, ''));
    await assert.rejects(adopt(unmapped), isIntegrity(/not under data\//));
    const withFifo = join(root, 'fifo-tree');
    await mkdir(withFifo);
    await writeFile(join(withFifo, 'a.txt'), 'a');
    spawnSync('mkfifo', [join(withFifo, 'pipe')]);
    await assert.rejects(adopt(await run(packedTarScript(withFifo, { zstdWindowLog: true }))), isIntegrity(/data\/pipe as FIFO/));
    const flipped = Buffer.from(packed);
    flipped[Math.floor(flipped.length / 2)]! ^= 0x10;
    await assert.rejects(adopt(flipped), (e: unknown) => e instanceof KompoxError && e.kind === 'integrity');
  });

  test('an empty disk is its data directory alone', async () => {
    const empty = join(root, 'empty');
    await mkdir(empty, { mode: 0o777 });
    const archive = await adopt(await run(packedTarScript(empty, {})));
    const m = await readManifest(Readable.from([archive]));
    assert.deepEqual(m.entries.map((e) => e.path), ['data']);
    assert.equal(m.fileCount, 0);
  });

  test('progress counts every file byte once, with the total given up front', async () => {
    const seen: number[] = [];
    let total: number | undefined;
    let done: { files: number; bytes: number } | undefined;
    await adopt(packed, {
      totalBytes: 123,
      progress: { start: (_l, t) => (total = t), advance: (n) => seen.push(n), done: (c) => (done = c) },
    });
    const m = await readManifest(Readable.from([await adopt(packed)]));
    assert.equal(total, 123);
    assert.equal(seen.reduce((a, b) => a + b, 0), m.totalBytes);
    assert.deepEqual(done, { files: m.fileCount, bytes: m.totalBytes });
  });
});
