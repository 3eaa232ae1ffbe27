// The PersistentVolume binder (kube-controller-manager's persistentvolume
// controller, pkg/controller/volume/persistentvolume/pv_controller.go), for
// statically provisioned volumes:
// - syncClaim: a claim without pv.kubernetes.io/bind-completed is bound to the
//   volume it names (spec.volumeName; a volume pre-bound to it by claimRef is
//   taken as is, any other is checked: size, class, mode, access modes) or to
//   the smallest Available volume that satisfies it; a bound claim stays
//   Bound while its volume's claimRef.uid is its uid, and becomes Lost
//   otherwise (ClaimLost / ClaimMisbound events);
// - syncVolume: Available (no claimRef, or a claimRef without uid: reserved),
//   Bound (its claim names it), Released (its claim is gone, or was deleted and
//   created again: another uid) and, for the Retain policy, it stays Released.
// Binding writes claimRef (with uid and resourceVersion) and the
// pv.kubernetes.io/bound-by-controller annotation on the volume, and
// spec.volumeName plus pv.kubernetes.io/bind-completed on the claim, as the
// manager kube-controller-manager (so server-side apply sees them owned).
// No dynamic provisioning: a claim of a StorageClass gets the events a
// cluster without that provisioner shows.
import type { ApiCore } from '../apiserver.js';
import type { ResourceInfo } from '../resources.js';
import type { Obj } from '../store.js';
import { type Any, annotations, deleting, labelSelectorMatches, meta, nameOf, nsOf, quantity, uidOf } from './util.js';

export const ANN_BIND_COMPLETED = 'pv.kubernetes.io/bind-completed';
export const ANN_BOUND_BY_CONTROLLER = 'pv.kubernetes.io/bound-by-controller';
const MANAGER = 'kube-controller-manager';
const SOURCE = { component: 'persistentvolume-controller' };

const spec = (o: Obj): Any => (o.spec ?? {}) as Any;
const phaseOf = (o: Obj): string | undefined => (o.status as Any | undefined)?.phase;
const claimClass = (c: Obj): string => String(spec(c).storageClassName ?? '');
const volumeClass = (v: Obj): string => String(spec(v).storageClassName ?? '');

/** pvutil.IsVolumeBoundToClaim: the claimRef names the claim (and its uid, when the claimRef has one). */
export function isVolumeBoundToClaim(volume: Obj, claim: Obj): boolean {
  const ref = spec(volume).claimRef as Any | undefined;
  if (!ref) return false;
  if (ref.name !== nameOf(claim) || ref.namespace !== nsOf(claim)) return false;
  return !ref.uid || ref.uid === uidOf(claim);
}

function accessModesContain(volume: Obj, claim: Obj): boolean {
  const have = new Set((spec(volume).accessModes ?? []) as string[]);
  return ((spec(claim).accessModes ?? []) as string[]).every((m) => have.has(m));
}

const volumeModeMismatch = (claim: Obj, volume: Obj) => (spec(claim).volumeMode ?? 'Filesystem') !== (spec(volume).volumeMode ?? 'Filesystem');
const requested = (claim: Obj) => quantity(spec(claim).resources?.requests?.storage);
const capacity = (volume: Obj) => quantity(spec(volume).capacity?.storage);

/** checkVolumeSatisfyClaim, for a volume the claim asks for by name. */
function checkVolumeSatisfyClaim(volume: Obj, claim: Obj): string | undefined {
  if (deleting(volume)) return `the volume is marked for deletion "${nameOf(volume)}"`;
  if (capacity(volume) < requested(claim)) return 'requested PV is too small';
  if (volumeClass(volume) !== claimClass(claim)) return 'storageClassName does not match';
  if (volumeModeMismatch(claim, volume)) return 'incompatible volumeMode';
  if (!accessModesContain(volume, claim)) return 'incompatible accessMode';
  return undefined;
}

