// The direct header encoder (src/archive/tar-header.ts) must write exactly
// the bytes of the `tar` package's Header + Pax, which GNU tar and Kompox's
// reader are known to read: compared on random entries (seeded), on the
// edges of its fast path, and read back by GNU tar.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { Header, Pax } from 'tar';
import { headerBlocks, type EntryHeader } from '../../src/archive/tar-header.js';
import { prng } from '../support/prng.js';

function viaTarPackage(d: EntryHeader): Buffer {
  const header = new Header({ ...d, linkpath: d.linkpath ?? '' });
  header.encode();
  const pax = new Pax({ path: d.path, linkpath: d.linkpath, mtime: d.mtime, size: d.size, uid: d.uid, gid: d.gid }).encode();
  return Buffer.concat([pax, header.block!]);
}

const CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ._-=+,@%~#';

function randomEntry(r: () => number): EntryHeader {
  const pick = (n: number) => Math.floor(r() * n);
  const seg = () => Array.from({ length: 1 + pick(30) }, () => CHARS[pick(CHARS.length)]).join('');
  const depth = 1 + pick(5);
  let path = `data/${Array.from({ length: depth }, seg).join('/')}`;
  const type = (['File', 'Directory', 'SymbolicLink'] as const)[pick(3)]!;
  if (type === 'Directory') path += '/';
  const big = r() < 0.1;
  return {
    path,
    type,
    mode: (type === 'Directory' ? 0o40000 : type === 'SymbolicLink' ? 0o120000 : 0o100000) | pick(0o7777 + 1),
    uid: big ? pick(0o7777777 + 1) : pick(70000),
    gid: big ? pick(0o7777777 + 1) : pick(70000),
    size: type === 'File' ? (big ? pick(0o77777777777 + 1) : pick(1 << 20)) : 0,
    mtime: new Date(r() < 0.2 ? pick(2e9) * 1000 : pick(4e12)),
    ...(type === 'SymbolicLink' ? { linkpath: r() < 0.5 ? seg() : `../${seg()}/${seg()}` } : {}),
  };
}

describe('tar header encoder', () => {
  test('writes the bytes the tar package writes, on 3,000 random entries', () => {
    const r = prng(20261202);
    let fast = 0;
    for (let i = 0; i < 3000; i++) {
      const d = randomEntry(r);
      const mine = headerBlocks(d);
      if (mine.length === 1) fast++;
      assert.deepEqual(Buffer.concat(mine), viaTarPackage(d), `entry ${i}: ${JSON.stringify(d)}`);
    }
    // the random entries are mostly the usual kind: the fast path must have taken them
    assert.ok(fast > 2500, `fast path taken ${fast} times`);
  });

  test('the edges of the fast path give the same bytes (long, non-ASCII, huge, pre-1970)', () => {
    const base: EntryHeader = { path: 'data/x', type: 'File', mode: 0o100644, uid: 1000, gid: 1000, size: 5, mtime: new Date(1_700_000_000_123) };
    const cases: EntryHeader[] = [
      { ...base, path: `data/${'a'.repeat(94)}` }, // 99 bytes: fast
      { ...base, path: `data/${'a'.repeat(95)}` }, // 100 bytes: tar splits a prefix
      { ...base, path: `data/${'b'.repeat(60)}/${'c'.repeat(80)}` },
      { ...base, path: `data/${'d'.repeat(300)}` },
      { ...base, path: 'data/héllo wörld' },
      { ...base, path: 'data/日本語/ファイル' },
      { ...base, size: 0o77777777777 }, // the largest octal size
      { ...base, size: 0o77777777777 + 1 }, // 8 GiB: base-256
      { ...base, uid: 0o7777777 + 1, gid: 2 ** 31 },
      { ...base, mtime: new Date(-86_400_000) },
      { ...base, mtime: new Date(0) },
      { ...base, type: 'SymbolicLink', size: 0, linkpath: 'l'.repeat(100) },
      { ...base, type: 'SymbolicLink', size: 0, linkpath: 'l'.repeat(101) },
      { ...base, type: 'SymbolicLink', size: 0, linkpath: '../ü' },
      { ...base, type: 'Directory', path: 'data/', size: 0, mode: 0o40777 },
    ];
    for (const d of cases) assert.deepEqual(Buffer.concat(headerBlocks(d)), viaTarPackage(d), JSON.stringify(d));
    assert.equal(headerBlocks(cases[0]!).length, 1, 'a 99-byte ASCII path takes the fast path');
    assert.equal(headerBlocks(cases[1]!).length, 2, 'a 100-byte path goes through tar');
  });

  test('GNU tar lists what the encoder wrote', { skip: spawnSync('tar', ['--version']).error ? 'tar is not installed' : false }, () => {
    const entries: EntryHeader[] = [
      { path: 'data/', type: 'Directory', mode: 0o40755, uid: 0, gid: 0, size: 0, mtime: new Date(1_700_000_000_500) },
      { path: 'data/a file.txt', type: 'File', mode: 0o100640, uid: 1000, gid: 1000, size: 3, mtime: new Date(1_700_000_001_250) },
      { path: 'data/link', type: 'SymbolicLink', mode: 0o120777, uid: 1000, gid: 1000, size: 0, mtime: new Date(1_700_000_002_000), linkpath: 'a file.txt' },
    ];
    const parts: Buffer[] = [];
    for (const e of entries) {
      parts.push(...headerBlocks(e));
      if (e.size) parts.push(Buffer.concat([Buffer.from('abc'), Buffer.alloc(512 - 3)]));
    }
    parts.push(Buffer.alloc(1024));
    const r = spawnSync('tar', ['-tv', '--numeric-owner', '--full-time', '-f', '-'], { input: Buffer.concat(parts), encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 3);
    assert.match(lines[0]!, /^drwxr-xr-x 0\/0 +0 .* data\/$/);
    assert.match(lines[1]!, /^-rw-r----- 1000\/1000 +3 .* data\/a file\.txt$/);
    assert.match(lines[2]!, /^lrwxrwxrwx 1000\/1000 +0 .* data\/link -> a file\.txt$/);
  });
});
