// The binding between an app volume's PersistentVolumeClaim and the
// PersistentVolume Kompox pre-binds it to (PV spec.claimRef namespace/name,
// PVC spec.volumeName). The PV controller completes a binding by writing the
// claim's uid into claimRef; from then on the claim is Bound only while the
// volume's claimRef carries that uid.
//
// 1. Keeping the reservation across re-deploys. Under server-side apply,
//    claimRef is an atomic struct on Kubernetes 1.22–1.24 (granular from
//    1.25, kubernetes PR #110495): a forced re-apply of {namespace, name}
//    replaced it whole and dropped the uid, the claim became Lost
//    (ClaimMisbound) and the app's next pod never scheduled. So the applied
//    claimRef carries the live claim's uid whenever the claim exists: on any
//    version the apply then writes back exactly what the binder wrote. The
//    claimRef is never left out (a PV without one can be bound by any claim
//    of the same class and size, in any namespace: another tenant's data).
//    A uid left from a claim that is gone (a Released volume) is cleared in
//    the same write that re-reserves the volume for the claim by name, so
//    the new claim can bind.
// 2. Assessing a binding for `app status`: phases, whether claim and volume
//    point at each other, and what to do when they do not (pure).
import { KompoxError } from '../domain/errors.js';
import { logEvent, type Op } from '../domain/events.js';
import type { KubeClient, KubeObject } from '../domain/ports/kube.js';
import { INSTANCE, MANAGED_BY, isOurs, toRef } from './plan.js';

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface ClaimReference {
  namespace?: string;
  name?: string;
  uid?: string;
}

export function claimRefOf(pv: KubeObject | undefined): ClaimReference | undefined {
  return (pv?.spec as { claimRef?: ClaimReference } | undefined)?.claimRef;
}

/**
 * The app's PVs as they are to be applied: each claimRef that names a claim
 * of `namespace` which exists (and is not being deleted) carries that
 * claim's uid. Where the claim does not exist and the live volume still
 * names an old claim's uid, the uid is cleared (and the reservation by
 * namespace and name written in the same merge patch) unless this is a dry run.
 */
export async function reserveVolumesForClaims(kube: KubeClient, namespace: string, objects: KubeObject[], opts: { dryRun?: boolean } = {}, op: Op = {}): Promise<KubeObject[]> {
  const out: KubeObject[] = [];
  for (const obj of objects) {
    const ref = claimRefOf(obj);
    if (obj.kind !== 'PersistentVolume' || !ref?.name || ref.namespace !== namespace) {
      out.push(obj);
      continue;
    }
    const claim = await kube.get({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace, name: ref.name });
    if (claim?.metadata.uid && !claim.metadata.deletionTimestamp) {
      out.push({ ...obj, spec: { ...(obj.spec as Any), claimRef: { ...ref, uid: claim.metadata.uid } } });
      continue;
    }
    out.push(obj);
    if (opts.dryRun) continue;
    const live = await kube.get(toRef(obj));
    const stale = claimRefOf(live)?.uid;
    if (!live || !stale || live.metadata.deletionTimestamp || !isOurs(live, namespace)) continue;
    // one write: reserved for the claim by name, without the old claim's uid (never a moment without claimRef)
    await kube.mergePatch(toRef(obj), { spec: { claimRef: { namespace, name: ref.name, uid: null, resourceVersion: null } } });
    logEvent(op, `PersistentVolume ${obj.metadata.name} still named a claim that is gone (uid ${stale}); it is reserved for claim ${namespace}/${ref.name} again`);
  }
  return out;
}

// ---- assessment (app status) ----

export type BindingProblemCode = 'binding.lost' | 'binding.misbound' | 'binding.pending' | 'binding.terminating' | 'binding.released' | 'binding.unclaimed';

export interface BindingProblem {
  /** Stable code: front ends key their own advice on it. */
  code: BindingProblemCode;
  /** What is wrong, in one line. */
  message: string;
  /** What to do about it (front-end neutral). */
  hint: string;
  /**
   * The kind of remedy, for front ends that name their own commands:
   * `deploy` deploying the app again repairs it; `wait` the cluster's
   * controllers finish it (a deploy waits for it); `administrator` someone
   * with access to the cluster must look (another claim holds the volume).
   */
  remedy: 'deploy' | 'wait' | 'administrator';
}