export class PersistentVolumeController {
  private readonly pvs: ResourceInfo;
  private readonly pvcs: ResourceInfo;
  private readonly classes: ResourceInfo;
  /** Events of the periodic resync are recorded once per claim and message, not on every pass. */
  private readonly told = new Set<string>();

  constructor(private readonly api: ApiCore) {
    this.pvs = api.kind('v1', 'PersistentVolume');
    this.pvcs = api.kind('v1', 'PersistentVolumeClaim');
    this.classes = api.kind('storage.k8s.io/v1', 'StorageClass');
  }

  sync(): void {
    for (const c of this.api.store.list(this.pvcs)) {
      const claim = this.api.store.get(this.pvcs, nsOf(c), nameOf(c));
      if (claim) this.syncClaim(claim);
    }
    for (const v of this.api.store.list(this.pvs)) {
      const volume = this.api.store.get(this.pvs, undefined, nameOf(v));
      if (volume) this.syncVolume(volume);
    }
  }

  private volume(name: string): Obj | undefined {
    return name ? this.api.store.get(this.pvs, undefined, name) : undefined;
  }

  private event(obj: Obj, type: 'Normal' | 'Warning', reason: string, message: string, once = false): void {
    if (once) {
      const key = `${uidOf(obj)}\u0000${reason}\u0000${message}`;
      if (this.told.has(key)) return;
      this.told.add(key);
    }
    this.api.events.record(obj, type, reason, message, SOURCE);
  }

  // ---- claims ----

  private syncClaim(claim: Obj): void {
    if (annotations(claim)[ANN_BIND_COMPLETED] === undefined) this.syncUnboundClaim(claim);
    else this.syncBoundClaim(claim);
  }

  private syncUnboundClaim(claim: Obj): void {
    const volumeName = String(spec(claim).volumeName ?? '');
    if (!volumeName) {
      const volume = this.findMatchingVolume(claim);
      if (volume) {
        this.bind(volume, claim);
        return;
      }
      const cls = claimClass(claim);
      if (!cls) this.event(claim, 'Normal', 'FailedBinding', 'no persistent volumes available for this claim and no storage class is set', true);
      else {
        const sc = this.api.store.get(this.classes, undefined, cls);
        if (!sc) this.event(claim, 'Warning', 'ProvisioningFailed', `storageclass.storage.k8s.io "${cls}" not found`, true);
        else if ((sc as Any).volumeBindingMode === 'WaitForFirstConsumer') this.event(claim, 'Normal', 'WaitForFirstConsumer', 'waiting for first consumer to be created before binding', true);
        else {
          this.event(
            claim,
            'Normal',
            'ExternalProvisioning',
            `Waiting for a volume to be created either by the external provisioner '${String((sc as Any).provisioner)}' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered.`,
            true,
          );
        }
      }
      this.claimStatus(claim, 'Pending');
      return;
    }
    const volume = this.volume(volumeName);
    if (!volume) {
      // the claim asks for a volume that does not exist (yet): retry later
      this.claimStatus(claim, 'Pending');
      return;
    }
    const ref = spec(volume).claimRef as Any | undefined;
    if (!ref) {
      const why = checkVolumeSatisfyClaim(volume, claim);
      if (why) {
        this.event(claim, 'Warning', 'VolumeMismatch', `Cannot bind to requested volume "${volumeName}": ${why}`, true);
        this.claimStatus(claim, 'Pending');
      } else this.bind(volume, claim);
      return;
    }
    if (isVolumeBoundToClaim(volume, claim)) {
      // pre-bound to this claim (or bound already): finish the binding
      this.bind(volume, claim);
      return;
    }
    // the volume is claimed by someone else
    this.event(claim, 'Warning', 'FailedBinding', `volume "${volumeName}" already bound to a different claim.`, true);
    if (annotations(claim)[ANN_BOUND_BY_CONTROLLER] === undefined) this.claimStatus(claim, 'Pending');
  }

