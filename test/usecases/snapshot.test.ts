// Snapshot use cases with the real K3s driver on temp dirs and the real
// KubeClient adapter against the in-process fake Kubernetes API server.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import type { AppContext } from '../../src/domain/model.js';
import { APP_SELECTOR_LABEL, appLabels, appNamespace, nowRfc3339 } from '../../src/domain/names.js';
import type { KubeClient, KubeObject } from '../../src/kube/index.js';
import type { K3sDriver } from '../../src/providers/k3s/index.js';
import { createDisk, exportDisk, importDisk, listDisks } from '../../src/usecases/disk.js';
import { openArchiveFile, writeArchiveFile } from '../../src/cli/files.js';
import { logInto } from '../support/events.js';
import { KompoxError } from '../../src/domain/errors.js';
import type { Op } from '../../src/domain/events.js';
import {
  createSnapshot,
  deleteSnapshot,
  exportSnapshot,
  listSnapshots,
  restoreAndAttach,
  restoreSnapshot,
  restoredDiskName,
} from '../../src/usecases/snapshot.js';
import { resolveCurrentDisks } from '../../src/usecases/volumes.js';
import { appStatus } from '../../src/usecases/app-status.js';
import { deployApp } from '../../src/usecases/app-deploy.js';
import { deployBox, destroyBox, findBox } from '../../src/usecases/box.js';
import { appReplicas, clearStaleQuiesceRecords, startApp, stopApp } from '../../src/usecases/app-scale.js';
import { bundleSource } from '../../src/source/index.js';
import { appCtx, snapshotOfTree, startK3sCluster, writeSampleTree, type K3sCluster, type Sandbox } from '../providers/k3s-fixtures.js';
import type { FakeKube } from '../support/fake-kube/index.js';
import { rejectsWith } from '../support/assertions.js';

