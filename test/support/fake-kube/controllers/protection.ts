// Storage object in-use protection (pkg/controller/volume/pvcprotection and
// pvprotection). The admission plugin puts kubernetes.io/pvc-protection on
// every claim and kubernetes.io/pv-protection on every volume when they are
// created (apiserver.ts); a delete then only marks them Terminating. These
// controllers remove the finalizer - and so let the deletion finish - once
// no scheduled pod that has not finished (Terminating pods count: their
// containers may still write) uses the claim, and once the volume is no
// longer Bound.
import { FINALIZER_PV, FINALIZER_PVC, type ApiCore } from '../apiserver.js';
import type { ResourceInfo } from '../resources.js';
import type { Obj } from '../store.js';
import { type Any, deleting, meta, nameOf, nsOf, podClaims } from './util.js';

const MANAGER = 'kube-controller-manager';

export class ProtectionController {
  private readonly pvs: ResourceInfo;
  private readonly pvcs: ResourceInfo;
  private readonly pods: ResourceInfo;

  constructor(private readonly api: ApiCore) {
    this.pvs = api.kind('v1', 'PersistentVolume');
    this.pvcs = api.kind('v1', 'PersistentVolumeClaim');
    this.pods = api.kind('v1', 'Pod');
  }

  sync(): void {
    for (const claim of this.api.store.list(this.pvcs)) {
      if (!deleting(claim) || !hasFinalizer(claim, FINALIZER_PVC)) continue;
      if (this.claimInUse(claim)) continue;
      this.removeFinalizer(this.pvcs, claim, FINALIZER_PVC);
    }
    for (const volume of this.api.store.list(this.pvs)) {
      if (!deleting(volume) || !hasFinalizer(volume, FINALIZER_PV)) continue;
      if ((volume.status as Any | undefined)?.phase === 'Bound') continue;
      this.removeFinalizer(this.pvs, volume, FINALIZER_PV);
    }
  }

  /** podUsesPVC: a scheduled pod that has not finished mounts the claim. */
  private claimInUse(claim: Obj): boolean {
    return this.api.store.list(this.pods, nsOf(claim)).some((p) => {
      const phase = (p.status as Any | undefined)?.phase;
      if (!(p.spec as Any | undefined)?.nodeName || phase === 'Succeeded' || phase === 'Failed') return false;
      return podClaims(p).includes(nameOf(claim));
    });
  }

  private removeFinalizer(r: ResourceInfo, obj: Obj, finalizer: string): void {
    const next = structuredClone(obj);
    meta(next).finalizers = (meta(next).finalizers as string[]).filter((f) => f !== finalizer);
    this.api.update(r, next, MANAGER);
  }
}

function hasFinalizer(o: Obj, f: string): boolean {
  const fins = meta(o).finalizers;
  return Array.isArray(fins) && fins.includes(f);
}
