// `app destroy`: remove the app's objects from the cluster — workloads,
// services, ingresses, config, and the PVC/PV bindings (PVs use reclaim policy
// Retain, so the provider disks stay). Disks and snapshots are never deleted
// here; the result says which disk holds the data so it can be found again.
import { KompoxError } from '../domain/errors.js';
import { logEvent, phaseEvent, throwIfAborted, type Op } from '../domain/events.js';
import { ANN_DISK_CURRENT, ANN_DISK_PREVIOUS, type AppContext } from '../domain/model.js';
import { BOX_LABEL, STORED_SECRET_LABEL, appNamespace } from '../domain/names.js';
import type { KubeClient, KubeObject, ObjectRef } from '../domain/ports/kube.js';
import { INSTANCE, MANAGED_BY, isOurs } from './app-deploy.js';
import { ANN_BOX } from './box.js';
import { INVENTORY_NAME, parseInventory, refKey, refString, sortForDelete, toRef } from './plan.js';

/** Namespaced kinds searched by label besides the inventory (an inventory may be missing after a partial first deploy). */
const LABELLED_KINDS: [string, string][] = [
  ['networking.k8s.io/v1', 'Ingress'],
  ['v1', 'Service'],
  ['apps/v1', 'Deployment'],
  ['apps/v1', 'StatefulSet'],
  ['batch/v1', 'Job'],
  ['v1', 'ConfigMap'],
  ['v1', 'Secret'],
  ['networking.k8s.io/v1', 'NetworkPolicy'],
  ['rbac.authorization.k8s.io/v1', 'RoleBinding'],
  ['rbac.authorization.k8s.io/v1', 'Role'],
  ['v1', 'ServiceAccount'],
  ['v1', 'PersistentVolumeClaim'],
];

export interface DiskRecord {
  /** Where the id was found: a namespace annotation key or `PersistentVolume <name>`. */
  source: string;
  diskId: string;
}

export interface DestroyOptions {
  deleteNamespace?: boolean;
  dryRun?: boolean;
}

export interface DestroyResult {
  namespace: string;
  /** False when there was nothing to destroy. */
  existed: boolean;
  deleted: ObjectRef[];
  namespaceDeleted: boolean;
  /**
   * Deleted objects still present afterwards, held by finalizers (e.g. a PVC's
   * kubernetes.io/pvc-protection): the controller manager removes them once no
   * pod uses the volume; on a cluster without one they stay Terminating.
   */
  terminating: { ref: ObjectRef; finalizers: string[] }[];
  /** The disks that hold the app's data (they are kept). */
  disks: DiskRecord[];
}

/** Disk ids the app's namespace annotations and PVs point at. */
export function diskRecords(ns: KubeObject | undefined, pvs: KubeObject[]): DiskRecord[] {
  const out: DiskRecord[] = [];
  for (const [k, v] of Object.entries(ns?.metadata.annotations ?? {}).sort(([a], [b]) => a.localeCompare(b))) {
    if (k.startsWith(ANN_DISK_CURRENT) || k.startsWith(ANN_DISK_PREVIOUS) || k.startsWith('kompox.dev/disk-')) out.push({ source: k, diskId: v });
  }
  for (const pv of [...pvs].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))) {
    const spec = (pv.spec ?? {}) as Record<string, Record<string, string> | undefined>;
    const id = spec.csi?.volumeHandle ?? spec.local?.path ?? spec.hostPath?.path ?? spec.awsElasticBlockStore?.volumeID ?? spec.azureDisk?.diskURI ?? spec.gcePersistentDisk?.pdName;
    if (id) out.push({ source: `PersistentVolume ${pv.metadata.name}`, diskId: id });
  }
  return out;
}

/**
 * Deletes the app's objects. Events: a `log` per disk that holds the data,
 * before anything is deleted (the namespace annotations naming them may go),
 * then one per object. Cancelling stops before the next object.
 */
