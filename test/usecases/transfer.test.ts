// Disk data through the cluster (src/usecases/transfer.ts) with the real K3s
// driver on temp dirs and the fake API server, whose kubelet runs the helper
// pod's tar, find, stat and sha256sum for real (busybox's when installed) on
// the disk's local PersistentVolume. Done-when of issue 10: export and import
// of a K3s disk through the cluster path give the same tree digest as the
// direct path.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { link, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { digestTree, measureTree, readManifest } from '../../src/archive/archive.js';
import { watchTransfers } from '../../src/cli/transfer-summary.js';
import type { KompoxEvent } from '../../src/domain/events.js';
import { KompoxError } from '../../src/domain/errors.js';
import type { AppContext, Disk } from '../../src/domain/model.js';
import type { ProviderDriver } from '../../src/domain/ports/driver.js';
import { APP_SELECTOR_LABEL, appLabels, appNamespace } from '../../src/domain/names.js';
import type { KubeClient } from '../../src/kube/index.js';
import { LocalHostFs } from '../../src/providers/k3s/hostfs.js';
import type { K3sDriver } from '../../src/providers/k3s/index.js';
import { createDisk, exportDisk, importDisk, listDisks } from '../../src/usecases/disk.js';
import { createSnapshot, exportSnapshot } from '../../src/usecases/snapshot.js';
import { ensureAppNamespace } from '../../src/usecases/volumes.js';
import { parseReadBack, podsUsingDisk, ReadBackParser, sweepPendingDisks, transferVia } from '../../src/usecases/transfer.js';
import { ListingJoin } from '../../src/archive/listing-join.js';
import { HELPER_LABEL, helperPodObjects } from '../../src/convert/helper-pod.js';
import { helperPodFate } from '../../src/usecases/helper-pod.js';
import { releaseOldVolumeBindings } from '../../src/usecases/app-deploy.js';
import { appCtx, isHelperTar, startK3sCluster, writeSampleTree, type K3sCluster, type Sandbox } from '../providers/k3s-fixtures.js';
import type { FakeKube } from '../support/fake-kube/index.js';
import { assertTotalBeforeEnd, collectEvents } from '../support/events.js';
import { eventually } from '../support/kube.js';
import { rejectsWith } from '../support/assertions.js';
import { collect } from '../support/collect.js';

const fs = new LocalHostFs();

