// Zones through the use cases: new disks land in the app's zone (the first
// of app.deployment.zone), --zone places a copy elsewhere on drivers with
// zones and is the typed `unsupported` error without, a disk outside the
// app's zones is refused before anything is written (deploy and attach), and
// app status names the pod's pool and zone. The driver here is a small
// recording one on the GKE volume facts (a disk's zone is its node label):
// what matters is what the use cases hand to the driver.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DiagnosticsError, KompoxError } from '../../src/domain/errors.js';
import type { Op } from '../../src/domain/events.js';
import type { AppContext, AppVolume, Disk, Snapshot } from '../../src/domain/model.js';
import type { DiskCreateSpec, ProviderDriver } from '../../src/domain/ports/driver.js';
import type { KubeClient } from '../../src/kube/index.js';
import { appNamespace, appSelector } from '../../src/domain/names.js';
import { volumes as gkeVolumes } from '../../src/providers/gke/volume.js';
import { attachDisk, createDisk, importDisk } from '../../src/usecases/disk.js';
import { restoreSnapshot } from '../../src/usecases/snapshot.js';
import { readDiskRecord, resolveCurrentDisks, selectVolume } from '../../src/usecases/volumes.js';
import { deployApp } from '../../src/usecases/app-deploy.js';
import { appStatus } from '../../src/usecases/app-status.js';
import { bundleSource } from '../../src/source/index.js';
import type { FakeKube } from '../support/fake-kube/index.js';
import { startFakeCluster } from '../support/kube.js';
import { logInto } from '../support/events.js';

interface Recording extends ProviderDriver {
  created: DiskCreateSpec[];
  store: Disk[];
  snaps: Snapshot[];
}

/** Disks and snapshots in memory; create records its spec and keeps the zone it was given (or the source's). */
function recordingDriver(zones = true): Recording {
  const store: Disk[] = [];
  const snaps: Snapshot[] = [];
  const created: DiskCreateSpec[] = [];
  let n = 0;
  const d: Recording = {
    name: 'gke',
    capabilities: { atomicSnapshots: true, zones, nodePools: false, hostTransfer: false, archiveSnapshots: false },
    cluster: {},
    volumeClass: gkeVolumes.volumeClass,
    pvSource: gkeVolumes.pvSource,
    created,
    store,
    snaps,
    disks: {
      async list(_ctx: AppContext, volume: AppVolume) {
        return store.filter((x) => x.volume === volume.name).map((x) => ({ ...x }));
      },
      async create(_ctx: AppContext, volume: AppVolume, spec: DiskCreateSpec, _op: Op) {
        if (spec.zone !== undefined && !zones) throw new Error('the use case must not pass a zone to a driver without zones');
        created.push(structuredClone(spec));
        const from = spec.source ? [...store, ...snaps].find((x) => x.id === spec.source!.id) : undefined;
        const zone = spec.zone ?? (from && 'zone' in from ? (from as Disk).zone : undefined);
        const disk: Disk = { name: spec.name, volume: volume.name, id: `projects/p/disks/${spec.name}`, sizeGiB: spec.sizeGiB ?? 10, createdAt: `2026-01-01T00:00:${String(n++).padStart(2, '0')}Z`, tags: {}, ...(zone ? { zone } : {}) };
        store.push(disk);
        return { ...disk };
      },
      async delete() {},
      async reveal(_ctx: AppContext, _volume: AppVolume, disk: Disk) {
        return { ...disk };
      },
    },
    snapshots: {
      async list(_ctx: AppContext, volume: AppVolume) {
        return snaps.filter((x) => x.volume === volume.name);
      },
      async create(_ctx: AppContext, volume: AppVolume, disk: Disk, name: string) {
        const s: Snapshot = { name, volume: volume.name, id: `projects/p/snapshots/${name}`, sizeGiB: disk.sizeGiB, createdAt: '2026-01-02T00:00:00Z', sourceDiskId: disk.id, tags: {} };
        snaps.push(s);
        return s;
      },
      async delete() {},
    },
  };
  return d;
}

function gkeApp(zones?: string[], name = 'zoned'): AppContext {
  return {
    service: { name: 'ops' },
    provider: { name: 'gke1', service: 'ops', driver: 'gke', settings: {} },
    cluster: { name: 'c1', provider: 'gke1', auth: { type: 'kubectl' }, ingress: { controller: 'traefik', namespace: 'traefik' }, settings: {} },
    app: { name, cluster: 'c1', compose: '', ingress: {}, resources: {}, settings: {}, volumes: [{ name: 'default', options: {} }], ...(zones ? { deployment: { zones } } : {}) },
  };
}

const rejects = (code: string, kind?: string) => (e: unknown) => e instanceof KompoxError && e.code === code && (kind === undefined || e.kind === kind);