describe('snapshot use cases (K3s driver + fake API server)', () => {
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

  // Each test works on an app of its own (its disk, snapshots, Deployment and pods), so none builds on another.
  /** An app whose current disk holds the sample tree. */
  async function appWithData(app: string): Promise<AppContext> {
    const ctx = appCtx(sb, { app });
    const r = await resolveCurrentDisks(ctx, driver, kube, { createMissing: true });
    await writeSampleTree(r.default!.id);
    return ctx;
  }
  /** The app's Deployment "web" (replicas 1) and a running pod `pod` of it, as the controllers would leave them. */
  async function running(ctx: AppContext, pod: string): Promise<void> {
    const ns = appNamespace(ctx);
    await kube.apply({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'web', namespace: ns, labels: appLabels(ctx) },
      spec: {
        replicas: 1,
        selector: { matchLabels: { [APP_SELECTOR_LABEL]: ns } },
        template: { metadata: { labels: { [APP_SELECTOR_LABEL]: ns } }, spec: { containers: [{ name: 'app', image: 'busybox' }] } },
      },
    });
    fake.setPod({ apiVersion: 'v1', kind: 'Pod', metadata: { name: pod, namespace: ns, labels: { [APP_SELECTOR_LABEL]: ns } }, spec: {}, status: { phase: 'Running' } });
  }

  it('snapshot → change → restore (new disk) → attach → export → import: no byte lost', async () => {
    const ctx = await appWithData('upgrade-app');
    const cur = (await listDisks(ctx, driver, kube)).disks.find((d) => d.current)!;
    const original = await driver.diskDigest(ctx, cur);
    const snap = await createSnapshot(ctx, driver, kube, { name: 'before-upgrade' });
    assert.equal(snap.sourceDiskId, cur.id);
    assert.deepEqual((await listSnapshots(ctx, driver, kube)).snapshots.map((s) => s.name), ['before-upgrade']);

    await writeFile(join(cur.id, 'binary.bin'), 'changed after the snapshot');
    const r = await restoreAndAttach(ctx, driver, kube, { name: 'before-upgrade' });
    assert.match(r.disk.name, /^before-upgrade-restored-\d{14}$/);
    assert.equal(r.previous!.id, cur.id);
    assert.equal(await driver.diskDigest(ctx, r.disk), original);
    const ns = await kube.get({ apiVersion: 'v1', kind: 'Namespace', name: appNamespace(ctx) });
    assert.equal(ns!.metadata.annotations!['kompox.dev/disk-current-id'], r.disk.id);
    assert.equal(ns!.metadata.annotations!['kompox.dev/disk-previous-id'], cur.id);

    const file = join(sb.dir, 'snap.tar.gz');
    const ex = await writeArchiveFile(file, (out) => exportSnapshot(ctx, driver, kube, { name: 'before-upgrade', out }));
    assert.equal(ex.sha256, snap.sha256);
    assert.equal(createHash('sha256').update(await readFile(file)).digest('hex'), snap.sha256);
    const imported = await importDisk(ctx, driver, kube, { name: 'from-snap-file', archive: await openArchiveFile(file) });
    assert.equal(await driver.diskDigest(ctx, imported), original);
    // disk create -S SNAPSHOT-NAME copies the snapshot into a new disk
    const fromName = await createDisk(ctx, driver, kube, { name: 'from-snap-name', source: 'before-upgrade' });
    assert.equal(await driver.diskDigest(ctx, fromName), original);
  });

  it('refuses restore over an existing disk name and an existing snapshot name, and a cancelled restore or snapshot leaves nothing; nothing changes', async () => {
    const ctx = await appWithData('refuse-app');
    await createSnapshot(ctx, driver, kube, { name: 'before-upgrade' });
    await createDisk(ctx, driver, kube, { name: 'from-snap-file' });
    const tree = await snapshotOfTree(sb.dir);
    await rejectsWith(restoreSnapshot(ctx, driver, kube, { name: 'before-upgrade', diskName: 'from-snap-file' }), 'conflict', /already exists.*always makes a new disk/);
    await rejectsWith(createSnapshot(ctx, driver, kube, { name: 'before-upgrade' }), 'conflict', /already exists/);
    await rejectsWith(restoreSnapshot(ctx, driver, kube, { name: 'nope' }), 'notfound', /snapshot "nope" not found/);
    // cancelled (Ctrl-C) once the data moves: says what was not done, and leaves nothing
    const ac = new AbortController();
    const cancelled = { signal: ac.signal, events: (e: { type: string }) => (e.type === 'progress' ? ac.abort() : undefined) };
    await rejectsWith(restoreSnapshot(ctx, driver, kube, { name: 'before-upgrade', diskName: 'cancelled' }, cancelled), 'interrupted', /^interrupted: no disk was created \(snapshot before-upgrade is unchanged\)$/);
    assert.deepEqual(await snapshotOfTree(sb.dir), tree);
    const again = new AbortController();
    const stopped = { signal: again.signal, events: (e: { type: string }) => (e.type === 'progress' ? again.abort() : undefined) };
    await rejectsWith(createSnapshot(ctx, driver, kube, { name: 'cancelled' }, stopped), 'interrupted', /^interrupted: no snapshot was taken$/);
    assert.deepEqual(await snapshotOfTree(sb.dir), tree);
  });

  it('restored disk names fit a DNS label', () => {
    const n = restoredDiskName('a'.repeat(63), new Date('2025-08-11T12:34:56Z'));
    assert.equal(n, `${'a'.repeat(39)}-restored-20250811123456`);
    assert.ok(n.length <= 63);
  });

  const deployment = async (ctx: AppContext, name = 'web') => (await kube.get({ apiVersion: 'apps/v1', kind: 'Deployment', name, namespace: appNamespace(ctx) }))!;
  const replicasOf = (d: KubeObject) => (d.spec as { replicas: number }).replicas;
  /** The quiesce record's annotations on the Deployment (kompox.dev/quiesced-*). */
  const quiesceAnnotations = (d: KubeObject) => Object.fromEntries(Object.entries(d.metadata.annotations ?? {}).filter(([k]) => k.startsWith('kompox.dev/quiesced-')));
  /**
   * Plays the controller for the pod `running` set (the controllers remove
   * the pods they own themselves): once the Deployment is at 0, the pod goes.
   * `stopped` is the Deployment as it was then.
   */
  function podGoesOnStop(ctx: AppContext, pod: string): { stopped?: KubeObject; done(): void } {
    const ns = appNamespace(ctx);
    const seen: { stopped?: KubeObject; done(): void } = { done: () => clearInterval(timer) };
    const timer = setInterval(async () => {
      const d = await kube.get({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', namespace: ns });
      if (replicasOf(d!) === 0 && !seen.stopped) {
        seen.stopped = d;
        await kube.delete({ apiVersion: 'v1', kind: 'Pod', name: pod, namespace: ns });
      }
    }, 50);
    return seen;
  }
  /**
   * A quiesced snapshot whose process dies once the app is stopped, as far
   * as the cluster can tell: the snapshot fails (killed), and so does every
   * patch that would start the app again (the connection is gone).
   */
  async function interruptedQuiesce(ctx: AppContext, name: string): Promise<unknown> {
    const lost = new Proxy(kube, {
      get(target, key) {
        if (key === 'mergePatch') {
          return async (ref: Parameters<KubeClient['mergePatch']>[0], patch: Record<string, unknown>) => {
            if (((patch.spec as { replicas?: number } | undefined)?.replicas ?? 0) > 0) throw new KompoxError('unavailable', 'connection to the API server lost', { code: 'kube.unreachable' });
            return target.mergePatch(ref, patch);
          };
        }
        const v = Reflect.get(target, key, target) as unknown;
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const killed = Object.create(driver, {
      snapshots: { value: { ...driver.snapshots, create: async () => Promise.reject(new Error('killed')) } },
    }) as K3sDriver;
    return createSnapshot(ctx, killed, lost, { name, quiesce: true }).then(
      () => assert.fail('the snapshot did not fail'),
      (e: unknown) => e,
    );
  }

  /** A driver whose snapshot copy, once in (`inside`), waits until released: a copy that takes a while. */
  function slowCopy(): { driver: K3sDriver; inside: Promise<void>; release(): void } {
    let entered = () => {};
    let release = () => {};
    const inside = new Promise<void>((r) => (entered = r));
    const gate = new Promise<void>((r) => (release = r));
    const create: K3sDriver['snapshots']['create'] = async (...args) => {
      entered();
      await gate;
      return driver.snapshots.create(...args);
    };
    return { driver: Object.create(driver, { snapshots: { value: { ...driver.snapshots, create } } }) as K3sDriver, inside, release };
  }
  /** Polls until `check` holds (30 s at most: patience for a loaded machine, not a measure). */
  async function eventually<T>(what: string, get: () => Promise<T>, check: (v: T) => boolean): Promise<T> {
    for (const deadline = Date.now() + 30_000; ; ) {
      const v = await get();
      if (check(v)) return v;
      if (Date.now() > deadline) assert.fail(`${what}: ${JSON.stringify(v)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  const renewedOf = (d: KubeObject) => d.metadata.annotations?.['kompox.dev/quiesced-renewed'];

  it('--quiesce renews its record while the copy runs (metadata only: no rollout), so app status says it runs; the start removes it with the rest', async () => {
    const ctx = await appWithData('renew-app');
    await running(ctx, 'web-1');
    const controller = podGoesOnStop(ctx, 'web-1');
    const slow = slowCopy();
    const snap = createSnapshot(ctx, slow.driver, kube, { name: 'long', quiesce: true, renewMs: 100 });
    try {
      await slow.inside;
      const first = await eventually('renewed', () => deployment(ctx), (d) => renewedOf(d) !== undefined);
      const later = await eventually('renewed again', () => deployment(ctx), (d) => renewedOf(d) !== renewedOf(first));
      assert.ok(Date.parse(renewedOf(later)!) > Date.parse(renewedOf(first)!));
      assert.ok(Date.parse(renewedOf(first)!) >= Date.parse(quiesceAnnotations(first)['kompox.dev/quiesced-since']!));
      // only the annotation changes: the app stays stopped, and no new generation (no rollout)
      assert.equal(replicasOf(later), 0);
      assert.equal(later.metadata.generation, controller.stopped!.metadata.generation);
      assert.equal(quiesceAnnotations(later)['kompox.dev/quiesced-by'], 'snapshot long');
      const [q] = (await appStatus(ctx, kube)).quiesced ?? [];
      assert.equal(q?.live, true);
      assert.match(q?.liveness ?? '', /^running \(renewed \d+s ago\)$/);
      slow.release();
      assert.equal((await snap).name, 'long');
    } finally {
      slow.release();
      controller.done();
    }
    const d = await deployment(ctx);
    assert.equal(replicasOf(d), 1);
    assert.deepEqual(quiesceAnnotations(d), {}, 'the renewal went with the record');
    // and it stopped renewing: nothing comes back after the start
    await new Promise((r) => setTimeout(r, 250));
    assert.deepEqual(quiesceAnnotations(await deployment(ctx)), {});
  });

  it('a second quiesce while one runs (its record renewed) is refused before it stops anything: snapshot.quiesce.busy, nothing changed', async () => {
    const ctx = await appWithData('busy-app');
    await running(ctx, 'web-1');
    const controller = podGoesOnStop(ctx, 'web-1');
    const slow = slowCopy();
    const first = createSnapshot(ctx, slow.driver, kube, { name: 'scheduled', quiesce: true });
    try {
      await slow.inside;
      const before = await deployment(ctx);
      const since = quiesceAnnotations(before)['kompox.dev/quiesced-since']!;
      const lines: string[] = [];
      const e = await createSnapshot(ctx, driver, kube, { name: 'manual', quiesce: true }, logInto(lines)).then(
        () => assert.fail('not refused'),
        (x: unknown) => x,
      );
      assert.ok(e instanceof KompoxError, String(e));
      assert.deepEqual([e.kind, e.code], ['conflict', 'snapshot.quiesce.busy']);
      assert.match(e.message, new RegExp(`^web was stopped at ${since} by the quiesced snapshot scheduled, which is still running \\(stopped \\d+s ago, not renewed yet\\); refusing to stop the app under it$`));
      assert.match(e.hint ?? '', /^Nothing was changed\. Wait for it to finish, or retry after \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(if it was interrupted, its record looks stale by then, and is taken over once it was watched unchanged for 60s\)\.$/);
      assert.deepEqual(lines, []);
      const after = await deployment(ctx);
      assert.equal(after.metadata.resourceVersion, before.metadata.resourceVersion, 'the Deployment was not written');
      assert.ok(!(await listSnapshots(ctx, driver, kube)).snapshots.some((s) => s.name === 'manual'));
      slow.release();
      await first;
    } finally {
      slow.release();
      controller.done();
    }
    assert.equal(replicasOf(await deployment(ctx)), 1);
  });

  it('a quiesce whose record another took over (its own gone stale: the process paused) does not start the app at its end; the other gives it back', async () => {
    const ctx = await appWithData('paused-app');
    await running(ctx, 'web-1');
    const controller = podGoesOnStop(ctx, 'web-1');
    const a = slowCopy();
    const b = slowCopy();
    const linesA: string[] = [];
    // A never renews within the test: to B (threshold 1 ms) its record is stale at once, as after minutes paused, and stays unchanged while B watches it (2 × 50 ms)
    const first = createSnapshot(ctx, a.driver, kube, { name: 'paused', quiesce: true, renewMs: 60_000 }, logInto(linesA));
    try {
      await a.inside;
      await new Promise((r) => setTimeout(r, 20));
      const linesB: string[] = [];
      const second = createSnapshot(ctx, b.driver, kube, { name: 'taker', quiesce: true, staleMs: 1, renewMs: 50 }, logInto(linesB));
      await Promise.race([b.inside, second.then(() => assert.fail('B ended before its copy'))]); // B refused (A's record judged live): fails here
      assert.match(linesB[0] ?? '', /^waiting up to 1s to confirm that the quiesced snapshot paused is gone: /);
      assert.match(linesB[1] ?? '', /^web was stopped at \S+ by the quiesced snapshot paused, which was interrupted \(not renewed since \S+\) and has not started it again; it will be started again with replicas 1$/);
      assert.equal(quiesceAnnotations(await deployment(ctx))['kompox.dev/quiesced-by'], 'snapshot taker');
      // A ends while B copies: the app stays stopped for B
      a.release();
      assert.equal((await first).name, 'paused');
      const during = await deployment(ctx);
      assert.equal(replicasOf(during), 0, 'A started the app under B\'s copy');
      assert.equal(quiesceAnnotations(during)['kompox.dev/quiesced-by'], 'snapshot taker');
      assert.deepEqual(linesA.slice(1), ['left web stopped: snapshot taker took its record over (this one\'s was stale) and gives it back when it ends; not waiting for it']);
      b.release();
      assert.equal((await second).name, 'taker');
    } finally {
      a.release();
      b.release();
      controller.done();
    }
    const d = await deployment(ctx);
    assert.equal(replicasOf(d), 1, 'B gave back the count A recorded');
    assert.deepEqual(quiesceAnnotations(d), {});
  });

  /** Writes a quiesce's record on the app's Deployment "web" and stops it, as that quiesce's stop would (its times by its own clock). */
  const writeRecord = (ctx: AppContext, annotations: Record<string, string>, name = 'web') =>
    kube.mergePatch({ apiVersion: 'apps/v1', kind: 'Deployment', name, namespace: appNamespace(ctx) }, { metadata: { annotations: { 'kompox.dev/quiesced-replicas': '1', ...annotations } }, spec: { replicas: 0 } });

  it('a quiesce whose clock is 10 minutes behind but which keeps renewing is watched, seen renewing and refused busy: not taken over', async () => {
    const ctx = await appWithData('skew-behind-app');
    await running(ctx, 'web-1');
    const behind = () => new Date(Date.now() - 600_000);
    await writeRecord(ctx, { 'kompox.dev/quiesced-since': nowRfc3339(behind()), 'kompox.dev/quiesced-by': 'snapshot skewed', 'kompox.dev/quiesced-renewed': behind().toISOString() });
    // its writer renews every 50 ms, by its clock
    const ref = { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', namespace: appNamespace(ctx) };
    const writer = setInterval(() => void kube.mergePatch(ref, { metadata: { annotations: { 'kompox.dev/quiesced-renewed': behind().toISOString() } } }).catch(() => undefined), 50);
    const lines: string[] = [];
    let e: unknown;
    try {
      // stopTimeoutMs: taken over (the fault), the pod here never goes, and it fails fast on that instead
      e = await createSnapshot(ctx, driver, kube, { name: 'second', quiesce: true, renewMs: 200, stopTimeoutMs: 500 }, logInto(lines)).then(() => assert.fail('taken over'), (x: unknown) => x);
    } finally {
      clearInterval(writer);
    }
    assert.ok(e instanceof KompoxError, String(e));
    assert.deepEqual([e.kind, e.code, e.message.replace(/ at \S+ by/, ' at T by')], [
      'conflict',
      'snapshot.quiesce.busy',
      'web was stopped at T by the quiesced snapshot skewed, which is still running (its record changed within 1s of watching; its times are by another clock); refusing to stop the app under it',
    ]);
    assert.equal(e.hint, 'Nothing was changed. Wait for it to finish, then retry (if it was interrupted, its record stops changing, and is taken over once it was watched unchanged for 1s).');
    assert.deepEqual(lines, ["waiting up to 1s to confirm that the quiesced snapshot skewed is gone: its record of web looks interrupted by this machine's clock, and is taken over only if not renewed meanwhile"]);
    const d = await deployment(ctx);
    assert.equal(replicasOf(d), 0);
    assert.equal(quiesceAnnotations(d)['kompox.dev/quiesced-by'], 'snapshot skewed', 'the record is still the running one');
    assert.ok(!(await listSnapshots(ctx, driver, kube)).snapshots.some((s) => s.name === 'second'));
  });

  it('a dead record whose times are 10 minutes ahead of this clock is watched and taken over, not trusted as running', async () => {
    const ctx = await appWithData('skew-ahead-app');
    await running(ctx, 'web-1');
    const ahead = new Date(Date.now() + 600_000);
    await writeRecord(ctx, { 'kompox.dev/quiesced-since': nowRfc3339(ahead), 'kompox.dev/quiesced-by': 'snapshot ahead', 'kompox.dev/quiesced-renewed': ahead.toISOString() });
    // app status goes by its clock, but says the time is ahead of it rather than "renewed 0s ago"
    const [q] = (await appStatus(ctx, kube)).quiesced ?? [];
    assert.equal(q?.live, true);
    assert.match(q?.liveness ?? '', new RegExp(`^running by its own clock \\(renewed at ${ahead.toISOString()}, (599|600)s ahead of this machine's clock\\)$`));
    const controller = podGoesOnStop(ctx, 'web-1');
    const lines: string[] = [];
    const t0 = performance.now();
    try {
      assert.equal((await createSnapshot(ctx, driver, kube, { name: 'after-ahead', quiesce: true, renewMs: 200 }, logInto(lines))).name, 'after-ahead');
    } finally {
      controller.done();
    }
    assert.ok(performance.now() - t0 >= 395, 'it watched the record for 2 renewal periods first');
    assert.deepEqual(lines.slice(0, 3), [
      "waiting up to 1s to confirm that the quiesced snapshot ahead is gone: its record of web is dated ahead of this machine's clock, and is taken over only if not renewed meanwhile",
      `web was stopped at ${nowRfc3339(ahead)} by the quiesced snapshot ahead, which was interrupted (not renewed while watched; its last renewal, ${ahead.toISOString()}, is ahead of this clock) and has not started it again; it will be started again with replicas 1`,
      'started web again (replicas 1)',
    ]);
    const d = await deployment(ctx);
    assert.equal(replicasOf(d), 1, 'given back the count it recorded');
    assert.deepEqual(quiesceAnnotations(d), {});
  });

  it('a dead record stale by this clock is taken over only after it was watched for 2 renewal periods; a cancel while watching changes nothing', async () => {
    const ctx = await appWithData('watch-stale-app');
    await running(ctx, 'web-1');
    const stale = nowRfc3339(new Date(Date.now() - 120_000));
    await writeRecord(ctx, { 'kompox.dev/quiesced-since': stale, 'kompox.dev/quiesced-by': 'snapshot dead' });
    const controller = podGoesOnStop(ctx, 'web-1');
    try {
      // Ctrl-C while it watches (10 s here): it ends at once, the record as it was
      const before = await deployment(ctx);
      const ac = new AbortController();
      const t0 = performance.now();
      const cancel: Op = { signal: ac.signal, events: (ev) => (ev.type === 'log' && ev.message.startsWith('waiting up to 10s') ? ac.abort() : undefined) };
      await rejectsWith(createSnapshot(ctx, driver, kube, { name: 'cancelled', quiesce: true, renewMs: 5000 }, cancel), 'interrupted', /^interrupted: nothing was changed \(the app was not stopped\)$/);
      // well under the watch's 10 s, with room for a loaded machine
      assert.ok(performance.now() - t0 < 7000, 'the cancel did not wait for the watch to end (10 s)');
      assert.equal((await deployment(ctx)).metadata.resourceVersion, before.metadata.resourceVersion);

      const seen: { at: number; message: string }[] = [];
      let midway: Promise<string | undefined> | undefined;
      const op: Op = {
        events: (ev) => {
          if (ev.type !== 'log') return;
          seen.push({ at: performance.now(), message: ev.message });
          // what the Deployment says midway through the watch
          if (ev.message.startsWith('waiting')) midway = new Promise((resolve) => setTimeout(() => void deployment(ctx).then((d) => resolve(quiesceAnnotations(d)['kompox.dev/quiesced-by'])), 200));
        },
      };
      assert.equal((await createSnapshot(ctx, driver, kube, { name: 'after-watch', quiesce: true, renewMs: 200 }, op)).name, 'after-watch');
      assert.equal(await midway, 'snapshot dead', 'not taken over at once');
      assert.match(seen[0]?.message ?? '', /^waiting up to 1s to confirm that the quiesced snapshot dead is gone: /);
      assert.equal(seen[1]?.message, `web was stopped at ${stale} by the quiesced snapshot dead, which was interrupted (not renewed since ${stale}) and has not started it again; it will be started again with replicas 1`);
      assert.ok(seen[1]!.at - seen[0]!.at >= 395, `taken over ${Math.round(seen[1]!.at - seen[0]!.at)} ms into the watch, not after 400 ms`);
    } finally {
      controller.done();
    }
    assert.equal(replicasOf(await deployment(ctx)), 1);
    assert.deepEqual(quiesceAnnotations(await deployment(ctx)), {});
  });

  it('--quiesce scales the app to 0, waits for its pod to go, snapshots, and scales back; the stop records what to give back, the start removes it', async () => {
    const ctx = await appWithData('quiet-app');
    await running(ctx, 'web-1');
    const controller = podGoesOnStop(ctx, 'web-1');
    const lines: string[] = [];
    try {
      const snap = await createSnapshot(ctx, driver, kube, { name: 'quiet', quiesce: true }, logInto(lines));
      assert.equal(snap.name, 'quiet');
    } finally {
      controller.done();
    }
    assert.ok(controller.stopped);
    // while stopped, the Deployment said what to give back, when and for what (a crash would leave this)
    const stopped = quiesceAnnotations(controller.stopped);
    assert.equal(stopped['kompox.dev/quiesced-replicas'], '1');
    assert.equal(stopped['kompox.dev/quiesced-by'], 'snapshot quiet');
    assert.match(stopped['kompox.dev/quiesced-since'] ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const d = await deployment(ctx);
    assert.equal(replicasOf(d), 1);
    assert.deepEqual(quiesceAnnotations(d), {}, 'the start removed the record');
    assert.equal((await appStatus(ctx, kube)).quiesced, undefined);
    // and it waits until the app is running and ready again, and says so
    assert.deepEqual(lines, ['stopping web (replicas 1 → 0)', 'started web again (replicas 1)', 'the app is running and ready again (deployment web: 1/1 ready)']);
  });

  it('a quiesce whose process dies once the app is stopped leaves it stopped with its record; app status says so; once the record is stale the next quiesce gives back the recorded count, not 0', async () => {
    const ctx = await appWithData('crashed-app');
    await running(ctx, 'web-1');
    const controller = podGoesOnStop(ctx, 'web-1');
    let e: unknown;
    try {
      e = await interruptedQuiesce(ctx, 'lost');
    } finally {
      controller.done();
    }
    // the start failed: said as such, with what it leaves
    assert.ok(e instanceof KompoxError, String(e));
    assert.deepEqual([e.kind, e.code], ['unavailable', 'snapshot.quiesce.start-failed']);
    assert.match(e.message, /^the app could not be started again: connection to the API server lost \(after the operation had failed: killed\)$/);
    assert.match(e.hint ?? '', /Deployments \(web\) record the replica counts/);
    const left = await deployment(ctx);
    assert.equal(replicasOf(left), 0);
    const record = quiesceAnnotations(left);
    assert.equal(record['kompox.dev/quiesced-replicas'], '1');
    assert.equal(record['kompox.dev/quiesced-by'], 'snapshot lost');
    const since = record['kompox.dev/quiesced-since']!;
    assert.match(since, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    // app status: stopped by that quiesce since then, 1 replica to give back; just stopped, it counts as running (a LIVE record)
    const [fresh] = (await appStatus(ctx, kube)).quiesced ?? [];
    assert.deepEqual({ ...fresh, liveness: undefined }, { deployment: 'web', replicas: 1, since, by: 'snapshot lost', live: true, liveness: undefined });
    assert.match(fresh!.liveness, /^running \(stopped \d+s ago, not renewed yet\)$/);
    // the record is stale once not renewed for 3 periods (90 s): as if that long had passed
    const stale = nowRfc3339(new Date(Date.now() - 120_000));
    await kube.mergePatch({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', namespace: appNamespace(ctx) }, { metadata: { annotations: { 'kompox.dev/quiesced-since': stale } } });
    assert.deepEqual((await appStatus(ctx, kube)).quiesced, [{ deployment: 'web', replicas: 1, since: stale, by: 'snapshot lost', live: false, liveness: `interrupted (not renewed since ${stale})` }]);

    // the next quiesced snapshot finds the app at 0 with the stale record: it gives back 1 and says why
    const lines: string[] = [];
    const snap = await createSnapshot(ctx, driver, kube, { name: 'after-crash', quiesce: true, renewMs: 50 }, logInto(lines));
    assert.equal(snap.name, 'after-crash');
    assert.deepEqual(lines, [
      "waiting up to 1s to confirm that the quiesced snapshot lost is gone: its record of web looks interrupted by this machine's clock, and is taken over only if not renewed meanwhile",
      `web was stopped at ${stale} by the quiesced snapshot lost, which was interrupted (not renewed since ${stale}) and has not started it again; it will be started again with replicas 1`,
      'started web again (replicas 1)',
      'the app is running and ready again (deployment web: 1/1 ready)',
    ]);
    const d = await deployment(ctx);
    assert.equal(replicasOf(d), 1);
    assert.deepEqual(quiesceAnnotations(d), {});
    assert.equal((await appStatus(ctx, kube)).quiesced, undefined);
  });

  it('app deploy while a quiesce record is there: warns that it starts the app, starts it, and removes the stale record', async () => {
    const ctx = await appWithData('deploy-app');
    const name = ctx.app.name;
    const source = bundleSource({ 'compose.yml': 'services:\n  web:\n    image: nginx:1.27\n    volumes: [data:/data]\nvolumes:\n  data: {}\n' }, { compose: { files: ['compose.yml'] } });
    assert.equal((await deployApp(ctx, source, kube, driver, { timeoutMs: 30_000 })).exitCode, 0);
    // the record of a quiesce still running (renewed just now): the deploy would start the app under its copy, and refuses
    const ref = { apiVersion: 'apps/v1', kind: 'Deployment', name, namespace: appNamespace(ctx) };
    const now = new Date().toISOString();
    await kube.mergePatch(ref, { metadata: { annotations: { 'kompox.dev/quiesced-replicas': '1', 'kompox.dev/quiesced-since': nowRfc3339(), 'kompox.dev/quiesced-by': 'snapshot nightly', 'kompox.dev/quiesced-renewed': now } }, spec: { replicas: 0 } });
    const busy = await deployApp(ctx, source, kube, driver, { timeoutMs: 30_000 }).then(() => assert.fail('not refused'), (e: unknown) => e);
    assert.ok(busy instanceof KompoxError, String(busy));
    assert.deepEqual([busy.kind, busy.code], ['conflict', 'deploy.quiesce.busy']);
    assert.match(busy.message, /by the quiesced snapshot nightly, which is still running \(renewed \d+s ago\); refusing to deploy .*nothing was changed$/);
    assert.match(busy.hint ?? '', /^Wait for it to finish, or retry after \S+Z \(if it was interrupted, its record looks stale by then, and is overridden by the deploy once it was watched unchanged for 60s\)\.$/);
    assert.equal(replicasOf(await deployment(ctx, name)), 0, 'refused before anything was written');
    const dryBusy = await deployApp(ctx, source, kube, driver, { dryRun: true });
    const refusedWarning = dryBusy.warnings.find((w) => /still running \(renewed \d+s ago\); this deploy would start it under its copy, and is refused while it runs$/.test(w.message));
    assert.match(refusedWarning?.hint ?? '', /^Wait for it to finish, or deploy after \S+Z \(if it was interrupted, its record looks stale by then, and the deploy starts the app once it watched it unchanged for 60s\)\.$/, JSON.stringify(dryBusy.warnings));
    // the record an interrupted quiesce leaves (the same patch as its stop)
    await kube.mergePatch(ref, {
      metadata: { annotations: { 'kompox.dev/quiesced-replicas': '1', 'kompox.dev/quiesced-since': '2026-01-02T03:04:05Z', 'kompox.dev/quiesced-by': 'export of disk d1', 'kompox.dev/quiesced-renewed': null } },
      spec: { replicas: 0 },
    });
    assert.equal((await appStatus(ctx, kube)).quiesced?.length, 1);
    // a dry run: the replicas are what would change, never the record (not part of the applied Deployment)
    const dry = await deployApp(ctx, source, kube, driver, { dryRun: true });
    assert.deepEqual(dry.changes.filter((c) => c.action !== 'unchanged').map((c) => `${c.action} ${c.ref.kind} ${c.fields.join(',')}`), ['change Deployment spec']);
    assert.ok(
      dry.warnings.some((w) => /quiesced export of disk d1, which was interrupted \(not renewed since 2026-01-02T03:04:05Z\) and has not started it again; this deploy would watch its record for 60s and start it if it is not renewed meanwhile$/.test(w.message)),
      JSON.stringify(dry.warnings),
    );
    assert.equal(replicasOf(await deployment(ctx, name)), 0, 'a dry run changes nothing');
    const warnings: string[] = [];
    const lines: string[] = [];
    // watched for 2 renewal periods first (here 2 × 200 ms)
    const r = await deployApp(ctx, source, kube, driver, { timeoutMs: 30_000, quiesceRenewMs: 200 }, { events: (ev) => (ev.type === 'warning' ? warnings.push(ev.diagnostic.message) : ev.type === 'log' ? lines.push(ev.message) : undefined) });
    assert.equal(r.exitCode, 0, r.message);
    assert.equal(lines[0], "waiting up to 1s to confirm that the quiesced export of disk d1 is gone: its record of deploy-app looks interrupted by this machine's clock, and is overridden by the deploy only if not renewed meanwhile");
    assert.deepEqual(warnings.filter((w) => /quiesce/.test(w)), [
      `${name} was stopped at 2026-01-02T03:04:05Z by the quiesced export of disk d1, which was interrupted (not renewed since 2026-01-02T03:04:05Z) and has not started it again; this deploy starts it`,
    ]);
    assert.ok(r.warnings.some((w) => /^deploy-app was stopped at 2026-01-02T03:04:05Z by the quiesced export of disk d1/.test(w.message)), 'the result lists the warning');
    assert.ok(lines.includes(`cleared the quiesce record of ${name}: it runs again`), lines.join('\n'));
    const d = await deployment(ctx, name);
    assert.equal(replicasOf(d), 1);
    assert.deepEqual(quiesceAnnotations(d), {}, 'the record went with the stop it recorded');
    assert.equal((await appStatus(ctx, kube)).quiesced, undefined);
    // a record on a Deployment stopped since (a quiesce that began after the apply) is not the deploy's to remove
    await kube.mergePatch({ apiVersion: 'apps/v1', kind: 'Deployment', name, namespace: appNamespace(ctx) }, { metadata: { annotations: { 'kompox.dev/quiesced-replicas': '1' } }, spec: { replicas: 0 } });
    assert.deepEqual(await clearStaleQuiesceRecords(kube, ctx, [name]), []);
    assert.equal(quiesceAnnotations(await deployment(ctx, name))['kompox.dev/quiesced-replicas'], '1');
  });

  /** The app deployed (its Deployment named after it, running), for a deploy over a quiesce's record. */
  async function deployed(app: string) {
    const ctx = await appWithData(app);
    const source = bundleSource({ 'compose.yml': 'services:\n  web:\n    image: nginx:1.27\n    volumes: [data:/data]\nvolumes:\n  data: {}\n' }, { compose: { files: ['compose.yml'] } });
    assert.equal((await deployApp(ctx, source, kube, driver, { timeoutMs: 30_000 })).exitCode, 0);
    return { ctx, source, name: ctx.app.name };
  }

  it('app deploy over a quiesce whose clock is 10 minutes behind but which keeps renewing: watched, seen renewing, refused deploy.quiesce.busy; the app not started', async () => {
    const { ctx, source, name } = await deployed('deploy-behind-app');
    const behind = () => new Date(Date.now() - 600_000);
    await writeRecord(ctx, { 'kompox.dev/quiesced-since': nowRfc3339(behind()), 'kompox.dev/quiesced-by': 'snapshot skewed', 'kompox.dev/quiesced-renewed': behind().toISOString() }, name);
    // its writer renews every 50 ms, by its clock
    const ref = { apiVersion: 'apps/v1', kind: 'Deployment', name, namespace: appNamespace(ctx) };
    const writer = setInterval(() => void kube.mergePatch(ref, { metadata: { annotations: { 'kompox.dev/quiesced-renewed': behind().toISOString() } } }).catch(() => undefined), 50);
    const lines: string[] = [];
    let e: unknown;
    try {
      e = await deployApp(ctx, source, kube, driver, { timeoutMs: 30_000, quiesceRenewMs: 200 }, logInto(lines)).then(() => assert.fail('not refused: the app was started under the copy'), (x: unknown) => x);
    } finally {
      clearInterval(writer);
    }
    assert.ok(e instanceof KompoxError, String(e));
    assert.deepEqual([e.kind, e.code, e.message.replace(/ at \S+ by/, ' at T by')], [
      'conflict',
      'deploy.quiesce.busy',
      `${name} was stopped at T by the quiesced snapshot skewed, which is still running (its record changed within 1s of watching; its times are by another clock); refusing to deploy (it would start the app under its copy); nothing was changed`,
    ]);
    assert.equal(e.hint, 'Wait for it to finish, then retry (if it was interrupted, its record stops changing, and is overridden by the deploy once it was watched unchanged for 1s).');
    assert.deepEqual(lines, [`waiting up to 1s to confirm that the quiesced snapshot skewed is gone: its record of ${name} looks interrupted by this machine's clock, and is overridden by the deploy only if not renewed meanwhile`]);
    const d = await deployment(ctx, name);
    assert.equal(replicasOf(d), 0, 'the app was not started');
    assert.equal(quiesceAnnotations(d)['kompox.dev/quiesced-by'], 'snapshot skewed', 'the record is still the running one');
  });

  it('app deploy over a dead record dated 10 minutes ahead: a dry run says it would watch it; the deploy starts the app only after watching it unchanged', async () => {
    const { ctx, source, name } = await deployed('deploy-ahead-app');
    const ahead = new Date(Date.now() + 600_000);
    await writeRecord(ctx, { 'kompox.dev/quiesced-since': nowRfc3339(ahead), 'kompox.dev/quiesced-by': 'snapshot ahead', 'kompox.dev/quiesced-renewed': ahead.toISOString() }, name);
    const dry = await deployApp(ctx, source, kube, driver, { dryRun: true, quiesceRenewMs: 200 });
    assert.ok(
      dry.warnings.some((w) => /by the quiesced snapshot ahead, which is running by its own clock \(renewed at \S+, \d+s ahead of this machine's clock\); this deploy would watch its record for 1s and start it if it is not renewed meanwhile$/.test(w.message)),
      JSON.stringify(dry.warnings),
    );
    const seen: { at: number; type: string; message: string }[] = [];
    let midway: Promise<[number, string | undefined]> | undefined;
    const op: Op = {
      events: (ev) => {
        const message = ev.type === 'log' ? ev.message : ev.type === 'warning' ? ev.diagnostic.message : undefined;
        if (message === undefined) return;
        seen.push({ at: performance.now(), type: ev.type, message });
        // the Deployment midway through the watch
        if (message.startsWith('waiting')) midway = new Promise((resolve) => setTimeout(() => void deployment(ctx, name).then((d) => resolve([replicasOf(d), quiesceAnnotations(d)['kompox.dev/quiesced-by']])), 200));
      },
    };
    const r = await deployApp(ctx, source, kube, driver, { timeoutMs: 30_000, quiesceRenewMs: 200 }, op);
    assert.equal(r.exitCode, 0, r.message);
    assert.deepEqual(await midway, [0, 'snapshot ahead'], 'not started at once');
    assert.deepEqual(seen[0], {
      at: seen[0]?.at,
      type: 'log',
      message: `waiting up to 1s to confirm that the quiesced snapshot ahead is gone: its record of ${name} is dated ahead of this machine's clock, and is overridden by the deploy only if not renewed meanwhile`,
    });
    const restart = seen.find((x) => x.type === 'warning' && /quiesced/.test(x.message));
    assert.equal(
      restart?.message,
      `${name} was stopped at ${nowRfc3339(ahead)} by the quiesced snapshot ahead, which was interrupted (not renewed while watched; its last renewal, ${ahead.toISOString()}, is ahead of this clock) and has not started it again; this deploy starts it`,
    );
    assert.ok(restart.at - seen[0]!.at >= 395, `overridden ${Math.round(restart.at - seen[0]!.at)} ms into the watch, not after 400 ms`);
    assert.ok(seen.some((x) => x.message === `cleared the quiesce record of ${name}: it runs again`));
    const d = await deployment(ctx, name);
    assert.equal(replicasOf(d), 1);
    assert.deepEqual(quiesceAnnotations(d), {});
  });

  it("a cancel during app deploy's watch of a stale record ends it at once: interrupted, nothing applied", async () => {
    const { ctx, source, name } = await deployed('deploy-cancel-app');
    const stale = nowRfc3339(new Date(Date.now() - 120_000));
    await writeRecord(ctx, { 'kompox.dev/quiesced-since': stale, 'kompox.dev/quiesced-by': 'snapshot dead' }, name);
    const inventory = { apiVersion: 'v1', kind: 'ConfigMap', name: 'kompox-inventory', namespace: appNamespace(ctx) };
    const before = [await deployment(ctx, name), await kube.get(inventory)];
    assert.ok(before[1], 'the inventory is there');
    const ac = new AbortController();
    const t0 = performance.now();
    // Ctrl-C while it watches (10 s here)
    const cancel: Op = { signal: ac.signal, events: (ev) => (ev.type === 'log' && ev.message.startsWith('waiting up to 10s') ? ac.abort() : undefined) };
    await rejectsWith(deployApp(ctx, source, kube, driver, { timeoutMs: 30_000, quiesceRenewMs: 5000 }, cancel), 'interrupted', /^interrupted: nothing was changed$/);
    // well under the watch's 10 s, with room for a loaded machine
    assert.ok(performance.now() - t0 < 7000, 'the cancel did not wait for the watch to end (10 s)');
    const after = [await deployment(ctx, name), await kube.get(inventory)];
    assert.deepEqual(after.map((o) => o?.metadata.resourceVersion), before.map((o) => o?.metadata.resourceVersion), 'nothing was applied');
    assert.equal(quiesceAnnotations(after[0]!)['kompox.dev/quiesced-by'], 'snapshot dead');
  });

  it("a quiesce that stops the app in deploy's gap (after its look at the records, before the apply) refuses the deploy: deploy.quiesce.busy, nothing applied", async () => {
    const { ctx, source, name } = await deployed('deploy-gap-app');
    const ns = appNamespace(ctx);
    const inventory = { apiVersion: 'v1', kind: 'ConfigMap', name: 'kompox-inventory', namespace: ns };
    // the quiesce's stop lands during the namespace wait: the first read of the Namespace after the look listed the Deployments
    let looked = false;
    let stoppedAt: string | undefined;
    const gap = new Proxy(kube, {
      get(target, key) {
        if (key === 'list') {
          return async (...args: Parameters<KubeClient['list']>) => {
            if (args[1] === 'Deployment') looked = true;
            return target.list(...args);
          };
        }
        if (key === 'get') {
          return async (ref: Parameters<KubeClient['get']>[0]) => {
            if (looked && !stoppedAt && ref.kind === 'Namespace') {
              await writeRecord(ctx, { 'kompox.dev/quiesced-since': nowRfc3339(), 'kompox.dev/quiesced-by': 'snapshot gap' }, name);
              stoppedAt = (await deployment(ctx, name)).metadata.resourceVersion;
            }
            return target.get(ref);
          };
        }
        const v = Reflect.get(target, key, target) as unknown;
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const inventoryBefore = (await kube.get(inventory))?.metadata.resourceVersion;
    const e = await deployApp(ctx, source, gap, driver, { timeoutMs: 30_000 }).then(() => assert.fail('not refused: the app was started under the copy'), (x: unknown) => x);
    assert.ok(stoppedAt, 'the quiesce stopped the app in the gap');
    assert.ok(e instanceof KompoxError, String(e));
    assert.deepEqual([e.kind, e.code], ['conflict', 'deploy.quiesce.busy']);
    assert.match(e.message, /by the quiesced snapshot gap, which is still running \(stopped \d+s ago, not renewed yet\); refusing to deploy \(it would start the app under its copy\); nothing was changed$/);
    const d = await deployment(ctx, name);
    assert.equal(replicasOf(d), 0, 'the app was not started');
    assert.equal(d.metadata.resourceVersion, stoppedAt, 'the Deployment was not applied after the quiesce stopped it');
    assert.equal(quiesceAnnotations(d)['kompox.dev/quiesced-by'], 'snapshot gap');
    assert.equal((await kube.get(inventory))?.metadata.resourceVersion, inventoryBefore, 'nothing was applied');
  });

  /** `kube`, but the first apply of Deployment NAME first runs `before` (what lands between deploy's last read and its apply). */
  const beforeDeploymentApply = (name: string, before: () => Promise<void>) => {
    let fired = 0;
    const racing = new Proxy(kube, {
      get(target, key) {
        if (key === 'apply') {
          return async (...args: Parameters<KubeClient['apply']>) => {
            if (args[0].kind === 'Deployment' && args[0].metadata.name === name && !fired++) await before();
            return target.apply(...args);
          };
        }
        const v = Reflect.get(target, key, target) as unknown;
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    return { racing, fired: () => fired };
  };

  it("a quiesce that stops the app between deploy's last read of the Deployment and its apply: the apply, conditional on that version, fails and the check refuses it (deploy.quiesce.busy); the app not started", async () => {
    const { ctx, source, name } = await deployed('deploy-apply-gap-app');
    const ref = { apiVersion: 'apps/v1', kind: 'Deployment', name, namespace: appNamespace(ctx) };
    const theirs = { 'kompox.dev/quiesced-replicas': '1', 'kompox.dev/quiesced-since': nowRfc3339(), 'kompox.dev/quiesced-by': 'snapshot late' };
    const { racing, fired } = beforeDeploymentApply(name, async () => void (await kube.mergePatch(ref, { metadata: { annotations: theirs }, spec: { replicas: 0 } })));
    const e = await deployApp(ctx, source, racing, driver, { timeoutMs: 30_000 }).then(() => assert.fail('not refused: the app was started under the copy'), (x: unknown) => x);
    assert.equal(fired(), 1, 'the apply was tried once, refused by the server (409), and not tried again once the check refused');
    assert.ok(e instanceof KompoxError, String(e));
    assert.deepEqual([e.kind, e.code], ['conflict', 'deploy.quiesce.busy']);
    assert.match(e.message, /by the quiesced snapshot late, which is still running \(stopped \d+s ago, not renewed yet\); refusing to apply it \(it would start the app under its copy\); it was left as it is$/);
    assert.match(e.hint ?? '', new RegExp(`Stopped at Deployment/\\S+/${name}; nothing was changed before the failure`));
    const d = await deployment(ctx, name);
    assert.equal(replicasOf(d), 0, 'the app was not started');
    assert.deepEqual(quiesceAnnotations(d), theirs);
  });

  it("a Deployment whose status its controller writes between deploy's read and its apply: the conditional apply is read and tried again, the deploy goes through", async () => {
    const { ctx, source, name } = await deployed('deploy-apply-churn-app');
    const ref = { apiVersion: 'apps/v1', kind: 'Deployment', name, namespace: appNamespace(ctx) };
    const before = (await deployment(ctx, name)).metadata.resourceVersion;
    const { racing, fired } = beforeDeploymentApply(name, async () => void fake.setStatus(ref, { observedGeneration: 1, replicas: 1, readyReplicas: 1, availableReplicas: 1, updatedReplicas: 1 }));
    const r = await deployApp(ctx, source, racing, driver, { timeoutMs: 30_000 });
    assert.equal(r.exitCode, 0, r.message);
    assert.equal(fired(), 2, 'applied a second time, over the version written meanwhile');
    const d = await deployment(ctx, name);
    assert.notEqual(d.metadata.resourceVersion, before);
    assert.equal(replicasOf(d), 1);
  });

  it('a maintenance box (stopped) over a dead stale record: watched for 2 renewal periods, taken over, the recorded count given back when the box goes', { timeout: 30_000 }, async () => {
    const { ctx, name } = await deployed('box-dead-app');
    const stale = nowRfc3339(new Date(Date.now() - 120_000));
    await writeRecord(ctx, { 'kompox.dev/quiesced-since': stale, 'kompox.dev/quiesced-by': 'snapshot dead', 'kompox.dev/quiesced-renewed': stale }, name);
    const lines: string[] = [];
    const t0 = performance.now();
    const { box } = await deployBox(ctx, kube, { quiesceRenewMs: 200, stopTimeoutMs: 10_000, startTimeoutMs: 10_000 }, logInto(lines));
    assert.ok(performance.now() - t0 >= 395, 'the record was watched for 2 × 200 ms');
    assert.deepEqual(lines.slice(0, 2), [
      `waiting up to 1s to confirm that the quiesced snapshot dead is gone: its record of ${name} looks interrupted by this machine's clock, and is taken over only if not renewed meanwhile`,
      `${name} was stopped at ${stale} by the quiesced snapshot dead, which was interrupted (not renewed since ${stale}) and has not started it again; it will be started again with replicas 1`,
    ]);
    assert.deepEqual([box.mode, box.replicas], ['stopped', { [name]: 1 }], 'the box records the count the quiesce recorded, not 0');
    const held = await deployment(ctx, name);
    assert.equal(replicasOf(held), 0);
    // the box's stop replaced the dead quiesce's record (its renewal too) with its own mark: no quiesce seems to hold the app
    assert.deepEqual(quiesceAnnotations(held), {}, "the taken-over record does not linger under the box");
    assert.equal(held.metadata.annotations?.['kompox.dev/box-stopped'], box.since);
    const status = await appStatus(ctx, kube);
    assert.deepEqual([status.quiesced, status.box?.mode], [undefined, 'stopped'], 'app status shows the box, not an interrupted quiesce');
    const { restored } = await destroyBox(ctx, kube, { stopTimeoutMs: 10_000 });
    assert.deepEqual(restored, { [name]: 1 });
    const d = await deployment(ctx, name);
    assert.equal(replicasOf(d), 1, 'the app runs again');
    assert.deepEqual(quiesceAnnotations(d), {}, 'the record went with the start');
    assert.equal(d.metadata.annotations?.['kompox.dev/box-stopped'], undefined, "the box's mark went with the start");
  });

  it('a maintenance box (stopped) over a live quiesce whose clock is 10 minutes behind: watched, seen renewing, refused busy; nothing changed', { timeout: 30_000 }, async () => {
    const { ctx, name } = await deployed('box-live-app');
    const behind = () => new Date(Date.now() - 600_000);
    await writeRecord(ctx, { 'kompox.dev/quiesced-since': nowRfc3339(behind()), 'kompox.dev/quiesced-by': 'snapshot skewed', 'kompox.dev/quiesced-renewed': behind().toISOString() }, name);
    const ref = { apiVersion: 'apps/v1', kind: 'Deployment', name, namespace: appNamespace(ctx) };
    const writer = setInterval(() => void kube.mergePatch(ref, { metadata: { annotations: { 'kompox.dev/quiesced-renewed': behind().toISOString() } } }).catch(() => undefined), 50);
    const nsBefore = (await kube.get({ apiVersion: 'v1', kind: 'Namespace', name: appNamespace(ctx) }))!;
    let e: unknown;
    try {
      e = await deployBox(ctx, kube, { quiesceRenewMs: 200, stopTimeoutMs: 10_000, startTimeoutMs: 10_000 }).then(() => assert.fail('not refused: a box over a running copy'), (x: unknown) => x);
    } finally {
      clearInterval(writer);
    }
    assert.ok(e instanceof KompoxError, String(e));
    assert.deepEqual([e.code, e.message.replace(/ at \S+ by/, ' at T by')], [
      'snapshot.quiesce.busy',
      `${name} was stopped at T by the quiesced snapshot skewed, which is still running (its record changed within 1s of watching; its times are by another clock); refusing to stop the app under it`,
    ]);
    const nsAfter = (await kube.get({ apiVersion: 'v1', kind: 'Namespace', name: appNamespace(ctx) }))!;
    assert.equal(nsAfter.metadata.resourceVersion, nsBefore.metadata.resourceVersion, 'no box record was written');
    assert.equal(await findBox(ctx, kube), undefined);
    assert.equal(quiesceAnnotations(await deployment(ctx, name))['kompox.dev/quiesced-by'], 'snapshot skewed');
  });

  it("a box's stop that races a quiesce's stop re-reads on the 409 and refuses busy; its deploy is undone: no box, what it stopped started again, the quiesce's Deployment left to it", { timeout: 30_000 }, async () => {
    const { ctx, name } = await deployed('box-race-app');
    const ns = appNamespace(ctx);
    // a second Deployment of the app, stopped after the first (by name)
    await kube.apply({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'worker', namespace: ns, labels: appLabels(ctx) },
      spec: { replicas: 1, selector: { matchLabels: { [APP_SELECTOR_LABEL]: ns, role: 'worker' } }, template: { metadata: { labels: { [APP_SELECTOR_LABEL]: ns, role: 'worker' } }, spec: { containers: [{ name: 'w', image: 'busybox' }] } } },
    });
    // a quiesce stops worker and records itself between the box's look and its stop of worker
    const theirs = { 'kompox.dev/quiesced-replicas': '1', 'kompox.dev/quiesced-since': nowRfc3339(), 'kompox.dev/quiesced-by': 'snapshot theirs' };
    const { racing, conflicts } = racingPatches(kube, (patch, ref) => ref.name === 'worker' && (patch.spec as { replicas?: number } | undefined)?.replicas === 0, { metadata: { annotations: theirs }, spec: { replicas: 0 } });
    const e = await deployBox(ctx, racing, { stopTimeoutMs: 10_000, startTimeoutMs: 10_000 }).then(() => assert.fail('not refused: a box beside a running copy'), (x: unknown) => x);
    assert.ok(e instanceof KompoxError, String(e));
    assert.deepEqual([e.code, conflicts()], ['snapshot.quiesce.busy', 1]);
    assert.match(e.message, /^worker was stopped at \S+ by the quiesced snapshot theirs, which is still running \(stopped \d+s ago, not renewed yet\); refusing to stop the app under it$/);
    assert.equal(await findBox(ctx, kube), undefined, 'no box record, no box pod');
    const app = await deployment(ctx, name);
    assert.equal(replicasOf(app), 1, 'what the box had stopped was started again');
    assert.equal(app.metadata.annotations?.['kompox.dev/box-stopped'], undefined);
    const worker = await deployment(ctx, 'worker');
    assert.equal(replicasOf(worker), 0, "the quiesce's Deployment stays stopped for it");
    assert.deepEqual(quiesceAnnotations(worker), theirs, 'the quiesce keeps its record');
    assert.equal(worker.metadata.annotations?.['kompox.dev/box-stopped'], undefined);
  });

  it("box destroy leaves alone a Deployment a quiesce's record is on (a quiesce that stopped it after the box): not started under its copy", { timeout: 30_000 }, async () => {
    const { ctx, name } = await deployed('box-left-app');
    await deployBox(ctx, kube, { stopTimeoutMs: 10_000, startTimeoutMs: 10_000 });
    // a quiesce that did not see the box (an older kompox) stopped the app and records itself
    const theirs = { 'kompox.dev/quiesced-replicas': '1', 'kompox.dev/quiesced-since': nowRfc3339(), 'kompox.dev/quiesced-by': 'snapshot late' };
    await kube.mergePatch({ apiVersion: 'apps/v1', kind: 'Deployment', name, namespace: appNamespace(ctx) }, { metadata: { annotations: theirs } });
    const lines: string[] = [];
    const r = await destroyBox(ctx, kube, { stopTimeoutMs: 10_000 }, logInto(lines));
    assert.deepEqual([r.existed, r.restored, r.left], [true, {}, [{ deployment: name, by: 'snapshot late', since: theirs['kompox.dev/quiesced-since'] }]]);
    assert.ok(lines.includes(`left ${name} stopped: ${name} was stopped at ${theirs['kompox.dev/quiesced-since']} by the quiesced snapshot late after the box did; that quiesce gives it back when it ends (if it was interrupted, app deploy or the next --quiesce does)`), lines.join('\n'));
    const d = await deployment(ctx, name);
    assert.equal(replicasOf(d), 0, 'not started under the quiesce');
    assert.deepEqual(quiesceAnnotations(d), theirs);
    assert.equal(d.metadata.annotations?.['kompox.dev/box-stopped'], undefined, "the box's mark went with the box");
    assert.equal(await findBox(ctx, kube), undefined);
  });

  it('a quiesce (snapshot create --quiesce, disk export --quiesce) while a box is deployed is refused before it stops anything: snapshot.quiesce.box, nothing changed', { timeout: 30_000 }, async () => {
    const { ctx, name } = await deployed('box-quiesce-app');
    const { box } = await deployBox(ctx, kube, { stopTimeoutMs: 10_000, startTimeoutMs: 10_000 });
    const nsRef = { apiVersion: 'v1', kind: 'Namespace', name: appNamespace(ctx) };
    const nsBefore = (await kube.get(nsRef))!;
    const depBefore = await deployment(ctx, name);
    const snap = await createSnapshot(ctx, driver, kube, { name: 'under-box', quiesce: true }).then(() => assert.fail('not refused: a quiesce beside a box'), (x: unknown) => x);
    assert.ok(snap instanceof KompoxError, String(snap));
    assert.deepEqual([snap.kind, snap.code, snap.message, snap.hint, snap.details?.operation], [
      'conflict',
      'snapshot.quiesce.box',
      `the maintenance box kompox-box of app ${name} is deployed (it stopped the app at ${box.since} and starts it again when it is removed); refusing to quiesce the app for the snapshot under-box: nothing was changed`,
      'Remove the box first (box destroy; that starts the app again) and retry, or snapshot without quiescing (crash-consistent).',
      'snapshot',
    ]);
    const { withCliAdvice } = await import('../../src/cli/advice.js');
    assert.match(withCliAdvice(snap).hint!, /^Remove the box with `kompoxops box destroy` .* or snapshot without --quiesce \(crash-consistent\)\.$/);
    const sink = new (await import('node:stream')).PassThrough();
    sink.resume();
    const cur = (await listDisks(ctx, driver, kube)).disks.find((d) => d.current)!;
    const exp = await exportDisk(ctx, driver, kube, { name: cur.name, out: sink, quiesce: true }).then(() => assert.fail('not refused: an export beside a box'), (x: unknown) => x);
    assert.ok(exp instanceof KompoxError, String(exp));
    assert.deepEqual([exp.code, exp.details?.operation], ['snapshot.quiesce.box', 'export']);
    assert.match(exp.message, new RegExp(`^the maintenance box kompox-box of app ${name} is deployed \\(.*\\); refusing to quiesce the app for the export of disk ${cur.name}: nothing was changed$`));
    assert.match(withCliAdvice(exp).hint!, /or export without --quiesce/);
    assert.deepEqual((await listSnapshots(ctx, driver, kube)).snapshots, [], 'no snapshot was taken');
    assert.equal((await kube.get(nsRef))!.metadata.resourceVersion, nsBefore.metadata.resourceVersion, "the box's record is untouched");
    assert.equal((await deployment(ctx, name)).metadata.resourceVersion, depBefore.metadata.resourceVersion, 'the app was neither stopped nor started');
    assert.equal((await findBox(ctx, kube))?.pod?.phase, 'Running');
    await destroyBox(ctx, kube, { stopTimeoutMs: 10_000 });
  });

  it("a box begun in a quiesce's gap (after its look, before its stop) refuses the quiesce once it stopped: snapshot.quiesce.box, the app started again, nothing copied", async () => {
    const ctx = await appWithData('box-gap-app');
    await running(ctx, 'web-1');
    // a box deploy writes its record on the namespace first, then looks at the Deployments and stops them
    const boxRecord = { mode: 'stopped', replicas: { web: 1 }, since: nowRfc3339(), session: false };
    const isStop = (patch: Record<string, unknown>) => (patch.spec as { replicas?: number } | undefined)?.replicas === 0;
    const { racing } = racingPatches(kube, isStop, (k) => k.mergePatch({ apiVersion: 'v1', kind: 'Namespace', name: appNamespace(ctx) }, { metadata: { annotations: { 'kompox.dev/box': JSON.stringify(boxRecord) } } }));
    const e = await createSnapshot(ctx, driver, racing, { name: 'gap', quiesce: true, stopTimeoutMs: 1000 }).then(() => assert.fail('not refused: a copy beside a box'), (x: unknown) => x);
    assert.ok(e instanceof KompoxError, String(e));
    assert.deepEqual([e.code, e.message], [
      'snapshot.quiesce.box',
      `the maintenance box kompox-box of app ${ctx.app.name} is deployed (it stopped the app at ${boxRecord.since} and starts it again when it is removed); refusing to quiesce the app for the snapshot gap: nothing was copied; what it had stopped was started again`,
    ]);
    assert.deepEqual((await listSnapshots(ctx, driver, kube)).snapshots, [], 'no snapshot was taken');
    const d = await deployment(ctx);
    assert.equal(replicasOf(d), 1, 'what the quiesce stopped was started again');
    assert.deepEqual(quiesceAnnotations(d), {});
  });

  it("a box that stops the app in a quiesce's gap (after its look, before its stop): the quiesce's stop finds the box's mark and refuses snapshot.quiesce.box, and leaves the Deployment to the box", async () => {
    const ctx = await appWithData('box-mark-app');
    await running(ctx, 'web-1');
    const ns = appNamespace(ctx);
    // the whole box deploy lands before the quiesce's stop: its namespace record, then its stop (the mark, replicas 0)
    const since = nowRfc3339();
    const isStop = (patch: Record<string, unknown>) => (patch.spec as { replicas?: number } | undefined)?.replicas === 0;
    const { racing, conflicts } = racingPatches(kube, isStop, async (k) => {
      await k.mergePatch({ apiVersion: 'v1', kind: 'Namespace', name: ns }, { metadata: { annotations: { 'kompox.dev/box': JSON.stringify({ mode: 'stopped', replicas: { web: 1 }, since, session: false }) } } });
      await k.mergePatch({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', namespace: ns }, { metadata: { annotations: { 'kompox.dev/box-stopped': since } }, spec: { replicas: 0 } });
    });
    const e = await createSnapshot(ctx, driver, racing, { name: 'marked', quiesce: true, stopTimeoutMs: 1000 }).then(() => assert.fail('not refused: a copy beside a box'), (x: unknown) => x);
    assert.ok(e instanceof KompoxError, String(e));
    assert.deepEqual([e.code, conflicts(), e.message], [
      'snapshot.quiesce.box',
      1,
      `web was stopped at ${since} by the maintenance box kompox-box of app ${ctx.app.name}; refusing to quiesce the app for the snapshot marked under it: nothing was copied; what it had stopped was started again`,
    ]);
    assert.deepEqual((await listSnapshots(ctx, driver, kube)).snapshots, [], 'no snapshot was taken');
    const d = await deployment(ctx);
    assert.equal(replicasOf(d), 0, 'not started under the box');
    assert.deepEqual(quiesceAnnotations(d), {}, 'no quiesce record over the box');
    assert.equal(d.metadata.annotations?.['kompox.dev/box-stopped'], since, "the box's mark kept");
  });

  it("a quiesce whose record a box took over (its own gone stale: the process paused) does not start the app at its end; the box gives it back", async () => {
    const ctx = await appWithData('box-took-app');
    await running(ctx, 'web-1');
    const mine = { by: 'snapshot paused', since: nowRfc3339() };
    await stopApp(kube, ctx, { web: 1 }, {}, mine);
    // a box's stop over the record once it was stale: the record replaced by its mark
    const since = nowRfc3339();
    const strip = { 'kompox.dev/quiesced-replicas': null, 'kompox.dev/quiesced-since': null, 'kompox.dev/quiesced-by': null, 'kompox.dev/quiesced-renewed': null };
    await kube.mergePatch({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', namespace: appNamespace(ctx) }, { metadata: { annotations: { ...strip, 'kompox.dev/box-stopped': since } } });
    const left = await startApp(kube, ctx, { web: 1 }, {}, mine);
    assert.deepEqual(left, [{ deployment: 'web', box: since }]);
    const d = await deployment(ctx);
    assert.equal(replicasOf(d), 0, 'left stopped for the box');
    assert.equal(d.metadata.annotations?.['kompox.dev/box-stopped'], since);
  });

  it("a box's mark left on a running Deployment (the app started since, by app deploy or by hand) is stale: a quiesced snapshot stops the app and starts it again, the mark gone", async () => {
    const { ctx, name } = await deployed('box-stale-mark-app');
    const since = nowRfc3339(new Date(Date.now() - 3_600_000));
    await kube.mergePatch({ apiVersion: 'apps/v1', kind: 'Deployment', name, namespace: appNamespace(ctx) }, { metadata: { annotations: { 'kompox.dev/box-stopped': since } } });
    assert.equal(replicasOf(await deployment(ctx, name)), 1);
    await createSnapshot(ctx, driver, kube, { name: 'after-box', quiesce: true, stopTimeoutMs: 10_000, startTimeoutMs: 10_000 });
    const d = await deployment(ctx, name);
    assert.equal(replicasOf(d), 1, 'the app runs again after the quiesced snapshot');
    assert.deepEqual(quiesceAnnotations(d), {});
    assert.equal(d.metadata.annotations?.['kompox.dev/box-stopped'], undefined, 'the stale mark went with the stop');
    assert.deepEqual((await listSnapshots(ctx, driver, kube)).snapshots.map((x) => x.name), ['after-box']);
  });

  it("app deploy clears a box's mark left on the Deployment it runs (no box is deployed: it would refuse), and says so; a mark on one stopped since is not its to clear", async () => {
    const { ctx, source, name } = await deployed('box-mark-deploy-app');
    const ref = { apiVersion: 'apps/v1', kind: 'Deployment', name, namespace: appNamespace(ctx) };
    await kube.mergePatch(ref, { metadata: { annotations: { 'kompox.dev/box-stopped': nowRfc3339() } } });
    const lines: string[] = [];
    const r = await deployApp(ctx, source, kube, driver, { timeoutMs: 30_000 }, logInto(lines));
    assert.equal(r.exitCode, 0, r.message);
    assert.ok(lines.includes(`cleared the maintenance box's mark of ${name}: it runs again`), lines.join('\n'));
    const d = await deployment(ctx, name);
    assert.equal(replicasOf(d), 1);
    assert.equal(d.metadata.annotations?.['kompox.dev/box-stopped'], undefined);
    await kube.mergePatch(ref, { metadata: { annotations: { 'kompox.dev/box-stopped': nowRfc3339() } }, spec: { replicas: 0 } });
    assert.deepEqual(await clearStaleQuiesceRecords(kube, ctx, [name]), []);
    assert.notEqual((await deployment(ctx, name)).metadata.annotations?.['kompox.dev/box-stopped'], undefined);
  });

  it('a stored snapshot whose archive is damaged: restore, disk create -S and a re-compressing export are refused naming the snapshot (snapshot.damaged), nothing made', async () => {
    const ctx = await appWithData('damaged-snap-app');
    const { randomBytes } = await import('node:crypto');
    const cur = (await listDisks(ctx, driver, kube)).disks.find((d) => d.current)!;
    await writeFile(join(cur.id, 'noise.bin'), randomBytes(256 * 1024));
    const snap = await createSnapshot(ctx, driver, kube, { name: 'rotten' });
    // a byte flipped in the middle of the stored archive (a bad sector, a bit flip on the disk that holds it)
    const bytes = await readFile(snap.id);
    bytes[bytes.length >> 1] ^= 0xff;
    await writeFile(snap.id, bytes);
    const disksBefore = (await listDisks(ctx, driver, kube)).disks.map((d) => d.name);
    const damaged = (done: string) => (e: unknown) => {
      assert.ok(e instanceof KompoxError, String(e));
      assert.deepEqual([e.kind, e.code], ['integrity', 'snapshot.damaged']);
      assert.match(e.message, new RegExp(`^snapshot rotten \\(${snap.id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\) is damaged: .*; ${done}$`));
      assert.match(e.hint ?? '', /restore another one/);
      return true;
    };
    await assert.rejects(restoreSnapshot(ctx, driver, kube, { name: 'rotten', diskName: 'from-rotten' }), damaged('no disk was created'));
    await assert.rejects(createDisk(ctx, driver, kube, { name: 'copy-rotten', source: 'rotten' }), damaged('no disk was created'));
    const sink = new (await import('node:stream')).PassThrough();
    sink.resume();
    await assert.rejects(exportSnapshot(ctx, driver, kube, { name: 'rotten', out: sink, format: 'tar.gz' }), damaged('nothing was exported'));
    assert.deepEqual((await listDisks(ctx, driver, kube)).disks.map((d) => d.name), disksBefore, 'no disk was made');
  });

  it('a level is checked before anything runs (no app stopped): one of tar.zst, and only where snapshots are archives', async () => {
    const ctx = await appWithData('level-app');
    const ns = appNamespace(ctx);
    await running(ctx, 'web-1');
    const tree = await snapshotOfTree(sb.dir);
    const replicas = async () => ((await kube.get({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', namespace: ns }))!.spec as { replicas: number }).replicas;
    const refusal = (p: Promise<unknown>) => p.then(() => assert.fail('not refused'), (e: unknown) => (assert.ok(e instanceof KompoxError, String(e)), e));
    for (const level of [0, 9, 2.5]) {
      const e = await refusal(createSnapshot(ctx, driver, kube, { name: 'lv', quiesce: true, level }));
      assert.deepEqual([e.kind, e.code, e.message], ['usage', 'archive.level.invalid', `level ${level} is not a compression level of tar.zst archives`]);
    }
    // a driver whose snapshots are the cloud's block copies (as AKS's): the same disk, no archive to compress
    const cloudy = Object.create(driver, { name: { value: 'aks' }, capabilities: { value: { ...driver.capabilities, atomicSnapshots: true, archiveSnapshots: false } } }) as K3sDriver;
    const e = await refusal(createSnapshot(ctx, cloudy, kube, { name: 'lv', quiesce: true, level: 1 }));
    assert.deepEqual([e.kind, e.code], ['usage', 'snapshot.level.unsupported']);
    assert.match(e.message, /^level: aks snapshots are the cloud's own copies of the disk/);
    assert.match(e.hint ?? '', /^Leave out the level/);
    // kompoxops names its flag (src/cli/advice.ts)
    const { withCliAdvice } = await import('../../src/cli/advice.js');
    assert.match(withCliAdvice(e).message, /^--level: aks snapshots are the cloud's own copies of the disk/);
    assert.match(withCliAdvice(e).hint ?? '', /Leave out --level .*kompoxops snapshot export --level N/);
    assert.equal(await replicas(), 1, 'the app was never stopped');
    assert.deepEqual(await snapshotOfTree(sb.dir), tree, 'nothing made');
    // without a level the same driver snapshots as ever
    assert.equal((await createSnapshot(ctx, cloudy, kube, { name: 'plain' })).name, 'plain');
  });

  it('--quiesce restores replicas and takes no snapshot when the pod does not stop', async () => {
    const ctx = await appWithData('stuck-app');
    const ns = appNamespace(ctx);
    await running(ctx, 'stuck'); // nothing here removes it
    await rejectsWith(createSnapshot(ctx, driver, kube, { name: 'never', quiesce: true, stopTimeoutMs: 600 }), 'timeout', /did not stop in time \(stuck still there\)/);
    const d = await kube.get({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', namespace: ns });
    assert.equal((d!.spec as { replicas: number }).replicas, 1);
    assert.ok(!(await listSnapshots(ctx, driver, kube)).snapshots.some((s) => s.name === 'never'));
  });

  it('--quiesce cancelled (Ctrl-C) while waiting for the pod: the app is started again at once, no snapshot, interrupted', async () => {
    const ctx = await appWithData('cancel-app');
    const ns = appNamespace(ctx);
    await running(ctx, 'stuck'); // nothing here removes it: cancel once the app was told to stop
    const ac = new AbortController();
    const lines: string[] = [];
    const op: Op = {
      signal: ac.signal,
      events: (e) => {
        if (e.type !== 'log') return;
        lines.push(e.message);
        if (e.message.startsWith('stopping')) ac.abort();
      },
    };
    await assert.rejects(
      createSnapshot(ctx, driver, kube, { name: 'cancelled', quiesce: true, stopTimeoutMs: 60_000 }, op),
      (e: unknown) => e instanceof KompoxError && e.kind === 'interrupted' && e.exitCode === 130 && /no snapshot was taken; the app was started again/.test(e.message),
    );
    const d = await kube.get({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', namespace: ns });
    assert.equal((d!.spec as { replicas: number }).replicas, 1);
    assert.deepEqual(lines, ['stopping web (replicas 1 → 0)', 'started web again (replicas 1)']);
    assert.ok(!(await listSnapshots(ctx, driver, kube)).snapshots.some((s) => s.name === 'cancelled'));
  });

  it('--quiesce cancelled mid-copy: the app is started again at once, and the snapshot has cleaned up after itself when it fails (the CLI ends the process then)', async () => {
    const ctx = await appWithData('cancel-copy-app');
    await running(ctx, 'web-1');
    const controller = podGoesOnStop(ctx, 'web-1');
    const ac = new AbortController();
    let cleaned = false;
    let replicasWhileCleaning: number | undefined;
    const create: K3sDriver['snapshots']['create'] = async (_ctx, _volume, _disk, _name, inner) => {
      ac.abort(); // Ctrl-C while the copy runs
      const signal = inner.signal!;
      await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
      // its cleanup takes a while (a temp archive removed, a node command killed, a helper pod deleted): here,
      // until the app was started again, or 30 s if it is not (a start kept back for the cleanup never comes)
      for (const end = Date.now() + 30_000; (replicasWhileCleaning = replicasOf(await deployment(ctx))) !== 1 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
      cleaned = true;
      throw new KompoxError('interrupted', 'interrupted: the copy was stopped');
    };
    const slow = Object.create(driver, { snapshots: { value: { ...driver.snapshots, create } } }) as K3sDriver;
    try {
      await rejectsWith(createSnapshot(ctx, slow, kube, { name: 'mid-copy', quiesce: true }, { signal: ac.signal }), 'interrupted', /no snapshot was taken; the app was started again/);
    } finally {
      controller.done();
    }
    assert.ok(cleaned, 'it failed before the snapshot had cleaned up after itself');
    assert.equal(replicasWhileCleaning, 1, 'the app was started again before the cleanup, not kept down for it');
    assert.deepEqual(quiesceAnnotations(await deployment(ctx)), {});
  });

  it("a quiesce's start that races another quiesce's takeover re-reads on the 409 and leaves the app to it (the patch is conditional on the version read)", async () => {
    const ctx = await appWithData('race-app');
    await running(ctx, 'web-1');
    const mine = { by: 'snapshot mine', since: nowRfc3339() };
    await stopApp(kube, ctx, { web: 1 }, {}, mine);
    // another quiesce takes the record over between this start's read and its patch
    const theirs = { 'kompox.dev/quiesced-by': 'snapshot theirs', 'kompox.dev/quiesced-since': '2099-01-01T00:00:00Z' };
    const { racing, conflicts } = racingPatches(kube, (patch) => ((patch.spec as { replicas?: number } | undefined)?.replicas ?? 0) > 0, { metadata: { annotations: theirs } });
    const left = await startApp(racing, ctx, { web: 1 }, {}, mine);
    assert.equal(conflicts(), 1, 'the start patched the version it had read');
    assert.deepEqual(left.map((x) => [x.deployment, 'record' in x ? x.record.by : `box ${x.box}`]), [['web', 'snapshot theirs']]);
    const d = await deployment(ctx);
    assert.equal(replicasOf(d), 0, 'left stopped for the quiesce that took it over');
    assert.equal(quiesceAnnotations(d)['kompox.dev/quiesced-by'], 'snapshot theirs');
  });

  it("a quiesce's stop that races another quiesce's stop re-reads on the 409 and refuses busy, the other's record kept (the stop's patch is conditional on the version read)", async () => {
    const ctx = await appWithData('stop-race-app');
    await running(ctx, 'web-1');
    // another quiesce stops the app and records itself between this stop's read and its patch
    const theirs = { 'kompox.dev/quiesced-replicas': '1', 'kompox.dev/quiesced-since': nowRfc3339(), 'kompox.dev/quiesced-by': 'snapshot theirs' };
    const { racing, conflicts } = racingPatches(kube, () => true, { metadata: { annotations: theirs }, spec: { replicas: 0 } });
    const e = await stopApp(racing, ctx, { web: 1 }, {}, { by: 'snapshot mine', since: nowRfc3339() }).then(() => assert.fail('not refused'), (x: unknown) => x);
    assert.ok(e instanceof KompoxError, String(e));
    assert.deepEqual([e.code, conflicts()], ['snapshot.quiesce.busy', 1]);
    assert.match(e.message, /^web was stopped at \S+ by the quiesced snapshot theirs, which is still running \(stopped \d+s ago, not renewed yet\); refusing to stop the app under it$/);
    assert.deepEqual(quiesceAnnotations(await deployment(ctx)), theirs, 'the other quiesce keeps its record');
  });

  it("a takeover makes the record the new quiesce's: its by and since, and no renewal of the old one's left", async () => {
    const ctx = await appWithData('takeover-app');
    await running(ctx, 'web-1');
    const old = new Date(Date.now() - 120_000);
    await writeRecord(ctx, { 'kompox.dev/quiesced-since': nowRfc3339(old), 'kompox.dev/quiesced-by': 'snapshot old', 'kompox.dev/quiesced-renewed': old.toISOString() });
    const { counts, takeover } = await appReplicas(kube, ctx, {}, { observeMs: 50 });
    assert.deepEqual([counts, [...takeover.keys()]], [{ web: 1 }, ['web']]);
    const mine = { by: 'snapshot new', since: nowRfc3339() };
    await stopApp(kube, ctx, counts, {}, { ...mine, takeover });
    const d = await deployment(ctx);
    assert.equal(replicasOf(d), 0);
    // the old renewal left in place would date the new record by the dead quiesce's last sign of life (stale at once)
    assert.deepEqual(quiesceAnnotations(d), { 'kompox.dev/quiesced-replicas': '1', 'kompox.dev/quiesced-since': mine.since, 'kompox.dev/quiesced-by': 'snapshot new' });
    const [q] = (await appStatus(ctx, kube)).quiesced ?? [];
    assert.deepEqual([q?.by, q?.live], ['snapshot new', true]);
  });

  it('deletes a snapshot; a damaged stored snapshot is reported on export', async () => {
    const ctx = await appWithData('damage-app');
    await running(ctx, 'web-1');
    const notes: string[] = [];
    const s = await createSnapshot(ctx, driver, kube, { name: 'to-damage' }, logInto(notes));
    // the app's pod runs: a K3s copy of a live disk is not atomic
    assert.match(notes.join('\n'), /file by file .* quiesce the app \(stop it for the snapshot\) for a consistent snapshot/);
    const bytes = await readFile(s.id);
    bytes[bytes.length - 30]! ^= 1;
    await writeFile(s.id, bytes);
    const sink = new (await import('node:stream')).PassThrough();
    sink.resume();
    await rejectsWith(exportSnapshot(ctx, driver, kube, { name: 'to-damage', out: sink }), 'integrity', /no longer matches its recorded SHA-256/);
    await deleteSnapshot(ctx, driver, kube, { name: 'to-damage' });
    assert.deepEqual((await listSnapshots(ctx, driver, kube)).snapshots.map((x) => x.name), []);
  });
});

/**
 * `kube` whose first merge patch that `races` picks is preceded by `theirs`
 * (another quiesce's patch landing between this one's read and its patch; or,
 * a function, any other writes, e.g. a box's record on the namespace);
 * counts the 409s the patches then get.
 */
function racingPatches(
  kube: KubeClient,
  races: (patch: Record<string, unknown>, ref: Parameters<KubeClient['mergePatch']>[0]) => boolean,
  theirs: Record<string, unknown> | ((kube: KubeClient) => Promise<unknown>),
) {
  let conflicts = 0;
  let raced = false;
  const racing = new Proxy(kube, {
    get(target, key) {
      if (key === 'mergePatch') {
        return async (ref: Parameters<KubeClient['mergePatch']>[0], patch: Record<string, unknown>) => {
          if (!raced && races(patch, ref)) {
            raced = true;
            await (typeof theirs === 'function' ? theirs(target) : target.mergePatch(ref, theirs));
          }
          return target.mergePatch(ref, patch).catch((e: unknown) => {
            if (e instanceof KompoxError && e.code === 'kube.conflict') conflicts++;
            throw e;
          });
        };
      }
      const v = Reflect.get(target, key, target) as unknown;
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  return { racing, conflicts: () => conflicts };
}
