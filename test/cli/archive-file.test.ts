// An archive file named on the command line that cannot be read, or whose
// FILE.sha256 cannot be: refused before anything is made, with one message
// naming the file (it crashed the process with an uncaught stream error, and
// an unreadable sidecar was taken for absent: a checksum that disagreed went
// unchecked).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { archiveOutputPath, formatNameMismatch, openArchiveFile, writeArchiveFile } from '../../src/cli/files.js';
import { KompoxError } from '../../src/domain/errors.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'kompox-archive-file-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const refused = (code: string, said: RegExp) => (e: unknown) => {
  assert.ok(e instanceof KompoxError, String(e));
  assert.deepEqual([e.kind, e.code], ['usage', code]);
  assert.match(e.message, said);
  return true;
};

describe('openArchiveFile', () => {
  it('a FILE.sha256 that exists but cannot be read (a directory) refuses the import, naming it; an absent one is no checksum', async () => {
    const file = join(dir, 'a.tar.zst');
    writeFileSync(file, 'archive bytes');
    const plain = await openArchiveFile(file);
    assert.equal(plain.expectedSha256, undefined);
    plain.stream.resume();
    mkdirSync(`${file}.sha256`);
    await assert.rejects(openArchiveFile(file), refused('import.sha256.unreadable', /^cannot read .*a\.tar\.zst\.sha256: it is a directory; nothing was imported$/));
    // --sha256 given: the sidecar is not read
    const given = await openArchiveFile(file, 'a'.repeat(64));
    assert.equal(given.expectedSha256, 'a'.repeat(64));
    given.stream.resume();
  });

  it('a path that is a loop of symlinks is said as such, not as "does not exist"', async () => {
    const loop = join(dir, 'loop');
    symlinkSync(loop, loop);
    await assert.rejects(openArchiveFile(loop), refused('import.file.unreadable', /^cannot read archive file .*loop: a loop of symbolic links; nothing was imported$/));
  });

  const asNobody =
    (process.getuid?.() !== 0 ? 'needs root (the file is read as nobody through setpriv)' : undefined) ??
    (spawnSync('setpriv', ['--version']).status !== 0 ? 'needs setpriv (util-linux)' : undefined);
  it('a file its user may not read (mode 000, read as nobody): a clear refusal, exit code 2, no uncaught stream error', { skip: asNobody }, () => {
    const file = join(dir, 'locked.tar.zst');
    writeFileSync(file, 'archive bytes');
    chmodSync(file, 0o000);
    chmodSync(dir, 0o755);
    const script = `import { openArchiveFile } from './src/cli/files.ts'; import { reportError } from './src/cli/common.ts';
      try { const a = await openArchiveFile(${JSON.stringify(file)}); a.stream.resume(); await new Promise((r) => a.stream.on('end', r)); console.log('read'); }
      catch (e) { process.exitCode = reportError(e); }`;
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(r.status, 2, `${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /^error: cannot read archive file .*locked\.tar\.zst: permission denied; nothing was imported\. Make it readable/);
    assert.doesNotMatch(r.stderr, /Unhandled|node:events|at /);
  });
});

describe('writeArchiveFile (-O FILE)', () => {
  it('a path under a file: "a part of its path is not a directory" (a usage error), not the cleanup\'s ENOTDIR as an unexpected error', async () => {
    writeFileSync(join(dir, 'plain.tar'), 'a file');
    await assert.rejects(
      writeArchiveFile(join(dir, 'plain.tar', 'x.tar.zst'), async () => assert.fail('nothing is written')),
      (e: unknown) => {
        assert.ok(e instanceof KompoxError, String(e));
        assert.deepEqual([e.kind, e.code], ['usage', 'export.output-failed']);
        assert.match(e.message, /^cannot write .*\/plain\.tar\/x\.tar\.zst: a part of its path is not a directory$/);
        return true;
      },
    );
  });

  it('an export that fails with a write still in flight (a cancel, an integrity error) fails with its own error, not "cannot write FILE: Cannot call write after a stream was destroyed"; nothing left', async () => {
    const out = join(dir, 'inflight');
    mkdirSync(out);
    for (const cause of [new KompoxError('integrity', "the archive's SHA-256 is x, expected y"), new KompoxError('interrupted', 'interrupted: snapshot s was not exported', { code: 'interrupted' })]) {
      await assert.rejects(
        writeArchiveFile(join(out, 'x.tar.gz'), async (ws) => {
          // writes still queued when the export fails, as the tar.gz sink leaves them
          for (let i = 0; i < 8; i++) ws.write(Buffer.alloc(4 << 20, i));
          throw cause;
        }),
        (e: unknown) => (assert.equal(e, cause), true),
        cause.kind,
      );
      assert.deepEqual(readdirSync(out), [], `${cause.kind}: nothing left`);
    }
  });
});

describe('the lock beside FILE that two exports take turns with', () => {
  it('a lock left empty (its maker killed between making it and writing its owner) is removed once seconds old, not honoured for minutes', async () => {
    const { utimesSync } = await import('node:fs');
    const out = join(dir, 'held.tar.zst');
    const lock = join(dir, '.held.tar.zst.lock');
    writeFileSync(lock, '');
    const old = new Date(Date.now() - 10_000);
    utimesSync(lock, old, old);
    const started = Date.now();
    const r = await writeArchiveFile(out, async (w) => {
      await new Promise<void>((res) => w.write(Buffer.from('data'), () => res()));
      return { sha256: 'a'.repeat(64), bytes: 4 };
    });
    assert.equal(r.bytes, 4);
    assert.ok(Date.now() - started < 10_000, 'not waited on');
    assert.deepEqual(readdirSync(dir).filter((n) => n.includes('held')).sort(), ['held.tar.zst', 'held.tar.zst.sha256']);
  });
});

describe('-O naming a directory', () => {
  it("a name ending in '/' (or . or ..) is refused before anything runs, not written as a file without its slash", () => {
    assert.throws(() => archiveOutputPath('', (p) => join(dir, p)), (e: unknown) => e instanceof KompoxError && e.code === 'export.output-missing' && e.message === '-O needs a file name (or - for stdout)');
    for (const out of ['newname/', 'a/b//', '.', '..', '/']) {
      assert.throws(() => archiveOutputPath(out, (p) => join(dir, p)), (e: unknown) => {
        assert.ok(e instanceof KompoxError, String(e));
        assert.deepEqual([e.kind, e.code, e.field], ['usage', 'export.output-directory', '-O']);
        assert.match(e.message, /names a directory; give the archive's file name \(for example .*\/NAME\.tar\.zst\)$/);
        return true;
      }, out);
    }
    assert.equal(archiveOutputPath('out/x.tar.zst', (p) => join(dir, p)), join(dir, 'out/x.tar.zst'));
  });

  it('an existing directory is "a directory; give the file name", not "already exists; refusing to overwrite it"', async () => {
    const d = join(dir, 'adir');
    mkdirSync(d);
    await assert.rejects(writeArchiveFile(d, async () => assert.fail('nothing is written')), (e: unknown) => {
      assert.ok(e instanceof KompoxError, String(e));
      assert.deepEqual([e.kind, e.code], ['usage', 'export.output-directory']);
      assert.match(e.message, /adir is a directory; give the archive's file name/);
      return true;
    });
  });

  it('a directory where FILE.sha256 goes is said before any data is read (not by rename\'s errno after the whole export); nothing is left', async () => {
    const out = join(dir, 'sumdir.tar.zst');
    mkdirSync(`${out}.sha256`);
    let wrote = false;
    await assert.rejects(
      writeArchiveFile(out, async () => {
        wrote = true;
        return { sha256: 'a'.repeat(64) } as never;
      }),
      (e: unknown) => {
        assert.ok(e instanceof KompoxError, String(e));
        assert.deepEqual([e.kind, e.code, e.field], ['usage', 'export.output-directory', '-O']);
        assert.match(e.message, /sumdir\.tar\.zst\.sha256 is a directory; the archive's checksum is written there$/);
        return true;
      },
    );
    assert.equal(wrote, false);
    assert.deepEqual(readdirSync(dir).filter((n) => n.startsWith('.sumdir') || n === 'sumdir.tar.zst'), []);
  });
});

it('disk export --quiesce --live: refused as exclusive before anything is read (exit 2)', async () => {
  const { runCli } = await import('../support/cli.js');
  const r = await runCli(['-C', dir, 'disk', 'export', '-N', 'd', '-O', 'x.tar.zst', '--quiesce', '--live']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /^error: --quiesce and --live exclude each other/);
});

it("-O's name saying the other format than the one written is warned about (going by the name would mislead); a fitting or neutral name is not", () => {
  assert.match(formatNameMismatch('backup.tar.gz', 'tar.zst') ?? '', /^backup\.tar\.gz is named as a tar\.gz archive but is written as tar\.zst \(the default; give --format tar\.gz for gzip\)/);
  assert.match(formatNameMismatch('b.TGZ', 'tar.zst') ?? '', /written as tar\.zst/);
  assert.match(formatNameMismatch('b.tar.zst', 'tar.gz') ?? '', /^b\.tar\.zst is named as a tar\.zst archive but is written as tar\.gz;/);
  for (const [out, f] of [['b.tar.zst', 'tar.zst'], ['b.tar.gz', 'tar.gz'], ['backup', 'tar.zst'], ['b.tar', 'tar.gz']] as const) assert.equal(formatNameMismatch(out, f), undefined, out);
});
