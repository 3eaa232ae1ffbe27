// The tar command lines Kompox runs where the disk is (src/archive/tar-command.ts):
// argv and shell script building (pure), and the extract script run for real
// with this machine's sh, GNU tar and zstd, as the K3s node runs it over SSH.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { lstat, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { compressingWriter, digestTree, packTree } from '../../src/archive/archive.js';
import { archiveToTar } from '../../src/archive/tar-stream.js';
import { TAR_CHANGED_MARK, commandMessages, compressorFailed, compressorFailure, helperTarCreateArgv, helperTarExtractArgv, pipeStatus, shellCommand, shellStatusPhrase, tarCreateMessages, tarExtractArgv, untarScript } from '../../src/archive/tar-command.js';
import { LocalHostFs } from '../../src/providers/k3s/hostfs.js';
import { writeSampleTree } from '../providers/k3s-fixtures.js';
import { collect } from '../support/collect.js';

const MARK = 'test-mark:';

describe('tar command lines', () => {
  test('extract: GNU tar sets modes exactly and owners by number; other tars get only the shared flags', () => {
    assert.deepEqual(tarExtractArgv('/d'), ['tar', '-x', '-f', '-', '-C', '/d']);
    assert.deepEqual(tarExtractArgv('/d', 'busybox'), ['tar', '-x', '-f', '-', '-C', '/d']);
    assert.deepEqual(tarExtractArgv('/d', 'gnu'), ['tar', '-x', '-p', '--numeric-owner', '--no-unquote', '-f', '-', '-C', '/d']);
  });

  test("a helper pod's tar commands ask the pod's tar: GNU tar gets its flags (and its status 1, files changed while read, is a live copy's success said on stderr), any other tar the shared ones", async () => {
    const bin = await mkdtemp(join(tmpdir(), 'kompox-helper-tar-'));
    try {
      // stand-ins for the pod's tar: each prints its argv and exits with $STATUS; GNU tar answers --version
      const fake = (version: string) => `#!/bin/sh\ncase "$1" in --version) ${version} ;; esac\necho "$@"\nexit "$STATUS"\n`;
      await mkdir(join(bin, 'gnu'));
      await mkdir(join(bin, 'busybox'));
      await writeFile(join(bin, 'gnu', 'tar'), fake('echo "tar (GNU tar) 1.35"; exit 0'), { mode: 0o755 });
      await writeFile(join(bin, 'busybox', 'tar'), fake("echo \"tar: unrecognized option '--version'\" >&2; exit 1"), { mode: 0o755 });
      const run = (kind: string, argv: string[], status: number) => {
        const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', env: { PATH: `${join(bin, kind)}:/usr/bin:/bin`, STATUS: String(status) } });
        return { code: r.status, out: r.stdout.trim(), err: r.stderr.trim() };
      };
      const dir = "/mnt/it's here";
      assert.deepEqual(run('gnu', helperTarCreateArgv(dir), 0), { code: 0, out: `-c --format=pax --numeric-owner --pax-option=delete=atime,delete=ctime -f - -C ${dir} .`, err: '' });
      assert.deepEqual(run('gnu', helperTarCreateArgv(dir), 1), { code: 0, out: `-c --format=pax --numeric-owner --pax-option=delete=atime,delete=ctime -f - -C ${dir} .`, err: TAR_CHANGED_MARK });
      assert.deepEqual(run('gnu', helperTarCreateArgv(dir), 2), { code: 2, out: `-c --format=pax --numeric-owner --pax-option=delete=atime,delete=ctime -f - -C ${dir} .`, err: '' });
      assert.deepEqual(run('busybox', helperTarCreateArgv(dir), 0), { code: 0, out: `-c -f - -C ${dir} .`, err: '' });
      assert.deepEqual(run('busybox', helperTarCreateArgv(dir), 1), { code: 1, out: `-c -f - -C ${dir} .`, err: '' });
      assert.deepEqual(run('gnu', helperTarExtractArgv(dir), 0), { code: 0, out: `-x -p --numeric-owner --no-unquote -f - -C ${dir}`, err: '' });
      assert.deepEqual(run('busybox', helperTarExtractArgv(dir), 2), { code: 2, out: `-x -f - -C ${dir}`, err: '' });
    } finally {
      await rm(bin, { recursive: true, force: true });
    }
  });

  test('the extract script: zstd -d in front of tar with its status after the mark, or tar alone; paths quoted', () => {
    const dir = "/disks/it's a dir";
    assert.equal(untarScript(dir, 'gnu', false, MARK), shellCommand(tarExtractArgv(dir, 'gnu')));
    assert.equal(untarScript(dir, 'gnu', false, MARK), `tar -x -p --numeric-owner --no-unquote -f - -C '/disks/it'\\''s a dir'`);
    assert.equal(untarScript(dir, 'busybox', true, MARK), `{ zstd -d -q -c; echo "${MARK}$?" >&2; } | tar -x -f - -C '/disks/it'\\''s a dir'`);
  });

  test('pipeStatus reads the last status after the mark and leaves the rest of stderr', () => {
    assert.deepEqual(pipeStatus(`${MARK}0\n`, MARK), { status: 0, detail: '' });
    assert.deepEqual(pipeStatus(`zstd: /*stdin*\\: unsupported format\n${MARK}1\ntar: Unexpected EOF\n`, MARK), {
      status: 1,
      detail: 'zstd: /*stdin*\\: unsupported format\ntar: Unexpected EOF',
    });
    assert.deepEqual(pipeStatus('cut off\n', MARK), { detail: 'cut off' });
    assert.equal(pipeStatus(`${MARK}0\n${MARK}141\n`, MARK).status, 141);
    // written by the stage's shell, the mark can land between a message of tar's and its newline: tar's lines stay apart
    const interleaved = `tar: Removing leading \`data/../' from member names${MARK}141\n\ntar: data/../x: Member name contains '..'\n`;
    assert.deepEqual(pipeStatus(interleaved, MARK), { status: 141, detail: "tar: Removing leading `data/../' from member names\ntar: data/../x: Member name contains '..'" });
  });

  test("a compressor's own failure (any status but 0 and SIGPIPE's) reads as its status or signal and its own messages, not tar's or head's", () => {
    assert.equal(compressorFailed(undefined), false);
    assert.equal(compressorFailed(0), false);
    assert.equal(compressorFailed(141), false, 'SIGPIPE: its reader went away (this side stopped)');
    for (const code of [1, 11, 126, 127, 137]) assert.equal(compressorFailed(code), true, String(code));
    assert.equal(shellStatusPhrase(1), 'failed (exit code 1)');
    assert.equal(shellStatusPhrase(127), 'failed (exit code 127)');
    assert.equal(shellStatusPhrase(137), 'was killed by signal 9 (SIGKILL, exit code 137)');
    assert.equal(shellStatusPhrase(143), 'was killed by signal 15 (SIGTERM, exit code 143)');
    const stderr = "zstd: error 11 : Allocation error : not enough memory\ntar: -: Cannot write: Broken pipe\nhead: error writing 'standard output': Broken pipe\ntar: Error is not recoverable: exiting now";
    assert.equal(compressorFailure('zstd compressing X', 'ssh n', 11, stderr), 'zstd compressing X on ssh n failed (exit code 11): zstd: error 11 : Allocation error : not enough memory');
    assert.equal(compressorFailure('zstd compressing X', 'ssh n', 137, ''), 'zstd compressing X on ssh n was killed by signal 9 (SIGKILL, exit code 137)');
    assert.equal(compressorFailure('zstd', 'ssh n', 1, 'Incorrect parameters \nCompress or decompress the INPUT file(s)\n  -h   Display short usage and exit.'), 'zstd on ssh n failed (exit code 1): Incorrect parameters');
  });

  test('commandMessages: the last distinct lines, trimmed, on one line', () => {
    const tar = '/*stdin*\\ : Read error (39) : premature end \ntar: Unexpected EOF in archive\ntar: Unexpected EOF in archive\ntar: Error is not recoverable: exiting now\n';
    assert.equal(commandMessages(tar), '/*stdin*\\ : Read error (39) : premature end; tar: Unexpected EOF in archive; tar: Error is not recoverable: exiting now');
    assert.equal(commandMessages(tar, 2), 'tar: Unexpected EOF in archive; tar: Error is not recoverable: exiting now');
    assert.equal(commandMessages('\n  \n'), '');
    assert.equal(commandMessages('one'), 'one');
  });
});

