// The Kubernetes version the fake API server pretends to be (option
// `serverVersion`, default v1.31.0) and what that version does with a pod
// field it does not serve: native sidecars, `restartPolicy` on init
// containers (KEP-753; field added in 1.28 behind the SidecarContainers
// feature gate, on by default since 1.29).
//   - before 1.28 the field is not in the schema. Server-side apply fails with
//     500 "failed to create typed patch object (ns/name; apps/v1, Kind=Deployment):
//     .spec.template.spec.initContainers[name="db"].restartPolicy: field not
//     declared in schema"; a create/update with fieldValidation=Strict fails with
//     400 "strict decoding error: unknown field ...", otherwise the field is dropped.
//   - 1.28 knows the field but drops it while the feature gate is off (the
//     default), the way the API server drops every disabled field.
// Self-contained on purpose: server.ts only calls `servedFields` before it stores.
import type { ResourceInfo } from './resources.js';

type Obj = Record<string, unknown>;

export interface ServerVersion {
  gitVersion: string;
  major: string;
  minor: string;
}

export interface FeatureGates {
  /** 1.28's alpha gate for native sidecars (on by default from 1.29). */
  SidecarContainers?: boolean;
}

export function parseServerVersion(v = 'v1.31.0'): ServerVersion {
  const m = /^v?(\d+)\.(\d+)/.exec(v);
  if (!m) throw new Error(`fake-kube: serverVersion ${v} is not like v1.28.15`);
  return { gitVersion: v.startsWith('v') ? v : `v${v}`, major: m[1]!, minor: m[2]! };
}

export class UnservedFieldError extends Error {
  constructor(
    readonly code: 400 | 500,
    message: string,
  ) {
    super(message);
  }
}

/** Where the pod spec is in objects of this kind. */
function podSpecPath(kind: string): string[] | undefined {
  if (kind === 'Pod') return ['spec'];
  if (['Deployment', 'ReplicaSet', 'StatefulSet', 'DaemonSet', 'Job', 'PodTemplate'].includes(kind)) return kind === 'PodTemplate' ? ['template', 'spec'] : ['spec', 'template', 'spec'];
  if (kind === 'CronJob') return ['spec', 'jobTemplate', 'spec', 'template', 'spec'];
  return undefined;
}

function at(o: Obj, path: string[]): Obj | undefined {
  let cur: unknown = o;
  for (const k of path) cur = cur && typeof cur === 'object' ? (cur as Obj)[k] : undefined;
  return cur && typeof cur === 'object' && !Array.isArray(cur) ? (cur as Obj) : undefined;
}

/**
 * Applies the version's rules to an object about to be written: throws
 * UnservedFieldError where the real server would refuse it, drops what it
 * would drop. `how`: server-side apply, or create/update with the request's
 * fieldValidation.
 */
export function servedFields(r: ResourceInfo, obj: Obj, version: ServerVersion, gates: FeatureGates, how: { apply: true } | { apply: false; fieldValidation?: string }): void {
  const minor = Number(version.minor);
  if (Number(version.major) !== 1 || minor >= 29) return;
  const path = podSpecPath(r.kind);
  const spec = path && at(obj, path);
  const inits = Array.isArray(spec?.initContainers) ? (spec.initContainers as Obj[]) : [];
  const withPolicy = inits.filter((c) => c && typeof c === 'object' && c.restartPolicy !== undefined);
  if (!withPolicy.length) return;
  if (minor === 28) {
    if (!gates.SidecarContainers) for (const c of withPolicy) delete c.restartPolicy;
    return;
  }
  const meta = (obj.metadata ?? {}) as Obj;
  if (how.apply) {
    const gv = r.group ? `${r.group}/${r.version}` : `/${r.version}`;
    const c = withPolicy[0]!;
    throw new UnservedFieldError(
      500,
      `failed to create typed patch object (${meta.namespace ? `${String(meta.namespace)}/` : '/'}${String(meta.name)}; ${gv}, Kind=${r.kind}): .${path!.join('.')}.initContainers[name="${String(c.name)}"].restartPolicy: field not declared in schema`,
    );
  }
  if (how.fieldValidation === 'Strict') {
    const fields = withPolicy.map((c) => `unknown field "${path!.join('.')}.initContainers[${inits.indexOf(c)}].restartPolicy"`);
    throw new UnservedFieldError(400, `strict decoding error: ${fields.join(', ')}`);
  }
  for (const c of withPolicy) delete c.restartPolicy;
}
