// The API server's own behaviour below the HTTP layer, shared by the REST
// handlers (server.ts) and the controllers (controllers/*.ts), which write
// through it the way real controllers write through the API:
// - defaulting and admission on create (the SetDefaults_* functions, the
//   ServiceAccount, DefaultTolerationSeconds and StorageObjectInUseProtection
//   admission plugins);
// - field ownership of every write (ssa.ts);
// - deletion: graceful pod deletion (deletionTimestamp = now + grace, the
//   kubelet finishes it), finalizers (the object stays, Terminating, until
//   they are gone), propagation policies (Foreground adds the
//   `foregroundDeletion` finalizer, Orphan the `orphan` one; Background
//   leaves the dependents to the garbage collector).
import type { FakeClock } from './clock.js';
import { applyServerDefaults } from './defaults.js';
import { EventRecorder } from './events.js';
import { groupVersion, type ResourceInfo } from './resources.js';
import type { FieldManager } from './ssa.js';
import { isObj } from './ssa.js';
import type { FakeStore, Obj } from './store.js';

export const FINALIZER_PVC = 'kubernetes.io/pvc-protection';
export const FINALIZER_PV = 'kubernetes.io/pv-protection';
export const FINALIZER_FOREGROUND = 'foregroundDeletion';
export const FINALIZER_ORPHAN = 'orphan';

export type PropagationPolicy = 'Background' | 'Foreground' | 'Orphan';

export interface ApiCoreOptions {
  /** StorageObjectInUseProtection admission: PVCs/PVs get their protection finalizer on create. */
  storageProtection: boolean;
  /** Pods are deleted gracefully (a kubelet finishes the deletion); off: at once. */
  gracefulPods: boolean;
  /** How a deleted namespace goes: `controller` (the namespace controller), `manual` (stays Terminating until finalizeNamespace), `instant` (gone with its content at once). */
  namespaceDeletion: 'controller' | 'manual' | 'instant';
}

export interface DeleteResult {
  /** The object as it stays (Terminating), or undefined when it is gone. */
  obj?: Obj;
  /** The object before the delete (for the Status details). */
  before: Obj;
}

export class ApiCore {
  readonly events: EventRecorder;
  /** Set by the controller manager: runs the controllers again (timers use it). */
  kick: () => void = () => undefined;
  private readonly wakeups = new Set<string>();
  private serviceIps = 10;
  private nodePorts = 0;
  private podIps = 1;

  constructor(
    readonly store: FakeStore,
    readonly resources: ResourceInfo[],
    readonly clock: FakeClock,
    readonly fields: FieldManager,
    readonly opts: ApiCoreOptions,
  ) {
    this.events = new EventRecorder(store, this.kind('v1', 'Event'), this.kind('v1', 'Namespace'), clock);
  }

  find(apiVersion: string, kind: string): ResourceInfo | undefined {
    const [g, v] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
    return this.resources.find((r) => r.group === g && r.version === v && r.kind === kind);
  }

  kind(apiVersion: string, kind: string): ResourceInfo {
    const r = this.find(apiVersion, kind);
    if (!r) throw new Error(`fake: unknown kind ${apiVersion} ${kind}`);
    return r;
  }

  now(): string {
    return this.clock.rfc3339();
  }

  /** Re-runs the controllers at simulated time `atMs` (once per key). */
  wakeAt(key: string, atMs: number): void {
    const k = `${key}@${atMs}`;
    if (this.wakeups.has(k)) return;
    this.wakeups.add(k);
    this.clock.after(Math.max(0, (atMs - this.clock.now()) / 1000), () => {
      this.wakeups.delete(k);
      this.kick();
    });
  }

  nextPodIp(): string {
    const n = ++this.podIps;
    return `10.42.${Math.floor(n / 250)}.${(n % 250) + 2}`;
  }

