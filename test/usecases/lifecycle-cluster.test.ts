// Issue 9's "Done when", through the real binary, on clusters with
// controllers, a scheduler and kubelets: the fake API server (Kubernetes
// v1.31, and v1.24 where PersistentVolume spec.claimRef is atomic under
// server-side apply) and, when KOMPOX_TEST_KUBECONFIG is set, a real cluster.
// The same scenarios run on each:
//   - deploy, deploy again: the claim stays Bound, the volume's claimRef.uid
//     is the claim's uid, and another namespace's claim never binds the volume;
//   - the app's pod deleted: the app comes back Running, with its data;
//   - snapshot create --quiesce: the app is Running and ready again, and the
//     command says so; snapshot restore --attach brings the snapshot's data back;
//   - export → import → export: the same tree digest;
//   - app destroy --yes && app deploy: works at once (a pod whose process
//     ignores SIGTERM takes its whole grace period), the data and the disk are
//     the same; a deploy right after destroy --no-wait waits for the app's
//     objects that are still being deleted.
// On a real cluster the K3s driver writes the disk directories on this
// machine: the data checks (and whatever needs the app's pod running) run
// only when the cluster's node is this machine; the binding, reservation and
// destroy → deploy checks run on any.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { hostname, networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { readManifest } from '../../src/archive/archive.js';
import { HELPER_IMAGE } from '../../src/domain/images.js';
import { kubernetesVersion } from '../../src/domain/kube-version.js';
import { APP_SELECTOR_LABEL, appNamespace } from '../../src/domain/names.js';
import { connectKubeconfig, type KubeClient, type KubeObject } from '../../src/kube/index.js';
import { BIN, ROOT, runCli } from '../support/cli.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/index.js';
import { eventually } from '../support/kube.js';
import { writeSampleTree } from '../providers/k3s-fixtures.js';
import { treeDigest, writeProject } from './lifecycle-support.js';

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** A long-running process; `ignore`: it ignores SIGTERM and runs until its grace period (30 s) is over. */
function compose(sigterm: 'exit' | 'ignore' = 'exit'): string {
  const trap = sigterm === 'ignore' ? "trap '' TERM" : "trap 'exit 0' TERM";
  return `services:\n  app:\n    image: ${HELPER_IMAGE}\n    command: ["sh", "-c", "${trap}; while :; do sleep 1; done"]\n    volumes: [data:/data]\nvolumes:\n  data: {}\n`;
}

interface Cluster {
  kubeconfigPath: string;
  context?: string;
  /** The node that holds the K3s disk directories (K3S_NODE). */
  node: string;
  kube: KubeClient;
  fake?: FakeKube;
  /** Lets the controllers catch up (the fake: until they are idle; a real cluster: they run anyway, the checks wait). */
  settle(): Promise<void>;
  /** Lets the grace period of a process that ignores SIGTERM pass (the fake's manual clock; real time elsewhere). */
  graceOver(): Promise<void>;
  close(): Promise<void>;
}

interface ClusterKind {
  label: string;
  start(o?: { manualClock?: boolean }): Promise<Cluster>;
  /** Why the checks of the data on the disks cannot run (the node's filesystem is not this machine's). */
  remoteDisks?: string;
  /** Kubernetes minor version of the server. */
  minor: number;
}

function fakeKind(version: string): ClusterKind {
  return {
    label: `fake API server ${version}`,
    minor: kubernetesVersion({ gitVersion: version })!.minor,
    async start(o = {}) {
      const fake = await startFakeKube({ version, ...(o.manualClock ? { clock: { mode: 'manual' as const } } : {}) });
      // the app container of the `ignore` compose: its process ignores SIGTERM (the image's sh with trap '' TERM)
      fake.containerBehaviour((pod, c, kind) => (kind === 'container' && /trap '' TERM/.test(JSON.stringify(c.command ?? c.args ?? [])) ? { sigterm: 'ignore' } : undefined));
      const kube = await connectKubeconfig({ path: fake.kubeconfigPath });
      return {
        kubeconfigPath: fake.kubeconfigPath,
        node: 'node1',
        kube,
        fake,
        settle: () => fake.settle(),
        graceOver: async () => {
          if (fake.clock.mode === 'manual') await fake.clock.advance(30);
          await fake.settle();
        },
        close: async () => {
          assert.deepEqual(fake.controllerErrors, []);
          await fake.close();
        },
      };
    },
  };
}

