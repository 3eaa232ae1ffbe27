import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, lstat, readlink, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { gzipSync, gunzipSync } from 'node:zlib';
import { Header, Pax } from 'tar';
import { KompoxError } from '../../src/domain/errors.js';
import { MANIFEST_NAME, digestTree, packTree, readManifest, unpackArchive } from '../../src/archive/archive.js';
import { LocalHostFs } from '../../src/providers/k3s/hostfs.js';
import { sandbox, writeSampleTree, type Sandbox } from '../providers/k3s-fixtures.js';

const fs = new LocalHostFs();

async function packToBuffer(dir: string) {
  const sink = new PassThrough();
  const chunks: Buffer[] = [];
  sink.on('data', (c: Buffer) => chunks.push(c));
  const r = await packTree(fs, dir, sink, { source: { disk: 'src' } });
  sink.end();
  return { buf: Buffer.concat(chunks), ...r };
}

/** A hand-made tar.gz with the given entries (to test refusals of hostile archives). */
function craft(entries: Array<{ path: string; type: 'File' | 'Directory' | 'SymbolicLink'; body?: string; linkpath?: string }>): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const body = Buffer.from(e.body ?? '');
    parts.push(new Pax({ path: e.path, linkpath: e.linkpath }).encode());
    const h = new Header({ path: e.path, type: e.type, mode: 0o644, size: body.length, mtime: new Date(), linkpath: e.linkpath ?? '' });
    h.encode();
    parts.push(h.block!);
    if (body.length) {
      parts.push(body, Buffer.alloc((512 - (body.length % 512)) % 512));
    }
  }
  parts.push(Buffer.alloc(1024));
  return gzipSync(Buffer.concat(parts));
}

async function expectIntegrity(p: Promise<unknown>, re: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof KompoxError, `expected KompoxError, got ${String(e)}`);
    assert.equal(e.kind, 'integrity');
    assert.match(e.message, re);
    return true;
  });
}