describe('disk data through the cluster (K3s driver, helper pods on the fake kubelet)', () => {
  let sb: Sandbox;
  let fake: FakeKube;
  let kube: KubeClient;
  let driver: K3sDriver;
  let env: K3sCluster | undefined;
  before(async () => {
    env = await startK3sCluster();
    ({ sb, fake, kube, driver } = env);
  });
  after(async () => env?.close());

  /** A disk of app `app` holding the sample tree (and a hard link). */
  async function diskWithData(app: string, name = 'data-1'): Promise<{ ctx: AppContext; disk: Disk; digest: string }> {
    const ctx = appCtx(sb, { app });
    const disk = await createDisk(ctx, driver, kube, { name });
    await writeSampleTree(disk.id);
    await link(join(disk.id, 'run.sh'), join(disk.id, 'sub', 'hard-link.sh'));
    return { ctx, disk, digest: (await digestTree(fs, disk.id)).treeDigest };
  }

  /** The helper's tar (`-c` or `-x`) is running in a helper pod of the app, on the fake's real-exec kubelet. */
  function runningInHelper(ctx: AppContext, mode: '-c' | '-x', since = 0): boolean {
    const ns = appNamespace(ctx);
    return fake.hostExecs.slice(since).some((x) => x.namespace === ns && x.pod.startsWith('kompox-transfer-') && x.exitCode === undefined && isHelperTar(x.command, mode));
  }

  /** A sink that never reads: the export stalls on backpressure until it is cancelled. */
  function stalledOut(): PassThrough {
    const out = new PassThrough({ highWaterMark: 16 });
    out.on('error', () => undefined); // a cancel destroys it, as it does the file an export writes
    return out;
  }

  /** Nothing of a helper pod is left in the cluster, and no pending or temp disk on the node. */
  async function assertNoLeftovers(ctx: AppContext): Promise<void> {
    const ns = appNamespace(ctx);
    await eventually(async () => (await kube.list('v1', 'Pod', { namespace: ns, labelSelector: HELPER_LABEL })).length === 0, 'helper pods gone');
    assert.deepEqual(await kube.list('v1', 'PersistentVolumeClaim', { namespace: ns, labelSelector: HELPER_LABEL }), []);
    assert.deepEqual((await kube.list('v1', 'PersistentVolume', { labelSelector: HELPER_LABEL })).filter((pv) => (pv.spec as { claimRef?: { namespace?: string } }).claimRef?.namespace === ns), []);
    assert.deepEqual(await driver.disks.list(ctx, ctx.app.volumes[0]!, { pending: true }, {}), []);
    const volDir = join(sb.diskRoot, ns, 'default');
    assert.deepEqual((await readdir(volDir).catch(() => [] as string[])).filter((n) => n.startsWith('.')), []);
  }

  it('export and import through the cluster give the tree digest of the direct path (both ways)', async () => {
    const { ctx, disk, digest } = await diskWithData('roundtrip');
    const direct = await collect((out) => exportDisk(ctx, driver, kube, { name: disk.name, out }));
    const c = collectEvents();
    const cluster = await collect((out) => exportDisk(ctx, driver, kube, { name: disk.name, out, via: 'cluster' }, c.op));
    const [md, mc] = [await readManifest(Readable.from([direct])), await readManifest(Readable.from([cluster]))];
    assert.equal(md.treeDigest, digest);
    assert.equal(mc.treeDigest, digest, 'the cluster path packs the same tree');
    assert.deepEqual(mc.entries.map((e) => e.path), md.entries.map((e) => e.path));
    assert.ok(c.events.some((e) => e.type === 'phase' && e.phase === 'helper'));
    assert.ok(fake.hostExecs.some((x) => isHelperTar(x.command, '-c') && x.exitCode === 0), 'tar ran in the helper pod');
    // the direct archive imported through the cluster, the cluster archive imported directly
    const viaCluster = await importDisk(ctx, driver, kube, { name: 'from-direct', archive: { stream: Readable.from([direct]), label: 'direct.tar.zst' }, via: 'cluster' });
    assert.equal((await digestTree(fs, viaCluster.id)).treeDigest, digest);
    assert.equal(viaCluster.pending, undefined);
    const viaDirect = await importDisk(ctx, driver, kube, { name: 'from-cluster', archive: { stream: Readable.from([cluster]) } });
    assert.equal((await digestTree(fs, viaDirect.id)).treeDigest, digest);
    assert.deepEqual((await listDisks(ctx, driver, kube)).disks.map((d) => d.name).sort(), ['data-1', 'from-cluster', 'from-direct']);
    await assertNoLeftovers(ctx);
  });

  it('tar.gz through the cluster; the setting chooses the path; a bad value names the field', async () => {
    const { ctx, disk } = await diskWithData('gz');
    // more than one of gunzip's output buffers: the import through the cluster frees them as it reads (handOver)
    await import('node:fs/promises').then(({ writeFile }) => writeFile(join(disk.id, 'blob'), randomBytes(3 * 1024 * 1024 + 17)));
    const digest = (await digestTree(fs, disk.id)).treeDigest;
    ctx.app.settings.KOMPOX_TRANSFER_VIA = 'cluster';
    assert.equal(transferVia(ctx, driver, 'disk export'), 'cluster');
    const gz = await collect((out) => exportDisk(ctx, driver, kube, { name: disk.name, out, format: 'tar.gz' }));
    assert.deepEqual([...gz.subarray(0, 2)], [0x1f, 0x8b]);
    assert.equal((await readManifest(Readable.from([gz]))).treeDigest, digest);
    assert.equal((await readManifest(Readable.from([gz]))).version, 1);
    // and back in through the cluster, version 1 as it is
    const back = await importDisk(ctx, driver, kube, { name: 'gz-back', archive: { stream: Readable.from([gz]) } });
    assert.equal((await digestTree(fs, back.id)).treeDigest, digest);
    ctx.app.settings.KOMPOX_TRANSFER_VIA = 'sideways';
    assert.throws(() => transferVia(ctx, driver, 'disk export'), (e: unknown) => e instanceof KompoxError && e.kind === 'config' && e.field === 'app.settings.KOMPOX_TRANSFER_VIA');
    await rejectsWith(exportDisk(ctx, driver, kube, { name: disk.name, out: new PassThrough(), via: 'teleport' }), 'usage', /not host, cluster or auto/);
  });

  it('--level: a faster level through the cluster and directly gives a larger archive of the same tree; a level out of range is refused before any helper runs', async () => {
    const { ctx, disk } = await diskWithData('level');
    // log-like text, where zstd's levels part (a tiny tree compresses the same at any level)
    const words = 'alpha beta gamma delta error warning info debug request response user session cache miss hit timeout retry commit rollback'.split(' ');
    let x = 12345;
    const rnd = (n: number) => ((x = (x * 1103515245 + 12345) >>> 0) >>> 8) % n;
    const lines: string[] = [];
    for (let i = 0; i < 30_000; i++) lines.push(`${i} ${Array.from({ length: 4 + rnd(8) }, () => words[rnd(words.length)]).join(' ')} id=${rnd(100_000)}`);
    await import('node:fs/promises').then(({ writeFile }) => writeFile(join(disk.id, 'access.log'), lines.join('\n')));
    const digest = (await digestTree(fs, disk.id)).treeDigest;
    for (const via of ['cluster', 'host'] as const) {
      const fast = await collect((out) => exportDisk(ctx, driver, kube, { name: disk.name, out, via, level: 1 }));
      const small = await collect((out) => exportDisk(ctx, driver, kube, { name: disk.name, out, via, level: 8 }));
      assert.ok(fast.length > small.length * 1.05, `${via}: level 1 (${fast.length} bytes) larger than level 8 (${small.length})`);
      for (const a of [fast, small]) assert.equal((await readManifest(Readable.from([a]))).treeDigest, digest, via);
      const back = await importDisk(ctx, driver, kube, { name: `from-${via}`, archive: { stream: Readable.from([fast]) } });
      assert.equal((await digestTree(fs, back.id)).treeDigest, digest);
    }
    const gz = await collect((out) => exportDisk(ctx, driver, kube, { name: disk.name, out, via: 'cluster', format: 'tar.gz', level: 9 }));
    assert.deepEqual([...gz.subarray(0, 2)], [0x1f, 0x8b]);
    const execs = fake.hostExecs.length;
    for (const [format, level] of [['tar.zst', 9], ['tar.zst', 0], ['tar.gz', 10], ['tar.zst', 2.5]] as const) {
      const out = new PassThrough();
      await rejectsWith(exportDisk(ctx, driver, kube, { name: disk.name, out, via: 'cluster', format, level }), 'usage', new RegExp(`^level ${level} is not a compression level of ${format.replace('.', '\\.')} archives$`));
      assert.equal(out.readableLength, 0, 'nothing written');
    }
    await rejectsWith(exportSnapshot(ctx, driver, kube, { name: 'any', out: new PassThrough(), via: 'cluster', level: 20 }), 'usage', /^level 20 is not a compression level of tar\.zst archives$/);
    assert.equal(fake.hostExecs.length, execs, 'no helper ran for a refused level');
    await assertNoLeftovers(ctx);
  });

  it('an import that fails verification or is cancelled leaves no disk, no helper and nothing pending', async () => {
    const { ctx, disk } = await diskWithData('bad-import');
    const good = await collect((out) => exportDisk(ctx, driver, kube, { name: disk.name, out, format: 'tar.gz' }));
    const before = (await listDisks(ctx, driver, kube)).disks.map((d) => d.name);
    const bad = Buffer.from(good);
    bad[Math.floor(bad.length * 0.6)] ^= 0x55;
    await rejectsWith(importDisk(ctx, driver, kube, { name: 'broken', archive: { stream: Readable.from([bad]), label: 'bad.tar.gz' }, via: 'cluster' }), 'integrity', /^bad\.tar\.gz: .*no disk was created$/);
    await rejectsWith(importDisk(ctx, driver, kube, { name: 'wrong-sum', archive: { stream: Readable.from([good]), expectedSha256: 'a'.repeat(64) }, via: 'cluster' }), 'integrity', /SHA-256/);
    // truncated: refused, nothing kept
    await rejectsWith(importDisk(ctx, driver, kube, { name: 'truncated', archive: { stream: Readable.from([good.subarray(0, Math.floor(good.length * 0.7))]) }, via: 'cluster' }), 'integrity', /truncated|unexpected end|no disk was created/);
    // cancelled while the helper's tar -x reads the data: the rest of the archive never comes
    const ac = new AbortController();
    const slow = new PassThrough();
    slow.write(good.subarray(0, 1000));
    const since = fake.hostExecs.length;
    const importing = importDisk(ctx, driver, kube, { name: 'cancelled', archive: { stream: slow }, via: 'cluster' }, { signal: ac.signal });
    importing.catch(() => undefined);
    await eventually(() => runningInHelper(ctx, '-x', since), 'tar -x running in the helper pod');
    ac.abort();
    await rejectsWith(importing, 'interrupted', /^interrupted: no disk was created$/);
    assert.deepEqual((await listDisks(ctx, driver, kube)).disks.map((d) => d.name), before);
    await assertNoLeftovers(ctx);
  });

  it('an import whose exec stream is lost mid-stream fails with that loss (not as an unexplained abort) and leaves nothing', async () => {
    const { ctx, disk } = await diskWithData('lost-import');
    const good = await collect((out) => exportDisk(ctx, driver, kube, { name: disk.name, out }));
    const before = (await listDisks(ctx, driver, kube)).disks.map((d) => d.name);
    const slow = new PassThrough();
    slow.write(good.subarray(0, 1000));
    const since = fake.hostExecs.length;
    const importing = importDisk(ctx, driver, kube, { name: 'lost', archive: { stream: slow }, via: 'cluster' });
    importing.catch(() => undefined);
    await eventually(() => runningInHelper(ctx, '-x', since), 'tar -x running in the helper pod');
    // its connection breaks without an exit status (a network failure, an API server restart)
    assert.equal(fake.cutExecs((x) => isHelperTar(x.command, '-x') && x.namespace === appNamespace(ctx)), 1);
    await rejectsWith(importing, 'unavailable', /connection closed before the command ended/);
    assert.deepEqual((await listDisks(ctx, driver, kube)).disks.map((d) => d.name), before);
    await assertNoLeftovers(ctx);
  });

  it('a helper pod deleted or OOMKilled mid-transfer: the error says what happened to it (not a bare exit 137), and nothing is left', async () => {
    const { ctx, disk } = await diskWithData('helper-dies');
    // enough data that the export cannot end before the pod does
    await import('node:fs/promises').then(({ writeFile }) => writeFile(join(disk.id, 'big.bin'), Buffer.alloc(8 * 1024 * 1024, 7)));
    const good = await collect((out) => exportDisk(ctx, driver, kube, { name: disk.name, out }));
    const ns = appNamespace(ctx);
    const helpers = async () => (await kube.list('v1', 'Pod', { namespace: ns, labelSelector: HELPER_LABEL })).map((p) => p.metadata.name);
    const deleteHelper = async () => {
      for (const name of await helpers()) await kube.delete({ apiVersion: 'v1', kind: 'Pod', namespace: ns, name });
    };
    // an export, then an import, whose helper pod is deleted (kubectl delete pod) while tar runs
    let since = fake.hostExecs.length;
    const exporting = exportDisk(ctx, driver, kube, { name: disk.name, out: stalledOut(), via: 'cluster' });
    exporting.catch(() => undefined);
    await eventually(() => runningInHelper(ctx, '-c', since), 'tar -c running in the helper pod');
    await deleteHelper();
    await assert.rejects(exporting, (e: unknown) => e instanceof KompoxError && e.code === 'helper.deleted' && /^the helper pod \S+ was deleted during the export of disk data-1 /.test(e.message) && Boolean(e.hint));
    await assertNoLeftovers(ctx);
    const slow = new PassThrough();
    slow.write(good.subarray(0, 1000));
    since = fake.hostExecs.length;
    const importing = importDisk(ctx, driver, kube, { name: 'half', archive: { stream: slow }, via: 'cluster' });
    importing.catch(() => undefined);
    await eventually(() => runningInHelper(ctx, '-x', since), 'tar -x running in the helper pod');
    await deleteHelper();
    await assert.rejects(importing, (e: unknown) => e instanceof KompoxError && e.code === 'helper.deleted' && /was deleted during the import of disk half /.test(e.message));
    assert.deepEqual((await listDisks(ctx, driver, kube)).disks.map((d) => d.name), ['data-1']);
    await assertNoLeftovers(ctx);
    // the helper's container killed at its memory limit: terminated, reason OOMKilled, exit 137 (the pod stays)
    since = fake.hostExecs.length;
    const oom = exportDisk(ctx, driver, kube, { name: disk.name, out: stalledOut(), via: 'cluster' });
    oom.catch(() => undefined);
    await eventually(() => runningInHelper(ctx, '-c', since), 'tar -c running in the helper pod');
    const victim = (await helpers())[0]!;
    fake.containerBehaviour((pod, c) => (pod.metadata?.name === victim && c.name === 'helper' ? { exitCode: 137, reason: 'OOMKilled' } : undefined));
    await assert.rejects(oom, (e: unknown) => e instanceof KompoxError && e.code === 'helper.oom' && /was killed for using more memory than its limit \(256Mi\) during the export of disk data-1 \(OOMKilled\)$/.test(e.message));
    await assertNoLeftovers(ctx);
  });

  /** Whether a process here has a file open whose path ends with SUFFIX (a helper pod's process sees the disk where it is mounted). */
  async function someoneReads(suffix: string): Promise<boolean> {
    const { readdir: ls, readlink } = await import('node:fs/promises');
    for (const pid of await ls('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      for (const fd of await ls(`/proc/${pid}/fd`).catch(() => [] as string[])) {
        if ((await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')).endsWith(suffix)) return true;
      }
    }
    return false;
  }

  it("a live export through the cluster whose file an app truncates while busybox tar reads it (logrotate's copytruncate) fails at once saying so, with what to do; nothing left", async () => {
    // the only file: the first tar reads, so the stalled output holds tar within it
    const ctx = appCtx(sb, { app: 'shrinks' });
    const disk = await createDisk(ctx, driver, kube, { name: 'data-1' });
    const victim = `victim-${randomBytes(6).toString('hex')}.log`;
    await import('node:fs/promises').then(({ writeFile }) => writeFile(join(disk.id, victim), randomBytes(48 * 1024 * 1024)));
    // the export's output is not read until the file is truncated: tar stays blocked mid-file on its output
    const out = stalledOut();
    const exporting = exportDisk(ctx, driver, kube, { name: disk.name, out, via: 'cluster' });
    exporting.catch(() => undefined);
    // tar has it open; the stalled output (pipes and sockets hold far less than its 48 MiB) keeps it there
    await eventually(() => someoneReads(`/${victim}`), `tar reading ${victim} in the helper pod`);
    assert.equal(spawnSync('truncate', ['-s', '0', join(disk.id, victim)]).status, 0);
    out.resume();
    // before: "tar -c of disk data-1 failed in the helper pod (exit code 1): tar: short read" (transfer.pod.failed)
    await assert.rejects(
      exporting,
      (e: unknown) =>
        e instanceof KompoxError &&
        e.code === 'transfer.disk.changed' &&
        /^tar -c of disk data-1 failed in the helper pod: a file shrank while tar read it \(the app truncated it, as logrotate's copytruncate does\), and busybox tar stops there \(tar: short read\); no archive was made$/.test(e.message) &&
        /--quiesce/.test(e.hint ?? '') && /snapshot/.test(e.hint ?? ''),
    );
    await assertNoLeftovers(ctx);
  });

  it('a live export through the cluster whose files an app deletes before busybox tar reaches them (temp files, rotated logs) is a live copy without them, said in a note; the archive verifies and imports', async () => {
    const ctx = appCtx(sb, { app: 'vanish' });
    const disk = await createDisk(ctx, driver, kube, { name: 'data-1' });
    const { writeFile, rm } = await import('node:fs/promises');
    for (let i = 0; i < 12; i++) await writeFile(join(disk.id, `tmp-${i}.txt`), `temp ${i}\n`);
    // busybox tar takes a directory's entries in readdir order (what `ls -f` shows): the first one is made big, so
    // the stalled output holds tar within it while every entry after it is deleted
    const order = spawnSync('ls', ['-f', disk.id], { encoding: 'utf8' }).stdout.split('\n').filter((n) => n.startsWith('tmp-'));
    const [held, ...later] = order;
    assert.ok(held && later.length === 11, `readdir order: ${order.join(' ')}`);
    await writeFile(join(disk.id, held), randomBytes(48 * 1024 * 1024));
    const out = stalledOut();
    const chunks: Buffer[] = [];
    const c = collectEvents();
    const exporting = exportDisk(ctx, driver, kube, { name: disk.name, out, via: 'cluster' }, c.op);
    exporting.catch(() => undefined);
    await eventually(() => someoneReads(`/${held}`), `tar reading ${held} in the helper pod`);
    for (const n of later) await rm(join(disk.id, n));
    out.on('data', (b: Buffer) => chunks.push(b));
    // before: "tar -c of disk data-1 failed in the helper pod (exit code 1): tar: ./tmp-3.txt: No such file or directory; ..."
    await exporting;
    const archive = Buffer.concat(chunks);
    const manifest = await readManifest(Readable.from([archive]));
    assert.deepEqual(manifest.entries.filter((e) => e.type === 'file').map((e) => e.path), [`data/${held}`]);
    assert.ok(c.logs.some((l) => /^note: left out 11 file\(s\) deleted while tar read the disk \(a live disk: the app removed or renamed them\): data\/tmp-\d+\.txt, .* and 1 more; the archive is a live \(crash-consistent\) copy$/.test(l)), c.logs.join('\n'));
    const back = await importDisk(ctx, driver, kube, { name: 'back', archive: { stream: Readable.from([archive]) } });
    assert.deepEqual(await readdir(back.id), [held]);
    await assertNoLeftovers(ctx);
  });

  it("a helper command SIGKILLed while its pod runs (the OOM killer taking tar alone) says it was killed, at the helper's memory limit most likely", async () => {
    const { ctx, disk } = await diskWithData('tar-killed');
    await import('node:fs/promises').then(({ writeFile }) => writeFile(join(disk.id, 'big.bin'), Buffer.alloc(8 * 1024 * 1024, 7)));
    const since = fake.hostExecs.length;
    const exporting = exportDisk(ctx, driver, kube, { name: disk.name, out: stalledOut(), via: 'cluster' });
    exporting.catch(() => undefined);
    await eventually(() => runningInHelper(ctx, '-c', since), 'tar -c running in the helper pod');
    assert.equal(fake.killExecs((x) => isHelperTar(x.command, '-c') && x.namespace === appNamespace(ctx)), 1);
    await assert.rejects(
      exporting,
      (e: unknown) => e instanceof KompoxError && e.code === 'transfer.pod.killed' && /^tar -c of disk data-1 in the helper pod was killed by signal 9 \(SIGKILL, exit code 137\)/.test(e.message) && /memory limit; .*\(256Mi;/.test(e.hint ?? ''),
    );
    await assertNoLeftovers(ctx);
  });

  it("a helper pod's end is read from Kubernetes' pod status: evicted, past its deadline, drained, OOMKilled, ended by itself when idle; a running one is no cause", () => {
    const pod = (status: Record<string, unknown>, meta: Record<string, unknown> = {}) =>
      ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'ns', ...meta }, spec: { activeDeadlineSeconds: 86400, containers: [{ name: 'helper', resources: { limits: { memory: '256Mi' } } }] }, status });
    const fate = (p: ReturnType<typeof pod> | undefined, events: Record<string, unknown>[] = []) => helperPodFate(p as never, events as never, 'ns/p', 'export of disk d');
    const running = { phase: 'Running', containerStatuses: [{ name: 'helper', state: { running: {} } }] };
    assert.equal(fate(pod(running)), undefined);
    assert.match(fate(pod({ phase: 'Failed', reason: 'Evicted', message: 'The node was low on resource: memory. ' }))!.message, /^the helper pod ns\/p was evicted during the export of disk d: The node was low on resource: memory\.$/);
    const deadline = fate(pod({ phase: 'Failed', reason: 'DeadlineExceeded', message: 'Pod was active on the node longer than the specified deadline' }))!;
    assert.equal(deadline.code, 'helper.deadline');
    assert.match(deadline.message, /reached its deadline of 86400 s \(activeDeadlineSeconds\)/);
    const drained = fate(pod({ ...running, conditions: [{ type: 'DisruptionTarget', status: 'True', reason: 'EvictionByEvictionAPI', message: 'Eviction API: evicting' }] }, { deletionTimestamp: '2026-01-01T00:00:00Z' }))!;
    assert.equal(drained.code, 'helper.evicted');
    assert.equal(fate(pod({ phase: 'Failed', containerStatuses: [{ name: 'helper', state: { terminated: { exitCode: 137, reason: 'OOMKilled' } } }] }))!.code, 'helper.oom');
    // its wait ended by itself (nothing had run in it for its idle time: its Kompox gone)
    const idle = fate(pod({ phase: 'Succeeded', containerStatuses: [{ name: 'helper', state: { terminated: { exitCode: 0, reason: 'Completed' } } }] }))!;
    assert.equal(idle.code, 'helper.idle');
    assert.match(idle.message, /^the helper pod ns\/p ended by itself during the export of disk d: nothing had run in it for 15 minutes /);
    assert.equal(fate(pod({ phase: 'Failed', containerStatuses: [{ name: 'helper', state: { terminated: { exitCode: 2, reason: 'Error' } } }] }))!.code, 'helper.ended');
    assert.equal(fate(undefined)!.code, 'helper.deleted');
    assert.equal(fate(undefined, [{ reason: 'Evicted', message: 'The node had condition: [DiskPressure].' }])!.code, 'helper.evicted');
  });

  it('export refuses a disk the app uses, unless live (the helper runs on the app\'s node) or quiesced', async () => {
    const { ctx, disk, digest } = await diskWithData('busy');
    const ns = appNamespace(ctx);
    const volume = ctx.app.volumes[0]!;
    // the app: a Deployment whose pod mounts the disk through its own PV/PVC pair
    const src = driver.pvSource(ctx, volume, disk, { nodes: [{ name: 'node1', labels: {} }] });
    await ensureAppNamespace(kube, ctx);
    await kube.apply({
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: { name: `${ns}-app`, labels: appLabels(ctx) },
      spec: { capacity: { storage: '1Gi' }, accessModes: ['ReadWriteOnce'], persistentVolumeReclaimPolicy: 'Retain', storageClassName: src.storageClassName, claimRef: { namespace: ns, name: 'app' }, ...src.source },
    });
    await kube.apply({
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: 'app', namespace: ns, labels: appLabels(ctx) },
      spec: { accessModes: ['ReadWriteOnce'], storageClassName: src.storageClassName, volumeName: `${ns}-app`, resources: { requests: { storage: '1Gi' } } },
    });
    await kube.apply({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', namespace: ns, labels: appLabels(ctx) },
      spec: {
        replicas: 1,
        selector: { matchLabels: { [APP_SELECTOR_LABEL]: ns } },
        template: {
          metadata: { labels: { ...appLabels(ctx), [APP_SELECTOR_LABEL]: ns } },
          spec: { containers: [{ name: 'web', image: 'nginx', volumeMounts: [{ name: 'd', mountPath: '/data' }] }], volumes: [{ name: 'd', persistentVolumeClaim: { claimName: 'app' } }] },
        },
      },
    });
    await eventually(async () => (await podsUsingDisk(kube, disk.id)).length === 1, 'the app pod using the disk');
    await assert.rejects(
      exportDisk(ctx, driver, kube, { name: disk.name, out: new PassThrough(), via: 'cluster' }),
      (e: unknown) => e instanceof KompoxError && e.kind === 'conflict' && e.code === 'transfer.disk.in-use' && /in use by pod/.test(e.message),
    );
    const c = collectEvents();
    const live = await collect((out) => exportDisk(ctx, driver, kube, { name: disk.name, out, via: 'cluster', live: true }, c.op));
    assert.equal((await readManifest(Readable.from([live]))).treeDigest, digest);
    assert.match(c.logs.join('\n'), /exporting it live \(crash-consistent\) from node node1/);
    // what the stop recorded on the Deployment (what a crash would leave): for what, and what to give back
    const records = new Set<string>();
    fake.store.onChange((r, obj, change) => {
      const meta = obj.metadata as { namespace?: string; name?: string; annotations?: Record<string, string> } | undefined;
      if (change !== 'put' || r.kind !== 'Deployment' || meta?.namespace !== ns || (obj.spec as { replicas?: number } | undefined)?.replicas !== 0) return;
      records.add(`${meta.annotations?.['kompox.dev/quiesced-by']} → ${meta.annotations?.['kompox.dev/quiesced-replicas']}`);
    });
    const q = collectEvents();
    const quiesced = await collect((out) => exportDisk(ctx, driver, kube, { name: disk.name, out, via: 'cluster', quiesce: true }, q.op));
    assert.equal((await readManifest(Readable.from([quiesced]))).treeDigest, digest);
    assert.match(q.logs.join('\n'), /stopping web \(replicas 1 → 0\)[\s\S]*started web again/);
    assert.deepEqual([...records], [`export of disk ${disk.name} → 1`]);
    const started = await kube.get({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', namespace: ns });
    assert.deepEqual(Object.keys(started!.metadata.annotations ?? {}).filter((k) => k.startsWith('kompox.dev/quiesced-')), [], 'the start removed the record');
    await assertNoLeftovers(ctx);
  });

  it('snapshot export through the cluster restores a temporary disk, exports it and deletes it', async () => {
    const { ctx, disk, digest } = await diskWithData('snap');
    await createSnapshot(ctx, driver, kube, { name: 'snap-1', disk: disk.name });
    const c = collectEvents();
    const r = await (async () => {
      let res!: Awaited<ReturnType<typeof exportSnapshot>>;
      const bytes = await collect(async (out) => (res = await exportSnapshot(ctx, driver, kube, { name: 'snap-1', out, via: 'cluster' }, c.op)));
      return { res, bytes };
    })();
    assert.equal((await readManifest(Readable.from([r.bytes]))).treeDigest, digest);
    assert.ok(c.events.some((e) => e.type === 'phase' && e.phase === 'restore'));
    assert.deepEqual((await listDisks(ctx, driver, kube)).disks.map((d) => d.name), ['data-1']);
    await assertNoLeftovers(ctx);
  });

  it('through the cluster the progress gets its total from a size walk in the helper pod before the export ends; summaries count the files once (snapshot export too)', async () => {
    const { ctx, disk } = await diskWithData('totals');
    const want = await measureTree(fs, disk.id);
    const since = fake.hostExecs.length;
    // The reader holds every byte until a total was reported: the export cannot end first (no race).
    let totalSeen!: () => void;
    const gate = Promise.race([new Promise<void>((r) => (totalSeen = r)), new Promise<void>((r) => setTimeout(r, 60_000).unref()) /* patience for a loaded machine, not a measure */]);
    const events: KompoxEvent[] = [];
    const watch = watchTransfers({
      events: (e) => {
        events.push(e);
        if (e.type === 'progress' && e.total !== undefined && !e.end) totalSeen();
      },
    });
    await exportDisk(ctx, driver, kube, { name: disk.name, out: new Writable({ write: (_c, _e, cb) => void gate.then(() => cb()) }), via: 'cluster' }, watch.op);
    assertTotalBeforeEnd(events, want);
    assert.ok(
      fake.hostExecs.slice(since).some((x) => x.pod.startsWith('kompox-transfer-') && x.command[0] === 'sh' && /find "\$1" -type f/.test(x.command[2] ?? '') && x.exitCode === 0),
      'the size walk ran in the helper pod',
    );
    assert.deepEqual(watch.summary() && { files: watch.summary()!.files, bytes: watch.summary()!.bytes }, { files: want.fileCount, bytes: want.totalBytes });

    // a snapshot exported through the cluster is restored into a temporary disk first: that copy is shown, not counted
    await createSnapshot(ctx, driver, kube, { name: 'snap-totals', disk: disk.name });
    const snapWatch = watchTransfers({});
    await collect((out) => exportSnapshot(ctx, driver, kube, { name: 'snap-totals', out, via: 'cluster' }, snapWatch.op));
    const t = snapWatch.summary();
    assert.ok(t);
    assert.deepEqual({ files: t.files, bytes: t.bytes }, { files: want.fileCount, bytes: want.totalBytes }, 'each file counted once');
    await assertNoLeftovers(ctx);
  });

  it('an export or a snapshot export cancelled mid-stream leaves no helper pod and no temporary disk', async () => {
    const { ctx, disk } = await diskWithData('abort-export');
    // enough data that the stream cannot end before the cancel
    await import('node:fs/promises').then(({ writeFile }) => writeFile(join(disk.id, 'big.bin'), Buffer.alloc(8 * 1024 * 1024, 7)));
    await createSnapshot(ctx, driver, kube, { name: 'snap-a', disk: disk.name });
    for (const start of [
      (signal: AbortSignal) => exportDisk(ctx, driver, kube, { name: disk.name, out: stalledOut(), via: 'cluster' }, { signal }),
      (signal: AbortSignal) => exportSnapshot(ctx, driver, kube, { name: 'snap-a', out: stalledOut(), via: 'cluster' }, { signal }),
    ]) {
      const ac = new AbortController();
      const since = fake.hostExecs.length;
      const p = start(ac.signal);
      p.catch(() => undefined);
      await eventually(() => runningInHelper(ctx, '-c', since), 'tar -c running in the helper pod');
      ac.abort();
      await rejectsWith(p, 'interrupted', /^interrupted: (disk \S+|snapshot snap-a) was not exported$/);
      assert.deepEqual((await listDisks(ctx, driver, kube)).disks.map((d) => d.name), ['data-1']);
      await assertNoLeftovers(ctx);
    }
  });

  it('a tar -c that fails after writing a whole stream (a file it could not read) gives no archive: the export stops before its manifest', async () => {
    const { ctx, disk } = await diskWithData('tar-fails');
    // a file whose path (relative to the disk) is longer than PATH_MAX: tar -c cannot open it, says so, goes on,
    // ends its stream with the end-of-archive marker and exits 1 (busybox and GNU tar alike), the file left out
    // `cd -P`: a logical cd (dash's default) chdirs to the whole absolute path it keeps, which passes PATH_MAX
    // (4095 characters) once the disk's own path (under $TMPDIR) is longer than 75: 20 × 201 are its own; -P chdirs to the relative name
    const seg = 'd'.repeat(200);
    try {
      const deep = spawnSync('sh', ['-c', `for i in $(seq 1 20); do mkdir ${seg} && cd -P ${seg} || exit 1; done; echo lost > ${'f'.repeat(100)}`], { cwd: disk.id });
      assert.equal(deep.status, 0, String(deep.stderr));
      const written: Buffer[] = [];
      const out = new PassThrough();
      out.on('data', (c: Buffer) => written.push(c));
      await rejectsWith(exportDisk(ctx, driver, kube, { name: disk.name, out, via: 'cluster' }), 'unavailable', /tar -c of disk data-1 failed in the helper pod \(exit code 1\)/);
      // what reached the output (stdout, `-O -`, piped into an import elsewhere) is no archive an import would take
      await assert.rejects(readManifest(Readable.from([Buffer.concat(written)])), 'the output of a failed export is not a complete archive');
      await assertNoLeftovers(ctx);
    } finally {
      spawnSync('rm', ['-rf', seg], { cwd: disk.id });
    }
  });

  it('sockets, FIFOs and devices, and hard links to them, are left out through the cluster and named (a FIFO is never read: its read waits for a writer); the archive imports on both paths', { timeout: 120_000, skip: process.getuid?.() === 0 ? false : 'mknod needs root' }, async () => {
    const { ctx, disk, digest } = await diskWithData('specials');
    const made = spawnSync('sh', ['-c', 'mkfifo sub/a-fifo && ln sub/a-fifo fifo-link && mknod a-char c 1 3 && ln a-char sub/char-link && mknod a-block b 7 200 && ln a-block block-link'], { cwd: disk.id });
    assert.equal(made.status, 0, String(made.stderr));
    // a UNIX socket (its file stays: the process exits without closing it); tar leaves it out itself, saying so on stderr.
    // Bound by its name relative to its directory: a socket's path has at most 107 bytes, which the absolute one
    // (the disk's path under $TMPDIR) passes once $TMPDIR is longer than about 30 characters
    const sock = spawnSync(process.execPath, ['-e', "require('net').createServer().listen('a-socket', () => process.exit(0))"], { cwd: join(disk.id, 'sub') });
    assert.equal(sock.status, 0, String(sock.stderr));
    const c = collectEvents();
    const archive = await collect((out) => exportDisk(ctx, driver, kube, { name: disk.name, out, via: 'cluster' }, c.op));
    const m = await readManifest(Readable.from([archive]));
    assert.equal(m.treeDigest, digest, 'the archive holds the tree without them');
    const warned = c.events.filter((e) => e.type === 'warning');
    assert.equal(warned.length, 1, JSON.stringify(c.events));
    const said = warned[0]!.type === 'warning' ? warned[0]!.diagnostic.message : '';
    assert.match(said, /^left out 7 entries that are not a file, directory or symlink/);
    for (const p of ['data/a-block', 'data/a-char', 'data/block-link', 'data/fifo-link', 'data/sub/a-fifo', 'data/sub/char-link', 'data/sub/a-socket']) assert.ok(said.includes(`${p} (`), said);
    for (const via of ['cluster', 'host'] as const) {
      const back = await importDisk(ctx, driver, kube, { name: `back-${via}`, archive: { stream: Readable.from([archive]) }, via });
      assert.equal((await digestTree(fs, back.id)).treeDigest, digest);
    }
    await assertNoLeftovers(ctx);
  });

  it('a hard link whose file grows while it is read (a live disk) leaves no read of it open once the export returns', async () => {
    const { ctx, disk } = await diskWithData('link-grows');
    const big = join(disk.id, 'growing.log');
    await import('node:fs/promises').then(({ writeFile }) => writeFile(big, randomBytes(1024 * 1024)));
    await link(big, join(disk.id, 'sub', 'growing-link.log'));
    // every exec the export starts, and whether it has ended
    const started: string[] = [];
    const ended = new Set<number>();
    const tracked = Object.create(kube) as KubeClient;
    tracked.execStream = (...args: Parameters<KubeClient['execStream']>) => {
      const i = started.push(args[3].join(' ').slice(0, 60)) - 1;
      const p = kube.execStream(...args);
      p.then(() => ended.add(i), () => ended.add(i));
      return p;
    };
    // the app keeps appending to the file while the export reads it
    let writing = true;
    const { appendFile } = await import('node:fs/promises');
    const chunk = Buffer.alloc(256 * 1024, 0x61);
    const appender = (async () => {
      for (let n = 0; writing && n < 400; n++) {
        await appendFile(big, chunk);
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    try {
      await collect((out) => exportDisk(ctx, driver, tracked, { name: disk.name, out, via: 'cluster' }));
    } finally {
      writing = false;
      await appender;
    }
    assert.ok(started.some((c) => c.startsWith('cat -- ')), 'the hard link was read through cat');
    const open = () => started.filter((_, i) => !ended.has(i));
    await eventually(() => open().length === 0, 'every exec ended', { timeoutMs: 10_000 }).catch(() => assert.fail(`execs still open after the export returned: ${open().join('; ')}`));
    await assertNoLeftovers(ctx);
  });

  it('a quiesced export cancelled mid-stream has removed its helper pod when it fails (the CLI ends the process then)', async () => {
    const { ctx, disk } = await diskWithData('abort-quiesced');
    await import('node:fs/promises').then(({ writeFile }) => writeFile(join(disk.id, 'big.bin'), Buffer.alloc(8 * 1024 * 1024, 7)));
    const ns = appNamespace(ctx);
    const ac = new AbortController();
    const since = fake.hostExecs.length;
    const p = exportDisk(ctx, driver, kube, { name: disk.name, out: stalledOut(), via: 'cluster', quiesce: true }, { signal: ac.signal });
    p.catch(() => undefined);
    await eventually(() => runningInHelper(ctx, '-c', since), 'tar -c running in the helper pod');
    ac.abort();
    await rejectsWith(p, 'interrupted', /^interrupted: /);
    // nothing waits for the rest: what is still there now stays (a running helper pod until its deadline)
    assert.deepEqual((await kube.list('v1', 'Pod', { namespace: ns, labelSelector: HELPER_LABEL })).map((x) => x.metadata.name), []);
    assert.deepEqual((await kube.list('v1', 'PersistentVolumeClaim', { namespace: ns, labelSelector: HELPER_LABEL })).map((x) => x.metadata.name), []);
    await assertNoLeftovers(ctx);
  });

  it("app deploy's cleanup of old volume bindings leaves a helper pod's PV/PVC pair alone (its run removes it)", async () => {
    const { ctx, disk } = await diskWithData('deploy-vs-helper');
    await ensureAppNamespace(kube, ctx);
    const volume = ctx.app.volumes[0]!;
    const objs = helperPodObjects(ctx, {
      purpose: 'transfer',
      id: 'testpair',
      image: 'busybox',
      disks: [{ volume, disk, readOnly: true, source: driver.pvSource(ctx, volume, disk, { nodes: [{ name: 'node1', labels: {} }] }) }],
    });
    // the pair exists, its pod not yet (the window while a transfer starts)
    for (const o of [...objs.pvs, ...objs.pvcs]) await kube.apply(o);
    const released = await releaseOldVolumeBindings(kube, ctx, []);
    assert.deepEqual(released.filter((r) => r.name === objs.pvs[0]!.metadata.name || r.name === objs.pvcs[0]!.metadata.name), []);
    assert.ok(await kube.get({ apiVersion: 'v1', kind: 'PersistentVolume', name: objs.pvs[0]!.metadata.name }));
    assert.ok(await kube.get({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', name: objs.pvcs[0]!.metadata.name, namespace: appNamespace(ctx) }));
    for (const o of [...objs.pvcs, ...objs.pvs]) await kube.delete({ apiVersion: 'v1', kind: o.kind, name: o.metadata.name, ...(o.metadata.namespace ? { namespace: o.metadata.namespace } : {}) });
  });

  it('a helper pod whose wait ended by itself (idle: its Kompox gone) mid-operation: the run says helper.idle, and nothing is left', async () => {
    const { ctx, disk } = await diskWithData('helper-idle');
    const ns = appNamespace(ctx);
    const since = fake.hostExecs.length;
    const exporting = exportDisk(ctx, driver, kube, { name: disk.name, out: stalledOut(), via: 'cluster' });
    exporting.catch(() => undefined);
    await eventually(() => runningInHelper(ctx, '-c', since), 'tar -c running in the helper pod');
    // the fake's kubelet ends the helper's container with exit 0, as the wait does once idle
    const helper = (await kube.list('v1', 'Pod', { namespace: ns, labelSelector: HELPER_LABEL }))[0]!.metadata.name;
    fake.containerBehaviour((pod, c) => (pod.metadata?.name === helper && c.name === 'helper' ? { exitCode: 0 } : undefined));
    await assert.rejects(exporting, (e: unknown) => e instanceof KompoxError && e.code === 'helper.idle' && /ended by itself during the export of disk data-1: nothing had run in it for 15 minutes/.test(e.message));
    await assertNoLeftovers(ctx);
  });

  it('pending disks a crashed transfer left are swept once old, unless a helper pod mounts them', async () => {
    const { ctx, disk } = await diskWithData('crash-sweep');
    await ensureAppNamespace(kube, ctx);
    const volume = ctx.app.volumes[0]!;
    const crashed = await driver.disks.create(ctx, volume, { name: 'crashed', pending: true }, {});
    const filling = await driver.disks.create(ctx, volume, { name: 'filling', pending: true }, {});
    // `filling` is mounted by a (starting) helper pod's PV
    const objs = helperPodObjects(ctx, {
      purpose: 'transfer',
      id: 'sweeptest',
      image: 'busybox',
      disks: [{ volume, disk: filling, readOnly: false, source: driver.pvSource(ctx, volume, filling, { nodes: [{ name: 'node1', labels: {} }] }) }],
    });
    for (const o of objs.pvs) await kube.apply(o);
    assert.deepEqual(await sweepPendingDisks(ctx, driver, kube, volume, {}), [], 'a pending disk younger than a day may belong to a running transfer');
    const c = collectEvents();
    assert.deepEqual(await sweepPendingDisks(ctx, driver, kube, volume, c.op, -1), ['crashed']);
    assert.match(c.logs.join('\n'), /removed the unfinished disk crashed .*never visible/);
    assert.deepEqual((await driver.disks.list(ctx, volume, { pending: true }, {})).map((d) => d.name), ['filling']);
    assert.deepEqual((await listDisks(ctx, driver, kube)).disks.map((d) => d.name), [disk.name]);
    for (const o of objs.pvs) await kube.delete({ apiVersion: 'v1', kind: 'PersistentVolume', name: o.metadata.name });
    assert.deepEqual(await sweepPendingDisks(ctx, driver, kube, volume, {}, -1), ['filling']);
    await assertNoLeftovers(ctx);
  });

  it('auto takes the host path where the driver has one; host and auto are accepted', () => {
    const ctx = appCtx(sb, { app: 'via' });
    assert.equal(transferVia(ctx, driver, 'disk export'), 'host');
    assert.equal(transferVia(ctx, driver, 'disk export', 'auto'), 'host');
    assert.equal(transferVia(ctx, driver, 'disk export', 'HOST'), 'host');
    assert.equal(transferVia(ctx, driver, 'disk export', 'cluster'), 'cluster');
    // the same driver without a host path, as every cloud driver is
    const cloudLike: ProviderDriver = Object.create(driver, { hostTransfer: { value: undefined } });
    assert.equal(transferVia(ctx, cloudLike, 'disk export'), 'cluster');
    assert.throws(() => transferVia(ctx, cloudLike, 'disk export', 'host'), (e: unknown) => e instanceof KompoxError && e.kind === 'unsupported' && /disk export on the host path is not supported by the k3s driver/.test(e.message));
  });

  it('the read-back listing is parsed exactly, GNU-escaped names included, and malformed output is refused', () => {
    const hash = 'a'.repeat(64);
    const odd = Buffer.from('./we\\ird\nname');
    const out = Buffer.concat([
      Buffer.from('B3\0.\0./l\0'),
      odd,
      Buffer.from('\0'),
      Buffer.from('41ed 4096\na1ff 3\n81a4 5\n'),
      Buffer.from('x\ny\n\0'),
      Buffer.from('H1\0'),
      odd,
      Buffer.from(`\0\\${hash}  ./we\\\\ird\\nname\n`),
      Buffer.from('E\0'),
    ]);
    assert.deepEqual(parseReadBack(out), [
      { path: 'data', type: 'dir', mode: 0o755, size: 0 },
      { path: 'data/l', type: 'symlink', mode: 0o777, size: 0, linkpath: 'x\ny' },
      { path: 'data/we\\ird\nname', type: 'file', mode: 0o644, size: 5, sha256: hash },
    ]);
    assert.throws(() => parseReadBack(out.subarray(0, out.length - 2)), (e: unknown) => e instanceof KompoxError && e.kind === 'integrity');
    assert.throws(() => parseReadBack(Buffer.from('B1\0.\0garbage\nE\0')), (e: unknown) => e instanceof KompoxError && e.kind === 'integrity');
  });

  it('the read-back listing streams: cut anywhere it reads the same, in path order whatever order find gave, and refuses what is cut short', () => {
    const hex = (c: string) => c.repeat(64);
    // two batches of each kind, out of path order, as find may print them (a symlink's target after the stat lines)
    const out = Buffer.concat([
      Buffer.from('B3\0./z\0./a\0./l\0'),
      Buffer.from('81a4 3\n41ed 4096\na1ff 3\n'),
      Buffer.from('z/y\n\0'),
      Buffer.from('B2\0.\0./a/b\nc\0'),
      Buffer.from('41ed 4096\n8180 7\n'),
      Buffer.from(`H1\0./a/b\nc\0\\${hex('b')}  ./a/b\\nc\n`),
      Buffer.from(`H1\0./z\0${hex('c')}  ./z\n`),
      Buffer.from('E\0'),
    ]);
    const read = (pieceSize: number) => {
      const join = new ListingJoin();
      try {
        const p = new ReadBackParser(join);
        for (let at = 0; at < out.length; at += pieceSize) p.write(out.subarray(at, at + pieceSize));
        p.end();
        return [...join.sorted()].map((e) => [e.path, e.kind, e.mode.toString(8), e.size, e.sha256 ?? e.linkpath ?? '']);
      } finally {
        join.close();
      }
    };
    const want = [
      ['', 'dir', '755', 0, ''],
      ['a', 'dir', '755', 0, ''],
      ['a/b\nc', 'file', '600', 7, hex('b')],
      ['l', 'symlink', '777', 0, 'z/y'],
      ['z', 'file', '644', 3, hex('c')],
    ];
    for (const size of [1, 2, 3, 5, 13, 64, out.length]) assert.deepEqual(read(size), want, `in pieces of ${size} bytes`);
    assert.deepEqual(
      parseReadBack(out).map((e) => e.path),
      ['data', 'data/a', 'data/a/b\nc', 'data/l', 'data/z'],
    );
    const refused = (buf: Buffer, re: RegExp) =>
      assert.throws(() => parseReadBack(buf), (e: unknown) => e instanceof KompoxError && e.kind === 'integrity' && e.code === 'transfer.verify.listing' && re.test(e.message));
    // cut anywhere before its end marker: truncated
    for (const cut of [1, 5, 30, out.length - 2]) refused(out.subarray(0, cut), /truncated|no end marker/);
    refused(Buffer.concat([out, Buffer.from('B')]), /data after the end marker/);
    // a checksum line for another name than the batch's
    refused(Buffer.from(`B1\0./x\x0081a4 1\nH1\0./x\0${hex('d')}  ./y\nE\0`), /does not name the expected file/);
    // a file without its checksum, a path listed twice
    refused(Buffer.from('B1\0./x\x0081a4 1\nE\0'), /no SHA-256 for "x"/);
    refused(Buffer.from('B1\0./x\x0041ed 1\nB1\0./x\x0041ed 1\nE\0'), /has "data\/x" twice/);
  });

  it('the read-back of a disk of many files comes out whole and in path order (sorted runs spilled and merged)', () => {
    const n = 30_000;
    const join = new ListingJoin({ what: 'test listing' });
    try {
      const p = new ReadBackParser(join);
      p.write(Buffer.from('B1\x00.\x0041ed 4096\n'));
      // names in an order unlike path order, in batches of 1000 as find -exec + makes them, hashes after
      const name = (i: number) => `./f${(i * 7919) % n}`;
      for (const kind of ['B', 'H']) {
        for (let b = 0; b < n; b += 1000) {
          const names = Array.from({ length: 1000 }, (_, k) => name(b + k));
          const body = kind === 'B' ? names.map(() => '81a4 1\n').join('') : names.map((x) => `${'e'.repeat(64)}  ${x}\n`).join('');
          p.write(Buffer.from(`${kind}1000\0${names.map((x) => `${x}\0`).join('')}${body}`));
        }
      }
      p.write(Buffer.from('E\0'));
      p.end();
      let count = 0;
      let prev = '';
      for (const e of join.sorted()) {
        if (count > 0) assert.ok(`data/${e.path}` > prev, `${e.path} after ${prev}`);
        prev = e.path ? `data/${e.path}` : 'data';
        if (e.kind === 'file') assert.equal(e.sha256, 'e'.repeat(64));
        count++;
      }
      assert.equal(count, n + 1);
    } finally {
      join.close();
    }
  });
});

describe('disk data through the cluster of an API server before Kubernetes 1.30 (exec speaks v4.channel.k8s.io at most)', () => {
  let env: K3sCluster | undefined;
  before(async () => {
    env = await startK3sCluster({ version: 'v1.29.10' });
  });
  after(async () => env?.close());

  it('an export works (no input to end); an import is refused with what it needs, and nothing is left', async () => {
    const { sb, kube, driver } = env!;
    const ctx = appCtx(sb, { app: 'old-server' });
    const disk = await createDisk(ctx, driver, kube, { name: 'data-1' });
    await writeSampleTree(disk.id);
    const digest = (await digestTree(fs, disk.id)).treeDigest;
    const archive = await collect((out) => exportDisk(ctx, driver, kube, { name: disk.name, out, via: 'cluster' }));
    assert.equal((await readManifest(Readable.from([archive]))).treeDigest, digest);
    // an API server some way off: the exec is refused only once the archive has filled the pipe to the pod,
    // which nobody reads (the import must still end, with the refusal)
    const far = Object.create(kube) as KubeClient;
    far.execStream = async (...args: Parameters<KubeClient['execStream']>) => {
      await new Promise((r) => setTimeout(r, 300));
      return kube.execStream(...args);
    };
    const importing = importDisk(ctx, driver, far, { name: 'copy', archive: { stream: Readable.from([archive]) }, via: 'cluster' });
    const settled = await Promise.race([importing.then(() => 'imported', (e: unknown) => e), new Promise((r) => setTimeout(() => r('still running after 20 s'), 20_000))]);
    assert.ok(
      settled instanceof KompoxError && settled.kind === 'unsupported' && settled.code === 'kube.exec.stdin-close' && /Kubernetes 1\.30 or later/.test(settled.hint ?? ''),
      settled instanceof Error ? String(settled.stack) : String(settled),
    );
    assert.deepEqual((await listDisks(ctx, driver, kube)).disks.map((d) => d.name), ['data-1']);
    assert.deepEqual(await driver.disks.list(ctx, ctx.app.volumes[0]!, { pending: true }, {}), []);
    await eventually(async () => (await kube.list('v1', 'Pod', { namespace: appNamespace(ctx), labelSelector: HELPER_LABEL })).length === 0, 'helper pods gone');
  });
});

describe('disk data through the cluster with a helper image that has GNU tar (KOMPOX_HELPER_IMAGE)', () => {
  const GNU_IMAGE = 'docker.io/library/debian:bookworm-slim';
  let env: K3sCluster | undefined;
  before(async () => {
    // the debian image stood in for by this machine's own tools (GNU tar), busybox images by busybox
    env = await startK3sCluster({ hostImages: (image) => (image === GNU_IMAGE ? 'host' : /busybox/.test(image) ? 'busybox' : undefined) });
  });
  after(async () => env?.close());

  /** type, owner, mode and mtime (ms) of every entry under `root` (its own entry included). */
  async function metadataOf(root: string): Promise<Record<string, string>> {
    const { lstat } = await import('node:fs/promises');
    const out: Record<string, string> = {};
    const walk = async (rel: string): Promise<void> => {
      const st = await lstat(join(root, rel), { bigint: true });
      // archives keep milliseconds
      out[rel || '.'] = `${st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : 'f'} ${st.uid}:${st.gid} ${st.isSymbolicLink() ? '' : (st.mode & 0o7777n).toString(8)} ${st.mtimeNs / 1_000_000n}`;
      if (st.isDirectory()) for (const n of (await readdir(join(root, rel))).sort()) await walk(rel ? `${rel}/${n}` : n);
    };
    await walk('');
    return out;
  }

  it('export and import keep what busybox tar cannot: sub-second and pre-1970 mtimes, ids past 16777215, symlink owners and times, directory times', { skip: process.getuid?.() === 0 ? false : 'chown to other ids needs root' }, async (t) => {
    const { sb, fake, kube, driver } = env!;
    if (fake.hostExec.mode !== 'namespace') return t.skip(`the fake runs helper commands without their own root filesystem: ${fake.hostExec.reason}`);
    const { chown, lchown, lutimes, mkdir, symlink, utimes, writeFile } = await import('node:fs/promises');
    const ctx = appCtx(sb, { app: 'gnu-helper' });
    ctx.cluster.settings = { KOMPOX_HELPER_IMAGE: GNU_IMAGE };
    const disk = await createDisk(ctx, driver, kube, { name: 'data-1' });
    const d = disk.id;
    await mkdir(join(d, 'sample'));
    await writeSampleTree(join(d, 'sample'));
    await link(join(d, 'sample', 'run.sh'), join(d, 'sample', 'sub', 'hard-link.sh'));
    await mkdir(join(d, 'dir'));
    await writeFile(join(d, 'dir', 'precise.txt'), 'a');
    await utimes(join(d, 'dir', 'precise.txt'), 1614834367.123, 1614834367.123); // 2021-03-04, .123 s
    await writeFile(join(d, 'old.txt'), 'b');
    assert.equal(spawnSync('touch', ['-d', '1965-07-10 00:00:00.5 UTC', join(d, 'old.txt')]).status, 0); // (utimes takes no time before 1970)
    await writeFile(join(d, 'big-ids.txt'), 'c');
    await chown(join(d, 'big-ids.txt'), 20000000, 20000001);
    await symlink('dir/precise.txt', join(d, 'link'));
    await lchown(join(d, 'link'), 20000002, 20000003);
    await lutimes(join(d, 'link'), 1262304000.25, 1262304000.25); // 2010
    await utimes(join(d, 'dir'), 1500000000.75, 1500000000.75); // after its file was written
    const want = await metadataOf(d);

    const archive = await collect((out) => exportDisk(ctx, driver, kube, { name: disk.name, out, via: 'cluster' }));
    assert.ok(fake.hostExecs.some((x) => isHelperTar(x.command, '-c') && x.exitCode === 0), 'tar -c ran in the helper pod');
    const imported = await importDisk(ctx, driver, kube, { name: 'back', archive: { stream: Readable.from([archive]) }, via: 'cluster' });
    assert.equal((await digestTree(fs, imported.id)).treeDigest, (await digestTree(fs, d)).treeDigest);
    const got = await metadataOf(imported.id);
    delete want['.'];
    delete got['.'];
    assert.deepEqual(got, want);
  });
});
