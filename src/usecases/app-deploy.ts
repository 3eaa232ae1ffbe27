// `app deploy`: load the app, resolve its disks, build the objects, apply them
// with server-side apply (field manager `kompox`) in dependency order, prune
// what an earlier deploy created and no longer wants, and wait for the
// rollout. Re-running converges: an identical deploy writes nothing, and an
// interrupted one is finished by the next run (the inventory lists the union
// of old and new objects until the prune is done).
import { HELPER_LABEL } from '../convert/helper-pod.js';
import { KompoxError, type Diagnostic } from '../domain/errors.js';
import { logEvent, phaseEvent, throwIfAborted, warningEvent, type Op } from '../domain/events.js';
import type { AppContext } from '../domain/model.js';
import type { AppSource } from '../domain/source.js';
import { appLabels, appNamespace } from '../domain/names.js';
import type { KubeClient, KubeObject, ObjectRef } from '../domain/ports/kube.js';
import type { ProviderDriver } from '../domain/ports/driver.js';
import type { RegistryProbe } from '../domain/ports/registry.js';
import type { WaitResult } from '../kube/rollout.js';
import {
  DEFAULT_QUIESCE_OBSERVE_MS,
  DEFAULT_QUIESCE_STALE_MS,
  checkQuiesceRecord,
  clearStaleQuiesceRecords,
  confirmQuiesceRecordsDead,
  describeDeadRecord,
  describeLiveness,
  describeQuiesced,
  looksLive,
  quiescedDeployments,
  recheckQuiesceRecords,
  type QuiesceLiveness,
  type QuiesceReader,
  type QuiesceRecord,
} from './app-scale.js';
import {
  INSTANCE,
  INVENTORY_NAME,
  MANAGED_BY,
  NEVER_PRUNE,
  classify,
  formatChange,
  inventoryObject,
  isOurs,
  parseInventory,
  planPrune,
  refKey,
  refString,
  sortForApply,
  toRef,
  type ObjectChange,
} from './plan.js';

export { INSTANCE, MANAGED_BY, isOurs };

export interface ApplyObjectsOptions {
  dryRun?: boolean;
  /** How long to wait for the app's own objects that are still being deleted (default 5 minutes). */
  terminatingTimeoutMs?: number;
  pollMs?: number;
  /**
   * Called with an object and its live version just before its apply:
   * throws to refuse it; true makes the apply conditional on that version
   * (a change since, 409, reads it again and asks again).
   */
  guard?: (obj: KubeObject, live: KubeObject | undefined) => boolean;
}

/** How many times an apply conditional on the version just read is tried (the controllers write status meanwhile). */
const GUARDED_APPLY_ATTEMPTS = 5;

export interface ApplyObjectsResult {
  changes: ObjectChange[];
  /** Previous-inventory objects left alone because Kompox did not create them. */
  skipped: ObjectRef[];
}

/** The part of a failed deploy's hint that says how far it got; deploying again converges. */
function wrapApplyError(e: unknown, done: ObjectChange[], current: string): never {
  if (!(e instanceof KompoxError)) throw e;
  const applied = done.filter((c) => c.action !== 'unchanged').map((c) => refString(c.ref));
  const progress = `Stopped at ${current}; ${applied.length ? `applied before the failure: ${applied.join(', ')}` : 'nothing was changed before the failure'}. Deploying again after fixing the cause converges.`;
  throw new KompoxError(e.kind, e.message, {
    code: e.code,
    details: { ...e.details, stoppedAt: current, applied },
    field: e.field,
    location: e.location,
    hint: e.hint ? `${e.hint} ${progress}` : progress,
    exitCode: e.exitCode,
    cause: e,
  });
}

/**
 * An identity limited to the app's namespace cannot create the namespace or
 * PersistentVolumes (cluster scope). Ask the server first (SelfSubjectAccessReview)
 * so such a deploy fails with every missing permission named and nothing
 * half-applied. Namespaced objects are not pre-checked: a failure there is
 * reported with what was applied, and re-running converges.
 */