const missing = ['sh', 'tar', 'zstd'].find((p) => spawnSync(p, ['--version'], { stdio: 'ignore' }).error);
const skip = missing ? `${missing} is not installed` : undefined;

describe("tar -c's messages (tarCreateMessages)", () => {
  const read = (text: string, chunk = 7) => {
    const m = tarCreateMessages(2, /^kompox-tar-exit:\d+$/);
    for (let i = 0; i < text.length; i += chunk) m.feed(Buffer.from(text.slice(i, i + chunk)));
    return m;
  };

  test('files gone when tar came to them (busybox: exit 1 at the end) are named when they are all it said, sockets and the closing line aside', () => {
    const m = read('tar: ./a.tmp: No such file or directory\ntar: ./s: socket ignored\ntar: ./d/b.tmp: No such file or directory\ntar: ./c: No such file or directory\ntar: error exit delayed from previous errors\nkompox-tar-exit:1\n');
    assert.deepEqual(m.vanishedOnly(), { count: 3, first: ['data/a.tmp', 'data/d/b.tmp'] });
    assert.deepEqual(m.found(), { count: 1, first: ['data/s (socket)'] });
  });

  test('anything else tar said (an unreadable file, an I/O error, a cut line) is no live copy', () => {
    for (const text of [
      'tar: ./a.tmp: No such file or directory\ntar: ./secret: Permission denied\n',
      // a name holding a newline cannot pass another error off as a file gone: its own line ends in its own words
      'tar: ./x: No such file or directory\ntar: y: Permission denied\n',
      'tar: ./big: Input/output error\n',
      'tar: short read\n',
      'no message of tar\'s\n',
      '',
    ]) {
      assert.equal(read(text).vanishedOnly(), undefined, JSON.stringify(text));
    }
    const m = tarCreateMessages();
    m.feed(Buffer.from('tar: ./a: No such file or directory\n'));
    m.feed(Buffer.alloc(65 * 1024, 0x61)); // a line that never ends
    assert.equal(m.vanishedOnly(), undefined);
  });
});