export interface VolumeBinding {
  /** The app volume (the objects' kompox.dev/volume label); null when unknown. */
  volume: string | null;
  claim: { name: string; phase: string; uid: string | null; volumeName: string | null; terminating: boolean } | null;
  persistentVolume: { name: string; phase: string; claimRef: { namespace: string | null; name: string | null; uid: string | null } | null; terminating: boolean } | null;
  /** The claim names the volume (spec.volumeName) and the volume's claimRef names the claim: namespace, name and uid. */
  matched: boolean;
  problems: BindingProblem[];
}

const VOLUME_LABEL = 'kompox.dev/volume';
const phaseOf = (o: KubeObject, fallback: string) => String((o.status as Any | undefined)?.phase ?? fallback);
const finalizersOf = (o: KubeObject) => (Array.isArray(o.metadata.finalizers) ? (o.metadata.finalizers as string[]) : []);

const DEPLOY_AGAIN = "Deploy the app again: it re-applies the volume reserved for this claim, with the claim's uid, and the PV controller binds them again; the data on the disk is untouched.";

function terminatingProblem(what: string, o: KubeObject): BindingProblem {
  const f = finalizersOf(o);
  return {
    code: 'binding.terminating',
    remedy: 'wait',
    message: `${what} is being deleted (since ${o.metadata.deletionTimestamp}${f.length ? `; finalizers: ${f.join(', ')}` : ''})`,
    hint: 'The controller manager removes it once no pod uses the volume (the disk is kept: reclaim policy Retain), and a deploy waits for that. If it stays, the cluster runs no controller manager: ask the cluster administrator.',
  };
}

/**
 * Pairs the app's claims with its volumes and says, for each pair, whether
 * they point at each other and what is wrong. `volumes` undefined: the
 * volumes could not be read (cluster-scoped; a namespace-limited identity),
 * so only the claims' own state is assessed.
 */
export function assessVolumeBindings(namespace: string, claims: KubeObject[], volumes: KubeObject[] | undefined): VolumeBinding[] {
  const out: VolumeBinding[] = [];
  const paired = new Set<string>();
  const byName = new Map((volumes ?? []).map((v) => [v.metadata.name, v] as const));
  for (const c of [...claims].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))) {
    const volumeName = (c.spec as Any | undefined)?.volumeName as string | undefined;
    const pv = (volumeName ? byName.get(volumeName) : undefined) ?? volumes?.find((v) => claimRefOf(v)?.namespace === namespace && claimRefOf(v)?.name === c.metadata.name);
    if (pv) paired.add(pv.metadata.name);
    out.push(assessPair(namespace, c, pv, volumes !== undefined));
  }
  for (const v of [...(volumes ?? [])].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))) {
    if (!paired.has(v.metadata.name)) out.push(assessPair(namespace, undefined, v, true));
  }
  return out;
}