  /** What the server itself adds to an object: defaults, and on create the admission plugins' changes. */
  serverDefaults(r: ResourceInfo, obj: Obj, live?: Obj): void {
    const meta = (obj.metadata ??= {}) as Record<string, unknown>;
    const creating = !live;
    if (creating && this.opts.storageProtection && (r.kind === 'PersistentVolumeClaim' || r.kind === 'PersistentVolume') && r.group === '') {
      // StorageObjectInUseProtection admission (create only)
      const f = Array.isArray(meta.finalizers) ? (meta.finalizers as string[]) : [];
      const fin = r.kind === 'PersistentVolume' ? FINALIZER_PV : FINALIZER_PVC;
      if (!f.includes(fin)) meta.finalizers = [...f, fin];
    }
    if (r.kind === 'Namespace' && r.group === '') {
      meta.labels = { ...(isObj(meta.labels) ? (meta.labels as Record<string, string>) : {}), 'kubernetes.io/metadata.name': String(meta.name) };
      obj.spec = live && isObj(live.spec) ? live.spec : { finalizers: ['kubernetes'] };
      obj.status = live && isObj(live.status) ? live.status : { phase: 'Active' };
    }
    if (r.kind === 'Deployment' && isObj(obj.spec)) {
      const spec = obj.spec;
      spec.replicas ??= 1;
      spec.revisionHistoryLimit ??= 10;
      spec.progressDeadlineSeconds ??= 600;
    }
    if (r.kind === 'ReplicaSet' && isObj(obj.spec)) obj.spec.replicas ??= 1;
    if (r.kind === 'PersistentVolume' && r.group === '' && creating) obj.status = { phase: 'Pending' };
    if (r.kind === 'PersistentVolumeClaim' && r.group === '' && creating) obj.status = { phase: 'Pending' };
    if (r.kind === 'Pod' && r.group === '' && creating && isObj(obj.spec)) {
      const spec = obj.spec;
      // ServiceAccount admission and DefaultTolerationSeconds
      spec.serviceAccountName ??= spec.serviceAccount ?? 'default';
      spec.serviceAccount ??= spec.serviceAccountName;
      spec.enableServiceLinks ??= true;
      spec.priority ??= 0;
      spec.preemptionPolicy ??= 'PreemptLowerPriority';
      const tol = Array.isArray(spec.tolerations) ? (spec.tolerations as Obj[]) : [];
      for (const key of ['node.kubernetes.io/not-ready', 'node.kubernetes.io/unreachable']) {
        if (!tol.some((t) => t.key === key)) tol.push({ key, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 });
      }
      spec.tolerations = tol;
      obj.status = { phase: 'Pending', qosClass: qosClass(spec) };
    }
    applyServerDefaults(r.kind, obj, () => `10.43.0.${++this.serviceIps}`, () => 30000 + ++this.nodePorts, live);
  }

  /** Creates an object as a client's POST does (defaults, admission, ownership by `manager`). */
  create(r: ResourceInfo, obj: Obj, manager: string): Obj {
    const o = structuredClone(obj);
    o.apiVersion ??= groupVersion(r);
    o.kind ??= r.kind;
    const meta = (o.metadata ??= {}) as Record<string, unknown>;
    if (!meta.name && meta.generateName) meta.name = `${String(meta.generateName)}${randomSuffix()}`;
    delete meta.managedFields;
    this.fields.update(undefined, o, manager, groupVersion(r), this.now());
    this.serverDefaults(r, o);
    return this.store.put(r, o).obj;
  }

  /** Writes a changed object as a controller's update does (ownership of what changed moves to `manager`); completes a deletion whose finalizers are gone. */
  update(r: ResourceInfo, next: Obj, manager: string): Obj | undefined {
    const meta = next.metadata as Record<string, unknown>;
    const live = this.store.get(r, meta.namespace as string | undefined, String(meta.name));
    if (!live) return undefined;
    const o = structuredClone(next);
    this.fields.update(live, o, manager, groupVersion(r), this.now());
    const stored = this.store.put(r, o).obj;
    return this.finishIfFinalized(r, stored) ? undefined : stored;
  }

  /** Writes the status of an object (the status subresource: nothing else changes, no ownership is recorded). */
  updateStatus(r: ResourceInfo, obj: Obj, status: unknown): Obj | undefined {
    const meta = obj.metadata as Record<string, unknown>;
    const live = this.store.get(r, meta.namespace as string | undefined, String(meta.name));
    if (!live) return undefined;
    live.status = structuredClone(status);
    return this.store.put(r, live).obj;
  }

  /** An object marked for deletion whose last finalizer is gone is removed. Returns whether it was. */
  finishIfFinalized(r: ResourceInfo, obj: Obj): boolean {
    const meta = obj.metadata as Record<string, unknown>;
    const fins = meta.finalizers;
    if (!meta.deletionTimestamp || (Array.isArray(fins) && fins.length)) return false;
    if (r.kind === 'Pod' && r.group === '' && this.opts.gracefulPods && Number(meta.deletionGracePeriodSeconds ?? 0) > 0) return false; // the kubelet finishes it
    if (r.kind === 'Namespace' && r.group === '' && isObj(obj.spec) && Array.isArray(obj.spec.finalizers) && obj.spec.finalizers.length) return false;
    this.store.remove(r, meta.namespace as string | undefined, String(meta.name));
    return true;
  }