export async function destroyApp(ctx: AppContext, kube: KubeClient, opts: DestroyOptions = {}, op: Op = {}): Promise<DestroyResult> {
  const log = (line: string) => logEvent(op, line);
  const namespace = appNamespace(ctx);
  const nsRef: ObjectRef = { apiVersion: 'v1', kind: 'Namespace', name: namespace };
  const ns = await kube.get(nsRef);
  // PVs are cluster-scoped: an identity limited to the app namespace may not list them; destroy the rest anyway
  const allPvs = await kube.list('v1', 'PersistentVolume', { labelSelector: `${MANAGED_BY}=kompox` }).catch((e: unknown) => {
    if (!(e instanceof KompoxError && e.kind === 'auth')) throw e;
    log(`cannot list PersistentVolumes (${e.message}); only those recorded in the inventory are removed`);
    return [] as KubeObject[];
  });
  const pvs = allPvs.filter(
    (pv) => pv.metadata.labels?.[INSTANCE] === namespace || (pv.spec as { claimRef?: { namespace?: string } } | undefined)?.claimRef?.namespace === namespace,
  );
  const result: DestroyResult = { namespace, existed: Boolean(ns) || pvs.length > 0, deleted: [], namespaceDeleted: false, terminating: [], disks: diskRecords(ns, pvs) };
  if (!result.existed) return result;
  for (const d of result.disks) log(`the data is kept on disk ${d.diskId} (${d.source})`);
  phaseEvent(op, 'delete', `${opts.dryRun ? 'checking' : 'deleting'} the objects of app ${ctx.app.name}`);

  // what to delete: the inventory plus everything labelled as this app's
  const found = new Map<string, ObjectRef>();
  if (ns) {
    const inv = await kube.get({ apiVersion: 'v1', kind: 'ConfigMap', name: INVENTORY_NAME, namespace });
    for (const r of parseInventory(inv)) if (r.kind !== 'Namespace') found.set(refKey(r), r);
    const sel = `${MANAGED_BY}=kompox,${INSTANCE}=${namespace}`;
    for (const [apiVersion, kind] of LABELLED_KINDS) {
      for (const o of await kube.list(apiVersion, kind, { namespace, labelSelector: sel })) {
        // secrets stored for the app (registry credentials, environment overrides) are user data, like disks: kept
        if (o.metadata.labels?.[STORED_SECRET_LABEL]) {
          log(`kept ${refString(o)}: stored for the app (secret ${o.metadata.labels[STORED_SECRET_LABEL]}); it goes with the namespace or when deleted itself`);
          continue;
        }
        found.set(refKey(o), toRef(o));
      }
    }
    // a maintenance box mounts the app's disks: it goes with the app
    for (const o of await kube.list('v1', 'Pod', { namespace, labelSelector: `${BOX_LABEL}=${namespace}` })) found.set(refKey(o), toRef(o));
    found.set(refKey({ apiVersion: 'v1', kind: 'ConfigMap', name: INVENTORY_NAME, namespace }), { apiVersion: 'v1', kind: 'ConfigMap', name: INVENTORY_NAME, namespace });
  }
  for (const pv of pvs) found.set(refKey(pv), toRef(pv));

  const held: ObjectRef[] = [];
  for (const ref of sortForDelete([...found.values()])) {
    throwIfAborted(op, `destroy stopped before ${refString(ref)}; the disks are kept, and destroying again finishes it`);
    const live = await kube.get(ref).catch(() => undefined);
    if (!live) continue;
    // never touch what Kompox did not create (the inventory is ours by name, checked anyway)
    const ourPv =
      ref.kind === 'PersistentVolume' &&
      live.metadata.labels?.[MANAGED_BY] === 'kompox' &&
      (live.spec as { claimRef?: { namespace?: string } } | undefined)?.claimRef?.namespace === namespace;
    if (!isOurs(live, namespace) && !ourPv && !(ref.kind === 'ConfigMap' && ref.name === INVENTORY_NAME)) {
      log(`kept ${refString(ref)}: not created by Kompox for this app`);
      continue;
    }
    if (live.metadata.deletionTimestamp) {
      // an earlier destroy already deleted it; finalizers hold it (reported below)
      held.push(ref);
      continue;
    }
    if (await kube.delete(ref, { dryRun: opts.dryRun })) {
      result.deleted.push(ref);
      log(`${opts.dryRun ? 'would delete' : 'deleted'} ${refString(ref)}${ref.kind === 'PersistentVolume' ? ' (reclaim policy Retain: the disk is kept)' : ''}`);
    }
  }
  if (!opts.dryRun) {
    // Deletion is asynchronous for objects with finalizers: report them instead of waiting (without a controller manager they never go)
    for (const ref of [...result.deleted, ...held].filter((r) => r.kind === 'PersistentVolumeClaim' || r.kind === 'PersistentVolume')) {
      const left = await kube.get(ref).catch(() => undefined);
      if (!left?.metadata.deletionTimestamp) continue;
      const finalizers = Array.isArray(left.metadata.finalizers) ? (left.metadata.finalizers as string[]) : [];
      result.terminating.push({ ref, finalizers });
      log(
        `${refString(ref)} is Terminating${finalizers.length ? ` (finalizers: ${finalizers.join(', ')})` : ''}: the controller manager removes it once no pod uses the volume; the disk is kept either way`,
      );
    }
  }
  if (!opts.dryRun && ns?.metadata.annotations?.[ANN_BOX] && !opts.deleteNamespace) {
    // the box's record: nothing to give back to an app that is gone
    await kube.mergePatch(nsRef, { metadata: { annotations: { [ANN_BOX]: null } } });
  }
  if (opts.deleteNamespace && ns) {
    await kube.delete(nsRef, { dryRun: opts.dryRun });
    result.namespaceDeleted = true;
    const left = opts.dryRun ? undefined : await kube.get(nsRef);
    log(
      left
        ? `deleting Namespace/${namespace}: it is Terminating until the namespace controller has removed its content`
        : `${opts.dryRun ? 'would delete' : 'deleted'} Namespace/${namespace}`,
    );
  }
  return result;
}
