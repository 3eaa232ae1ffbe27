// The node-local commands' builders and parsers (node-commands.ts): parsers
// on fixed outputs, and the scripts run here with this machine's sh, GNU
// find/tar and coreutils as a node would run them (skipped, with the reason,
// where those are missing).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, mkdir, symlink, writeFile, chmod, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { KompoxError } from '../../src/domain/errors.js';
import { createWriteStream } from 'node:fs';
import { digestTree, packTree, parseManifest, verifyManifest } from '../../src/archive/archive.js';
import { readFile } from 'node:fs/promises';
import { LocalHostFs } from '../../src/providers/k3s/hostfs.js';
import {
  checkArchiveNames,
  listTreeArgv,
  listingChange,
  manifestEntriesOf,
  missingTools,
  extractedSha256,
  withoutSha256,
  tarRefusal,
  extractArgv,
  splitExtractOutput,
  seenOf,
  parseTarNames,
  parseTools,
  parseTreeListing,
  secondsToMs,
  stageStatuses,
  toolsProbeArgv,
  treeDigestOfListing,
} from '../../src/providers/k3s/node-commands.js';

const run = (argv: string[]) => spawnSync(argv[0]!, argv.slice(1), { maxBuffer: 64 * 1024 * 1024 });
const tools = parseTools(run(toolsProbeArgv()).stdout.toString('utf8'));
const noGnu = missingTools(tools, 'snapshot');