async function checkClusterScopedAccess(kube: KubeClient, objects: KubeObject[]): Promise<void> {
  if (!kube.accessReview) return;
  const missing: string[] = [];
  for (const obj of objects.filter((o) => !o.metadata.namespace)) {
    const ref = toRef(obj);
    const exists = await kube.get(ref).then(Boolean, () => false);
    for (const verb of exists ? ['patch'] : ['create', 'patch']) {
      const r = await kube.accessReview({ verb, ref });
      if (!r) return; // the server cannot tell in advance: apply and report what fails
      if (r.allowed) continue;
      const scope = obj.kind === 'Namespace' && verb !== 'create' ? `on namespace ${obj.metadata.name}` : 'at cluster scope';
      missing.push(`${verb} ${r.resource} ${scope} (for ${refString(ref)})`);
    }
  }
  if (!missing.length) return;
  throw new KompoxError('auth', `the identity in the kubeconfig may not ${missing.join('; ')}; nothing was changed`, {
    code: 'kube.forbidden',
    details: { missing },
    hint: 'Deploying an app creates its namespace and PersistentVolumes, which needs cluster-scoped RBAC permissions (a ClusterRole/ClusterRoleBinding): ask a cluster administrator to grant them or to run the deploy.',
  });
}

/**
 * Applies the app's objects into `namespace` (the objects carry it), prunes
 * objects the previous deploy applied that are no longer wanted (never PV,
 * PVC or the namespace, never anything without our labels), and records the
 * inventory. With dryRun: server-side dry runs, nothing stored.
 */
export async function applyAppObjects(
  kube: KubeClient,
  namespace: string,
  labels: Record<string, string>,
  objects: KubeObject[],
  opts: ApplyObjectsOptions = {},
  op: Op = {},
): Promise<ApplyObjectsResult> {
  const log = (line: string) => logEvent(op, line);
  const sorted = sortForApply(objects.filter((o) => !(o.kind === 'ConfigMap' && o.metadata.name === INVENTORY_NAME)));
  const nsRef: ObjectRef = { apiVersion: 'v1', kind: 'Namespace', name: namespace };
  const invRef: ObjectRef = { apiVersion: 'v1', kind: 'ConfigMap', name: INVENTORY_NAME, namespace };
  const desiredRefs = sorted.map(toRef);
  const changes: ObjectChange[] = [];
  const skipped: ObjectRef[] = [];
  await checkClusterScopedAccess(kube, sorted);
  // the app's own objects still being deleted (a destroy just before): wait until they are gone, so nothing is applied onto them
  const { awaitOwnTerminating } = await import('./release-wait.js');
  await awaitOwnTerminating(kube, namespace, desiredRefs, { timeoutMs: opts.terminatingTimeoutMs ?? DEFAULT_TIMEOUT_MS, pollMs: opts.pollMs, dryRun: opts.dryRun }, op);
  let nsExists = Boolean(await kube.get(nsRef));
  const invLive = nsExists ? await kube.get(invRef) : undefined;
  const previous = parseInventory(invLive);
  // The volumes keep their reservation and the uid the PV controller wrote (see volume-bindings.ts). Claims
  // are applied before volumes (APPLY_ORDER), so even a first deploy writes the claimRef with the claim's uid:
  // the binder then only confirms it, and the next identical deploy changes nothing.
  const { reserveVolumesForClaims } = await import('./volume-bindings.js');
  const reserved = async (obj: KubeObject): Promise<KubeObject> =>
    obj.kind === 'PersistentVolume' ? (await reserveVolumesForClaims(kube, namespace, [obj], { dryRun: opts.dryRun }, op))[0]! : obj;

  if (opts.dryRun) {
    for (const o of sorted) {
      const obj = await reserved(o);
      const namespaced = Boolean(obj.metadata.namespace);
      if (namespaced && !nsExists) {
        changes.push({ ref: toRef(obj), action: 'create', fields: [] });
        continue;
      }
      const live = await kube.get(toRef(obj));
      const next = await kube.apply(obj, { dryRun: true });
      changes.push(classify(next, live, { dryRun: true }));
    }
  } else {
    const writeInventory = async (refs: ObjectRef[]) => {
      await kube.apply(inventoryObject(namespace, labels, refs));
    };
    let inventoryWritten = false;
    for (const o of sorted) {
      const here = refString(o);
      // between objects: what was applied stays (the inventory lists it), and deploying again converges
      throwIfAborted(op, `deploy stopped before ${here}; deploying again converges`);
      try {
        const isOwnNamespace = o.kind === 'Namespace' && o.metadata.name === namespace;
        if (!inventoryWritten && nsExists && !isOwnNamespace) {
          // before anything else lands in the namespace: old ∪ new, so an interrupted deploy still knows what to prune
          await writeInventory([...previous, ...desiredRefs]);
          inventoryWritten = true;
        }
        const obj = await reserved(o);
        let live = await kube.get(toRef(obj));
        let out: KubeObject;
        for (let attempt = 1; ; attempt++) {
          const version = opts.guard?.(obj, live) ? live?.metadata.resourceVersion : undefined;
          try {
            out = await kube.apply(obj, version === undefined ? {} : { ifVersion: version });
            break;
          } catch (e) {
            if (version === undefined || !(e instanceof KompoxError && e.code === 'kube.conflict') || attempt >= GUARDED_APPLY_ATTEMPTS) throw e;
            live = await kube.get(toRef(obj));
          }
        }
        const change = classify(out, live);
        changes.push(change);
        if (change.action !== 'unchanged') log(formatChange(change, false));
        if (isOwnNamespace) nsExists = true;
      } catch (e) {
        wrapApplyError(e, changes, here);
      }
    }
  }

  // prune what the previous deploy applied and this one does not
  for (const ref of planPrune(previous, sorted)) {
    const live = await kube.get(ref);
    if (!live) continue;
    if (!isOurs(live, namespace)) {
      skipped.push(ref);
      log(`not pruning ${refString(ref)}: it does not carry Kompox's labels for this app`);
      continue;
    }
    if (!opts.dryRun) await kube.delete(ref);
    const change: ObjectChange = { ref, action: 'prune', fields: [] };
    changes.push(change);
    log(formatChange(change, Boolean(opts.dryRun)));
  }

  if (!opts.dryRun) {
    // final inventory: what was applied, plus older volume bindings that still exist (released explicitly later)
    const keep: ObjectRef[] = [];
    const want = new Set(desiredRefs.map(refKey));
    for (const r of previous) {
      if (!NEVER_PRUNE.has(r.kind) || r.kind === 'Namespace' || want.has(refKey(r))) continue;
      if (await kube.get(r)) keep.push(r);
    }
    await kube.apply(inventoryObject(namespace, labels, [...desiredRefs, ...keep]));
  }
  return { changes, skipped };
}

