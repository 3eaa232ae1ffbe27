import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { zstdCompressSync } from 'node:zlib';
import { buildManifest, manifestBlocks, manifestBody, unpackArchive, type ManifestEntry } from '../../src/archive/archive.js';
import { ManifestStream } from '../../src/archive/manifest-stream.js';
import { headerBlocks } from '../../src/archive/tar-header.js';
import { KompoxError } from '../../src/domain/errors.js';
import { LocalHostFs } from '../../src/providers/k3s/hostfs.js';
import { sandbox, type Sandbox } from '../providers/k3s-fixtures.js';
import { prng } from '../support/prng.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

function entriesOf(n: number): ManifestEntry[] {
  const out: ManifestEntry[] = [{ path: 'data', type: 'dir', mode: 0o755, size: 0 }];
  for (let i = 0; i < n; i++) out.push({ path: `data/f "${i}" ü\\😀`, type: 'file', mode: 0o644, size: i, sha256: sha(String(i)) });
  out.push({ path: 'data/l', type: 'symlink', mode: 0o777, size: 0, linkpath: '../x' });
  return out;
}

/** Feeds `text` in chunks of the given sizes (cycled); returns the entries and the head. */
function streamed(text: Buffer, sizes: number[]) {
  const got: ManifestEntry[] = [];
  const ms = new ManifestStream((e) => got.push(e));
  for (let at = 0, i = 0; at < text.length; i++) {
    const n = sizes[i % sizes.length]!;
    ms.push(text.subarray(at, at + n));
    at += n;
  }
  ms.end();
  return { got, head: ms.head };
}

function refused(fn: () => void, re: RegExp) {
  assert.throws(fn, (e: unknown) => e instanceof KompoxError && e.kind === 'integrity' && re.test(e.message));
}

describe('ManifestStream', () => {
  const m = buildManifest(entriesOf(300), 'tar.zst', { createdAt: '2026-12-02T00:00:00Z', source: { disk: 'd', sizeGiB: 2 } });
  const { entries, ...head } = m;

  it('gives every entry and field of a manifest, whatever the chunking, pretty-printed, compact or keys reordered', () => {
    const texts = [manifestBody(m), Buffer.from(JSON.stringify(m)), Buffer.from(JSON.stringify({ entries, ...head }, null, '\t'))];
    const rnd = prng(3);
    for (const text of texts) {
      for (const sizes of [[1], [7, 3], [4096], [text.length], Array.from({ length: 20 }, () => 1 + Math.floor(rnd() * 900))]) {
        const r = streamed(text, sizes);
        assert.deepEqual(r.got, entries);
        assert.deepEqual(r.head, head);
      }
    }
  });

  it('refuses what is not one complete manifest object', () => {
    const text = manifestBody(m).toString();
    refused(() => streamed(Buffer.from(text.slice(0, -20)), [64]), /ends in the middle/);
    refused(() => streamed(Buffer.from(`${text} {}`), [64]), /more after/);
    refused(() => streamed(Buffer.from('[1, 2]'), [64]), /not a JSON object/);
    refused(() => streamed(Buffer.from('{"entries": {"path": "x"}}'), [64]), /not one array/);
    refused(() => streamed(Buffer.from('{"entries": [], "entries": []}'), [64]), /not one array/);
    refused(() => streamed(Buffer.from('{"entries": [{"type": "file"}]}'), [64]), /malformed entry/);
    refused(() => streamed(Buffer.from('{"entries": [1,]}'), [64]), /malformed entry|does not parse/);
    refused(() => streamed(Buffer.from('{"format": "kompox-archive"}'), [64]), /no entries/);
  });
});

describe('unpackArchive with a manifest read entry by entry', () => {
  let sb: Sandbox;
  before(async () => {
    sb = await sandbox();
  });
  after(() => sb.cleanup());

  /** An archive of `data/` and files `names` whose manifest lists `listed` (default: as written). */
  function archive(names: string[], order: (es: ManifestEntry[]) => ManifestEntry[] = (es) => es): Buffer {
    const parts: Buffer[] = [];
    const es: ManifestEntry[] = [{ path: 'data', type: 'dir', mode: 0o755, size: 0 }];
    parts.push(...headerBlocks({ path: 'data/', type: 'Directory', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: new Date(0) }));
    for (const n of names) {
      const body = Buffer.from(n);
      parts.push(...headerBlocks({ path: `data/${n}`, type: 'File', mode: 0o644, uid: 0, gid: 0, size: body.length, mtime: new Date(0) }), body, Buffer.alloc(512 - body.length));
      es.push({ path: `data/${n}`, type: 'file', mode: 0o644, size: body.length, sha256: sha(n) });
    }
    const m = buildManifest(es, 'tar.zst', {});
    m.entries = order(es);
    parts.push(...manifestBlocks(m));
    return zstdCompressSync(Buffer.concat(parts));
  }
  const fs = new LocalHostFs();
  let n = 0;
  const unpack = (buf: Buffer) => unpackArchive(fs, Readable.from([buf]), join(sb.dir, `out${n++}`));

  it('imports a manifest listed in depth-first order (older archives) as well as in path order', async () => {
    const names = ['a', 'a-b', 'a.txt', 'b'];
    await unpack(archive(names));
    await unpack(archive(names, (es) => [...es].reverse()));
  });

  it('refuses a manifest that lists an entry twice, leaves one out, or lists one the archive lacks', async () => {
    const names = ['a', 'b'];
    const rejects = (p: Promise<unknown>, re: RegExp) => assert.rejects(p, (e: unknown) => e instanceof KompoxError && e.kind === 'integrity' && re.test(e.message));
    await rejects(unpack(archive(names, (es) => [...es, es[1]!])), /lists data\/a twice/);
    await rejects(unpack(archive(names, (es) => es.slice(0, 2))), /data\/b is not listed in the manifest/);
    await rejects(unpack(archive(names, (es) => [...es, { path: 'data/c', type: 'file', mode: 0o644, size: 1, sha256: sha('c') }])), /lists data\/c but the archive does not contain it/);
    await rejects(unpack(archive(names, (es) => es.map((e) => (e.path === 'data/b' ? { ...e, mode: 0o600 } : e)))), /data\/b has mode 644 but the manifest says 600/);
  });
});
