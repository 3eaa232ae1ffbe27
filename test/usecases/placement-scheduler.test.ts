// The node affinity the converter writes for app.deployment, against a
// scheduler: a pod for a pool (or zone) a node has lands on such a node; a pod
// for a pool no node has stays unscheduled (PodScheduled=False, Unschedulable)
// instead of running anywhere. Runs against the fake API server's scheduler
// (nodes with pool/zone labels are added; a plain pod must get a node first,
// else the test is skipped with the reason), and against a real cluster with
// KOMPOX_TEST_KUBECONFIG (its own nodes and labels; nothing on the nodes is
// changed).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { convertApp } from '../../src/convert/index.js';
import { HELPER_IMAGE } from '../../src/domain/images.js';
import type { AppContext, AppDeployment } from '../../src/domain/model.js';
import { NODE_POOL_LABEL, ZONE_LABEL } from '../../src/domain/placement.js';
import { connectKubeconfig, type KubeClient, type KubeObject } from '../../src/kube/index.js';
import { makeCtx, makeLoaded, podSpec } from '../convert/helpers.js';
import { volumeInputs } from '../support/volumes.js';
import { eventually, startFakeCluster } from '../support/kube.js';

const REAL = process.env.KOMPOX_TEST_KUBECONFIG;
const NS = `kompox-sched-${process.pid}`;

/** The pod template's affinity exactly as the converter writes it for `deployment`. */
function convertedAffinity(deployment: AppDeployment): unknown {
  const ctx: AppContext = makeCtx({ driver: 'k3s', app: { deployment } });
  const loaded = makeLoaded({ services: { web: { image: 'busybox' } } });
  const r = convertApp({ ctx, project: loaded.project, projectDir: loaded.projectDir, envFromFile: {}, facts: { files: {}, env: {} }, disks: {}, volumes: volumeInputs(ctx) });
  assert.deepEqual(r.errors, []);
  return podSpec(r.objects).affinity;
}

function pod(name: string, affinity?: unknown): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS },
    spec: { ...(affinity ? { affinity } : {}), terminationGracePeriodSeconds: 0, containers: [{ name: 'c', image: HELPER_IMAGE, command: ['sleep', '3600'] }] },
  };
}

type Outcome = { node: string } | { unschedulable: string } | undefined;

async function outcome(kube: KubeClient, name: string): Promise<Outcome> {
  const p = await kube.get({ apiVersion: 'v1', kind: 'Pod', name, namespace: NS });
  const node = (p?.spec as { nodeName?: string } | undefined)?.nodeName;
  if (node) return { node };
  const cond = ((p?.status as { conditions?: { type: string; status: string; reason?: string; message?: string }[] } | undefined)?.conditions ?? []).find((c) => c.type === 'PodScheduled');
  if (cond?.status === 'False' && cond.reason === 'Unschedulable') return { unschedulable: cond.message ?? '' };
  return undefined;
}

/** What the scheduler did with the pod; undefined when it did nothing within `ms`. */
async function settle(kube: KubeClient, name: string, ms: number): Promise<Outcome> {
  return eventually(() => outcome(kube, name), `the scheduler to place or refuse pod ${name}`, { timeoutMs: ms, pollMs: 100 }).catch(() => undefined);
}

interface SchedCluster {
  kube: KubeClient;
  nodes: { name: string; labels: Record<string, string> }[];
  close(): Promise<void>;
  skip?: string;
}

async function schedulingCluster(): Promise<SchedCluster> {
  if (REAL) {
    const kube = await connectKubeconfig({ path: REAL, ...(process.env.KOMPOX_TEST_CONTEXT ? { context: process.env.KOMPOX_TEST_CONTEXT } : {}) });
    // nodes a plain pod may use: not cordoned, no taint that keeps it away
    const usable = (n: KubeObject) => {
      const spec = (n.spec ?? {}) as { unschedulable?: boolean; taints?: { effect: string }[] };
      return !spec.unschedulable && !(spec.taints ?? []).some((x) => x.effect === 'NoSchedule' || x.effect === 'NoExecute');
    };
    const nodes = (await kube.list('v1', 'Node')).filter(usable).map((n) => ({ name: n.metadata.name, labels: n.metadata.labels ?? {} }));
    return { kube, nodes, close: async () => {}, ...(nodes.length ? {} : { skip: 'the cluster of KOMPOX_TEST_KUBECONFIG has no node a plain pod may use' }) };
  }
  const { fake, kube } = await startFakeCluster();
  const nodes = [
    { name: 'node-a', labels: { 'kubernetes.io/hostname': 'node-a', [NODE_POOL_LABEL]: 'user', [ZONE_LABEL]: 'zone-a' } },
    { name: 'node-b', labels: { 'kubernetes.io/hostname': 'node-b', [NODE_POOL_LABEL]: 'spot', [ZONE_LABEL]: 'zone-b' } },
  ];
  for (const n of nodes) {
    await kube.apply({ apiVersion: 'v1', kind: 'Node', metadata: { name: n.name, labels: n.labels }, status: { conditions: [{ type: 'Ready', status: 'True' }], allocatable: { cpu: '4', memory: '8Gi', pods: '110' } } });
  }
  await kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
  await kube.apply(pod('probe'));
  // patience on a loaded machine (it returns as soon as the probe is placed): a slow scheduler must not turn the test into a skip
  const scheduled = await settle(kube, 'probe', 30_000);
  return { kube, nodes, close: () => fake.close(), ...(scheduled && 'node' in scheduled ? {} : { skip: 'the fake API server schedules no pods yet; set KOMPOX_TEST_KUBECONFIG to run this against a real cluster' }) };
}

test('a scheduler honours the converted node affinity: placed on a matching node, never on another', async (t) => {
  const c = await schedulingCluster();
  try {
    if (c.skip) {
      t.skip(c.skip);
      return;
    }
    const { kube } = c;
    await kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });

    // a pool no node has: the pod stays unscheduled
    await kube.apply(pod('nowhere', convertedAffinity({ pools: [`kompox-test-no-such-pool-${process.pid}`] })));
    const none = await settle(kube, 'nowhere', 60_000);
    assert.ok(none && 'unschedulable' in none, `expected the pod to be unschedulable, got ${JSON.stringify(none)}`);

    // a pool (or else a zone) some node has: the pod lands on such a node
    const withPool = c.nodes.find((n) => n.labels[NODE_POOL_LABEL]);
    const withZone = c.nodes.find((n) => n.labels[ZONE_LABEL]);
    if (!withPool && !withZone) {
      t.diagnostic('no node carries kompox.dev/node-pool or topology.kubernetes.io/zone: only the negative case ran');
      return;
    }
    const deployment: AppDeployment = withPool ? { pools: [withPool.labels[NODE_POOL_LABEL]!] } : { zones: [withZone!.labels[ZONE_LABEL]!] };
    const [key, value] = withPool ? [NODE_POOL_LABEL, deployment.pools![0]!] : [ZONE_LABEL, deployment.zones![0]!];
    await kube.apply(pod('placed', convertedAffinity(deployment)));
    const placed = await settle(kube, 'placed', 60_000);
    assert.ok(placed && 'node' in placed, `expected the pod to be scheduled, got ${JSON.stringify(placed)}`);
    const on = c.nodes.find((n) => n.name === placed.node);
    assert.equal(on?.labels[key], value, `scheduled on ${placed.node}, which is not labelled ${key}=${value}`);
  } finally {
    await c.kube.delete({ apiVersion: 'v1', kind: 'Namespace', name: NS }).catch(() => undefined);
    await c.close();
  }
});