/**
 * Deletes the app's PVC/PV pairs except the ones named in `keep` (PV and PVC
 * names, or the objects): after a disk swap, once the new pod runs. PVs use
 * reclaim policy Retain, so the disks stay. A PVC still mounted by a pod is
 * left alone.
 */
export async function releaseOldVolumeBindings(
  kube: KubeClient,
  ctx: Pick<AppContext, 'service' | 'provider' | 'app'>,
  keep: Iterable<string | ObjectRef | KubeObject>,
  op: Op = {},
): Promise<ObjectRef[]> {
  const namespace = appNamespace(ctx);
  const keepNames = new Set([...keep].map((k) => (typeof k === 'string' ? k : 'metadata' in k ? k.metadata.name : k.name)));
  const sel = `${MANAGED_BY}=kompox,${INSTANCE}=${namespace}`;
  const released: ObjectRef[] = [];
  const pods = await kube.list('v1', 'Pod', { namespace });
  const mounted = new Set(
    pods
      .filter((p) => !p.metadata.deletionTimestamp && (p.status as { phase?: string } | undefined)?.phase !== 'Succeeded' && (p.status as { phase?: string } | undefined)?.phase !== 'Failed')
      .flatMap((p) => (((p.spec as { volumes?: { persistentVolumeClaim?: { claimName?: string } }[] })?.volumes ?? []).map((v) => v.persistentVolumeClaim?.claimName).filter(Boolean) as string[])),
  );
  const releasedClaims = new Set<string>();
  for (const pvc of await kube.list('v1', 'PersistentVolumeClaim', { namespace, labelSelector: sel })) {
    const name = pvc.metadata.name;
    // already deleted, held by its protection finalizer (no controller manager yet): nothing to do again
    if (keepNames.has(name) || pvc.metadata.deletionTimestamp) continue;
    if (mounted.has(name)) {
      logEvent(op, `kept PersistentVolumeClaim ${namespace}/${name}: a pod still mounts it`);
      continue;
    }
    await kube.delete(toRef(pvc));
    released.push(toRef(pvc));
    releasedClaims.add(name);
    logEvent(op, `released PersistentVolumeClaim ${namespace}/${name}`);
  }
  const pvs = await kube.list('v1', 'PersistentVolume', { labelSelector: `${MANAGED_BY}=kompox` });
  for (const pv of pvs) {
    const claim = (pv.spec as { claimRef?: { namespace?: string; name?: string } } | undefined)?.claimRef;
    const mine = pv.metadata.labels?.[INSTANCE] === namespace || claim?.namespace === namespace;
    if (!mine || keepNames.has(pv.metadata.name) || pv.metadata.deletionTimestamp) continue;
    // a helper pod's pair (transfer.ts) belongs to that run, which removes it (or a later run sweeps it)
    if (pv.metadata.labels?.[HELPER_LABEL]) continue;
    if (claim?.name && mounted.has(claim.name) && !releasedClaims.has(claim.name)) continue;
    await kube.delete(toRef(pv));
    released.push(toRef(pv));
    logEvent(op, `released PersistentVolume ${pv.metadata.name} (reclaim policy Retain: the disk is kept)`);
  }
  return released;
}