/** A node is this machine when its host name or one of its addresses is this machine's. */
function isThisMachine(node: KubeObject): boolean {
  const local = new Set<string>([hostname().toLowerCase(), hostname().split('.')[0]!.toLowerCase()]);
  for (const addrs of Object.values(networkInterfaces())) for (const a of addrs ?? []) local.add(a.address.toLowerCase());
  const addresses = (((node.status as Any)?.addresses ?? []) as Any[]).map((a) => String(a.address).toLowerCase());
  return [node.metadata.name.toLowerCase(), ...addresses].some((a) => local.has(a) || local.has(a.split('.')[0]!));
}

async function realKind(kubeconfigPath: string, context: string | undefined): Promise<ClusterKind> {
  const kube = await connectKubeconfig({ path: kubeconfigPath, context });
  const minor = kubernetesVersion(await kube.version())!.minor;
  const nodes = (await kube.list('v1', 'Node')).filter((n) => !(n.spec as Any)?.unschedulable);
  const node = nodes.find(isThisMachine) ?? nodes[0];
  if (!node) throw new Error('the cluster at KOMPOX_TEST_KUBECONFIG has no schedulable node');
  const remoteDisks = isThisMachine(node)
    ? undefined
    : `the cluster's node ${node.metadata.name} (${(((node.status as Any)?.addresses ?? []) as Any[]).map((a) => a.address).join(', ')}) is not this machine: the K3s disk directories written here are not on its filesystem`;
  return {
    label: 'real cluster',
    minor,
    ...(remoteDisks ? { remoteDisks } : {}),
    async start() {
      return { kubeconfigPath, context, node: node.metadata.name, kube, settle: async () => {}, graceOver: async () => {}, close: async () => {} };
    },
  };
}

interface Run {
  code: number | null;
  out: string;
  err: string;
}

interface App {
  dir: string;
  ns: string;
  run(args: string[]): Promise<Run>;
  /** `kompoxops ARGS` in the background; `onErr` sees stderr as it comes. */
  spawn(args: string[], onErr: (soFar: string) => void): Promise<Run>;
}

const ok = (r: Run, what: string) => assert.equal(r.code, 0, `${what}: exit ${r.code}\nstdout: ${r.out}\nstderr: ${r.err}`);

