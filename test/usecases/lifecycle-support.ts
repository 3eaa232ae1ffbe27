// Shared setup for the data-lifecycle story tests (lifecycle-*.test.ts):
// the real kompoxops binary against a K3s provider whose disk and snapshot
// roots are temp dirs, and fake API servers. The fake runs no controllers;
// `startController` plays the part of the Deployment controller and the
// kubelet through the fake's test hooks, so rollouts can become ready.
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
export async function kompoxops(dir: string, args: string[], stdin?: Buffer, env?: Record<string, string | undefined>): Promise<Run> {
  const r = await runCli(['-C', dir, ...args], { stdin, env });
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
      '    K3S_NODE: node1',
      ...Object.entries(o.settings ?? {}).map(([k, v]) => `    ${k}: ${v}`),
      'cluster:',
      `  name: ${o.cluster ?? 'cluster-a'}`,
      `  auth: { type: kubectl, kubeconfig: ${o.kubeconfig} }`,
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

export interface Controller {
  /** While paused, pods are neither removed nor created (a stuck node). */
  paused: boolean;
  /** Deployment spec.replicas values seen, in order (changes only). */
  replicaHistory: number[];
  /** One round of the controller now (it also runs on its own every 40 ms): a test waits for it by calling it, not by sleeping. */
  tick(): void;
  stop(): Promise<void>;
}

/**
 * A minimal Deployment controller + kubelet for one namespace, driven
 * through the fake's hooks: when a Deployment's spec changes (new
 * generation) its pods are replaced by one running, ready pod built from the
 * template (so the pod mounts the template's claims), or removed when
 * replicas is 0; the status then reports the rollout done.
 */
export function startController(fake: FakeKube, namespace: string): Controller {
  const podRes = fake.resource('v1', 'Pod')!;
  const depRes = fake.resource('apps/v1', 'Deployment')!;
  const c: Controller = { paused: false, replicaHistory: [], tick: () => {}, stop: async () => {} };
  let seq = 0;
  let running = true;
  const tick = () => {
    for (const dep of fake.store.list(depRes, namespace) as Any[]) {
      const replicas = dep.spec?.replicas ?? 1;
      if (c.replicaHistory.at(-1) !== replicas) c.replicaHistory.push(replicas);
      if (c.paused) continue;
      const gen = dep.metadata.generation ?? 1;
      if ((dep.status?.observedGeneration ?? 0) >= gen && (dep.status?.replicas ?? -1) === replicas) continue;
      const labels = dep.spec.template.metadata.labels as Record<string, string>;
      for (const p of fake.store.list(podRes, namespace) as Any[]) {
        if (Object.entries(labels).every(([k, v]) => p.metadata.labels?.[k] === v)) fake.store.remove(podRes, namespace, p.metadata.name);
      }
      if (replicas > 0) {
        const containers = (dep.spec.template.spec.containers as Any[]).map((x) => ({ name: x.name, image: x.image }));
        fake.setPod({
          metadata: { name: `${dep.metadata.name}-${++seq}`, namespace, labels },
          spec: { ...dep.spec.template.spec, containers, nodeName: 'node1' },
          status: { phase: 'Running', containerStatuses: containers.map((x) => ({ ...x, ready: true, restartCount: 0, state: { running: {} } })) },
        });
      }
      fake.setStatus(
        { apiVersion: 'apps/v1', kind: 'Deployment', name: dep.metadata.name, namespace },
        { observedGeneration: gen, replicas, updatedReplicas: replicas, availableReplicas: replicas, readyReplicas: replicas },
      );
    }
  };
  c.tick = tick;
  const loop = (async () => {
    while (running) {
      tick();
      await new Promise((r) => setTimeout(r, 40));
    }
  })();
  c.stop = async () => {
    running = false;
    await loop;
  };
  return c;
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