// ---- the use case ----

export interface DeployOptions {
  dryRun?: boolean;
  /** Wait for the rollout (default true). */
  wait?: boolean;
  /** Rollout timeout in ms (default 5 minutes). */
  timeoutMs?: number;
  pollMs?: number;
  profiles?: string[];
  /**
   * Asks registries whether an image is public (src/registry/probe.ts), for
   * images without stored credentials; absent: such images are not looked at
   * (unless KOMPOX_REGISTRY_CHECK is offline, which warns about each).
   */
  registryProbe?: RegistryProbe;
  /**
   * How often a quiesce renews its record (default 30 s; shorter in tests):
   * one not renewed for 3 periods looks interrupted, and is watched for 2
   * before the deploy starts the app over it.
   */
  quiesceRenewMs?: number;
}

export interface DeployResult {
  namespace: string;
  dryRun: boolean;
  changes: ObjectChange[];
  skipped: ObjectRef[];
  warnings: Diagnostic[];
  rollout?: WaitResult;
  /** 0 deployed and ready (or not waited for), 1 rollout failed, 3 not ready within the timeout. */
  exitCode: number;
  message: string;
}

export const DEFAULT_TIMEOUT_MS = 5 * 60_000;

type Quiesced = { deployment: string; liveness: QuiesceLiveness } & QuiesceRecord;

/**
 * A quiesce still running refuses the deploy: the apply would start the app
 * while that quiesce copies its disk, and the snapshot it makes, which users
 * trust to be of a stopped app, would silently be crash-consistent. There is
 * no force: a dead quiesce's record is watched as a quiesce's takeover does
 * (confirmQuiesceRecordsDead), and then the deploy starts the app.
 */
const DEPLOY_READER: QuiesceReader = {
  code: 'deploy.quiesce.busy',
  refusing: 'refusing to deploy (it would start the app under its copy); nothing was changed',
  outcome: 'is overridden by the deploy',
  hintPrefix: '',
  interrupted: 'nothing was changed',
};
/** DEPLOY_READER at the apply of a Deployment (other objects may be applied already: the error's hint lists them). */
const DEPLOY_APPLY_READER: QuiesceReader = { ...DEPLOY_READER, refusing: 'refusing to apply it (it would start the app under its copy); it was left as it is' };

/**
 * A Deployment a quiesced snapshot or export stopped and has not started
 * again, that operation interrupted (its record watched unchanged): the
 * deploy starts it (its apply sets the replicas), which is the way to start
 * the app again.
 */
function quiescedWarning(name: string, r: QuiesceRecord, staleMs: number): Diagnostic {
  return {
    level: 'warning',
    message: `${describeQuiesced(name, r)}, which was ${describeDeadRecord(r, staleMs)} and has not started it again; this deploy starts it`,
    hint: 'Deploying is how the app starts again after an interrupted quiesce.',
  };
}

/** What the deploy would do of a quiesce's record, judged by this clock: a dry run does not watch it. */
function dryRunQuiescedWarning(q: Quiesced, staleMs: number, observeMs: number): Diagnostic {
  const state = describeLiveness(q, q.liveness);
  if (looksLive(q, staleMs)) {
    return {
      level: 'warning',
      message: `${describeQuiesced(q.deployment, q)}, which is still ${state}; this deploy would start it under its copy, and is refused while it runs`,
      hint: `Wait for it to finish, or deploy after ${q.liveness.staleAt} (if it was interrupted, its record looks stale by then, and the deploy starts the app once it watched it unchanged for ${Math.ceil(observeMs / 1000)}s).`,
    };
  }
  const lead = q.liveness.live ? `which is ${state}` : `which was ${state} and has not started it again`;
  return {
    level: 'warning',
    message: `${describeQuiesced(q.deployment, q)}, ${lead}; this deploy would watch its record for ${Math.ceil(observeMs / 1000)}s and start it if it is not renewed meanwhile`,
    hint: 'Deploying is how the app starts again after an interrupted quiesce.',
  };
}