function assessPair(namespace: string, c: KubeObject | undefined, pv: KubeObject | undefined, volumesKnown: boolean): VolumeBinding {
  const ref = claimRefOf(pv);
  const claimPhase = c ? phaseOf(c, 'Pending') : '';
  const volumeName = ((c?.spec as Any | undefined)?.volumeName as string | undefined) ?? null;
  const b: VolumeBinding = {
    volume: c?.metadata.labels?.[VOLUME_LABEL] ?? pv?.metadata.labels?.[VOLUME_LABEL] ?? null,
    claim: c ? { name: c.metadata.name, phase: claimPhase, uid: c.metadata.uid ?? null, volumeName, terminating: Boolean(c.metadata.deletionTimestamp) } : null,
    persistentVolume: pv
      ? {
          name: pv.metadata.name,
          phase: phaseOf(pv, 'Pending'),
          claimRef: ref ? { namespace: ref.namespace ?? null, name: ref.name ?? null, uid: ref.uid ?? null } : null,
          terminating: Boolean(pv.metadata.deletionTimestamp),
        }
      : null,
    matched: false,
    problems: [],
  };
  const refNamesClaim = Boolean(c && ref && ref.namespace === namespace && ref.name === c.metadata.name);
  b.matched = Boolean(c && pv && volumeName === pv.metadata.name && refNamesClaim && ref?.uid === c.metadata.uid);
  const add = (p: BindingProblem) => b.problems.push(p);
  if (c?.metadata.deletionTimestamp) add(terminatingProblem(`claim ${c.metadata.name}`, c));
  if (pv?.metadata.deletionTimestamp) add(terminatingProblem(`PersistentVolume ${pv.metadata.name}`, pv));
  if (!c) {
    if (!pv || pv.metadata.deletionTimestamp) return b;
    const phase = phaseOf(pv, 'Pending');
    add({
      code: phase === 'Released' ? 'binding.released' : 'binding.unclaimed',
      remedy: 'deploy',
      message: `PersistentVolume ${pv.metadata.name} is ${phase}: no claim of the app uses it${ref?.name ? ` (it is reserved for ${ref.namespace}/${ref.name})` : ''}`,
      hint: 'If it holds the current disk, deploy the app again: the claim is created and bound to it. A volume of an earlier disk is removed after a disk swap, once the new pod runs; the disk itself is kept.',
    });
    return b;
  }
  // what does not point where it should (only knowable when the volumes could be read)
  let mismatch: string | undefined;
  if (volumesKnown) {
    if (!pv) mismatch = volumeName ? `its PersistentVolume ${volumeName} does not exist` : undefined;
    else if (volumeName && volumeName !== pv.metadata.name) mismatch = `it names PersistentVolume ${volumeName}, but ${pv.metadata.name} is reserved for it`;
    else if (!ref) mismatch = `PersistentVolume ${pv.metadata.name} has no claimRef (any claim could bind it)`;
    else if (!refNamesClaim) mismatch = `PersistentVolume ${pv.metadata.name} is bound to claim ${ref.namespace}/${ref.name}, not to this one`;
    else if (ref.uid && ref.uid !== c.metadata.uid) mismatch = `PersistentVolume ${pv.metadata.name} names an earlier claim of the same name (uid ${ref.uid}, this claim's is ${c.metadata.uid})`;
    // a claim Kompox pre-bound (spec.volumeName) waits without the uid until the PV controller binds it: only then is a missing uid wrong
    else if (!ref.uid && volumeName && claimPhase !== 'Pending') mismatch = `PersistentVolume ${pv.metadata.name} no longer carries the claim's uid in its claimRef`;
  }
  const foreign = Boolean(pv && ref && !refNamesClaim && ref.name);
  const fix = foreign
    ? `The volume holds this app's disk but another claim (${ref!.namespace}/${ref!.name}) is bound to it: its data may be exposed there. Ask the cluster administrator to check that claim; deploying the app again reserves the volume for this claim.`
    : DEPLOY_AGAIN;
  const remedy = foreign ? 'administrator' : 'deploy';
  if (claimPhase === 'Lost') {
    add({ code: 'binding.lost', remedy, message: `claim ${c.metadata.name} is Lost${mismatch ? `: ${mismatch}` : ''}; a new pod of the app cannot start`, hint: fix });
  } else if (claimPhase === 'Pending' && !c.metadata.deletionTimestamp) {
    add({
      code: 'binding.pending',
      remedy: mismatch ? remedy : 'wait',
      message: `claim ${c.metadata.name} is Pending (not bound yet${mismatch ? `; ${mismatch}` : ''})`,
      hint: mismatch
        ? fix
        : "The PV controller binds it within seconds. If it stays Pending, the claim's events (recent warnings) say why; without a controller manager nothing binds it: ask the cluster administrator.",
    });
  } else if (mismatch) {
    add({ code: 'binding.misbound', remedy, message: `claim ${c.metadata.name} is ${claimPhase}, but ${mismatch}`, hint: fix });
  }
  return b;
}

/** The app's claims (namespaced, by label) and volumes (label or claimRef), for the assessment; volumes undefined when they may not be listed. */
export async function readVolumeBindings(kube: KubeClient, namespace: string): Promise<VolumeBinding[]> {
  const claims = await kube.list('v1', 'PersistentVolumeClaim', { namespace, labelSelector: `${MANAGED_BY}=kompox,${INSTANCE}=${namespace}` });
  const volumes = await kube.list('v1', 'PersistentVolume', { labelSelector: `${MANAGED_BY}=kompox` }).then(
    (pvs) => pvs.filter((pv) => pv.metadata.labels?.[INSTANCE] === namespace || claimRefOf(pv)?.namespace === namespace),
    (e: unknown) => (e instanceof KompoxError && e.kind === 'auth' ? undefined : Promise.reject(e)),
  );
  return assessVolumeBindings(namespace, claims, volumes);
}