async function makeApp(c: Cluster, name: string, composeText: string): Promise<App> {
  const dir = await mkdtemp(join(tmpdir(), `kompox-${name}-`));
  await writeProject(dir, { diskRoot: join(dir, 'disks'), snapshotRoot: join(dir, 'snapshots'), kubeconfig: c.kubeconfigPath, context: c.context, node: c.node, app: name }, composeText);
  const ns = appNamespace({ service: { name: 'ops' }, provider: { name: 'k3s1' }, app: { name } } as never);
  return {
    dir,
    ns,
    run: async (args) => {
      const r = await runCli(['-C', dir, ...args], { timeoutMs: 600_000 });
      return { code: r.code, out: r.stdout, err: r.stderr };
    },
    spawn: (args, onErr) =>
      new Promise((resolve, reject) => {
        const child = spawn(process.execPath, [BIN.kompoxops, '-C', dir, ...args], { cwd: ROOT, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
        child.stderr.setEncoding('utf8').on('data', (d: string) => {
          err += d;
          onErr(err);
        });
        child.on('error', reject);
        child.on('close', (code) => resolve({ code, out, err }));
      }),
  };
}

/** The app's claim (the one not being deleted) and the volume it names. */
async function binding(kube: KubeClient, ns: string): Promise<{ claim?: KubeObject; pv?: KubeObject }> {
  const claim = (await kube.list('v1', 'PersistentVolumeClaim', { namespace: ns })).find((x) => !x.metadata.deletionTimestamp);
  const name = (claim?.spec as Any | undefined)?.volumeName as string | undefined;
  return { claim, pv: name ? await kube.get({ apiVersion: 'v1', kind: 'PersistentVolume', name }) : undefined };
}

const phase = (o: KubeObject | undefined) => (o?.status as Any | undefined)?.phase as string | undefined;

/** Waits until the claim is Bound to its volume and the volume's claimRef carries the claim's uid; returns both. */
async function boundWithUid(kube: KubeClient, ns: string): Promise<{ claim: KubeObject; pv: KubeObject }> {
  return eventually(
    async () => {
      const b = await binding(kube, ns);
      const ref = (b.pv?.spec as Any | undefined)?.claimRef;
      return phase(b.claim) === 'Bound' && phase(b.pv) === 'Bound' && ref?.uid === b.claim!.metadata.uid && ref?.name === b.claim!.metadata.name && ref?.namespace === ns && (b as { claim: KubeObject; pv: KubeObject });
    },
    'the claim to be Bound to its volume, the volume naming the claim with its uid',
    { timeoutMs: 180_000, pollMs: 200 },
  );
}

const appPods = async (kube: KubeClient, ns: string) => kube.list('v1', 'Pod', { namespace: ns, labelSelector: `${APP_SELECTOR_LABEL}=${ns}` });

/** A pod of the app that runs and is ready (not being deleted). */
async function runningPod(kube: KubeClient, ns: string, not?: string): Promise<KubeObject> {
  return eventually(
    async () =>
      (await appPods(kube, ns)).find(
        (p) => p.metadata.name !== not && !p.metadata.deletionTimestamp && phase(p) === 'Running' && ((p.status as Any).conditions ?? []).some((x: Any) => x.type === 'Ready' && x.status === 'True'),
      ),
    `a pod of the app to run and be ready${not ? ` (other than ${not})` : ''}`,
    { timeoutMs: 300_000, pollMs: 200 },
  );
}

/** The current disk of the app's only volume. */
async function currentDisk(a: App): Promise<{ name: string; id: string }> {
  const r = await a.run(['disk', 'list', '-o', 'json']);
  ok(r, 'disk list');
  return (JSON.parse(r.out) as Array<{ name: string; id: string; current: boolean }>).find((d) => d.current)!;
}

function scenarios(kind: ClusterKind, only?: string[]): void {
  describe(`issue 9 scenarios (${kind.label})`, () => {
    const local = !kind.remoteDisks;
    const dataSkip = kind.remoteDisks ? { skip: kind.remoteDisks } : {};
    const want = (name: string) => !only || only.includes(name);
    /** deploy: wait for the rollout where the pod can run (the disk directories are on its node). */
    const deployArgs = local ? ['app', 'deploy', '--timeout', '5m'] : ['app', 'deploy', '--no-wait'];
    const appName = (base: string) => (kind.label === 'real cluster' ? `${base}-${randomBytes(2).toString('hex')}` : base);

    /** Runs `body` against a fresh cluster (the fake) and a fresh app; removes the app from a real cluster afterwards. */
    async function withApp(name: string, composeText: string, body: (c: Cluster, a: App) => Promise<void>, o: { manualClock?: boolean } = {}): Promise<void> {
      const c = await kind.start(o);
      const a = await makeApp(c, appName(name), composeText);
      try {
        await body(c, a);
      } finally {
        try {
          if (!c.fake) await a.run(['app', 'destroy', '--yes', '--delete-namespace', '--timeout', '3m']);
        } finally {
          await rm(a.dir, { recursive: true, force: true });
          await c.close();
        }
      }
    }

    if (want('rebind'))
      test('deploy, deploy again: the claim stays Bound with the claim\'s uid in the volume\'s claimRef; a new pod starts; another namespace\'s claim never binds the volume', async () => {
        await withApp('rebind', compose(), async (c, a) => {
          ok(await a.run(deployArgs), 'first deploy');
          const first = await boundWithUid(c.kube, a.ns);
          // every version of the volume the API server stores from now on keeps the reservation (the fake sees each write)
          const unreserved: string[] = [];
          c.fake?.store.onChange((r, obj, change) => {
            if (change !== 'put' || r.kind !== 'PersistentVolume' || obj.metadata?.name !== first.pv.metadata.name) return;
            const ref = (obj.spec as Any | undefined)?.claimRef;
            if (ref?.namespace !== a.ns || ref?.name !== first.claim.metadata.name) unreserved.push(`rv ${obj.metadata?.resourceVersion}: claimRef ${JSON.stringify(ref)}`);
          });
          const again = await a.run(deployArgs);
          ok(again, 'second deploy');
          await c.settle();
          const second = await boundWithUid(c.kube, a.ns);
          assert.equal(second.claim.metadata.uid, first.claim.metadata.uid, 'the same claim');
          assert.equal(((second.pv.spec as Any).claimRef as Any).uid, first.claim.metadata.uid, 'the uid the PV controller wrote survives the re-apply');
          // what app status says about it
          const st = await a.run(['app', 'status', '-o', 'json']);
          ok(st, 'app status');
          const [vb] = (JSON.parse(st.out) as { volumeBindings: Any[] }).volumeBindings;
          assert.deepEqual(
            { volume: vb.volume, claim: vb.claim.phase, pv: vb.persistentVolume.phase, uid: vb.persistentVolume.claimRef.uid, matched: vb.matched, problems: vb.problems },
            { volume: 'default', claim: 'Bound', pv: 'Bound', uid: first.claim.metadata.uid, matched: true, problems: [] },
          );

          // the next start of the app's pod (a reboot, an eviction, a rollout): scheduled onto the volume's node, Running where the disk is
          const before = (await appPods(c.kube, a.ns))[0];
          if (before) await c.kube.delete({ apiVersion: 'v1', kind: 'Pod', name: before.metadata.name, namespace: a.ns });
          const next = await eventually(
            async () => (await appPods(c.kube, a.ns)).find((p) => p.metadata.name !== before?.metadata.name && (p.spec as Any).nodeName),
            'a new pod of the app to be scheduled',
            { timeoutMs: 180_000, pollMs: 200 },
          );
          assert.equal((next.spec as Any).nodeName, c.node);
          if (local) await runningPod(c.kube, a.ns, before?.metadata.name);

          // another tenant asks for a volume of the same class and size: it never gets this one
          const other = `${a.ns}-other`;
          await c.kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: other } });
          try {
            const storage = ((second.pv.spec as Any).capacity as Any).storage as string;
            await c.kube.apply({
              apiVersion: 'v1',
              kind: 'PersistentVolumeClaim',
              metadata: { name: 'grab', namespace: other },
              spec: { accessModes: ['ReadWriteOnce'], storageClassName: (second.pv.spec as Any).storageClassName, volumeMode: 'Filesystem', resources: { requests: { storage } } },
            });
            // the PV controller has looked at it: an event about it (no volume, no provisioner), or a binding
            await eventually(
              async () =>
                phase(await c.kube.get({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', name: 'grab', namespace: other })) === 'Bound' ||
                (await c.kube.list('v1', 'Event', { namespace: other })).some((e) => (e.involvedObject as Any)?.name === 'grab'),
              "the PV controller's verdict on the other namespace's claim",
              { timeoutMs: 120_000, pollMs: 200 },
            );
            ok(await a.run(deployArgs), 'a deploy while the other claim waits');
            await c.settle();
            const grab = await c.kube.get({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', name: 'grab', namespace: other });
            assert.notEqual((grab!.spec as Any).volumeName, second.pv.metadata.name, "the other namespace's claim did not get the app's volume");
            const still = await boundWithUid(c.kube, a.ns);
            assert.equal(((still.pv.spec as Any).claimRef as Any).uid, first.claim.metadata.uid);
            assert.deepEqual(unreserved, [], 'the volume was never without its reservation for the claim');
          } finally {
            await c.kube.delete({ apiVersion: 'v1', kind: 'Namespace', name: other });
          }
        });
      });

    if (want('restart'))
      test("the app's pod deleted: the app comes back Running with its data", dataSkip, async () => {
        await withApp('restart', compose(), async (c, a) => {
          ok(await a.run(deployArgs), 'deploy');
          const disk = await currentDisk(a);
          await writeSampleTree(disk.id);
          const digest = await treeDigest(disk.id);
          const pod = await runningPod(c.kube, a.ns);
          await c.kube.delete({ apiVersion: 'v1', kind: 'Pod', name: pod.metadata.name, namespace: a.ns });
          const next = await runningPod(c.kube, a.ns, pod.metadata.name);
          // the new pod mounts the claim, Bound to the volume of the same disk, which holds the data
          const { claim, pv } = await boundWithUid(c.kube, a.ns);
          assert.ok(((next.spec as Any).volumes as Any[]).some((v) => v.persistentVolumeClaim?.claimName === claim.metadata.name));
          assert.equal((pv.spec as Any).local.path, disk.id);
          assert.equal(await treeDigest(disk.id), digest);
        });
      });

    if (want('quiesce'))
      test('snapshot create --quiesce: the app is Running and ready again and the command says so; snapshot restore --attach brings the data back', dataSkip, async () => {
        await withApp('quiesce', compose(), async (c, a) => {
          ok(await a.run(deployArgs), 'deploy');
          const disk = await currentDisk(a);
          await writeSampleTree(disk.id);
          const digest = await treeDigest(disk.id);
          const q = await a.run(['snapshot', 'create', '-N', 'quiet', '--quiesce', '-o', 'json']);
          ok(q, 'snapshot create --quiesce');
          assert.match(q.err, /^stopping \S+ \(replicas 1 → 0\)\nstarted \S+ again \(replicas 1\)\n/);
          assert.match(q.err, /\nthe app is running and ready again \(deployment \S+: 1\/1 ready\)\n$/);
          assert.equal((JSON.parse(q.out) as { name: string }).name, 'quiet');
          // it is: a pod runs and is ready, on the same volume binding
          await runningPod(c.kube, a.ns);
          await boundWithUid(c.kube, a.ns);

          // the data changes, then the snapshot comes back onto a new disk the app runs on
          await rm(join(disk.id, 'binary.bin'));
          assert.notEqual(await treeDigest(disk.id), digest);
          const r = await a.run(['snapshot', 'restore', '-N', 'quiet', '--attach', '-o', 'json']);
          ok(r, 'snapshot restore --attach');
          const restored = await currentDisk(a);
          assert.notEqual(restored.id, disk.id, 'a new disk');
          assert.equal(await treeDigest(restored.id), digest);
          const pod = await runningPod(c.kube, a.ns);
          const { claim, pv } = await boundWithUid(c.kube, a.ns);
          assert.equal((pv.spec as Any).local.path, restored.id);
          assert.ok(((pod.spec as Any).volumes as Any[]).some((v) => v.persistentVolumeClaim?.claimName === claim.metadata.name));
        });
      });

    if (want('transfer'))
      test('disk export → import → export gives the same tree digest', dataSkip, async () => {
        await withApp('transfer', compose(), async (_c, a) => {
          ok(await a.run(deployArgs), 'deploy');
          const disk = await currentDisk(a);
          await writeSampleTree(disk.id);
          const digest = await treeDigest(disk.id);
          const one = join(a.dir, 'one.tar.zst');
          const two = join(a.dir, 'two.tar.zst');
          ok(await a.run(['disk', 'export', '-N', disk.name, '-O', one]), 'export');
          ok(await a.run(['disk', 'import', one, '-N', 'imported']), 'import');
          ok(await a.run(['disk', 'export', '-N', 'imported', '-O', two]), 'export of the imported disk');
          const m1 = await readManifest(createReadStream(one));
          const m2 = await readManifest(createReadStream(two));
          assert.equal(m1.treeDigest, digest);
          assert.equal(m2.treeDigest, digest);
        });
      });

    if (want('destroy-deploy'))
      test('app destroy --yes && app deploy works at once (the process ignores SIGTERM): nothing of the app is left in between, then the same disk, Bound, with its data', async () => {
        await withApp('move', compose('ignore'), async (c, a) => {
          ok(await a.run(deployArgs), 'deploy');
          const disk = await currentDisk(a);
          let digest: string | undefined;
          if (local) {
            await runningPod(c.kube, a.ns);
            await writeSampleTree(disk.id);
            digest = await treeDigest(disk.id);
          }
          const d = await a.run(['app', 'destroy', '--yes']);
          ok(d, 'destroy');
          // it said what it waited for (a real kubelet takes the whole 30 s; the fake's scaled clock passes them in 0.3 s)
          if (local) assert.match(d.err, c.fake ? /^waiting for: pod \S+ \(/m : /^waiting for: pod \S+ \(stopping: grace period 30s\)/m);
          // when destroy returns, the pods are gone and the claims and volumes are released
          assert.deepEqual((await appPods(c.kube, a.ns)).map((p) => p.metadata.name), []);
          assert.deepEqual((await c.kube.list('v1', 'PersistentVolumeClaim', { namespace: a.ns })).map((p) => p.metadata.name), []);
          assert.deepEqual((await c.kube.list('v1', 'PersistentVolume')).filter((pv) => (pv.spec as Any).claimRef?.namespace === a.ns).map((p) => p.metadata.name), []);
          const r = await a.run(deployArgs);
          ok(r, 'deploy right after destroy');
          const { pv } = await boundWithUid(c.kube, a.ns);
          assert.equal((await currentDisk(a)).id, disk.id, 'the same disk');
          assert.equal((pv.spec as Any).local.path, disk.id);
          if (local) {
            await runningPod(c.kube, a.ns);
            assert.equal(await treeDigest(disk.id), digest);
          }
        });
      });

    if (want('deploy-waits'))
      test('app destroy --no-wait, then app deploy at once: the deploy waits for the app\'s claim and volume being deleted, then works', async () => {
        await withApp(
          'waits',
          compose('ignore'),
          async (c, a) => {
            ok(await a.run(deployArgs), 'deploy');
            if (local) await runningPod(c.kube, a.ns);
            await boundWithUid(c.kube, a.ns);
            const d = await a.run(['app', 'destroy', '--yes', '--no-wait']);
            ok(d, 'destroy --no-wait');
            // the claim is still being deleted: the pod that uses it has its grace period (the fake: its clock stands still)
            let released = false;
            const r = await a.spawn(deployArgs, (err) => {
              if (!released && / to be deleted/.test(err)) {
                released = true;
                void c.graceOver();
              }
            });
            ok(r, 'deploy right after destroy --no-wait');
            assert.match(r.err, /^waiting: .*PersistentVolumeClaim k4x-\S+ \(Terminating; finalizers: kubernetes\.io\/pvc-protection(; used by pod \S+)?\) to be deleted/m);
            await boundWithUid(c.kube, a.ns);
          },
          { manualClock: true },
        );
      });

    if (want('repair'))
      test(
        'a volume binding an earlier Kompox broke (claimRef applied without the uid on 1.22–1.24): app status says Lost and what to do; app deploy repairs it',
        kind.minor >= 22 && kind.minor <= 24 ? {} : { skip: `the server runs Kubernetes 1.${kind.minor}: claimRef is granular there and such an apply breaks nothing` },
        async () => {
          await withApp('repair', compose(), async (c, a) => {
            ok(await a.run(deployArgs), 'deploy');
            const { pv } = await boundWithUid(c.kube, a.ns);
            // what the earlier Kompox applied on every deploy: the reservation without the uid, forced
            const claimRef = (pv.spec as Any).claimRef as Any;
            await c.kube.apply({
              apiVersion: 'v1',
              kind: 'PersistentVolume',
              metadata: { name: pv.metadata.name, labels: pv.metadata.labels },
              spec: { ...(pv.spec as Any), claimRef: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: claimRef.namespace, name: claimRef.name } },
            });
            await c.settle();
            await eventually(async () => phase((await binding(c.kube, a.ns)).claim) === 'Lost', 'the claim to be Lost', { timeoutMs: 120_000 });
            const st = await a.run(['app', 'status']);
            ok(st, 'app status');
            assert.match(st.out, /^binding: {4}volume default: claim \S+ Lost → PersistentVolume \S+ Available, NOT pointing at each other\n {2}lost: claim \S+ is Lost: PersistentVolume \S+ no longer carries the claim's uid in its claimRef; a new pod of the app cannot start\. Run `kompoxops app deploy`: /m);
            ok(await a.run(deployArgs), 'the repairing deploy');
            await c.settle();
            await boundWithUid(c.kube, a.ns);
            const before = (await appPods(c.kube, a.ns))[0];
            if (before) await c.kube.delete({ apiVersion: 'v1', kind: 'Pod', name: before.metadata.name, namespace: a.ns });
            await eventually(async () => (await appPods(c.kube, a.ns)).find((p) => p.metadata.name !== before?.metadata.name && (p.spec as Any).nodeName), 'a new pod to be scheduled', { timeoutMs: 180_000 });
          });
        },
      );
  });
}

scenarios(fakeKind('v1.31.0'));
// claimRef atomic under server-side apply: what broke re-deploys
scenarios(fakeKind('v1.24.17'), ['rebind', 'repair']);

const REAL = process.env.KOMPOX_TEST_KUBECONFIG;
if (REAL) {
  scenarios(await realKind(REAL, process.env.KOMPOX_TEST_CONTEXT));
} else {
  test('issue 9 scenarios (real cluster)', { skip: 'KOMPOX_TEST_KUBECONFIG is not set' }, () => {});
}

describe('app destroy waits bounded (fake API server, manual clock)', () => {
  test('a pod still in its grace period when --timeout passes: exit 3, what is left, the disks kept; destroy again once it has gone', async () => {
    // the clock stands still: the pod that ignores SIGTERM stays in its grace period until the test advances it
    const c = await fakeKind('v1.31.0').start({ manualClock: true });
    const a = await makeApp(c, 'slow', compose('ignore'));
    try {
      ok(await a.run(['app', 'deploy', '--timeout', '5m']), 'deploy');
      const disk = await currentDisk(a);
      const d = await a.run(['app', 'destroy', '--yes', '--timeout', '1s']);
      assert.equal(d.code, 3, d.err);
      assert.match(d.err, /^waiting for: pod slow-\S+ \(stopping: grace period 30s\)/m);
      assert.match(d.err, /\nerror: deleted, but not gone within 1s: pod slow-\S+ \(stopping: grace period 30s\), .*PersistentVolumeClaim \S+ \(Terminating; finalizers: kubernetes\.io\/pvc-protection; used by pod slow-\S+\)/);
      assert.match(d.out, /^the data is kept on these disks \(not deleted\):\n/);
      assert.ok(d.out.includes(`  ${disk.id}  (`), d.out);
      assert.ok(await c.kube.get({ apiVersion: 'v1', kind: 'Namespace', name: a.ns }), 'the namespace stays');
      // the grace period passes: destroy again finds it all gone
      await c.graceOver();
      const again = await a.run(['app', 'destroy', '--yes', '--timeout', '1m']);
      ok(again, 'destroy again');
      assert.deepEqual((await c.kube.list('v1', 'PersistentVolumeClaim', { namespace: a.ns })).map((p) => p.metadata.name), []);
      assert.equal((await currentDisk(a)).id, disk.id, 'the disk is kept');
    } finally {
      await rm(a.dir, { recursive: true, force: true });
      await c.close();
    }
  });
});

describe('snapshot create --quiesce when the app cannot come back (fake API server)', () => {
  let fake: FakeKube | undefined;
  after(async () => fake?.close());
  test('the snapshot is taken, and the command says loudly that the app did not come back and why (exit 3)', async () => {
    fake = await startFakeKube();
    const kube = await connectKubeconfig({ path: fake.kubeconfigPath });
    const c: Cluster = { kubeconfigPath: fake.kubeconfigPath, node: 'node1', kube, fake, settle: () => fake!.settle(), graceOver: async () => {}, close: async () => {} };
    const a = await makeApp(c, 'stuck', compose());
    try {
      ok(await a.run(['app', 'deploy', '--timeout', '5m']), 'deploy');
      // while the app is stopped for the snapshot, the node is cordoned: its pod cannot be scheduled again
      const nodes = fake.resource('v1', 'Node')!;
      fake.store.onChange((r, obj, change) => {
        if (change === 'put' && r.kind === 'Deployment' && (obj.spec as Any)?.replicas === 0) {
          const node = fake!.store.get(nodes, undefined, 'node1')!;
          if (!(node.spec as Any)?.unschedulable) void kube.mergePatch({ apiVersion: 'v1', kind: 'Node', name: 'node1' }, { spec: { unschedulable: true } });
        }
      });
      const r = await a.run(['snapshot', 'create', '-N', 'taken', '--quiesce', '--start-timeout', '3s']);
      assert.equal(r.code, 3, r.err);
      assert.equal(r.out, '');
      assert.match(
        r.err,
        /\nerror: snapshot taken was taken, but the app did not come back \(not running and ready within 3s\): deployment stuck: 0\/1 ready; pod stuck-\S+ Pending: 0\/1 nodes are available: 1 node\(s\) were unschedulable\..* What was done is kept\. `kompoxops app status` shows the volume binding and recent warnings/,
      );
      const list = await a.run(['snapshot', 'list', '-o', 'json']);
      assert.ok((JSON.parse(list.out) as Array<{ name: string }>).some((s) => s.name === 'taken'), 'the snapshot exists');
    } finally {
      await rm(a.dir, { recursive: true, force: true });
    }
  });
});