/**
 * Deploys the app read from `source`. `kube` and `driver` are given by the
 * caller (the composition root). Events: `log` for created disks and applied
 * objects, `warning` for conversion warnings as soon as the manifest is built
 * (before anything is applied), `status` while the rollout is awaited, `phase`
 * at each step. Cancelling stops between steps (deploying again converges).
 * A quiesce's record that looks stale (or is dated ahead) is watched first
 * (a `log` says how long); a cancel then changes nothing. The records are
 * read again just before the apply: one written since refuses, nothing applied.
 */
export async function deployApp(ctx: AppContext, source: AppSource, kube: KubeClient, driver: ProviderDriver, opts: DeployOptions = {}, op: Op = {}): Promise<DeployResult> {
  const { loadApp } = await import('./app-load.js');
  const { chosenDisks, readCurrentDisks, settleCurrentDisks } = await import('./volumes.js');
  const { buildAppManifest } = await import('./app-manifest.js');
  const { pvInputs, readClusterFacts } = await import('./pv-sources.js');
  const namespace = appNamespace(ctx);
  const loaded = await loadApp(ctx, source, { profiles: opts.profiles });
  // Before anything is written: what the server serves decides the layout (native
  // sidecars need 1.29), and a conversion error must not leave a new disk behind.
  // The cluster's facts (nodes and their zones, the server version) are read once, before anything is written.
  const facts = await readClusterFacts(kube);
  const kubernetes = facts.serverVersion;
  // the secrets stored for the app (names only), and what runs in the namespace besides the app
  const { readStoredSecrets, secretRefs } = await import('./app-secrets.js');
  const stored = await readStoredSecrets(ctx, kube);
  const secrets = secretRefs(stored);
  const first = await buildAppManifest(ctx, loaded, { volumes: pvInputs(ctx, driver, {}, facts), secrets, ...(kubernetes ? { kubernetes } : {}) });
  if (!opts.dryRun) {
    const { findBox, boxBlocksDeploy } = await import('./box.js');
    boxBlocksDeploy(ctx, await findBox(ctx, kube));
  }
  // The apply sets the Deployment's replicas (server-side, forced, no precondition): an app a quiesce stopped starts
  // again, said before anything is written; a quiesce running (its record fresh, or renewed while watched) refuses.
  const staleMs = opts.quiesceRenewMs ? 3 * opts.quiesceRenewMs : DEFAULT_QUIESCE_STALE_MS;
  const observeMs = opts.quiesceRenewMs ? 2 * opts.quiesceRenewMs : DEFAULT_QUIESCE_OBSERVE_MS;
  const confirmed = opts.dryRun ? undefined : (await confirmQuiesceRecordsDead(kube, ctx, DEPLOY_READER, op, { staleMs, observeMs })).dead;
  const restarts = confirmed
    ? [...confirmed].map(([name, r]) => quiescedWarning(name, r, staleMs))
    : (await quiescedDeployments(kube, ctx, staleMs)).map((q) => dryRunQuiescedWarning(q, staleMs, observeMs));
  for (const w of restarts) warningEvent(op, w);
  // every image's registry: stored credentials, the nodes' own access, public, or a warning (before anything is written)
  const { checkImageAccess, podImages } = await import('./registry-check.js');
  const access = await checkImageAccess(ctx, podImages(first.objects), stored.pull?.registries ?? [], driver, opts.registryProbe, op);
  for (const w of access.warnings) warningEvent(op, w);
  // before a disk is created for nothing: the app's volumes need cluster-scoped PersistentVolumes
  const pvAccess = await kube.accessReview?.({ verb: 'create', ref: { apiVersion: 'v1', kind: 'PersistentVolume', name: '' } });
  if (pvAccess && !pvAccess.allowed) {
    throw new KompoxError('auth', `the identity in the kubeconfig may not create persistentvolumes at cluster scope, which app deploy needs for the app's volumes; nothing was changed (no disk was created)`, {
      code: 'kube.forbidden',
      hint: 'Ask a cluster administrator for a ClusterRole/ClusterRoleBinding that allows get, list, create, patch and delete on persistentvolumes, or to run the deploy.',
    });
  }
  throwIfAborted(op, 'nothing was changed');
  if (!opts.dryRun) {
    // a namespace still being deleted (destroy --delete-namespace just before) would take the disk record with it: wait for it first
    const { awaitOwnTerminating } = await import('./release-wait.js');
    await awaitOwnTerminating(kube, namespace, [{ apiVersion: 'v1', kind: 'Namespace', name: namespace }], { timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS, pollMs: opts.pollMs }, op);
  }
  phaseEvent(op, 'disks', 'resolving the current disks');
  const choices = await readCurrentDisks(ctx, driver, kube, op);
  const existing = chosenDisks(choices);
  // The disks that exist already take part (read only so far): one in a zone app.deployment.zone does
  // not allow is refused here, before a disk is created or the namespace record is written.
  if (Object.values(existing).some(Boolean)) {
    await buildAppManifest(ctx, loaded, { disks: existing, volumes: pvInputs(ctx, driver, existing, facts), secrets, ...(kubernetes ? { kubernetes } : {}) });
  }
  const disks = await settleCurrentDisks(ctx, driver, kube, choices, { createMissing: !opts.dryRun }, op);
  const manifest = await buildAppManifest(ctx, loaded, {
    disks,
    volumes: pvInputs(ctx, driver, disks, facts),
    secrets,
    ...(kubernetes ? { kubernetes } : {}),
    ...(facts.nodes.length ? { nodes: facts.nodes } : {}),
  });
  const warnings = [...loaded.warnings, ...manifest.warnings];
  for (const w of warnings) warningEvent(op, w);
  warnings.push(...access.warnings, ...restarts);
  // the registry checks, the namespace wait and new disks can take minutes: a quiesce begun meanwhile refuses, nothing applied
  if (confirmed) await recheckQuiesceRecords(kube, ctx, confirmed, DEPLOY_READER, { staleMs, observeMs });
  phaseEvent(op, 'apply', opts.dryRun ? 'server-side dry run' : `applying ${manifest.objects.length} objects`);
  // and the apply of each Deployment is conditional on the version it checks last: a quiesce's stop landing
  // between that check and the apply makes the apply fail (409), and the check refuses it then
  const guard = confirmed
    ? (obj: KubeObject, live: KubeObject | undefined) => {
        if (obj.kind !== 'Deployment' || obj.metadata.namespace !== namespace || !live) return false;
        checkQuiesceRecord(obj.metadata.name, live, confirmed, DEPLOY_APPLY_READER, { staleMs, observeMs });
        return true;
      }
    : undefined;
  const { changes, skipped } = await applyAppObjects(kube, namespace, appLabels(ctx), manifest.objects, { dryRun: opts.dryRun, terminatingTimeoutMs: opts.timeoutMs, pollMs: opts.pollMs, guard }, op);
  const result: DeployResult = { namespace, dryRun: Boolean(opts.dryRun), changes, skipped, warnings, exitCode: 0, message: '' };
  const deployments = manifest.objects.filter((o) => o.kind === 'Deployment' && o.metadata.namespace === namespace).map((o) => o.metadata.name);
  // the apply gave the Deployments their replica count: a quiesce's record there no longer holds
  if (!opts.dryRun) for (const c of await clearStaleQuiesceRecords(kube, ctx, deployments)) logEvent(op, `cleared ${c.cleared} of ${c.deployment}: it runs again`);
  if (opts.dryRun || opts.wait === false || deployments.length === 0) {
    result.message = opts.dryRun ? 'dry run: nothing was changed' : opts.wait === false ? 'applied (not waiting for the rollout)' : 'applied';
    return result;
  }
  const { waitForDeployments } = await import('../kube/rollout.js');
  phaseEvent(op, 'rollout', `waiting for ${deployments.join(', ')}`);
  const rollout = await waitForDeployments(kube, namespace, deployments, { timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS, pollMs: opts.pollMs }, op);
  result.rollout = rollout;
  if (rollout.state === 'ready') {
    result.message = `deployed: ${rollout.message}`;
  } else if (rollout.state === 'failed') {
    result.exitCode = 1;
    result.message = `applied, but the app cannot start: ${rollout.message}`;
  } else {
    result.exitCode = 3;
    const secs = Math.round((opts.timeoutMs ?? DEFAULT_TIMEOUT_MS) / 1000);
    result.message = `applied, but not ready within ${secs}s: ${rollout.message}`;
  }
  return result;
}
