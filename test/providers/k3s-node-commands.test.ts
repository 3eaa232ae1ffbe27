// The node-local commands' builders and parsers (node-commands.ts): parsers
// on fixed outputs, and the scripts run here with this machine's sh, GNU
// find/tar and coreutils as a node would run them (skipped, with the reason,
// where those are missing).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, mkdir, symlink, writeFile, chmod, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { KompoxError } from '../../src/domain/errors.js';
import { createWriteStream, readFileSync, rmSync } from 'node:fs';
import { digestTree, packTree, parseManifest, verifyManifest } from '../../src/archive/archive.js';
import { readFile } from 'node:fs/promises';
import { LocalHostFs } from '../../src/providers/k3s/hostfs.js';
import { ZSTD_LEVEL } from '../../src/archive/zstd.js';
import { parseTrace, straceUsable } from '../support/strace.js';
import { inFlightCpScript } from './k3s-fixtures.js';
import {
  LISTED_NAME,
  MANIFEST_NAMED_MARK,
  PROGRESS_MARK,
  archiveStreamEstimate,
  checkArchiveNames,
  copyTreeArgv,
  listTreeArgv,
  nodeHasher,
  progressSplitter,
  snapshotArgv,
  snapshotStreamEstimate,
  syncFileArgv,
  syncTreeArgv,
  tarCheckpointBytes,
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
    // a GNU tar without --sort (before 1.28): restores and copies on the node, snapshots not
    assert.equal(missingTools(t, 'snapshot'), 'the node lacks GNU tar 1.28 or later (its tar has no --sort)');
    assert.equal(missingTools(parseTools('tar:tar (GNU tar) 1.34\ntar-sort:\nzstd:\nsha256sum-z:\nfind-printf:\nxargs:\ncp-a:\n'), 'snapshot'), undefined);
    const busy = parseTools('tar:\nzstd:\nxargs:\ncp-a:\n');
    assert.equal(busy.tar, 'busybox');
    assert.equal(missingTools(busy, 'snapshot'), 'the node lacks GNU find (-printf), sha256sum -z (GNU coreutils), GNU tar (it has busybox tar)');
    assert.equal(missingTools(busy, 'copy'), 'the node lacks GNU find (-printf), sha256sum -z (GNU coreutils)');
    assert.equal(nodeHasher(t), 'sha256sum', 'no openssl line: sha256sum hashes');
    assert.equal(nodeHasher(parseTools('openssl-sha256:\nsha256sum-z:\n')), 'openssl');
    assert.equal(t.zstdParams, false, 'no zstd-params line: snapshots with zstd\'s own minimum match');
    assert.equal(parseTools('zstd:\nzstd-params:\n').zstdParams, true);
    assert.equal(nodeHasher(undefined), 'sha256sum');
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

  it('splits progress reports out of stderr, across chunk boundaries, leaving every other byte for the error messages', () => {
    const split = (chunks: string[]) => {
      const reports: number[] = [];
      const rest: Buffer[] = [];
      const s = progressSplitter(PROGRESS_MARK, (n) => reports.push(n), (b) => rest.push(b));
      for (const c of chunks) s.write(Buffer.from(c));
      s.end();
      return { reports, rest: Buffer.concat(rest).toString() };
    };
    const text = `tar: ${PROGRESS_MARK}800\ntar: data/x: Cannot open: Permission denied\ntar: ${PROGRESS_MARK}1600\n${PROGRESS_MARK}4096\nkompox-stage-1:2\n`;
    const whole = split([text]);
    assert.deepEqual(whole.reports, [800, 1600, 4096]);
    assert.equal(whole.rest, 'tar: data/x: Cannot open: Permission denied\nkompox-stage-1:2\n');
    // cut at every byte: inside the mark, the number, at the newline
    for (let at = 1; at < text.length; at++) assert.deepEqual(split([text.slice(0, at), text.slice(at)]), whole, `cut at ${at}`);
    assert.deepEqual(split(text.split('')), whole, 'a byte at a time');
    // tar writes its prefix, message and newline apart: a line written beside it (the SHA-256) can land inside one
    const h = 'c'.repeat(64);
    assert.deepEqual(split([`tar: ${PROGRESS_MARK}12kompox-sha256:${h}  -\n`]), { reports: [12], rest: `tar: kompox-sha256:${h}  -\n` });
    assert.deepEqual(split([`tar: kompox-sha256:${h}  -\n${PROGRESS_MARK}12\n`]), { reports: [12], rest: `tar: kompox-sha256:${h}  -\n` });
    // a last line without its newline is still read; a mark without a number is no report
    assert.deepEqual(split([`tar: ${PROGRESS_MARK}7`]), { reports: [7], rest: '' });
    assert.deepEqual(split([`odd ${PROGRESS_MARK}x\n`]), { reports: [], rest: `odd ${PROGRESS_MARK}x\n` });
    // bytes that are not UTF-8 pass through untouched; an endless line is passed on, not held
    const bin = Buffer.from([0xff, 0xfe, 10]);
    const got: Buffer[] = [];
    const s = progressSplitter(PROGRESS_MARK, () => assert.fail('no report'), (b) => got.push(b));
    s.write(bin);
    s.write(Buffer.alloc(70 * 1024, 0x61));
    assert.equal(Buffer.concat(got).length, 3 + 70 * 1024, 'a line longer than 64 KiB without a newline is not held back');
    s.end();
  });

  it('maps tar checkpoints (record numbers) to tar stream bytes', () => {
    assert.equal(tarCheckpointBytes(1), 0);
    assert.equal(tarCheckpointBytes(800), 799 * 10240);
    assert.equal(tarCheckpointBytes(0), 0);
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
    // what tar says before it can quote the archive (a pax keyword, a name): the node's own line comes last
    assert.equal(extractedSha256(`tar: Ignoring unknown extended header keyword 'kompox-sha256:${'a'.repeat(64)}  -'\n${stderr}`), h);
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
      try {
        for (const hasher of tools.opensslSha256 ? (['sha256sum', 'openssl'] as const) : (['sha256sum'] as const)) {
          const dest = `${dir}-x-${hasher}`;
          try {
            const x = run(extractArgv(archive, dest, 'tar.zst', hasher));
            assert.equal(x.status, 0, x.stderr.toString());
            const stderr = x.stderr.toString();
            assert.deepEqual(stageStatuses(withoutSha256(stderr), 2).codes, [0, 0]);
            assert.equal(extractedSha256(stderr), packed.sha256, hasher);
            const { names, listing } = splitExtractOutput(x.stdout);
            const got = parseTarNames(names);
            assert.ok(got.includes('data/a b\nc') && got[got.length - 1] === 'kompox-archive.json', JSON.stringify(got));
            const manifest = parseManifest(await readFile(join(dest, 'kompox-archive.json')));
            verifyManifest(manifest, seenOf(manifestEntriesOf(parseTreeListing(listing)).entries));
          } finally {
            await rm(dest, { recursive: true, force: true });
          }
        }
      } finally {
        await rm(archive, { force: true });
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('with openssl the listing hashes as with sha256sum, names openssl would escape included; its failure fails the command', { skip: tools.opensslSha256 ? false : 'no openssl here' }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kompox-nodehash-'));
    const fakeBin = await mkdtemp(join(tmpdir(), 'kompox-nodehash-bin-'));
    try {
      // every kind of name: those openssl prints as they are, and those it escapes (newline, CR, backslash; also in a directory's name)
      const names = ['plain', ' lead', 'star*', 'tab\tx', 'ünï', 'x\ny', 'cr\rx', 'back\\slash', 'dir\nnl/inner', 'd\\x/inner', 'sub/deeper/file'];
      for (const [i, n] of names.entries()) {
        await mkdir(join(dir, n, '..'), { recursive: true });
        await writeFile(join(dir, n), `content ${i}`);
      }
      const bySum = run(listTreeArgv(dir, { hasher: 'sha256sum' }));
      const bySsl = run(listTreeArgv(dir, { hasher: 'openssl' }));
      assert.equal(bySsl.status, 0, bySsl.stderr.toString());
      const a = parseTreeListing(bySum.stdout);
      const b = parseTreeListing(bySsl.stdout);
      assert.deepEqual(b, a);
      assert.equal(b.filter((e) => e.sha256).length, names.length);
      const shaOf = (n: string) => createHash('sha256').update(`content ${names.indexOf(n)}`).digest('hex');
      for (const n of names) assert.equal(b.find((e) => e.path === n)?.sha256, shaOf(n), n);
      // openssl did hash the plain names (its `*./` lines), sha256sum the others
      const out = bySsl.stdout.toString('utf8');
      assert.ok(out.includes(`${shaOf('star*')} *./star*\0`), 'openssl hashed star*');
      assert.ok(out.includes(`${shaOf('x\ny')}  ./x\ny\0`), 'sha256sum hashed the name with a newline');

      // an openssl that fails (a file it could not read): the command fails, though tr after it succeeded
      await writeFile(join(fakeBin, 'openssl'), `#!/bin/sh\n${spawnSync('sh', ['-c', 'command -v openssl'], { encoding: 'utf8' }).stdout.trim()} "$@"; exit 1\n`, { mode: 0o755 });
      const argv = listTreeArgv(dir, { hasher: 'openssl' });
      const failing = spawnSync(argv[0]!, argv.slice(1), { env: { ...process.env, PATH: `${fakeBin}:${process.env.PATH}` } });
      assert.notEqual(failing.status, 0);
    } finally {
      await rm(dir, { recursive: true, force: true });
      await rm(fakeBin, { recursive: true, force: true });
    }
  });

  /** Runs ARGV (env: PATH first) and splits its stderr as HostFs.run does: the reports, and the rest. */
  const runSplit = (argv: string[], pathFirst?: string) => {
    const env = pathFirst ? { ...process.env, PATH: `${pathFirst}:${process.env.PATH}` } : process.env;
    const r = spawnSync(argv[0]!, argv.slice(1), { maxBuffer: 64 * 1024 * 1024, env });
    const reports: number[] = [];
    const rest: Buffer[] = [];
    const s = progressSplitter(PROGRESS_MARK, (n) => reports.push(n), (b) => rest.push(b));
    s.write(r.stderr);
    s.end();
    return { status: r.status, stdout: r.stdout, reports, stderr: Buffer.concat(rest).toString() };
  };
  const increasing = (xs: number[]) => xs.every((x, i) => i === 0 || x > xs[i - 1]!);

  it('snapshot and extract report tar checkpoints every ~8 MiB, within the stream; the estimates are close to the real stream', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kompox-nodecmd-'));
    const src = join(dir, 'src');
    const mdir = join(dir, 'm');
    const archive = join(dir, 'a.tar.zst');
    try {
      await mkdir(join(src, 'many'), { recursive: true });
      await mkdir(mdir);
      for (let i = 0; i < 4; i++) await writeFile(join(src, `big${i}`), Buffer.alloc(8 * 1024 * 1024 + i * 777, i));
      for (let i = 0; i < 400; i++) await writeFile(join(src, 'many', `f${i}`), 'x'.repeat(i * 13));
      const listing = run(listTreeArgv(src));
      const { entries } = manifestEntriesOf(parseTreeListing(listing.stdout));
      const files = entries.filter((e) => e.type === 'file');
      const totalBytes = files.reduce((n, e) => n + e.size, 0);
      // a manifest of about the real size (what node-local writes: indented JSON of every entry)
      const manifest = JSON.stringify({ entries: entries.map((e) => ({ ...e, sha256: 'a'.repeat(64) })) }, null, 2);
      await writeFile(join(mdir, 'kompox-archive.json'), manifest);
      await writeFile(join(mdir, LISTED_NAME), '');

      const c = runSplit(snapshotArgv(src, mdir, archive));
      assert.equal(c.status, 0, c.stderr);
      assert.deepEqual(stageStatuses(c.stderr, 3), { codes: [0, 0, 0], text: MANIFEST_NAMED_MARK }, 'no progress line is left in stderr; the manifest was named');
      assert.equal(c.stdout.toString().trim().split(/\s/)[0], createHash('sha256').update(await readFile(archive)).digest('hex'), "the SHA-256 printed is the archive's");
      if (tools.opensslSha256) {
        const viaSsl = runSplit(snapshotArgv(src, mdir, `${archive}.2`, 'openssl'));
        assert.equal(viaSsl.status, 0, viaSsl.stderr);
        assert.equal(viaSsl.stdout.toString().trim().split(/\s/)[0], createHash('sha256').update(await readFile(`${archive}.2`)).digest('hex'), "openssl's SHA-256 is the archive's too");
      }
      const members = spawnSync('sh', ['-c', 'zstd -dc -q < "$1" | tar -tf -', 'sh', archive], { encoding: 'utf8' }).stdout.trim().split('\n');
      assert.equal(members[0], 'data/');
      assert.equal(members.at(-1), 'kompox-archive.json');
      const plain = Number(spawnSync('sh', ['-c', 'zstd -dc -q < "$1" | wc -c', 'sh', archive], { encoding: 'utf8' }).stdout.trim());
      assert.ok(c.reports.length >= 3, `checkpoints: ${c.reports.join(',')} of a ${plain}-byte stream`);
      assert.ok(increasing(c.reports), c.reports.join(','));
      // at most one line per ~8 MiB: never one per record
      assert.ok(c.reports.length <= plain / (7 * 1024 * 1024), `${c.reports.length} lines for ${plain} bytes`);
      for (const n of c.reports) assert.ok(tarCheckpointBytes(n) > 0 && tarCheckpointBytes(n) < plain, `${n} -> ${tarCheckpointBytes(n)} of ${plain}`);
      const est = snapshotStreamEstimate(entries, Buffer.byteLength(manifest));
      assert.ok(Math.abs(est - plain) <= plain * 0.01, `snapshot estimate ${est}, stream ${plain}`);

      const x = runSplit(extractArgv(archive, join(dir, 'x'), 'tar.zst'));
      assert.equal(x.status, 0, x.stderr);
      assert.equal((await stat(join(dir, 'x'))).mode & 0o7777, 0o700, 'what the archive holds is reachable by root only until it is checked');
      assert.deepEqual(stageStatuses(withoutSha256(x.stderr), 2), { codes: [0, 0], text: '' });
      assert.match(extractedSha256(x.stderr) ?? '', /^[0-9a-f]{64}$/);
      assert.ok(x.reports.length >= 3 && increasing(x.reports), x.reports.join(','));
      for (const n of x.reports) assert.ok(tarCheckpointBytes(n) < plain, `${n} -> ${tarCheckpointBytes(n)} of ${plain}`);
      // from the counts alone (directories not known): still within a few percent here
      const guess = archiveStreamEstimate(files.length, totalBytes);
      assert.ok(Math.abs(guess - plain) <= plain * 0.05, `restore estimate ${guess}, stream ${plain}`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a snapshot archives the tree while the manifest is still being made: tar takes it once it is there; without it (its directory gone) the list ends unmarked', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kompox-nodecmd-'));
    const src = join(dir, 'src');
    const mdir = join(dir, 'm');
    try {
      await mkdir(join(src, 'sub'), { recursive: true });
      await mkdir(mdir);
      for (let i = 0; i < 50; i++) await writeFile(join(src, 'sub', `f${i}`), `file ${i}\n`.repeat(100));
      const started = (argv: string[]) => {
        const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
        let err = '';
        child.stderr.on('data', (d: Buffer) => (err += d));
        const ended = new Promise<{ code: number | null; err: string }>((r) => child.on('close', (code) => r({ code, err })));
        return { child, ended };
      };
      const listing = (archive: string) => spawnSync('sh', ['-c', 'zstd -dc -q < "$1" | tar -tf -', 'sh', archive], { encoding: 'utf8' }).stdout.trim().split('\n');

      // at the archives' level, as every version 2 archive Kompox writes (snapshots smaller than gzip -6), and
      // their minimum match where the node's zstd takes --zstd= (this machine's does: the probe says so)
      assert.match(snapshotArgv(src, mdir, join(dir, 'a.tar.zst')).join(' '), new RegExp(`\\| \\{ zstd -T0 -${ZSTD_LEVEL} -q -c;`));
      assert.equal(tools.zstdParams, true, 'the probe finds --zstd= in this machine\'s zstd');
      assert.match(snapshotArgv(src, mdir, join(dir, 'p.tar.zst'), 'sha256sum', true).join(' '), new RegExp(`\\| \\{ zstd -T0 -${ZSTD_LEVEL} --zstd=mml=6 -q -c;`));
      // a level the user chose (snapshot create --level): that level, without the minimum match tuned for level 5
      assert.match(snapshotArgv(src, mdir, join(dir, 'p.tar.zst'), 'sha256sum', true, 1).join(' '), /\| \{ zstd -T0 -1 -q -c;/);
      // the listing beside has not taken every stat yet: tar reads nothing of the tree
      const a = started(snapshotArgv(src, mdir, join(dir, 'a.tar.zst')));
      let early = false;
      void a.ended.then(() => (early = true));
      const tarRead = () => {
        const ps = spawnSync('sh', ['-c', 'for p in $(pgrep -P "$1"); do for q in $p $(pgrep -P $p); do tr "\\0" " " < /proc/$q/cmdline; echo " $(sed -n "s/^rchar: //p" /proc/$q/io)"; done; done', 'sh', String(a.child.pid)], { encoding: 'utf8' }).stdout;
        const line = ps.split('\n').find((l) => l.startsWith('tar -c '));
        const read = line === undefined ? undefined : Number(line.trim().split(' ').at(-1));
        return Number.isFinite(read) ? read : undefined; // its io unread: it ended between the two reads
      };
      // tar has started (a loaded machine can take more than a moment to exec the pipeline), and had time to read
      for (const end = Date.now() + 30_000; tarRead() === undefined && !early && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 300));
      const readBefore = tarRead();
      assert.ok(readBefore !== undefined && readBefore < 50 * 500, `tar has read ${readBefore} bytes before the listing is done`);
      // once it is: the manifest comes 300 ms after tar started reading: tar is still waiting for it, then ends with it
      await writeFile(join(mdir, LISTED_NAME), '');
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(early, false, 'tar waits for the manifest');
      await writeFile(join(mdir, 'kompox-archive.json'), '{}\n');
      const ra = await a.ended;
      assert.equal(ra.code, 0, ra.err);
      assert.match(ra.err, new RegExp(MANIFEST_NAMED_MARK));
      const members = listing(join(dir, 'a.tar.zst'));
      assert.equal(members[0], 'data/');
      assert.equal(members.at(-1), 'kompox-archive.json');
      assert.equal(members.length, 1 + 1 + 50 + 1);

      // the directory goes away (the operation ended without a manifest): the list ends, unmarked, and so does tar
      const mdir2 = join(dir, 'm2');
      await mkdir(mdir2);
      await writeFile(join(mdir2, LISTED_NAME), '');
      const b = started(snapshotArgv(src, mdir2, join(dir, 'b.tar.zst')));
      await new Promise((r) => setTimeout(r, 200));
      await rm(mdir2, { recursive: true });
      const rb = await b.ended;
      assert.doesNotMatch(rb.err, new RegExp(MANIFEST_NAMED_MARK));
      assert.ok(!listing(join(dir, 'b.tar.zst')).includes('kompox-archive.json'));

      // never over an existing file
      const again = snapshotArgv(src, mdir, join(dir, 'a.tar.zst'));
      const before = await readFile(join(dir, 'a.tar.zst'));
      const c = spawnSync(again[0]!, again.slice(1), { encoding: 'utf8' });
      assert.notEqual(c.status, 0);
      assert.ok((await readFile(join(dir, 'a.tar.zst'))).equals(before));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  /** copyTreeArgv of DIR/src (one file) to DIR/dest, with `cp` a stand-in (its script, given the real cp's path) first on PATH. */
  const copyWithCp = async (dir: string, cp: (real: string) => string) => {
    await mkdir(join(dir, 'src'));
    await writeFile(join(dir, 'src', 'f'), 'data');
    const shim = join(dir, 'bin');
    await mkdir(shim);
    await writeFile(join(shim, 'cp'), cp(spawnSync('sh', ['-c', 'command -v cp'], { encoding: 'utf8' }).stdout.trim()), { mode: 0o755 });
    return runSplit(copyTreeArgv(join(dir, 'src'), join(dir, 'dest')), shim);
  };

  it('a disk copy reports the bytes cp has written every second, and cp\'s failure as its own', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kompox-nodecmd-'));
    try {
      // a cp that takes its time: writes 1 MiB every 0.4 s (through child processes, as cp -a's own
      // writes would be counted) before the real copy
      const c = await copyWithCp(dir, (real) => `#!/bin/sh\nfor i in 1 2 3 4 5 6; do head -c 1048576 /dev/zero >> "${dir}/junk"; sleep 0.4; done\nexec ${real} "$@"\n`);
      assert.equal(c.status, 0, c.stderr);
      assert.equal(c.stderr, '');
      assert.ok(c.reports.length >= 2 && increasing(c.reports), c.reports.join(','));
      assert.ok(c.reports.every((n) => n > 0 && n <= 6 * 1024 * 1024), c.reports.join(','));
      assert.deepEqual(parseTreeListing(c.stdout).map((e) => e.path).sort(), ['', 'f']);

      // cp fails: its status and message, no listing
      const bad = runSplit(copyTreeArgv(join(dir, 'missing'), join(dir, 'dest2')));
      assert.equal(bad.status, 1);
      assert.match(bad.stderr, /missing/);
      assert.equal(bad.stdout.length, 0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("a disk copy reports a file's bytes while one system call still writes it (GNU cp's copy_file_range), not only once it returns", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kompox-nodecmd-'));
    try {
      // a cp whose write stays in flight for seconds, as GNU cp's copy_file_range of a big file (inFlightCpScript)
      const c = await copyWithCp(dir, (real) => inFlightCpScript(real));
      assert.equal(c.status, 0, c.stderr);
      assert.equal(c.stderr, '');
      // wchar alone stays at the few bytes of the shim's own commands
      const inFlight = c.reports.filter((n) => n >= 1024 * 1024);
      assert.ok(inFlight.length >= 2 && increasing(inFlight), c.reports.join(','));
      assert.ok(c.reports.every((n) => n <= 6 * 1024 * 1024 + 4096), c.reports.join(','));
      assert.deepEqual(parseTreeListing(c.stdout).map((e) => e.path).sort(), ['', 'f']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('syncFileArgv / syncTreeArgv: the node syncs with the `sync` it has', { skip: straceUsable ? false : 'no usable strace' }, () => {
  /** Runs ARGV under strace with `bin` first on PATH; its sync calls as `NAME PATH` (or NAME alone for sync(2)). */
  const syncCalls = (argv: string[], bin?: string): string[] => {
    const out = join(tmpdir(), `kompox-sync-trace-${process.pid}`);
    const r = spawnSync('strace', ['-f', '-qq', '-y', '-e', 'trace=fsync,syncfs,sync', '-o', out, ...argv], {
      encoding: 'utf8',
      env: { ...process.env, PATH: `${bin ? `${bin}:` : ''}${process.env.PATH}` },
    });
    assert.equal(r.status, 0, r.stderr);
    const trace = readFileSync(out, 'utf8');
    rmSync(out, { force: true });
    return parseTrace(trace).map((c) => `${c.name}${/<([^>]*)>/.exec(c.args)?.[1] ? ` ${/<([^>]*)>/.exec(c.args)![1]}` : ''}`);
  };
  const withSync = async (body: (dir: string, bins: Record<string, string>) => Promise<void>) => {
    const dir = await mkdtemp(join(tmpdir(), 'kompox-sync-'));
    try {
      await writeFile(join(dir, 'f'), 'data');
      const bins: Record<string, string> = {};
      // busybox's sync (with file arguments and -f), and one that takes neither (older tools)
      if (!spawnSync('busybox', ['true']).error) {
        await mkdir(join(dir, 'busybox'));
        await symlink(spawnSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' }).stdout.trim(), join(dir, 'busybox', 'sync'));
        bins.busybox = join(dir, 'busybox');
      }
      await mkdir(join(dir, 'plain'));
      await writeFile(join(dir, 'plain', 'sync'), '#!/bin/sh\n[ "$1" = --help ] && { echo "Usage: sync" >&2; exit 1; }\n[ $# -eq 0 ] || exit 9\nexec busybox sync 2>/dev/null || exec /bin/sync\n', { mode: 0o755 });
      bins.plain = join(dir, 'plain');
      await body(dir, bins);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };

  it('coreutils: fsync of the file, syncfs of the tree', async () => {
    await withSync(async (dir) => {
      assert.deepEqual(syncCalls(syncFileArgv(join(dir, 'f'))), [`fsync ${join(dir, 'f')}`]);
      assert.deepEqual(syncCalls(syncFileArgv(dir)), [`fsync ${dir}`]);
      assert.deepEqual(syncCalls(syncTreeArgv(dir)), [`syncfs ${dir}`]);
    });
  });

  it('busybox: the same; a sync without file arguments or -f: sync(2) of everything', async () => {
    await withSync(async (dir, bins) => {
      if (bins.busybox) {
        assert.deepEqual(syncCalls(syncFileArgv(join(dir, 'f')), bins.busybox), [`fsync ${join(dir, 'f')}`]);
        assert.deepEqual(syncCalls(syncTreeArgv(dir), bins.busybox), [`syncfs ${dir}`]);
      }
      assert.deepEqual(syncCalls(syncFileArgv(join(dir, 'f')), bins.plain), ['sync']);
      assert.deepEqual(syncCalls(syncTreeArgv(dir), bins.plain), ['sync']);
    });
  });
});