  /** DELETE semantics of the API server (see the file comment). */
  delete(r: ResourceInfo, namespace: string | undefined, name: string, opts: { propagationPolicy?: PropagationPolicy; gracePeriodSeconds?: number; dryRun?: boolean } = {}): DeleteResult | undefined {
    const live = this.store.get(r, namespace, name);
    if (!live) return undefined;
    if (opts.dryRun) return { before: live, obj: live };
    const meta = live.metadata as Record<string, unknown>;
    if (r.kind === 'Namespace' && r.group === '') return this.deleteNamespace(r, live);

    const fins = Array.isArray(meta.finalizers) ? [...(meta.finalizers as string[])] : [];
    const policy = opts.propagationPolicy ?? 'Background';
    if (policy === 'Foreground' && !fins.includes(FINALIZER_FOREGROUND)) fins.push(FINALIZER_FOREGROUND);
    if (policy === 'Orphan' && !fins.includes(FINALIZER_ORPHAN)) fins.push(FINALIZER_ORPHAN);

    let grace = 0;
    if (r.kind === 'Pod' && r.group === '' && this.opts.gracefulPods) {
      const spec = (live.spec ?? {}) as Record<string, unknown>;
      const phase = (live.status as { phase?: string } | undefined)?.phase;
      grace = opts.gracePeriodSeconds ?? Number(spec.terminationGracePeriodSeconds ?? 30);
      // a pod no kubelet runs, or one that has finished, goes at once (pod strategy CheckGracefulDelete)
      if (!spec.nodeName || phase === 'Succeeded' || phase === 'Failed') grace = 0;
      if (meta.deletionTimestamp && meta.deletionGracePeriodSeconds !== undefined && Number(meta.deletionGracePeriodSeconds) <= grace) {
        grace = Number(meta.deletionGracePeriodSeconds);
      }
    }
    if (grace > 0 || fins.length) {
      const next = structuredClone(live);
      const nm = next.metadata as Record<string, unknown>;
      const shorter = grace > 0 && (meta.deletionGracePeriodSeconds === undefined || grace < Number(meta.deletionGracePeriodSeconds));
      if (!meta.deletionTimestamp || shorter) {
        nm.deletionTimestamp = this.clock.rfc3339(this.clock.now() + grace * 1000);
        nm.deletionGracePeriodSeconds = grace;
      }
      if (grace === 0 && meta.deletionTimestamp) nm.deletionGracePeriodSeconds = 0;
      if (fins.length) nm.finalizers = fins;
      const stored = this.store.put(r, next).obj;
      if (grace === 0 && this.finishIfFinalized(r, stored)) return { before: live };
      return { before: live, obj: stored };
    }
    this.store.remove(r, namespace, name);
    return { before: live };
  }

  private deleteNamespace(r: ResourceInfo, live: Obj): DeleteResult {
    const name = String((live.metadata as Record<string, unknown>).name);
    if (this.opts.namespaceDeletion === 'instant') {
      // no namespace controller, modelled as one that finishes at once
      this.store.removeNamespaceContents(name);
      this.store.remove(r, undefined, name);
      return { before: live };
    }
    const meta = live.metadata as Record<string, unknown>;
    if (!meta.deletionTimestamp) {
      const next = structuredClone(live);
      (next.metadata as Record<string, unknown>).deletionTimestamp = this.now();
      (next.metadata as Record<string, unknown>).deletionGracePeriodSeconds = 0;
      next.status = { ...(isObj(next.status) ? next.status : {}), phase: 'Terminating' };
      return { before: live, obj: this.store.put(r, next).obj };
    }
    return { before: live, obj: live };
  }
}

/** The QoS class of a pod spec (pkg/apis/core/helper/qos). */
export function qosClass(spec: Obj): string {
  const containers = [...(Array.isArray(spec.containers) ? spec.containers : []), ...(Array.isArray(spec.initContainers) ? spec.initContainers : [])] as Obj[];
  let any = false;
  let guaranteed = containers.length > 0;
  for (const c of containers) {
    const res = isObj(c.resources) ? c.resources : {};
    const req = isObj(res.requests) ? res.requests : {};
    const lim = isObj(res.limits) ? res.limits : {};
    if (Object.keys(req).length || Object.keys(lim).length) any = true;
    for (const k of ['cpu', 'memory']) {
      if (lim[k] === undefined || (req[k] !== undefined && req[k] !== lim[k])) guaranteed = false;
    }
  }
  if (!any) return 'BestEffort';
  return guaranteed ? 'Guaranteed' : 'Burstable';
}

/** The 5-character suffix generateName gets (k8s.io/apimachinery/pkg/util/rand: no vowels, no confusable digits). */
export function randomSuffix(n = 5): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  let s = '';
  for (let i = 0; i < n; i++) s += alphabet[Math.floor(Math.random() * alphabet.length)];
  return s;
}
