// Test helpers: an AppContext and a LoadedProject built in memory, a converter
// call with facts, and schema validation of every object with kubernetes-models.
import type { AppContext, DriverName } from '../../src/domain/model.js';
import type { ComposeProject } from '../../src/compose/model.js';
import type { LoadedProject } from '../../src/compose/index.js';
import type { KubeObject } from '../../src/kube/types.js';
import { convertApp } from '../../src/convert/index.js';
import type { ConvertFacts, ConvertResult, FileFact } from '../../src/convert/index.js';
import type { Disk } from '../../src/domain/model.js';
import { diskSizeDefaults, volumeSourceFor } from '../../src/providers/volume-sources.js';
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
    files: [`${PROJECT_DIR}/compose.yml`],
    warnings: [],
    locate: () => undefined,
    envFromFile,
  };
}

export function textFile(s: string): FileFact {
  const content = new TextEncoder().encode(s);
  return { kind: 'file', content, size: content.length };
}

export function convert(
  ctx: AppContext,
  loaded: LoadedProject,
  opts: { files?: Record<string, FileFact>; env?: Record<string, string>; disks?: Record<string, Disk | undefined>; homeDir?: string } = {},
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
    volumeSource: (v, d) => volumeSourceFor(ctx, v, d),
    diskSizeDefaults: (v) => diskSizeDefaults(ctx, v),
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
