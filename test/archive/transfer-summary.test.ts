// The `transfer` summary of data commands under -o json (issue 11): disk
// export and import, snapshot create, restore and export report the files and bytes
// their archive holds, the seconds and the rate; through the real binary on
// the K3s driver (temp dirs) and the fake API server. No timing is asserted:
// only that seconds and rate are consistent with each other and the bytes.
import assert from 'node:assert/strict';
import { mkdtemp, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { measureTree } from '../../src/archive/archive.js';
import { watchTransfers } from '../../src/cli/transfer-summary.js';
import type { KompoxEvent } from '../../src/domain/events.js';
import { byteProgress } from '../../src/domain/events.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/index.js';
import { writeSampleTree } from '../providers/k3s-fixtures.js';
import { hostFs, kompoxops, writeProject, type Run } from '../usecases/lifecycle-support.js';

describe('transfer summary (watchTransfers)', () => {
  it('sums the transfers that ended with counts; seconds from each one\'s first event; events still reach the renderer', () => {
    const seen: KompoxEvent[] = [];
    let now = 0;
    const watch = watchTransfers({ events: (e) => seen.push(e) }, () => now);
    assert.equal(watch.summary(), null, 'nothing moved yet');
    const a = byteProgress(watch.op, 'export d1')!;
    a.start('export', 2_000_000);
    now = 500;
    a.advance(2_000_000);
    now = 1000;
    a.done({ files: 3, bytes: 2_000_000 });
    const b = byteProgress(watch.op, 'copy')!;
    now = 5000;
    b.start('copy', 10);
    now = 6000;
    b.done(); // no counts (a producer that cannot tell what it moved): not summed
    assert.deepEqual(watch.summary(), { bytes: 2_000_000, files: 3, seconds: 1, mbPerSecond: 2 });
    assert.ok(seen.some((e) => e.type === 'progress' && e.end && e.counts?.files === 3));
  });

  it('a total learnt after the start (a size walk alongside) is sent at once and kept; after the end it is ignored', () => {
    const seen: KompoxEvent[] = [];
    const p = byteProgress({ events: (e) => seen.push(e) }, 'export d')!;
    p.start('export');
    p.advance(10);
    p.total!(1000);
    assert.deepEqual(seen.at(-1), { type: 'progress', id: (seen[0] as { id: string }).id, label: 'export d', done: 10, total: 1000, unit: 'bytes' });
    p.advance(990);
    p.done({ files: 1, bytes: 1000 });
    assert.equal((seen.at(-1) as { total?: number }).total, 1000, 'the end keeps the total');
    const n = seen.length;
    p.total!(5);
    assert.equal(seen.length, n, 'nothing after the end');
  });
});

describe('-o json transfer summary through kompoxops (K3s driver on temp dirs, fake API server)', () => {
  let fake: FakeKube;
  let dir: string;
  const ok = (r: Run) => assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.out}\nstderr: ${r.err}`);
  type Transfer = { bytes: number; files: number; seconds: number; mbPerSecond: number };
  const checkTransfer = (t: Transfer | null | undefined, want: { files: number; bytes: number }, what: string) => {
    assert.ok(t, `${what}: a transfer summary`);
    assert.equal(t.files, want.files, `${what}: files`);
    assert.equal(t.bytes, want.bytes, `${what}: bytes`);
    assert.ok(t.seconds >= 0, `${what}: seconds`);
    if (t.seconds > 0) assert.ok(Math.abs(t.mbPerSecond - t.bytes / 1e6 / t.seconds) <= 0.05 + t.mbPerSecond * 0.01, `${what}: rate = bytes / seconds`);
  };

  before(async () => {
    fake = await startFakeKube();
    dir = await mkdtemp(join(tmpdir(), 'kompox-transfer-cli-'));
    await writeProject(dir, { diskRoot: join(dir, 'disks'), snapshotRoot: join(dir, 'snapshots'), kubeconfig: fake.kubeconfigPath, cluster: 'k3s' });
  });
  after(async () => {
    await fake?.close();
    if (dir) await hostFs.rm(dir);
  });

  it('export, import, snapshot create and restore report files, bytes, seconds and MB/s', async () => {
    ok(await kompoxops(dir, ['disk', 'create', '-N', 'd1']));
    const [d1] = JSON.parse((await kompoxops(dir, ['disk', 'list', '-o', 'json'])).out) as Array<{ id: string }>;
    await writeSampleTree(d1!.id);
    const size = await measureTree(hostFs, d1!.id);
    const want = { files: size.fileCount, bytes: size.totalBytes };
    assert.ok(want.files > 5 && want.bytes > 300 * 1024);

    const exp = await kompoxops(dir, ['disk', 'export', '-N', 'd1', '-O', 'd1.tar.zst', '-o', 'json']);
    ok(exp);
    const e = JSON.parse(exp.out) as { disk: string; file: string; archiveBytes: number; sha256: string; transfer: Transfer };
    assert.equal(e.disk, 'd1');
    assert.match(e.sha256, /^[0-9a-f]{64}$/);
    checkTransfer(e.transfer, want, 'disk export');

    const imp = await kompoxops(dir, ['disk', 'import', 'd1.tar.zst', '-N', 'd2', '-o', 'json']);
    ok(imp);
    const i = JSON.parse(imp.out) as { name: string; transfer: Transfer };
    assert.equal(i.name, 'd2');
    checkTransfer(i.transfer, want, 'disk import');

    // through the cluster (a helper pod's tar on the fake kubelet): the same counts
    const cexp = await kompoxops(dir, ['disk', 'export', '-N', 'd1', '-O', 'd1-cluster.tar.zst', '--via', 'cluster', '-o', 'json']);
    ok(cexp);
    checkTransfer((JSON.parse(cexp.out) as { transfer: Transfer }).transfer, want, 'disk export --via cluster');
    const cimp = await kompoxops(dir, ['disk', 'import', 'd1.tar.zst', '-N', 'd3', '--via', 'cluster', '-o', 'json']);
    ok(cimp);
    checkTransfer((JSON.parse(cimp.out) as { transfer: Transfer }).transfer, want, 'disk import --via cluster');

    const snap = await kompoxops(dir, ['snapshot', 'create', '-N', 's1', '--disk', 'd1', '-o', 'json']);
    ok(snap);
    const s = JSON.parse(snap.out) as { name: string; sha256: string; transfer: Transfer };
    assert.equal(s.name, 's1');
    checkTransfer(s.transfer, want, 'snapshot create');

    const rest = await kompoxops(dir, ['snapshot', 'restore', '-N', 's1', '--disk-name', 'r1', '-o', 'json']);
    ok(rest);
    const r = JSON.parse(rest.out) as { name: string; transfer: Transfer };
    assert.equal(r.name, 'r1');
    checkTransfer(r.transfer, want, 'snapshot restore');

    // a snapshot exported as stored, re-compressed, and through the cluster
    // (restored into a temporary disk first: each file still counted once)
    for (const extra of [[], ['--format', 'tar.gz'], ['--via', 'cluster']]) {
      const what = `snapshot export ${extra.join(' ')}`.trim();
      const file = `s1-${extra.length ? extra[1] : 'stored'}.archive`;
      const sx = await kompoxops(dir, ['snapshot', 'export', '-N', 's1', '-O', file, '-o', 'json', ...extra]);
      ok(sx);
      const x = JSON.parse(sx.out) as { snapshot: string; file: string; archiveBytes: number; sha256: string; transfer: Transfer };
      assert.deepEqual(Object.keys(x), ['snapshot', 'file', 'archiveBytes', 'sha256', 'transfer'], what);
      assert.equal(x.snapshot, 's1');
      assert.equal(x.file, file);
      assert.equal(x.archiveBytes, (await stat(join(dir, file))).size, `${what}: archiveBytes`);
      if (!extra.length) assert.equal(x.sha256, s.sha256, 'as stored: the snapshot\'s own bytes');
      checkTransfer(x.transfer, want, what);
    }

    // a copy on the node (disk create -S) moves data too; an empty disk moves none
    const copy = await kompoxops(dir, ['disk', 'create', '-N', 'c1', '-S', 'd1', '-o', 'json']);
    ok(copy);
    const c = JSON.parse(copy.out) as { name: string; transfer: Transfer | null };
    assert.equal(c.name, 'c1');
    assert.equal(Object.keys(c).at(-1), 'transfer');
    checkTransfer(c.transfer, want, 'disk create -S');
    const empty = await kompoxops(dir, ['disk', 'create', '-N', 'e1', '-o', 'json']);
    ok(empty);
    assert.equal((JSON.parse(empty.out) as { transfer: unknown }).transfer, null);

    // A table keeps its one line.
    const plain = await kompoxops(dir, ['disk', 'export', '-N', 'd1', '-O', 'd1-again.tar.zst']);
    ok(plain);
    assert.match(plain.out, /^exported disk d1 to d1-again\.tar\.zst \(\d+ bytes, sha256 [0-9a-f]{64}; checksum in d1-again\.tar\.zst\.sha256\)\n$/);
  });

  it('refuses -o json with -O - (stdout carries the archive) before doing anything', async () => {
    const r = await kompoxops(dir, ['disk', 'export', '-N', 'd1', '-O', '-', '-o', 'json']);
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /-O - writes the archive to stdout, so -o json has nowhere to go/);
    const sx = await kompoxops(dir, ['snapshot', 'export', '-N', 's1', '-O', '-', '-o', 'yaml']);
    assert.equal(sx.code, 2, sx.err);
    assert.match(sx.err, /snapshot export -O - writes the archive to stdout, so -o yaml has nowhere to go/);
    assert.equal(sx.out, '', 'nothing written to stdout');
  });
});