describe('node-local commands: parsers', () => {
  it('reads the tool probe and says what is missing for each kind of work', () => {
    const t = parseTools('tar:tar (GNU tar) 1.34\nzstd:\nsha256sum-z:\nfind-printf:\nxargs:\ncp-a:\n');
    assert.equal(t.tar, 'gnu');
    assert.equal(missingTools(t, 'restore', 'tar.zst'), undefined);
    assert.equal(missingTools(t, 'restore', 'tar.gz'), 'the node lacks gzip');
    const busy = parseTools('tar:\nzstd:\nxargs:\ncp-a:\n');
    assert.equal(busy.tar, 'busybox');
    assert.equal(missingTools(busy, 'snapshot'), 'the node lacks GNU find (-printf), sha256sum -z (GNU coreutils), GNU tar (it has busybox tar)');
    assert.equal(missingTools(busy, 'copy'), 'the node lacks GNU find (-printf), sha256sum -z (GNU coreutils)');
  });

  it('parses a NUL-separated listing with spaces and newlines in names, and pairs hashes with files', () => {
    const h = 'a'.repeat(64);
    const out = Buffer.from(
      [
        'd 755 4096 1.5 2.25 ', '',
        'f 4755 3 1577934245.6789 1577934245.0001 a b\nc', '',
        'l 777 1 10 10 link', 'x y',
        'p 644 0 10 10 fifo', '',
        'kompox-hashes',
        `${h}  ./a b\nc`,
        '',
      ].join('\0'),
    );
    const l = parseTreeListing(out);
    assert.deepEqual(l.map((e) => [e.path, e.kind, e.mode, e.size]), [['', 'dir', 0o755, 4096], ['a b\nc', 'file', 0o4755, 3], ['link', 'symlink', 0o777, 1], ['fifo', 'other', 0o644, 0]]);
    assert.equal(l[1]!.mtimeMs, 1577934245678);
    assert.equal(l[1]!.sha256, h);
    assert.equal(l[2]!.linkpath, 'x y');
    const { entries, others } = manifestEntriesOf(l);
    assert.deepEqual(entries.map((e) => e.path), ['data', 'data/a b\nc', 'data/link']);
    assert.equal(entries[0]!.size, 0, 'a directory has no size in a manifest');
    assert.deepEqual(others, ['data/fifo']);
    // a file without a hash (changed or unreadable) is an error, not a silent gap
    const noHash = Buffer.from(['f 644 3 1 1 x', '', 'kompox-hashes', ''].join('\0'));
    assert.throws(() => parseTreeListing(noHash), /no SHA-256 for "x"/);
    assert.throws(() => parseTreeListing(Buffer.from('garbage\0')), /unreadable node listing record/);
  });

  it('reads times as whole milliseconds, and finds the first change between listings', () => {
    assert.equal(secondsToMs('12.3456'), 12345);
    assert.equal(secondsToMs('12'), 12000);
    assert.equal(secondsToMs('-1.5'), -1500);
    const a = parseTreeListing(Buffer.from(['d 755 0 1 1 ', '', 'f 644 3 1 1 x', '', ''].join('\0')), { hashes: false });
    assert.equal(listingChange(a, a), undefined);
    const touched = parseTreeListing(Buffer.from(['d 755 0 1 1 ', '', 'f 644 3 1 2 x', '', ''].join('\0')), { hashes: false });
    assert.equal(listingChange(a, touched), 'data/x changed');
    assert.equal(listingChange(a, a.slice(0, 1)), 'data/x was removed');
    assert.equal(listingChange(a.slice(0, 1), a), 'data/x was added');
  });

  it('reads stage statuses out of stderr', () => {
    const s = stageStatuses('zstd: bad\nkompox-stage-0:1\nkompox-stage-1:0\n', 2);
    assert.deepEqual(s.codes, [1, 0]);
    assert.equal(s.text, 'zstd: bad');
    assert.deepEqual(stageStatuses('', 2).codes, [undefined, undefined]);
  });

  it('unescapes tar member names and refuses what unpackArchive refuses', () => {
    assert.deepEqual(parseTarNames('data/\ndata/a\\nb\ndata/\\303\\251\ndata/back\\\\slash\n'), ['data/', 'data/a\nb', 'data/é', 'data/back\\slash']);
    const h = 'b'.repeat(64);
    const stderr = `tar: oops\nkompox-sha256:${h}  -\nkompox-stage-0:0\n`;
    assert.equal(extractedSha256(stderr), h);
    assert.equal(withoutSha256(stderr), 'tar: oops\nkompox-stage-0:0');
    checkArchiveNames(['data/', 'data/x', 'kompox-archive.json']);
    // what GNU tar says when it will not extract a member as named
    assert.match(tarRefusal("tar: data/../x: Member name contains '..'\n")!.message, /archive entry "data\/\.\.\/x" leaves the disk/);
    assert.match(tarRefusal("tar: Removing leading `/' from member names\n")!.message, /start with "\/" \(an absolute path/);
    assert.match(tarRefusal('tar: data/link/evil: Cannot open: Not a directory\n')!.message, /"data\/link\/evil" lies under a symlink or a file/);
    assert.equal(tarRefusal('tar: something else\n'), undefined);
    const refused = (names: string[], re: RegExp) => assert.throws(() => checkArchiveNames(names), (e: unknown) => e instanceof KompoxError && e.kind === 'integrity' && re.test(e.message));
    refused(['data/', '/etc/passwd', 'kompox-archive.json'], /absolute path/);
    refused(['data/', 'data/../../x', 'kompox-archive.json'], /contains "\.\."/);
    refused(['data/', 'other/x', 'kompox-archive.json'], /outside data\//);
    refused(['data/', 'data/x', 'data/x', 'kompox-archive.json'], /contains data\/x twice/);
    refused(['data/', 'kompox-archive.json', 'data/late'], /entries after kompox-archive.json/);
    refused(['data/', 'data/x'], /ends without kompox-archive.json/);
  });
});

describe('node-local commands: run here as on a node', { skip: noGnu }, () => {
  it('lists a tree with every name exactly; its tree digest is the archive code\'s', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kompox-nodecmd-'));
    try {
      await writeFile(join(dir, 'a b\nc'), 'abc');
      await mkdir(join(dir, 'sub'));
      await writeFile(join(dir, 'sub', 'é.txt'), '');
      await chmod(join(dir, 'sub'), 0o1750);
      await symlink('../target with space', join(dir, 'link'));
      const r = run(listTreeArgv(dir));
      assert.equal(r.status, 0, r.stderr.toString());
      const listed = parseTreeListing(r.stdout);
      assert.equal(treeDigestOfListing(listed), (await digestTree(new LocalHostFs(), dir)).treeDigest);

      // a Kompox archive of it, extracted by the node's command: names, SHA-256 and listing read back, the manifest verifies
      const archive = join(dir, '..', `${dir.split('/').pop()}.tar.zst`);
      const out = createWriteStream(archive);
      const packed = await packTree(new LocalHostFs(), dir, out);
      await new Promise<void>((resolve) => out.end(resolve));
      const dest = `${dir}-x`;
      try {
        const x = run(extractArgv(archive, dest, 'tar.zst'));
        assert.equal(x.status, 0, x.stderr.toString());
        const stderr = x.stderr.toString();
        assert.deepEqual(stageStatuses(withoutSha256(stderr), 2).codes, [0, 0]);
        assert.equal(extractedSha256(stderr), packed.sha256);
        const { names, listing } = splitExtractOutput(x.stdout);
        const got = parseTarNames(names);
        assert.ok(got.includes('data/a b\nc') && got[got.length - 1] === 'kompox-archive.json', JSON.stringify(got));
        const manifest = parseManifest(await readFile(join(dest, 'kompox-archive.json')));
        verifyManifest(manifest, seenOf(manifestEntriesOf(parseTreeListing(listing)).entries));
      } finally {
        await rm(dest, { recursive: true, force: true });
        await rm(archive, { force: true });
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