describe('the extract script run by sh with GNU tar and zstd', { skip }, () => {
  const fs = new LocalHostFs();
  let root: string;
  let archive: Buffer;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'kompox-tar-command-'));
    await mkdir(join(root, 'src'));
    await writeSampleTree(join(root, 'src'));
    archive = await collect((out) => packTree(fs, join(root, 'src'), out));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  /** Runs the script with `input` on stdin: exit code and stderr. */
  const run = async (script: string, input: Buffer): Promise<{ code: number | null; stderr: string }> => {
    const child = spawn('sh', ['-c', script], { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.on('error', () => undefined); // the command may end before reading everything
    child.stdin.end(input);
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    return { code, stderr };
  };

  test('an archive as compressed plain tar comes out as the source tree; both statuses are 0', async () => {
    const dest = join(root, 'dest');
    await mkdir(dest, { mode: 0o700 });
    const compressed = await collect(async (out) => {
      const w = compressingWriter('tar.zst', out, 1);
      await archiveToTar(Readable.from([archive]), w);
      await new Promise<void>((resolve, reject) => w.end((e?: Error | null) => (e ? reject(e) : resolve())));
    });
    const r = await run(untarScript(dest, 'gnu', true, MARK), compressed);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(pipeStatus(r.stderr, MARK).status, 0);
    assert.equal((await digestTree(fs, dest)).treeDigest, (await digestTree(fs, join(root, 'src'))).treeDigest);
  });

  test('bytes that are not zstd: zstd fails (its status after the mark) and so does tar', async () => {
    const dest = join(root, 'dest-bad');
    await mkdir(dest, { mode: 0o700 });
    const r = await run(untarScript(dest, 'gnu', true, MARK), Buffer.from('not zstd at all'.repeat(100)));
    assert.notEqual(r.code, 0);
    const s = pipeStatus(r.stderr, MARK);
    assert.ok(s.status !== undefined && s.status !== 0, r.stderr);
    assert.ok((await lstat(dest)).isDirectory());
  });
});