describe('new disks and zones', () => {
  test('disk create without a zone: the first of app.deployment.zone, and the note says so', async () => {
    const d = recordingDriver();
    const lines: string[] = [];
    const disk = await createDisk(gkeApp(['z-a', 'z-b']), d, undefined, { name: 'd1' }, logInto(lines));
    assert.equal(d.created[0]!.zone, 'z-a');
    assert.equal(disk.zone, 'z-a');
    assert.ok(lines.some((l) => l === 'created disk d1 in zone z-a (the first of app.deployment.zone z-a, z-b)'), lines.join('\n'));
    const plain = recordingDriver();
    await createDisk(gkeApp(), plain, undefined, { name: 'd1' });
    assert.equal(plain.created[0]!.zone, undefined, 'no app zone: the driver decides');
  });

  test('disk create --zone: a copy of a disk in another zone; outside the app zones it is noted', async () => {
    const d = recordingDriver();
    const ctx = gkeApp(['z-a']);
    await createDisk(ctx, d, undefined, { name: 'src' });
    const lines: string[] = [];
    const copy = await createDisk(ctx, d, undefined, { name: 'copy', source: 'src', zone: 'z-c' }, logInto(lines));
    assert.deepEqual([d.created[1]!.name, d.created[1]!.zone, d.created[1]!.source], ['copy', 'z-c', { kind: 'disk', id: 'projects/p/disks/src' }]);
    assert.equal(copy.zone, 'z-c');
    assert.ok(lines.some((l) => /zone z-c is not in app\.deployment\.zone \(z-a\)/.test(l)), lines.join('\n'));
  });

  test('--zone on a driver without zones: the typed unsupported error before anything is listed or created', async () => {
    const d = recordingDriver(false);
    let listed = 0;
    const list = d.disks.list.bind(d.disks);
    d.disks.list = (...a) => (listed++, list(...a));
    await assert.rejects(createDisk(gkeApp(), d, undefined, { name: 'd1', zone: 'z-a' }), (e: unknown) => {
      assert.ok(e instanceof KompoxError);
      assert.equal(e.kind, 'unsupported');
      assert.equal(e.code, 'driver.unsupported');
      assert.equal(e.message, 'disk create in a zone is not supported by the gke driver');
      return true;
    });
    await assert.rejects(restoreSnapshot(gkeApp(), d, undefined, { name: 's1', zone: 'z-a' }), /snapshot restore into a zone is not supported by the gke driver/);
    assert.equal(listed, 0);
    assert.equal(d.created.length, 0);
    // and the app's zones are not passed to it either (K3s: the disk lives on its node)
    await createDisk(gkeApp(['z-a']), d, undefined, { name: 'd2' });
    assert.equal(d.created[0]!.zone, undefined);
  });

  test('a zone that is not a label value is a usage error naming it', async () => {
    await assert.rejects(createDisk(gkeApp(), recordingDriver(), undefined, { zone: 'zone a' }), rejects('usage.zone', 'usage'));
  });

  test('snapshot restore --zone: a new disk from the snapshot in that zone; default the app zone', async () => {
    const d = recordingDriver();
    const ctx = gkeApp(['z-a']);
    const disk = await createDisk(ctx, d, undefined, { name: 'd1' });
    await d.snapshots.create(ctx, selectVolume(ctx), disk, 's1', {});
    const r = await restoreSnapshot(ctx, d, undefined, { name: 's1', diskName: 'r1', zone: 'z-b' });
    assert.equal(r.zone, 'z-b');
    assert.deepEqual(d.created.at(-1), { name: 'r1', sizeGiB: 10, zone: 'z-b', source: { kind: 'snapshot', id: 'projects/p/snapshots/s1' } });
    await restoreSnapshot(ctx, d, undefined, { name: 's1', diskName: 'r2' });
    assert.equal(d.created.at(-1)!.zone, 'z-a');
  });

  test('the first deploy creates the disk in the app zone; copies by id land there too', async () => {
    const d = recordingDriver();
    const lines: string[] = [];
    const r = await resolveCurrentDisks(gkeApp(['z-b', 'z-a']), d, undefined, { createMissing: true }, logInto(lines));
    assert.equal(r.default?.zone, 'z-b');
    assert.ok(lines.some((l) => /created empty disk default-\d+ \(10 GiB, zone z-b \(the first of app\.deployment\.zone z-b, z-a\)/.test(l)), lines.join('\n'));
    await importDisk(gkeApp(['z-b']), d, undefined, { name: 'byid', fromId: 'projects/p/disks/other' });
    assert.equal(d.created.at(-1)!.zone, 'z-b');
  });
});

describe('a disk outside the app zones is refused before anything is written', () => {
  let fake: FakeKube;
  let kube: KubeClient;
  before(async () => {
    ({ fake, kube } = await startFakeCluster());
  });
  after(async () => fake?.close());
  // requests that change something (an access review asks, it writes nothing)
  const writes = () => fake.requests.filter((r) => r.method !== 'GET' && !r.path.includes('selfsubjectaccessreviews')).length;

  beforeEach(async () => {
    for (const ns of await kube.list('v1', 'Namespace')) if (ns.metadata.name.startsWith('k4x-')) await kube.delete({ apiVersion: 'v1', kind: 'Namespace', name: ns.metadata.name });
  });

  test('app deploy: an existing disk in zone z-a with app.deployment.zone z-b fails with the conversion error; no disk, no object, no record', async () => {
    const d = recordingDriver();
    const ctx = gkeApp(['z-b'], 'zdeploy');
    await createDisk(gkeApp(['z-a'], 'zdeploy'), d, undefined, { name: 'old' });
    const created = d.created.length;
    const before = writes();
    const source = bundleSource({ 'compose.yml': 'services:\n  web:\n    image: nginx:1.27\n    volumes: [data:/data]\nvolumes:\n  data: {}\n' }, { compose: { files: ['compose.yml'] } });
    await assert.rejects(deployApp(ctx, source, kube, d, { wait: false }), (e: unknown) => {
      assert.ok(e instanceof DiagnosticsError, String(e));
      assert.match(e.message, /disk old of volume default is in zone z-a, but app\.deployment\.zone allows only z-b/);
      return true;
    });
    assert.equal(writes(), before, 'nothing written to the cluster');
    assert.equal(d.created.length, created, 'no disk created');
    assert.equal(await kube.get({ apiVersion: 'v1', kind: 'Namespace', name: appNamespace(ctx) }), undefined);
  });

  test('app deploy with app.deployment.zone and no disk: the disk is made in the zone and the pod carries the affinity', async () => {
    const d = recordingDriver();
    const ctx = gkeApp(['z-b'], 'zfresh');
    ctx.app.deployment = { pools: ['user'], zones: ['z-b'] };
    const source = bundleSource({ 'compose.yml': 'services:\n  web:\n    image: nginx:1.27\n' }, { compose: { files: ['compose.yml'] } });
    const r = await deployApp(ctx, source, kube, d, { wait: false });
    assert.equal(r.exitCode, 0, r.message);
    assert.equal(d.created[0]!.zone, 'z-b');
    const dep = await kube.get({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'zfresh', namespace: appNamespace(ctx) });
    const terms = (dep!.spec as any).template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms; // eslint-disable-line @typescript-eslint/no-explicit-any
    assert.deepEqual(terms, [{ matchExpressions: [{ key: 'kompox.dev/node-pool', operator: 'In', values: ['user'] }, { key: 'topology.kubernetes.io/zone', operator: 'In', values: ['z-b'] }] }]);
    const pv = (await kube.list('v1', 'PersistentVolume')).find((p) => (p.spec as any).csi?.volumeHandle === `projects/p/disks/${d.created[0]!.name}`); // eslint-disable-line @typescript-eslint/no-explicit-any
    assert.deepEqual((pv!.spec as any).nodeAffinity.required.nodeSelectorTerms[0].matchExpressions, [{ key: 'topology.kubernetes.io/zone', operator: 'In', values: ['z-b'] }]); // eslint-disable-line @typescript-eslint/no-explicit-any
  });

  test('disk attach: a disk in another zone is refused (code disk.zone.conflict) and the record is unchanged', async () => {
    const d = recordingDriver();
    const ctx = gkeApp(['z-b'], 'zattach');
    await createDisk(ctx, d, undefined, { name: 'here' });
    await createDisk(ctx, d, undefined, { name: 'there', zone: 'z-c' });
    await attachDisk(ctx, d, kube, { name: 'here' });
    const volume = selectVolume(ctx);
    const record = await readDiskRecord(kube, ctx, volume);
    await assert.rejects(attachDisk(ctx, d, kube, { name: 'there' }), (e: unknown) => {
      assert.ok(e instanceof KompoxError);
      assert.equal(e.code, 'disk.zone.conflict');
      assert.equal(e.kind, 'conflict');
      assert.match(e.message, /disk "there" is in zone z-c, but the app runs in zone z-b/);
      assert.match(e.hint ?? '', /Copy it into zone z-b/);
      return true;
    });
    assert.deepEqual(await readDiskRecord(kube, ctx, volume), record);
  });

  test('app status names the node, its pool and its zone', async () => {
    const ctx = gkeApp(['z-b'], 'zstatus');
    const ns = appNamespace(ctx);
    await kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    await kube.apply({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-7', labels: { 'kompox.dev/node-pool': 'user', 'topology.kubernetes.io/zone': 'z-b' } } });
    fake.setPod({ metadata: { name: 'zstatus-1', namespace: ns, labels: appSelector(ctx) }, spec: { nodeName: 'node-7', containers: [{ name: 'web', image: 'nginx' }] }, status: { phase: 'Running' } });
    const st = await appStatus(ctx, kube);
    assert.deepEqual([st.pods[0]!.node, st.pods[0]!.pool, st.pods[0]!.zone], ['node-7', 'user', 'z-b']);
  });
});
