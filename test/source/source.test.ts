// The AppSource adapters on their own: what a bundle and a directory give,
// and what a sandboxed one refuses.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SourceAccessError } from '../../src/domain/source.js';
import { bundleSource, directorySource } from '../../src/source/index.js';

const text = (b: Uint8Array) => new TextDecoder().decode(b);
const refused = (reason: string) => (e: unknown) => e instanceof SourceAccessError && e.reason === reason;

describe('bundleSource', () => {
  const b = bundleSource({ 'compose.yaml': 'services: {}\n', 'conf/a.conf': 'a', 'conf/sub/b.bin': new Uint8Array([1, 2, 3]) }, { env: { A: '1', B: undefined } });

  it('is sandboxed, has no home directory and only the variables it was given', () => {
    assert.equal(b.sandboxed, true);
    assert.equal(b.homeDir, undefined);
    assert.equal(b.root, '/upload');
    assert.deepEqual({ ...b.env }, { A: '1' });
    assert.equal(b.env.constructor, undefined, 'no inherited names');
    assert.ok(Object.isFrozen(b.env));
  });

  it('files and the directories they imply, by absolute or root-relative path', async () => {
    assert.deepEqual(await b.stat('/upload/conf/a.conf'), { kind: 'file', size: 1 });
    assert.deepEqual(await b.stat('conf/sub'), { kind: 'dir', size: 0 });
    assert.deepEqual(await b.stat('/upload'), { kind: 'dir', size: 0 });
    assert.equal(await b.stat('/upload/nope'), undefined);
    assert.equal(text(await b.readFile('/upload/compose.yaml')), 'services: {}\n');
    assert.deepEqual(await b.readdir('/upload'), [{ name: 'compose.yaml', kind: 'file' }, { name: 'conf', kind: 'dir' }]);
    assert.deepEqual(await b.readdir('/upload/conf'), [{ name: 'a.conf', kind: 'file' }, { name: 'sub', kind: 'dir' }]);
    assert.equal(await b.realpath('/upload/conf/../conf/a.conf'), '/upload/conf/a.conf');
    await assert.rejects(b.readFile('/upload/nope'), refused('missing'));
    await assert.rejects(b.readFile('/upload/conf'), refused('unreadable'));
  });

  it('anything outside the root is refused, without naming a path of the machine', async () => {
    for (const p of ['/etc/passwd', '/upload/../etc/passwd', '../x', '/uploadx/y']) {
      await assert.rejects(b.stat(p), refused('outside'), p);
      await assert.rejects(b.readFile(p), refused('outside'), p);
    }
  });

  it('a returned file cannot change the bundle', async () => {
    const x = await b.readFile('conf/a.conf');
    x[0] = 0x7a;
    assert.equal(text(await b.readFile('conf/a.conf')), 'a');
  });

  it('a name that is both a file and a directory is refused', () => {
    assert.throws(() => bundleSource({ a: 'x', 'a/b': 'y' }), /also a directory/);
  });
});

describe('directorySource', () => {
  let root: string;
  let dir: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'kompox-source-'));
    dir = join(root, 'proj');
    mkdirSync(join(dir, 'conf'), { recursive: true });
    writeFileSync(join(dir, 'conf/a.conf'), 'a');
    writeFileSync(join(root, 'secret.txt'), 'secret');
    symlinkSync(join(root, 'secret.txt'), join(dir, 'out-link'));
    symlinkSync(root, join(dir, 'out-dir'));
    symlinkSync('conf/a.conf', join(dir, 'in-link'));
    symlinkSync(join(root, 'nothing-there'), join(dir, 'dangling'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('unsandboxed (the CLI): reads where the user points, links included', async () => {
    const s = directorySource(dir, { env: { X: '1' }, homeDir: '/home/u' });
    assert.equal(s.sandboxed, false);
    assert.equal(s.homeDir, '/home/u');
    assert.equal(text(await s.readFile(join(root, 'secret.txt'))), 'secret');
    assert.equal(text(await s.readFile(join(dir, 'out-link'))), 'secret');
    assert.deepEqual(await s.readdir(dir), [
      { name: 'conf', kind: 'dir' },
      { name: 'dangling', kind: 'symlink' },
      { name: 'in-link', kind: 'symlink' },
      { name: 'out-dir', kind: 'symlink' },
      { name: 'out-link', kind: 'symlink' },
    ]);
  });

  it('sandboxed: paths and links inside are fine; out of the root, lexically or through a link, refused', async () => {
    const s = directorySource(dir, { sandboxed: true, homeDir: '/home/u' });
    assert.equal(s.homeDir, undefined, 'a sandbox has no home directory');
    assert.equal(text(await s.readFile(join(dir, 'in-link'))), 'a');
    assert.equal((await s.stat(join(dir, 'conf')))?.kind, 'dir');
    assert.equal(await s.stat(join(dir, 'missing')), undefined);
    assert.equal(await s.stat(join(dir, 'dangling')), undefined, 'a dangling link reads nothing');
    for (const p of [join(root, 'secret.txt'), join(dir, '../secret.txt')]) await assert.rejects(s.readFile(p), refused('outside'), p);
    for (const p of [join(dir, 'out-link'), join(dir, 'out-dir/secret.txt'), join(dir, 'out-dir/not-there')]) {
      await assert.rejects(s.stat(p), refused('outside'), p);
      await assert.rejects(s.readFile(p), refused('outside'), p);
      await assert.rejects(s.realpath(p), refused('outside'), p);
    }
    await assert.rejects(s.readdir(join(dir, 'out-dir')), refused('outside'));
    await assert.rejects(s.readFile(join(dir, 'out-link')), (e: unknown) => e instanceof Error && !e.message.includes(root), 'the message does not show the target');
  });
});