describe('portable archive', () => {
  let sb: Sandbox;
  let src: string;
  before(async () => {
    sb = await sandbox();
    src = join(sb.dir, 'src');
    await mkdir(src);
    await writeSampleTree(src);
  });
  after(() => sb.cleanup());

  it('round-trips a tree: content, modes, symlinks (not followed), empty dirs, unicode, mtimes', async () => {
    const { buf, sha256, bytes, manifest } = await packToBuffer(src);
    assert.equal(bytes, buf.length);
    assert.equal(sha256, createHash('sha256').update(buf).digest('hex'));
    const dest = join(sb.dir, 'rt');
    const r = await unpackArchive(fs, Readable.from([buf]), dest, { expectedSha256: sha256 });
    assert.equal(r.sha256, sha256);
    const a = await digestTree(fs, src);
    const b = await digestTree(fs, dest);
    assert.equal(b.treeDigest, a.treeDigest);
    assert.equal(manifest.treeDigest, a.treeDigest);
    assert.deepEqual(b.entries, a.entries);
    assert.equal(manifest.fileCount, a.entries.filter((e) => e.type === 'file').length);
    assert.equal(await readlink(join(dest, 'absolute-link')), '/etc/passwd');
    assert.ok((await lstat(join(dest, 'absolute-link'))).isSymbolicLink());
    assert.ok((await lstat(join(dest, 'empty-dir'))).isDirectory());
    assert.equal((await lstat(join(dest, 'run.sh'))).mode & 0o777, 0o755);
    assert.equal((await lstat(join(dest, 'secret.key'))).mode & 0o777, 0o600);
    assert.equal((await lstat(join(dest, 'read-only'))).mode & 0o777, 0o555);
    assert.equal(await readFile(join(dest, 'read-only', 'frozen.txt'), 'utf8'), 'cannot touch this\n');
    assert.equal((await lstat(join(dest, 'sub', 'deeper', 'note.txt'))).mtime.toISOString(), '2020-01-02T03:04:05.678Z');
    assert.equal((await readFile(join(dest, 'sub', '日本語-ファイル.txt'), 'utf8')), 'ユニコード\n');
  });

  it('is a gzip POSIX pax tar with the manifest as the last entry', async () => {
    const { buf } = await packToBuffer(src);
    const tar = gunzipSync(buf);
    // pax extended header type flag 'x' on the first entry
    assert.equal(String.fromCharCode(tar[156]!), 'x');
    const m = await readManifest(Readable.from([buf]));
    assert.equal(m.format, 'kompox-archive');
    assert.equal(m.entries[0]!.path, 'data');
    const text = tar.toString('latin1');
    // the manifest's header comes after every data entry (its JSON body names them again)
    assert.ok(text.indexOf(MANIFEST_NAME) > text.indexOf('data/sub/deeper/note.txt'));
    assert.ok(text.indexOf(MANIFEST_NAME) > text.indexOf('data/secret.key'));
  });

  it('refuses a flipped byte', async () => {
    const { buf } = await packToBuffer(src);
    const bad = Buffer.from(buf);
    bad[Math.floor(bad.length / 2)]! ^= 0xff;
    await expectIntegrity(unpackArchive(fs, Readable.from([bad]), join(sb.dir, 'flip')), /gzip|SHA-256|checksum|digest|truncated/);
  });

  it('refuses a truncated archive', async () => {
    const { buf } = await packToBuffer(src);
    await expectIntegrity(unpackArchive(fs, Readable.from([buf.subarray(0, buf.length - 100)]), join(sb.dir, 'trunc')), /truncated|gzip/);
  });

  it('refuses a wrong expected checksum', async () => {
    const { buf } = await packToBuffer(src);
    await expectIntegrity(unpackArchive(fs, Readable.from([buf]), join(sb.dir, 'wrongsum'), { expectedSha256: '0'.repeat(64) }), /SHA-256 is [0-9a-f]{64}, expected 0{64}/);
  });

  it('refuses path traversal and absolute entries', async () => {
    const evil = craft([
      { path: 'data/', type: 'Directory' },
      { path: 'data/../../evil.txt', type: 'File', body: 'x' },
    ]);
    await expectIntegrity(unpackArchive(fs, Readable.from([evil]), join(sb.dir, 'trav')), /leaves the disk/);
    const abs = craft([{ path: '/etc/evil', type: 'File', body: 'x' }]);
    await expectIntegrity(unpackArchive(fs, Readable.from([abs]), join(sb.dir, 'abs')), /absolute path/);
  });

  it('refuses writing through a symlink in the archive', async () => {
    const evil = craft([
      { path: 'data/', type: 'Directory' },
      { path: 'data/link', type: 'SymbolicLink', linkpath: '/tmp' },
      { path: 'data/link/evil.txt', type: 'File', body: 'x' },
    ]);
    await expectIntegrity(unpackArchive(fs, Readable.from([evil]), join(sb.dir, 'through')), /parent is not a directory/);
  });

  it('refuses an archive without a manifest, and a file whose content does not match the manifest', async () => {
    const none = craft([{ path: 'data/', type: 'Directory' }]);
    await expectIntegrity(unpackArchive(fs, Readable.from([none]), join(sb.dir, 'nomani')), /without kompox-archive.json/);
    const manifest = {
      format: 'kompox-archive',
      version: 1,
      createdAt: '2025-01-01T00:00:00Z',
      source: {},
      fileCount: 1,
      dirCount: 1,
      symlinkCount: 0,
      totalBytes: 1,
      treeDigest: 'x',
      entries: [
        { path: 'data', type: 'dir', mode: 0o644, size: 0 },
        { path: 'data/a', type: 'file', mode: 0o644, size: 1, sha256: createHash('sha256').update('b').digest('hex') },
      ],
    };
    const lying = craft([
      { path: 'data/', type: 'Directory' },
      { path: 'data/a', type: 'File', body: 'a' },
      { path: MANIFEST_NAME, type: 'File', body: JSON.stringify(manifest) },
    ]);
    await expectIntegrity(unpackArchive(fs, Readable.from([lying]), join(sb.dir, 'lying')), /fails its SHA-256 check/);
  });
});
