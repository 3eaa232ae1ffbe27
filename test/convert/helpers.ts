// Test helpers: an AppContext and a LoadedProject built in memory, a converter
import assert from 'node:assert/strict';
// call with facts, and schema validation of every object with kubernetes-models.
import type { AppContext, DriverName } from '../../src/domain/model.js';
import type { ComposeProject } from '../../src/compose/model.js';
import type { LoadedProject } from '../../src/compose/index.js';
import { bundleSource, directorySource, type DirectorySourceOptions } from '../../src/source/index.js';
import type { KubeObject } from '../../src/kube/types.js';
import { convertApp } from '../../src/convert/index.js';
import type { ConvertFacts, ConvertInput, ConvertResult, FileFact } from '../../src/convert/index.js';
import type { Disk } from '../../src/domain/model.js';
import { volumeInputs } from '../support/volumes.js';
import { Namespace, PersistentVolume, PersistentVolumeClaim, Service, ConfigMap, Secret } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { Ingress, NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';

export const PROJECT_DIR = '/proj';

export function makeCtx(over: { driver?: DriverName; app?: Partial<AppContext['app']>; cluster?: Partial<AppContext['cluster']>; providerSettings?: Record<string, string> } = {}): AppContext {
  return {
    service: { name: 'ops' },
    provider: { name: 'prov1', service: 'ops', driver: over.driver ?? 'aks', settings: over.providerSettings ?? {} },
    cluster: {
      name: 'clu1',
      provider: 'prov1',
      auth: { type: 'kubectl' },
      ingress: { controller: 'traefik', namespace: 'traefik' },
      domain: 'example.dev',
      settings: {},
      ...over.cluster,
    },
    app: {
      name: 'myapp',
      cluster: 'clu1',
      compose: '',
      projectDir: PROJECT_DIR,
      ingress: {},
      resources: {},
      settings: {},
      volumes: [{ name: 'default', options: {} }],
      ...over.app,
    },
  };
}

export function makeLoaded(project: Partial<ComposeProject> & { services: ComposeProject['services'] }, envFromFile: Record<string, string[]> = {}): LoadedProject {
  return {
    project: { name: 'test', ...project } as ComposeProject,
    projectDir: PROJECT_DIR,
    // an empty project: conversion itself reads nothing, its facts are given
    source: bundleSource({}, { root: PROJECT_DIR }),
    files: [`${PROJECT_DIR}/compose.yml`],
    warnings: [],
    locate: () => undefined,
    envFromFile,
  };
}

/** The loaded project as if read from the real directory `dir` (files are then read from there). */
export function inDir(loaded: LoadedProject, dir: string, opts: DirectorySourceOptions = {}): LoadedProject {
  return { ...loaded, projectDir: dir, source: directorySource(dir, opts) };
}

export function textFile(s: string): FileFact {
  const content = new TextEncoder().encode(s);
  return { kind: 'file', content, size: content.length };
}

export function convert(
  ctx: AppContext,
  loaded: LoadedProject,
  opts: { files?: Record<string, FileFact>; env?: Record<string, string>; disks?: Record<string, Disk | undefined>; homeDir?: string; kubernetes?: ConvertInput['kubernetes']; secrets?: ConvertInput['secrets'] } = {},
): ConvertResult {
  const facts: ConvertFacts = { files: opts.files ?? {}, env: opts.env ?? {}, homeDir: opts.homeDir ?? '/home/u' };
  return convertApp({
    ctx,
    project: loaded.project,
    projectDir: loaded.projectDir,
    envFromFile: loaded.envFromFile,
    locate: loaded.locate,
    facts,
    disks: opts.disks ?? {},
    volumes: volumeInputs(ctx, opts.disks ?? {}),
    ...(opts.kubernetes ? { kubernetes: opts.kubernetes } : {}),
    ...(opts.secrets ? { secrets: opts.secrets } : {}),
  });
}

const MODELS: Record<string, new (o: never) => { validate(): void }> = {
  Namespace: Namespace as never,
  PersistentVolume: PersistentVolume as never,
  PersistentVolumeClaim: PersistentVolumeClaim as never,
  Service: Service as never,
  ConfigMap: ConfigMap as never,
  Secret: Secret as never,
  Deployment: Deployment as never,
  Ingress: Ingress as never,
  NetworkPolicy: NetworkPolicy as never,
};

/** Validates every object against the Kubernetes API schema; throws naming the object. */
export function validateObjects(objects: KubeObject[]): void {
  for (const o of objects) {
    const M = MODELS[o.kind];
    if (!M) throw new Error(`no schema model for kind ${o.kind}`);
    try {
      new M(JSON.parse(JSON.stringify(o)) as never).validate();
    } catch (e) {
      throw new Error(`${o.kind}/${o.metadata.name} does not validate: ${(e as Error).message}`);
    }
  }
}

export function find(objects: KubeObject[], kind: string, name?: string): KubeObject {
  const o = objects.find((x) => x.kind === kind && (name === undefined || x.metadata.name === name));
  if (!o) throw new Error(`no ${kind}${name ? `/${name}` : ''} in ${objects.map((x) => `${x.kind}/${x.metadata.name}`).join(', ')}`);
  return o;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function podSpec(objects: KubeObject[]): any {
  return (find(objects, 'Deployment').spec as any).template.spec;
}

const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

function quantity(v: string): number {
  const m = /^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(v);
  if (!m) throw new Error(`bad quantity ${v}`);
  const f: Record<string, number> = { m: 1e-3, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4, k: 1e3, M: 1e6, G: 1e9, T: 1e12 };
  return Number(m[1]) * (m[2] ? f[m[2]]! : 1);
}

function unique<T>(list: T[], key: (t: T) => string, what: string): void {
  const seen = new Set<string>();
  for (const t of list) {
    const k = key(t);
    if (seen.has(k)) throw new Error(`duplicate ${what}: ${k}`);
    seen.add(k);
  }
}

/**
 * Rules the API server (and server-side apply's list-map keys) enforce beyond the
 * OpenAPI schema: names, unique list keys, references between the objects.
 */
export function checkServerRules(objects: KubeObject[]): void {
  const ns = objects.find((o) => o.kind === 'Namespace')!;
  assert(LABEL.test(ns.metadata.name) && ns.metadata.name.length <= 63, `namespace name ${ns.metadata.name}`);
  unique(objects, (o) => `${o.kind}/${o.metadata.name}`, 'object');
  for (const o of objects) {
    assert(SUBDOMAIN.test(o.metadata.name) && o.metadata.name.length <= 253, `${o.kind} name ${o.metadata.name}`);
    if (o.kind !== 'Namespace' && o.kind !== 'PersistentVolume') assert(o.metadata.namespace === ns.metadata.name, `${o.kind}/${o.metadata.name} namespace`);
    for (const v of Object.values(o.metadata.labels ?? {})) assert(v.length <= 63 && /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]?$/.test(v), `label value ${v}`);
    for (const field of ['data', 'binaryData'] as const) for (const k of Object.keys((o[field] as object) ?? {})) assert(/^[-._a-zA-Z0-9]+$/.test(k), `data key ${k}`);
  }
  const byKind = (k: string) => objects.filter((o) => o.kind === k) as any[];
  const pvcs = byKind('PersistentVolumeClaim');
  for (const pv of byKind('PersistentVolume')) {
    const pvc = pvcs.find((c) => c.metadata.name === pv.spec.claimRef.name);
    assert(pvc, `PV ${pv.metadata.name} claims a missing PVC`);
    assert.equal(pv.spec.claimRef.namespace, ns.metadata.name);
    assert.equal(pvc.spec.volumeName, pv.metadata.name);
    assert.equal(pvc.spec.storageClassName, pv.spec.storageClassName);
    assert.equal(pvc.spec.resources.requests.storage, pv.spec.capacity.storage);
    if (pv.spec.local) assert(pv.spec.nodeAffinity, 'a local PV needs nodeAffinity');
  }
  const configMaps = new Set(byKind('ConfigMap').map((o) => o.metadata.name));
  for (const d of byKind('Deployment')) {
    const t = d.spec.template;
    for (const [k, v] of Object.entries(d.spec.selector.matchLabels)) assert.equal(t.metadata.labels[k], v, 'selector matches template');
    const spec = t.spec;
    const vols: any[] = spec.volumes ?? [];
    unique(vols, (v) => v.name, 'pod volume');
    for (const v of vols) {
      assert(LABEL.test(v.name) && v.name.length <= 63, `volume name ${v.name}`);
      if (v.persistentVolumeClaim) assert(pvcs.some((c) => c.metadata.name === v.persistentVolumeClaim.claimName), `claim ${v.persistentVolumeClaim.claimName}`);
      if (v.configMap) assert(configMaps.has(v.configMap.name), `ConfigMap ${v.configMap.name}`);
    }
    const all = [...(spec.initContainers ?? []), ...spec.containers];
    unique(all, (c) => c.name, 'container');
    // Pod validation (k8s.io/kubernetes pkg/apis/core/validation): an init container's restartPolicy may
    // only be Always (a sidecar); one that runs to completion may not have probes or lifecycle hooks;
    // regular containers take no restartPolicy (before 1.34).
    for (const c of spec.initContainers ?? []) {
      if (c.restartPolicy !== undefined) assert.equal(c.restartPolicy, 'Always', `${c.name}: init container restartPolicy`);
      else for (const k of ['readinessProbe', 'livenessProbe', 'startupProbe', 'lifecycle']) assert.equal(c[k], undefined, `${c.name}: ${k} on an init container without restartPolicy Always`);
    }
    for (const c of spec.containers) assert.equal(c.restartPolicy, undefined, `${c.name}: restartPolicy on a regular container`);
    unique(spec.hostAliases ?? [], (h: any) => h.ip, 'hostAlias ip');
    for (const h of spec.hostAliases ?? []) for (const n of h.hostnames) assert(SUBDOMAIN.test(n), `hostAlias ${n}`);
    for (const c of all) {
      assert(LABEL.test(c.name), `container name ${c.name}`);
      unique(c.env ?? [], (e: any) => e.name, 'env');
      unique(c.ports ?? [], (p: any) => `${p.containerPort}/${p.protocol}`, 'container port');
      unique(c.volumeMounts ?? [], (m: any) => m.mountPath, 'mountPath');
      for (const m of c.volumeMounts ?? []) {
        assert(vols.some((v) => v.name === m.name), `mount of unknown volume ${m.name}`);
        if (m.subPath !== undefined) assert(!m.subPath.startsWith('/') && !m.subPath.split('/').includes('..'), `subPath ${m.subPath}`);
      }
      for (const k of ['cpu', 'memory']) {
        const r = c.resources?.requests?.[k];
        const l = c.resources?.limits?.[k];
        if (r && l) assert(quantity(r) <= quantity(l), `${c.name}: ${k} request ${r} > limit ${l}`);
      }
      for (const p of ['readinessProbe', 'livenessProbe', 'startupProbe']) if (c[p]) assert(c[p].exec.command.length > 0);
    }
  }
  const services = byKind('Service');
  for (const s of services) {
    unique(s.spec.ports, (p: any) => `${p.port}/${p.protocol}`, 'service port');
    unique(s.spec.ports, (p: any) => p.name, 'service port name');
    for (const p of s.spec.ports) assert(LABEL.test(p.name) && p.name.length <= 63, `port name ${p.name}`);
  }
  for (const i of byKind('Ingress')) {
    for (const r of i.spec.rules) {
      assert(SUBDOMAIN.test(r.host), `host ${r.host}`);
      const b = r.http.paths[0].backend.service;
      const s = services.find((x) => x.metadata.name === b.name);
      assert(s && s.spec.ports.some((p: any) => p.port === b.port.number && p.protocol === 'TCP'), `ingress backend ${b.name}:${b.port.number}`);
    }
  }
}
