// The garbage collector (pkg/controller/garbagecollector): dependents are
// found through metadata.ownerReferences.
// - attemptToDeleteItem: an object whose owners are all gone (absent, or
//   present with another uid) is deleted (Background, or the policy its own
//   orphan/foregroundDeletion finalizer asks for); when an owner is being
//   deleted in the foreground and no owner is solid, it is deleted in the
//   foreground too if it has dependents itself; dangling references next to
//   a solid owner are removed;
// - processDeletingDependentsItem: an owner with the foregroundDeletion
//   finalizer loses it once no dependent with blockOwnerDeletion is left
//   (Terminating dependents still count);
// - orphanDependents: an owner with the orphan finalizer has its references
//   removed from its dependents, then loses the finalizer.
import { FINALIZER_FOREGROUND, FINALIZER_ORPHAN, type ApiCore, type PropagationPolicy } from '../apiserver.js';
import type { ResourceInfo } from '../resources.js';
import type { Obj } from '../store.js';
import { deleting, meta, nameOf, nsOf, type OwnerRef, ownerRefs, uidOf } from './util.js';

const MANAGER = 'kube-controller-manager';

const finalizers = (o: Obj): string[] => (Array.isArray(meta(o).finalizers) ? (meta(o).finalizers as string[]) : []);

export class GarbageCollector {
  constructor(private readonly api: ApiCore) {}

  private all(): { r: ResourceInfo; obj: Obj }[] {
    return this.api.store.all().map((e) => ({ r: e.resource, obj: e.obj }));
  }

  private owner(dependent: Obj, ref: OwnerRef): Obj | undefined {
    const r = this.api.find(ref.apiVersion, ref.kind);
    if (!r) return undefined;
    const o = this.api.store.get(r, r.namespaced ? nsOf(dependent) : undefined, ref.name);
    return o && uidOf(o) === ref.uid ? o : undefined;
  }

  sync(): void {
    const objects = this.all();
    const dependentsOf = new Map<string, { r: ResourceInfo; obj: Obj; ref: OwnerRef }[]>();
    for (const { r, obj } of objects) {
      for (const ref of ownerRefs(obj)) {
        const list = dependentsOf.get(ref.uid) ?? [];
        list.push({ r, obj, ref });
        dependentsOf.set(ref.uid, list);
      }
    }

    // owners being deleted with a deletion finalizer
    for (const { r, obj } of objects) {
      if (!deleting(obj)) continue;
      const fins = finalizers(obj);
      const deps = dependentsOf.get(uidOf(obj)) ?? [];
      if (fins.includes(FINALIZER_ORPHAN)) {
        for (const d of deps) {
          const live = this.api.store.get(d.r, nsOf(d.obj), nameOf(d.obj));
          if (!live) continue;
          const next = structuredClone(live);
          meta(next).ownerReferences = ownerRefs(next).filter((x) => x.uid !== uidOf(obj));
          if (!(meta(next).ownerReferences as OwnerRef[]).length) delete meta(next).ownerReferences;
          this.api.update(d.r, next, MANAGER);
        }
        this.dropFinalizer(r, obj, FINALIZER_ORPHAN);
      } else if (fins.includes(FINALIZER_FOREGROUND)) {
        const blocking = deps.filter((d) => d.ref.blockOwnerDeletion === true && this.api.store.get(d.r, nsOf(d.obj), nameOf(d.obj)));
        if (!blocking.length) this.dropFinalizer(r, obj, FINALIZER_FOREGROUND);
      }
    }

    // dependents whose owners are gone or going
    for (const { r, obj } of this.all()) {
      const refs = ownerRefs(obj);
      if (!refs.length || deleting(obj)) continue;
      const solid: OwnerRef[] = [];
      const dangling: OwnerRef[] = [];
      const waiting: OwnerRef[] = [];
      for (const ref of refs) {
        const o = this.owner(obj, ref);
        if (!o) dangling.push(ref);
        else if (deleting(o) && finalizers(o).includes(FINALIZER_FOREGROUND)) waiting.push(ref);
        else solid.push(ref);
      }
      if (solid.length) {
        if (!dangling.length && !waiting.length) continue;
        const drop = new Set([...dangling, ...waiting].map((x) => x.uid));
        const next = structuredClone(obj);
        meta(next).ownerReferences = refs.filter((x) => !drop.has(x.uid));
        this.api.update(r, next, MANAGER);
        continue;
      }
      let policy: PropagationPolicy = 'Background';
      if (waiting.length && (dependentsOf.get(uidOf(obj)) ?? []).length) policy = 'Foreground';
      else if (finalizers(obj).includes(FINALIZER_ORPHAN)) policy = 'Orphan';
      else if (finalizers(obj).includes(FINALIZER_FOREGROUND)) policy = 'Foreground';
      this.api.delete(r, nsOf(obj), nameOf(obj), { propagationPolicy: policy });
    }
  }

  private dropFinalizer(r: ResourceInfo, obj: Obj, f: string): void {
    const live = this.api.store.get(r, nsOf(obj), nameOf(obj));
    if (!live) return;
    const next = structuredClone(live);
    meta(next).finalizers = finalizers(next).filter((x) => x !== f);
    this.api.update(r, next, MANAGER);
  }
}
