// Archive formats through the real binary: `disk export` writes version 2
// (zstd) by default and version 1 (gzip) with `--format tar.gz`;
// `snapshot export --format tar.gz` re-compresses the stored zstd snapshot;
// `disk import` takes either, and an old .tar.gz snapshot on the node is
// still listed, restored and exported.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { readManifest } from '../../src/archive/archive.js';
import { STACK_LINE } from '../support/cli.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/index.js';
import { writeSampleTree } from '../providers/k3s-fixtures.js';
import { hostFs, kompoxops, treeDigest, writeProject, type Run } from '../usecases/lifecycle-support.js';

describe('archive formats through kompoxops (K3s driver on temp dirs, fake API server)', () => {
  let fake: FakeKube;
  let dir: string;
  const ok = (r: Run) => assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.out}\nstderr: ${r.err}`);
  const disks = async () => JSON.parse((await kompoxops(dir, ['disk', 'list', '-o', 'json'])).out) as Array<{ name: string; id: string }>;
  const snapshots = async () => JSON.parse((await kompoxops(dir, ['snapshot', 'list', '-o', 'json'])).out) as Array<{ name: string; id: string; sha256: string }>;

  before(async () => {
    fake = await startFakeKube();
    dir = await mkdtemp(join(tmpdir(), 'kompox-format-cli-'));
    await writeProject(dir, { diskRoot: join(dir, 'disks'), snapshotRoot: join(dir, 'snapshots'), kubeconfig: fake.kubeconfigPath, cluster: 'k3s' });
  });
  after(async () => {
    await fake?.close();
    if (dir) await hostFs.rm(dir);
  });

  it('exports zstd by default and gzip version 1 on request; imports both', async () => {
    ok(await kompoxops(dir, ['disk', 'create', '-N', 'd1']));
    const [d1] = await disks();
    await writeSampleTree(d1!.id);
    const original = await treeDigest(d1!.id);

    ok(await kompoxops(dir, ['disk', 'export', '-N', 'd1', '-O', 'd1.tar.zst']));
    const zst = await readFile(join(dir, 'd1.tar.zst'));
    assert.equal(zst.subarray(0, 4).toString('hex'), '28b52ffd');
    assert.equal((await readManifest(Readable.from([zst]))).version, 2);

    ok(await kompoxops(dir, ['disk', 'export', '-N', 'd1', '-O', 'd1.tar.gz', '--format', 'tar.gz']));
    const gz = await readFile(join(dir, 'd1.tar.gz'));
    assert.equal(gz.subarray(0, 2).toString('hex'), '1f8b');
    // what a version 1 reader checks first: a gzip tar whose manifest says version 1
    assert.match(gunzipSync(gz).toString('latin1'), /"version": 1,/);

    for (const [file, name] of [
      ['d1.tar.zst', 'from-zst'],
      ['d1.tar.gz', 'from-gz'],
    ] as const) {
      ok(await kompoxops(dir, ['disk', 'import', file, '-N', name]));
      assert.equal(await treeDigest((await disks()).find((d) => d.name === name)!.id), original, name);
    }
  });

  it('snapshot export --format tar.gz re-compresses the stored snapshot; its checksum file matches what was written', async () => {
    ok(await kompoxops(dir, ['snapshot', 'create', '-N', 's1', '--disk', 'd1']));
    const [s1] = await snapshots();
    assert.match(s1!.id, /\/s1\.tar\.zst$/);
    ok(await kompoxops(dir, ['snapshot', 'export', '-N', 's1', '-O', 's1.tar.gz', '--format', 'tar.gz']));
    const gz = await readFile(join(dir, 's1.tar.gz'));
    assert.equal(gz.subarray(0, 2).toString('hex'), '1f8b');
    assert.equal((await readManifest(Readable.from([gz]))).version, 1);
    const { createHash } = await import('node:crypto');
    assert.equal((await readFile(join(dir, 's1.tar.gz.sha256'), 'utf8')).split(' ')[0], createHash('sha256').update(gz).digest('hex'));
    ok(await kompoxops(dir, ['disk', 'import', 's1.tar.gz', '-N', 'from-snap-gz']));
    const [d1] = await disks();
    assert.equal(await treeDigest((await disks()).find((d) => d.name === 'from-snap-gz')!.id), await treeDigest(d1!.id));
  });

  it('a snapshot stored as .tar.gz by an older release is still listed, restored and exported as it is', async () => {
    const [s1] = await snapshots();
    // Make s1 look like a version 1 snapshot: gzip archive, metadata without `format`.
    const gz = await readFile(join(dir, 's1.tar.gz'));
    const oldArchive = s1!.id.replace(/\.tar\.zst$/, '.tar.gz');
    await writeFile(oldArchive, gz);
    await hostFs.rm(s1!.id);
    const metaPath = s1!.id.replace(/\.tar\.zst$/, '.json');
    const meta = JSON.parse(await readFile(metaPath, 'utf8')) as Record<string, unknown>;
    delete meta.format;
    meta.sha256 = (await import('node:crypto')).createHash('sha256').update(gz).digest('hex');
    await writeFile(`${metaPath}.new`, JSON.stringify(meta));
    await rename(`${metaPath}.new`, metaPath);

    const [old] = await snapshots();
    assert.equal(old!.id, oldArchive);
    ok(await kompoxops(dir, ['snapshot', 'restore', '-N', 's1', '--disk-name', 'restored-old']));
    const [d1] = await disks();
    assert.equal(await treeDigest((await disks()).find((d) => d.name === 'restored-old')!.id), await treeDigest(d1!.id));
    ok(await kompoxops(dir, ['snapshot', 'export', '-N', 's1', '-O', 'old-again.tar.gz']));
    assert.ok((await readFile(join(dir, 'old-again.tar.gz'))).equals(gz), 'exported byte for byte as stored');
  });

  it('refuses an unknown --format before doing anything', async () => {
    const r = await kompoxops(dir, ['disk', 'export', '-N', 'd1', '-O', 'd1.zip', '--format', 'zip']);
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /^error: --format "zip" is not an archive format/);
    assert.match(r.err, /tar\.zst.*tar\.gz/);
    assert.doesNotMatch(r.err, STACK_LINE);
    const { lstat } = await import('node:fs/promises');
    await assert.rejects(lstat(join(dir, 'd1.zip')));
  });

  it('--level: a level of the format, or one clear refusal naming --level before anything is written', async () => {
    const { lstat } = await import('node:fs/promises');
    for (const [args, want] of [
      [['--level', '9'], /^error: --level 9 is not a compression level of tar\.zst archives\. Give a whole number from 1 \(fastest\) to 8 \(smallest\); the default is 5\./],
      [['--level', 'fast'], /^error: --level "fast" is not a whole number\./],
      [['--format', 'tar.gz', '--level', '10'], /^error: --level 10 is not a compression level of tar\.gz archives\. Give a whole number from 1 \(fastest\) to 9/],
    ] as const) {
      const r = await kompoxops(dir, ['disk', 'export', '-N', 'd1', '-O', 'lv.tar.zst', ...args]);
      assert.equal(r.code, 2, r.err);
      assert.match(r.err, want);
      assert.equal(r.err.trim().split('\n').length, 1, r.err);
      await assert.rejects(lstat(join(dir, 'lv.tar.zst')));
    }
    ok(await kompoxops(dir, ['disk', 'export', '-N', 'd1', '-O', 'lv.tar.gz', '--format', 'tar.gz', '--level', '1']));
    ok(await kompoxops(dir, ['disk', 'export', '-N', 'd1', '-O', 'lv.tar.zst', '--level', '1']));
    const [d1] = await disks();
    for (const f of ['lv.tar.gz', 'lv.tar.zst']) {
      assert.equal((await readManifest(Readable.from([await readFile(join(dir, f))]))).treeDigest, await treeDigest(d1!.id), f);
      ok(await kompoxops(dir, ['disk', 'import', f, '-N', `from-${f.replace('.', '-').replace('.', '-')}`]));
    }
    // a snapshot re-compressed at another level (its stored bytes checked on the way); the same refusal
    ok(await kompoxops(dir, ['snapshot', 'create', '-N', 'lv', '--disk', 'd1']));
    const snap = (await snapshots()).find((x) => x.name === 'lv')!;
    const bad = await kompoxops(dir, ['snapshot', 'export', '-N', 'lv', '-O', 'lv-snap.tar.zst', '--level', '0']);
    assert.equal(bad.code, 2, bad.err);
    assert.match(bad.err, /^error: --level 0 is not a compression level of tar\.zst archives/);
    await assert.rejects(lstat(join(dir, 'lv-snap.tar.zst')));
    ok(await kompoxops(dir, ['snapshot', 'export', '-N', 'lv', '-O', 'lv-snap.tar.zst', '--level', '1']));
    const again = await readFile(join(dir, 'lv-snap.tar.zst'));
    assert.ok(!again.equals(await readFile(snap.id)), 're-compressed, not the stored bytes');
    assert.equal((await readManifest(Readable.from([again]))).treeDigest, await treeDigest(d1!.id));
    ok(await kompoxops(dir, ['snapshot', 'export', '-N', 'lv', '-O', 'lv-snap.tar.gz', '--format', 'tar.gz', '--level', '9']));
    assert.deepEqual([...(await readFile(join(dir, 'lv-snap.tar.gz'))).subarray(0, 2)], [0x1f, 0x8b]);
    // a snapshot made at another level: refused the same way before anything is made, restored like any other
    const refused = await kompoxops(dir, ['snapshot', 'create', '-N', 'lv9', '--disk', 'd1', '--level', '9']);
    assert.equal(refused.code, 2, refused.err);
    assert.match(refused.err, /^error: --level 9 is not a compression level of tar\.zst archives\. Give a whole number from 1 \(fastest\) to 8/);
    assert.equal(refused.err.trim().split('\n').length, 1, refused.err);
    assert.ok(!(await snapshots()).some((x) => x.name === 'lv9'), 'no snapshot made');
    ok(await kompoxops(dir, ['snapshot', 'create', '-N', 'lv1', '--disk', 'd1', '--level', '1']));
    const lv1 = (await snapshots()).find((x) => x.name === 'lv1')!;
    assert.equal((await readManifest(Readable.from([await readFile(lv1.id)]))).treeDigest, await treeDigest(d1!.id));
  });
});
