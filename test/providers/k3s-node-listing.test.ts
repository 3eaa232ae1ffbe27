// The node-local copies' listings read as they stream, in bounded memory
// (node-listing.ts and the streaming parsers of node-commands.ts): chunks cut
// anywhere give what a whole-buffer parse gives, the join of hashes to files
// and the merges (manifest check, change check) keep every refusal.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { KompoxError } from '../../src/domain/errors.js';
import { buildManifest, manifestBody, verifyManifest, type ArchiveManifest, type ManifestEntry } from '../../src/archive/archive.js';
import {
  ExtractOutputParser,
  MANIFEST_MARK,
  TreeListingParser,
  firstChange,
  manifestEntriesOf,
  parseTreeListing,
  splitExtractOutput,
  statKey,
  unescapeTarName,
  type ListedEntry,
} from '../../src/providers/k3s/node-commands.js';
import { ArchiveNamesCheck, KeyLog, ListingError, ListingJoin, ManifestReader, manifestEntries } from '../../src/providers/k3s/node-listing.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

/** A listing as listTreeArgv prints it (find order: parents first, not sorted), with its hashes in another order. */
function listingText(): Buffer {
  return Buffer.from(
    [
      'd 755 4096 1.5 2.25 ', '',
      'd 700 4096 1 1 z', '',
      'f 644 2 1 1 z/b', '',
      'f 600 5 1577934245.6789 1577934245.0001 a b\nc', '',
      'l 777 1 10 10 link', 'kompox-hashes',
      'f 644 3 1 1 kompox-hashes', '',
      'kompox-hashes',
      `${sha('a b\nc')}  ./a b\nc`,
      `${sha('khash')}  ./kompox-hashes`,
      `${sha('zb')}  ./z/b`,
      '',
    ].join('\0'),
  );
}

/** Feeds BUF to WRITE cut at AT (and, with a step, into many pieces). */
function feed(write: (b: Buffer) => void, buf: Buffer, cuts: number[]): void {
  let prev = 0;
  for (const at of [...cuts, buf.length]) {
    write(buf.subarray(prev, at));
    prev = at;
  }
}

const joined = (l: ListingJoin) => [...l.sorted()].map((e) => [e.path, e.kind, e.sha256 ?? '', e.linkpath ?? '']);