  private syncBoundClaim(claim: Obj): void {
    const volumeName = String(spec(claim).volumeName ?? '');
    if (!volumeName) {
      this.claimStatus(claim, 'Lost', undefined, ['Warning', 'ClaimLost', 'Bound claim has lost reference to PersistentVolume. Data on the volume is lost!']);
      return;
    }
    const volume = this.volume(volumeName);
    if (!volume) {
      this.claimStatus(claim, 'Lost', undefined, ['Warning', 'ClaimLost', 'Bound claim has lost its PersistentVolume. Data on the volume is lost!']);
      return;
    }
    const ref = spec(volume).claimRef as Any | undefined;
    if (!ref || ref.uid === uidOf(claim)) {
      // unbound volume (bind it again) or all is well
      this.bind(volume, claim);
      return;
    }
    // bound, but the volume names another claimant (or none: no uid)
    this.claimStatus(claim, 'Lost', undefined, ['Warning', 'ClaimMisbound', 'Two claims are bound to the same volume, this one is bound incorrectly']);
  }

  /** pvutil.FindMatchingVolume without a node: the volume pre-bound to the claim, else the smallest Available one that fits. */
  private findMatchingVolume(claim: Obj): Obj | undefined {
    let best: Obj | undefined;
    for (const volume of this.api.store.list(this.pvs)) {
      if (volumeModeMismatch(claim, volume) || deleting(volume)) continue;
      if (!accessModesContain(volume, claim)) continue;
      if (isVolumeBoundToClaim(volume, claim)) return volume;
      if (phaseOf(volume) !== 'Available' || spec(volume).claimRef) continue;
      const sel = spec(claim).selector as Any | undefined;
      if (sel && !labelSelectorMatches(sel, (meta(volume).labels ?? {}) as Record<string, string>)) continue;
      if (volumeClass(volume) !== claimClass(claim)) continue;
      if (capacity(volume) >= requested(claim) && (!best || capacity(best) > capacity(volume))) best = volume;
    }
    return best;
  }

  /** bind(): volume → claim (claimRef, annotation), volume phase Bound, claim → volume (volumeName, annotations), claim phase Bound. */
  private bind(volume: Obj, claim: Obj): void {
    let v = volume;
    const ref = spec(v).claimRef as Any | undefined;
    const byController = !isVolumeBoundToClaim(v, claim);
    if (!ref || ref.name !== nameOf(claim) || ref.namespace !== nsOf(claim) || ref.uid !== uidOf(claim) || (byController && annotations(v)[ANN_BOUND_BY_CONTROLLER] === undefined)) {
      const next = structuredClone(v);
      const s = (next.spec ??= {}) as Any;
      if (!ref || ref.name !== nameOf(claim) || ref.namespace !== nsOf(claim) || ref.uid !== uidOf(claim)) {
        // reference.GetReference(claim)
        s.claimRef = { kind: 'PersistentVolumeClaim', namespace: nsOf(claim), name: nameOf(claim), uid: uidOf(claim), apiVersion: 'v1', resourceVersion: meta(claim).resourceVersion };
      }
      if (byController) (meta(next).annotations ??= {})[ANN_BOUND_BY_CONTROLLER] = 'yes';
      const stored = this.api.update(this.pvs, next, MANAGER);
      if (!stored) return;
      v = stored;
    }
    this.volumeStatus(v, 'Bound');

    let c = claim;
    if (spec(c).volumeName !== nameOf(v) || annotations(c)[ANN_BIND_COMPLETED] === undefined) {
      const next = structuredClone(c);
      const s = (next.spec ??= {}) as Any;
      const ann = (meta(next).annotations ??= {}) as Record<string, string>;
      if (s.volumeName !== nameOf(v)) {
        s.volumeName = nameOf(v);
        ann[ANN_BOUND_BY_CONTROLLER] ??= 'yes';
      }
      ann[ANN_BIND_COMPLETED] ??= 'yes';
      const stored = this.api.update(this.pvcs, next, MANAGER);
      if (!stored) return;
      c = stored;
    }
    this.claimStatus(c, 'Bound', v);
  }

