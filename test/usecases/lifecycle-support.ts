// Shared setup for the data-lifecycle story tests (lifecycle-*.test.ts):
// the real kompoxops binary against a K3s provider whose disk and snapshot
// roots are temp dirs, and fake API servers with their controllers
// (Deployment, ReplicaSet, scheduler, kubelet, PV binder, protection), so
// rollouts, quiesced snapshots and disk swaps go as on a real cluster.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { digestTree } from '../../src/archive/archive.js';
import { LocalHostFs } from '../../src/providers/k3s/hostfs.js';
import { runCli } from '../support/cli.js';
import type { FakeKube } from '../support/fake-kube/index.js';

export interface Run {
  code: number | null;
  stdout: Buffer;
  out: string;
  err: string;
}

/** Runs `kompoxops -C dir ARGS` (test/support/cli.ts runCli: binary-safe; stderr is a pipe, not a TTY). */
export async function kompoxops(dir: string, args: string[], stdin?: Buffer, env?: Record<string, string | undefined>, timeoutMs?: number): Promise<Run> {
  const r = await runCli(['-C', dir, ...args], { stdin, env, timeoutMs });
  return { code: r.code, stdout: r.stdoutBytes, out: r.stdout, err: r.stderr };
}

export const hostFs = new LocalHostFs();
export const treeDigest = async (path: string) => (await digestTree(hostFs, path)).treeDigest;

export interface OpsYmlOptions {
  diskRoot: string;
  snapshotRoot: string;
  kubeconfig: string;
  cluster?: string;
  app?: string;
  /** More provider settings (e.g. K3S_SSH). */
  settings?: Record<string, string>;
  /** The kubeconfig context (default its current-context). */
  context?: string;
  /** K3S_NODE: the node that holds the disk directories (default node1, the fake's node). */
  node?: string;
}

/** kompoxops.yml + compose.yml (nginx with one named volume: the app volume `default`). */
export async function writeProject(dir: string, o: OpsYmlOptions, compose?: string): Promise<void> {
  await writeFile(
    join(dir, 'kompoxops.yml'),
    [
      'version: 1',
      'service: { name: ops }',
      'provider:',
      '  name: k3s1',
      '  driver: k3s',
      '  settings:',
      `    K3S_DISK_ROOT: ${o.diskRoot}`,
      `    K3S_SNAPSHOT_ROOT: ${o.snapshotRoot}`,
      `    K3S_NODE: ${o.node ?? 'node1'}`,
      ...Object.entries(o.settings ?? {}).map(([k, v]) => `    ${k}: ${v}`),
      'cluster:',
      `  name: ${o.cluster ?? 'cluster-a'}`,
      `  auth: { type: kubectl, kubeconfig: ${o.kubeconfig}${o.context ? `, context: ${JSON.stringify(o.context)}` : ''} }`,
      '  domain: example.com',
      'app:',
      `  name: ${o.app ?? 'web'}`,
      '  compose: compose.yml',
      '',
    ].join('\n'),
  );
  await writeFile(
    join(dir, 'compose.yml'),
    compose ?? 'services:\n  web:\n    image: nginx:1.27\n    ports: ["80:80"]\n    volumes: [data:/usr/share/nginx/html]\nvolumes:\n  data: {}\n',
  );
}

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface ReplicaHistory {
  /** spec.replicas values in the order the API server stored them (changes only), starting with the value at the last reset. */
  values: number[];
  reset(): void;
}

/** Watches a Deployment's spec.replicas as stored: what `--quiesce` did to the app, whoever wrote it. */
export function watchReplicas(fake: FakeKube, namespace: string, name: string): ReplicaHistory {
  const current = () => (fake.store.get(fake.resource('apps/v1', 'Deployment')!, namespace, name)?.spec as Any | undefined)?.replicas as number | undefined;
  const h: ReplicaHistory = {
    values: [],
    reset: () => {
      const v = current();
      h.values = v === undefined ? [] : [v];
    },
  };
  fake.store.onChange((r, obj, change) => {
    if (change !== 'put' || r.kind !== 'Deployment' || (obj.metadata as Any | undefined)?.namespace !== namespace || (obj.metadata as Any).name !== name) return;
    const replicas = (obj.spec as Any | undefined)?.replicas ?? 1;
    if (h.values.at(-1) !== replicas) h.values.push(replicas);
  });
  return h;
}

/** The app's pods that run or may run (not Terminating, not finished). */
export function activePods(fake: FakeKube, namespace: string): Any[] {
  return (fake.store.list(fake.resource('v1', 'Pod')!, namespace) as Any[]).filter((p) => !p.metadata.deletionTimestamp && !['Succeeded', 'Failed'].includes(p.status?.phase));
}

/** The claim names the Deployment's pod template mounts. */
export function claimsOf(fake: FakeKube, namespace: string, name: string): string[] {
  const dep = fake.store.get(fake.resource('apps/v1', 'Deployment')!, namespace, name) as Any | undefined;
  return ((dep?.spec?.template?.spec?.volumes ?? []) as Any[]).map((v) => v.persistentVolumeClaim?.claimName).filter(Boolean).sort();
}

/** Names of the PVs and (namespaced) PVCs stored. */
export function volumeBindings(fake: FakeKube, namespace: string): { pvs: string[]; pvcs: string[] } {
  return {
    pvs: fake.store.list(fake.resource('v1', 'PersistentVolume')!).map((o) => String(o.metadata!.name)).sort(),
    pvcs: fake.store.list(fake.resource('v1', 'PersistentVolumeClaim')!, namespace).map((o) => String(o.metadata!.name)).sort(),
  };
}

/** The stored namespace object (for byte-for-byte comparisons) and its annotations. */
export function namespaceOf(fake: FakeKube, namespace: string): { json: string; annotations: Record<string, string> } | undefined {
  const ns = fake.store.get(fake.resource('v1', 'Namespace')!, undefined, namespace) as Any | undefined;
  return ns ? { json: JSON.stringify(ns), annotations: ns.metadata.annotations ?? {} } : undefined;
}

/** An error message is one paragraph: a single `error: ...` line. */
export function oneParagraph(err: string): boolean {
  return /^error: [^\n]+\n$/.test(err);
}

/**
 * One step of a story test: the steps of a story build on each other, so they
 * are one test (no test depends on another having run), and a failure names
 * the step it happened in.
 */
export async function step(name: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    if (e instanceof Error) e.message = `step "${name}": ${e.message}`;
    throw e;
  }
}