describe('node-local listings as they stream', () => {
  it('parses a listing cut at every byte as it parses it whole; the join pairs each file with its hash in path order', () => {
    const buf = listingText();
    const whole = parseTreeListing(buf);
    const want = manifestEntriesOf(whole).entries.map((e) => e.path);
    assert.deepEqual(want, ['data', 'data/a b\nc', 'data/kompox-hashes', 'data/link', 'data/z', 'data/z/b']);
    for (let at = 0; at <= buf.length; at++) {
      const j = new ListingJoin();
      const p = new TreeListingParser(j);
      feed((b) => p.write(b), buf, [at]);
      p.end();
      const got = [...j.sorted()];
      assert.deepEqual(got.map((e) => `data${e.path ? '/' : ''}${e.path}`), want, `cut at ${at}`);
      j.close();
    }
    const j = new ListingJoin();
    const p = new TreeListingParser(j);
    for (let i = 0; i < buf.length; i++) p.write(buf.subarray(i, i + 1));
    p.end();
    const byPath = new Map(whole.map((e) => [e.path, e]));
    for (const e of j.sorted()) {
      const w = byPath.get(e.path)!;
      assert.deepEqual(e, w, e.path);
    }
    assert.equal(byPath.get('link')!.linkpath, 'kompox-hashes', 'a link target that reads as the mark is a link target');
    assert.equal(byPath.get('a b\nc')!.sha256, sha('a b\nc'));
  });

  it('refuses a listing that stops short, a file without a hash, a path twice; counts what archives never hold', () => {
    const p1 = new TreeListingParser(new ListingJoin());
    p1.write(Buffer.from('d 755 0 1 1 \0\0f 644 1 1 1 x\0'));
    assert.throws(() => p1.end(), /unreadable node listing record "f 644 1 1 1 x"/);
    const p2 = new TreeListingParser(new ListingJoin());
    p2.write(Buffer.from('d 755 0 1 1 \0\0'));
    assert.throws(() => p2.end(), /ended before its hashes/);
    assert.throws(() => new TreeListingParser(new ListingJoin()).write(Buffer.alloc(300 * 1024, 0x61)), /a field of over/);

    const j = new ListingJoin();
    const p = new TreeListingParser(j);
    p.write(Buffer.from(['d 755 0 1 1 ', '', 'p 644 0 1 1 zfifo', '', 's 755 0 1 1 sock', '', 'f 644 1 1 1 x', '', 'kompox-hashes', ''].join('\0')));
    p.end();
    assert.deepEqual([j.others, j.firstOther], [2, 'data/sock']);
    assert.throws(() => [...j.sorted()], (e: unknown) => e instanceof ListingError && /no SHA-256 for "x"/.test(e.message));
    // without hashes asked for (a change check) no file needs one
    assert.deepEqual([...new ListingJoin().sorted(false)], []);

    const twice = new ListingJoin();
    const q = new TreeListingParser(twice, { hashes: false });
    q.write(Buffer.from(['f 644 1 1 1 x', '', 'f 644 1 1 1 x', '', ''].join('\0')));
    q.end();
    assert.throws(() => [...twice.sorted(false)], (e: unknown) => e instanceof ListingError && /has "data\/x" twice/.test(e.message));
  });

  it('reads extractArgv\'s output cut anywhere: member names, the listing, then the manifest\'s bytes as they are', () => {
    const manifest = Buffer.from('{"format": "x\\u0000y", "entries": []}\n');
    const out = Buffer.concat([
      Buffer.from('data/\ndata/a\\nb\ndata/\\303\\251\nkompox-archive.json\n'),
      Buffer.from('\0kompox-listing\0'),
      listingText(),
      Buffer.from(`${MANIFEST_MARK}\0`),
      manifest,
    ]);
    const whole = splitExtractOutput(out);
    assert.deepEqual(whole.manifest, manifest);
    for (let at = 0; at <= out.length; at += 3) {
      const names: string[] = [];
      const j = new ListingJoin();
      const m: Buffer[] = [];
      const lp = new TreeListingParser(j, { endMark: MANIFEST_MARK, after: (b) => m.push(Buffer.from(b)) });
      const xp = new ExtractOutputParser((line) => names.push(unescapeTarName(line)), lp);
      feed((b) => xp.write(b), out, [at, Math.min(out.length, at + 7)]);
      assert.equal(xp.end(), true);
      assert.deepEqual(names, ['data/', 'data/a\nb', 'data/é', 'kompox-archive.json'], `cut at ${at}`);
      assert.deepEqual(Buffer.concat(m), manifest, `cut at ${at}`);
      assert.equal(lp.sawEnd, true);
      assert.equal([...j.sorted()].length, 6);
    }
    // tar failed before the listing: names only, no listing
    const names: string[] = [];
    const xp = new ExtractOutputParser((line) => names.push(line), new TreeListingParser(new ListingJoin()));
    xp.write(Buffer.from('data/\ndata/x'));
    assert.equal(xp.end(), false);
    assert.deepEqual(names, ['data/', 'data/x']);
    assert.throws(() => new ExtractOutputParser(() => undefined, new TreeListingParser(new ListingJoin())).write(Buffer.from('x\n\0other-mark\0')), /no listing mark/);
  });

  it('checks member names as checkArchiveNames does, the first refusal kept until finish()', () => {
    const check = (names: string[]) => {
      const c = new ArchiveNamesCheck();
      for (const n of names) c.name(n);
      try {
        c.finish();
      } finally {
        c.close();
      }
    };
    check(['data/', 'data/x', 'kompox-archive.json']);
    const refused = (names: string[], re: RegExp) => assert.throws(() => check(names), (e: unknown) => e instanceof KompoxError && e.kind === 'integrity' && re.test(e.message));
    refused(['data/', '/etc/passwd', 'kompox-archive.json'], /absolute path/);
    refused(['data/', 'data/../../x', 'kompox-archive.json'], /contains "\.\."/);
    refused(['data/', 'other/x', 'kompox-archive.json'], /outside data\//);
    refused(['data/', 'data/x', 'data/y', 'data/x', 'kompox-archive.json'], /contains data\/x twice/);
    refused(['data/', 'kompox-archive.json', 'data/late'], /entries after kompox-archive.json/);
    refused(['data/', 'data/x'], /ends without kompox-archive.json/);
  });

  it('verifies an extracted tree against a streamed manifest by a merge, with verifyManifest\'s refusals', () => {
    const entries: ManifestEntry[] = [
      { path: 'data', type: 'dir', mode: 0o755, size: 0 },
      { path: 'data/a', type: 'file', mode: 0o644, size: 1, sha256: sha('a') },
      { path: 'data/l', type: 'symlink', mode: 0o777, size: 0, linkpath: 'a' },
      { path: 'data/z', type: 'file', mode: 0o600, size: 2, sha256: sha('zz') },
    ];
    const body = manifestBody(buildManifest(entries, 'tar.zst', { createdAt: '2020-01-01T00:00:00Z' }));
    const verify = (seen: ManifestEntry[], text: Buffer = body, piece = 5) => {
      const r = new ManifestReader();
      try {
        for (let i = 0; i < text.length; i += piece) r.push(text.subarray(i, i + piece));
        r.verify(r.end(), seen);
      } finally {
        r.close();
      }
    };
    verify(entries);
    const refused = (seen: ManifestEntry[], re: RegExp, text?: Buffer) => assert.throws(() => verify(seen, text), (e: unknown) => e instanceof KompoxError && e.kind === 'integrity' && re.test(e.message));
    const withFile = (sha256: string) => entries.map((e) => (e.path === 'data/a' ? { ...e, sha256 } : e));
    refused(withFile(sha('b')), /file data\/a fails its SHA-256 check/);
    refused(entries.filter((e) => e.path !== 'data/l'), /the manifest lists data\/l but the archive does not contain it/);
    refused(entries.filter((e) => e.path !== 'data/z'), /the manifest lists data\/z but the archive does not contain it/);
    refused([...entries, { path: 'data/zz', type: 'file', mode: 0o644, size: 0, sha256: sha('') }], /archive entry data\/zz is not listed in the manifest/);
    refused(entries.map((e) => (e.path === 'data/l' ? { ...e, linkpath: 'b' } : e)), /symlink data\/l points to b but the manifest says a/);
    refused(entries.map((e) => (e.path === 'data/z' ? { ...e, mode: 0o644 } : e)), /the extracted tree's digest [0-9a-f]{64} differs/);
    // a manifest out of path order (older archives) still verifies; one listing a path twice does not
    const shuffled = JSON.parse(body.toString()) as { entries: ManifestEntry[] };
    shuffled.entries.reverse();
    verify(entries, Buffer.from(JSON.stringify(shuffled, null, 2)));
    shuffled.entries.push(shuffled.entries[0]!);
    refused(entries, /the manifest lists data\/z twice/, Buffer.from(JSON.stringify(shuffled)));
    refused(entries, /kompox-archive\.json in the archive is not valid JSON/, body.subarray(0, body.length - 10));
    refused(entries, /not a Kompox archive manifest/, Buffer.from('{"format": "other", "version": 1, "entries": []}'));
    // every entry as listed, the totals not theirs: refused here as by verifyManifest
    const claims = { ...(JSON.parse(body.toString()) as ArchiveManifest), symlinkCount: 2 };
    refused(entries, /the manifest says the archive holds 2 symlinks, but it holds 1$/, Buffer.from(JSON.stringify(claims)));
    assert.throws(() => verifyManifest(claims, new Map(entries.map((e) => [e.path, e]))), /the manifest says the archive holds 2 symlinks, but it holds 1$/);
  });

  it('finds the first change between two listings by a merge of paths and statKeys (kept in a KeyLog)', () => {
    const e = (path: string, over: Partial<ListedEntry> = {}): ListedEntry => ({ path, kind: 'file', mode: 0o644, size: 1, mtimeMs: 1000, ctime: '1.0', ...over });
    const before = [e(''), e('a'), e('b'), e('c')];
    const keys = new KeyLog();
    for (const x of before) keys.add(statKey(x));
    const paths = before.map((x) => (x.path ? `data/${x.path}` : 'data'));
    const zip = () => {
      const k = keys.keys();
      return paths.map((path) => ({ path, key: Buffer.from(k.next().value!) }));
    };
    assert.equal(firstChange(zip(), before), undefined);
    assert.equal(firstChange(zip(), [e(''), e('a'), e('b', { ctime: '1.5' }), e('c')]), 'data/b changed');
    assert.equal(firstChange(zip(), [e(''), e('a'), e('c')]), 'data/b was removed');
    assert.equal(firstChange(zip(), [e(''), e('a'), e('b'), e('c'), e('d')]), 'data/d was added');
    assert.equal(firstChange(zip(), [e(''), e('a'), e('ab'), e('b'), e('c')]), 'data/ab was added');
    assert.equal(firstChange(zip(), [e(''), e('a'), e('b')]), 'data/c was removed');
    assert.equal(firstChange(zip(), [e(''), e('a', { kind: 'symlink', linkpath: 'x' }), e('b'), e('c')]), 'data/a changed');
    // past one chunk of keys: read back in order
    const many = new KeyLog();
    const all = Array.from({ length: 20_000 }, (_, i) => statKey(e(`f${i}`)));
    for (const k of all) many.add(k);
    let i = 0;
    for (const k of many.keys()) assert.ok(k.equals(all[i++]!), `key ${i}`);
    assert.equal(i, all.length);
    many.close();
    keys.close();
  });

  it('gives a sorted listing\'s manifest entries, refusing what archives never hold', () => {
    const j = new ListingJoin();
    const p = new TreeListingParser(j);
    p.write(listingText());
    p.end();
    const m = [...manifestEntries(j.sorted())];
    assert.deepEqual(m, manifestEntriesOf(parseTreeListing(listingText())).entries);
    assert.throws(() => [...manifestEntries([{ path: 'f', kind: 'other', mode: 0, size: 0, mtimeMs: 0, ctime: '0' }])], /data\/f is not a file/);
  });
});

describe('names that are not UTF-8 in a node listing are refused, never compared as U+FFFD', () => {
  const refused = (said: RegExp) => (e: unknown) => e instanceof KompoxError && e.kind === 'unsupported' && e.code === 'archive.name.encoding' && said.test(e.message);
  const listing = (...fields: (string | Buffer)[]) => Buffer.concat(fields.flatMap((f) => [typeof f === 'string' ? Buffer.from(f) : f, Buffer.alloc(1)]));
  const parse = (b: Buffer, cut: number) => {
    const p = new TreeListingParser({ entry: () => undefined, hash: () => undefined }, { hashes: false, what: 'the listing of /d' });
    feed((x) => p.write(x), b, [cut]);
    p.end();
  };
  it('a name and a symlink target, whole or cut anywhere (a record cut inside the bad byte too); a name holding U+FFFD itself passes', () => {
    const badName = listing('d 755 4096 1 1 ', '', Buffer.concat([Buffer.from('f 644 1 1 1 bad'), Buffer.from([0xff]), Buffer.from('.txt')]), '');
    const badLink = listing('d 755 4096 1 1 ', '', 'l 777 1 1 1 link', Buffer.from([0x74, 0xff]));
    for (let cut = 0; cut <= badName.length; cut++) assert.throws(() => parse(badName, cut), refused(/the listing of \/d holds bad\\xff\.txt, whose name/));
    for (let cut = 0; cut <= badLink.length; cut++) assert.throws(() => parse(badLink, cut), refused(/the link link, whose target \(t\\xff\)/));
    parse(listing('d 755 4096 1 1 ', '', 'f 644 1 1 1 real\uFFFD', ''), 3);
  });
  it('a member name of tar -v (escaped as octal) that is not UTF-8', () => {
    assert.throws(() => unescapeTarName('data/bad\\377.txt'), refused(/the archive holds data\/bad\\xff\.txt/));
    assert.equal(unescapeTarName('data/real\\357\\277\\275'), 'data/real\uFFFD');
  });
});
