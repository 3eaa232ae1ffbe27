// The namespace controller (pkg/controller/namespace/deletion): a namespace
// marked for deletion (Terminating) has its content deleted through the API
// (pods gracefully, finalizers honoured, dependents in the background); while
// something is left it reports why in its conditions
// (NamespaceContentRemaining, NamespaceFinalizersRemaining); once nothing is
// left it removes the `kubernetes` finalizer from spec.finalizers, which ends
// the namespace.
import type { ApiCore } from '../apiserver.js';
import type { ResourceInfo } from '../resources.js';
import type { Obj } from '../store.js';
import { type Any, type Condition, deleting, meta, nameOf, setCondition } from './util.js';

const MANAGER = 'kube-controller-manager';

export class NamespaceController {
  private readonly namespaces: ResourceInfo;

  constructor(private readonly api: ApiCore) {
    this.namespaces = api.kind('v1', 'Namespace');
  }

  sync(): void {
    for (const ns of this.api.store.list(this.namespaces)) {
      if (!deleting(ns)) continue;
      const specFins = ((ns.spec as Any | undefined)?.finalizers ?? []) as string[];
      if (!specFins.includes('kubernetes')) continue;
      this.finalize(ns, specFins);
    }
  }

  private content(name: string): { r: ResourceInfo; obj: Obj }[] {
    return this.api.store
      .all()
      .filter((e) => e.resource.namespaced && meta(e.obj).namespace === name)
      .map((e) => ({ r: e.resource, obj: e.obj }));
  }

  private finalize(ns: Obj, specFins: string[]): void {
    const name = nameOf(ns);
    for (const { r, obj } of this.content(name)) {
      if (!deleting(obj)) this.api.delete(r, name, nameOf(obj), { propagationPolicy: 'Background' });
    }
    const left = this.content(name);
    const now = this.api.now();
    let conditions = ((ns.status as Any | undefined)?.conditions ?? []) as Condition[];
    if (left.length) {
      const counts = new Map<string, number>();
      const fins = new Map<string, number>();
      for (const { r, obj } of left) {
        const key = `${r.plural}.${r.group}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
        for (const f of (meta(obj).finalizers ?? []) as string[]) fins.set(f, (fins.get(f) ?? 0) + 1);
      }
      conditions = setCondition(conditions, { type: 'NamespaceDeletionDiscoveryFailure', status: 'False', reason: 'ResourcesDiscovered', message: 'All resources successfully discovered' }, now);
      conditions = setCondition(conditions, { type: 'NamespaceDeletionGroupVersionParsingFailure', status: 'False', reason: 'ParsedGroupVersions', message: 'All legacy kube types successfully parsed' }, now);
      conditions = setCondition(conditions, { type: 'NamespaceDeletionContentFailure', status: 'False', reason: 'ContentDeleted', message: 'All content successfully deleted, may be waiting on finalization' }, now);
      conditions = setCondition(
        conditions,
        {
          type: 'NamespaceContentRemaining',
          status: 'True',
          reason: 'SomeResourcesRemain',
          message: `Some resources are remaining: ${[...counts].sort().map(([k, n]) => `${k} has ${n} resource instances`).join(', ')}`,
        },
        now,
      );
      conditions = fins.size
        ? setCondition(
            conditions,
            {
              type: 'NamespaceFinalizersRemaining',
              status: 'True',
              reason: 'SomeFinalizersRemain',
              message: `Some content in the namespace has finalizers remaining: ${[...fins].sort().map(([f, n]) => `${f} in ${n} resource instances`).join(', ')}`,
            },
            now,
          )
        : setCondition(conditions, { type: 'NamespaceFinalizersRemaining', status: 'False', reason: 'ContentHasNoFinalizers', message: 'All content-preserving finalizers finished' }, now);
      const status = { ...(ns.status as Any), phase: 'Terminating', conditions };
      if (JSON.stringify(status) !== JSON.stringify(ns.status)) this.api.updateStatus(this.namespaces, ns, status);
      return;
    }
    // nothing left: finalize (spec.finalizers minus kubernetes); without metadata finalizers the namespace is gone
    const next = structuredClone(ns);
    (next.spec as Any).finalizers = specFins.filter((f) => f !== 'kubernetes');
    this.api.update(this.namespaces, next, MANAGER);
  }
}