  /** updateClaimStatus(WithEvent): the phase (with the volume's capacity and access modes when bound); the event only on a phase change. */
  private claimStatus(claim: Obj, phase: string, volume?: Obj, event?: ['Normal' | 'Warning', string, string]): void {
    const old = (claim.status ?? {}) as Any;
    const status: Any = { ...old, phase };
    if (volume) {
      status.accessModes = spec(volume).accessModes;
      status.capacity = spec(volume).capacity;
    } else if (phase === 'Lost') {
      delete status.accessModes;
      delete status.capacity;
    }
    if (JSON.stringify(status) === JSON.stringify(old)) return;
    const changed = old.phase !== phase;
    this.api.updateStatus(this.pvcs, claim, status);
    if (event && changed) this.event(claim, ...event);
  }

  private volumeStatus(volume: Obj, phase: string, message?: string): void {
    const old = (volume.status ?? {}) as Any;
    if (old.phase === phase && old.message === message) return;
    const status: Any = { phase, lastPhaseTransitionTime: old.phase === phase ? old.lastPhaseTransitionTime : this.api.now() };
    if (message) status.message = message;
    this.api.updateStatus(this.pvs, volume, status);
  }

  // ---- volumes ----

  private syncVolume(volume: Obj): void {
    const ref = spec(volume).claimRef as Any | undefined;
    if (!ref || !ref.uid) {
      // unused, or reserved for a claim that the claim sync binds
      this.volumeStatus(volume, 'Available');
      return;
    }
    let claim = ref.namespace ? this.api.store.get(this.pvcs, String(ref.namespace), String(ref.name)) : undefined;
    // the claim it was bound to was deleted and another created with the same name
    if (claim && uidOf(claim) !== ref.uid) claim = undefined;
    if (!claim) {
      if (phaseOf(volume) !== 'Released' && phaseOf(volume) !== 'Failed') this.volumeStatus(volume, 'Released');
      this.reclaim(this.volume(nameOf(volume)) ?? volume);
      return;
    }
    const claimVolume = String(spec(claim).volumeName ?? '');
    if (!claimVolume) return; // the claim sync finishes the binding
    if (claimVolume === nameOf(volume)) {
      this.volumeStatus(volume, 'Bound');
      return;
    }
    // bound to a claim that is bound to another volume: unbind (a user's pre-binding keeps its claimRef, without uid)
    const next = structuredClone(volume);
    if (annotations(next)[ANN_BOUND_BY_CONTROLLER] !== undefined) {
      delete (next.spec as Any).claimRef;
      delete (meta(next).annotations as Any)[ANN_BOUND_BY_CONTROLLER];
      if (!Object.keys(meta(next).annotations as Any).length) delete meta(next).annotations;
    } else delete (next.spec as Any).claimRef.uid;
    const stored = this.api.update(this.pvs, next, MANAGER);
    if (stored) this.volumeStatus(stored, 'Available');
  }

  /** reclaimVolume: Retain keeps the volume Released; Delete needs a deleter plugin, which a static volume has none of here; Recycle is gone. */
  private reclaim(volume: Obj): void {
    const policy = spec(volume).persistentVolumeReclaimPolicy ?? 'Retain';
    if (policy === 'Retain') return;
    if (phaseOf(volume) === 'Failed') return;
    const message =
      policy === 'Delete' ? `error getting deleter volume plugin for volume "${nameOf(volume)}": no deletable volume plugin matched` : `No recycler plugin found for the volume!`;
    this.volumeStatus(volume, 'Failed', message);
    this.event(volume, 'Warning', policy === 'Delete' ? 'VolumeFailedDelete' : 'VolumeFailedRecycle', message, true);
  }
}
