// The ReplicaSet controller (pkg/controller/replicaset): it owns the pods its
// selector matches (adopting orphans, never another controller's pods), keeps
// as many active pods as spec.replicas says (creating them from the template
// with generateName `<rs>-`, deleting the least useful ones first: unscheduled,
// then pending, then not ready), and reports replicas, fullyLabeledReplicas,
// readyReplicas and availableReplicas (ready for minReadySeconds).
import type { ApiCore } from '../apiserver.js';
import type { ResourceInfo } from '../resources.js';
import type { Obj } from '../store.js';
import {
  type Any,
  controllerRef,
  controllerRefTo,
  deleting,
  getCondition,
  labelSelectorMatches,
  labelsOf,
  meta,
  nameOf,
  nsOf,
  podActive,
  podReady,
  uidOf,
} from './util.js';

const MANAGER = 'kube-controller-manager';
const SOURCE = { component: 'replicaset-controller' };

export class ReplicaSetController {
  private readonly rss: ResourceInfo;
  private readonly pods: ResourceInfo;

  constructor(private readonly api: ApiCore) {
    this.rss = api.kind('apps/v1', 'ReplicaSet');
    this.pods = api.kind('v1', 'Pod');
  }

  sync(): void {
    for (const rs of this.api.store.list(this.rss)) this.syncOne(rs);
  }

  /** The pods of `rs`: owned through their controller reference, plus orphans its selector matches (adopted). */
  podsOf(rs: Obj): Obj[] {
    const selector = (rs.spec as Any | undefined)?.selector;
    const out: Obj[] = [];
    for (const p of this.api.store.list(this.pods, nsOf(rs))) {
      const ref = controllerRef(p);
      if (ref) {
        if (ref.uid === uidOf(rs)) out.push(p);
        continue;
      }
      if (deleting(rs) || deleting(p) || !labelSelectorMatches(selector, labelsOf(p))) continue;
      const next = structuredClone(p);
      meta(next).ownerReferences = [...((meta(next).ownerReferences ?? []) as unknown[]), controllerRefTo(rs, 'apps/v1', 'ReplicaSet')];
      const adopted = this.api.update(this.pods, next, MANAGER);
      if (adopted) out.push(adopted);
    }
    return out;
  }

  private syncOne(rs: Obj): void {
    const spec = (rs.spec ?? {}) as Any;
    const want = Number(spec.replicas ?? 1);
    let pods = this.podsOf(rs);
    const active = pods.filter(podActive);
    if (!deleting(rs)) {
      if (active.length < want) {
        for (let i = active.length; i < want; i++) {
          const created = this.createPod(rs);
          pods = [...pods, created];
        }
      } else if (active.length > want) {
        for (const p of rankForDeletion(active).slice(0, active.length - want)) {
          this.api.delete(this.pods, nsOf(p), nameOf(p), { propagationPolicy: 'Background' });
          this.api.events.record(rs, 'Normal', 'SuccessfulDelete', `Deleted pod: ${nameOf(p)}`, SOURCE);
        }
        pods = this.podsOf(rs);
      }
    }
    this.updateStatus(rs, pods);
  }

  private createPod(rs: Obj): Obj {
    const t = ((rs.spec as Any).template ?? {}) as Any;
    const tm = (t.metadata ?? {}) as Any;
    const pod: Obj = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        generateName: `${nameOf(rs)}-`,
        namespace: nsOf(rs),
        ...(tm.labels ? { labels: structuredClone(tm.labels) } : {}),
        ...(tm.annotations ? { annotations: structuredClone(tm.annotations) } : {}),
        ownerReferences: [controllerRefTo(rs, 'apps/v1', 'ReplicaSet')],
      },
      spec: structuredClone(t.spec ?? {}),
    };
    const created = this.api.create(this.pods, pod, MANAGER);
    this.api.events.record(rs, 'Normal', 'SuccessfulCreate', `Created pod: ${nameOf(created)}`, SOURCE);
    return created;
  }

  /** Ready for minReadySeconds (podutil.IsPodAvailable); schedules a re-sync for when a ready pod becomes available. */
  private available(p: Obj, minReadySeconds: number): boolean {
    if (!podReady(p)) return false;
    if (minReadySeconds <= 0) return true;
    const since = Date.parse(String(getCondition((p.status as Any).conditions, 'Ready')?.lastTransitionTime ?? ''));
    const due = since + minReadySeconds * 1000;
    if (this.api.clock.now() >= due) return true;
    this.api.wakeAt(`available/${uidOf(p)}`, due);
    return false;
  }

  private updateStatus(rs: Obj, pods: Obj[]): void {
    const spec = (rs.spec ?? {}) as Any;
    const active = pods.filter(podActive);
    const templateLabels = (spec.template?.metadata?.labels ?? {}) as Record<string, string>;
    const minReady = Number(spec.minReadySeconds ?? 0);
    const old = (rs.status ?? {}) as Any;
    const status: Any = {
      replicas: active.length,
      fullyLabeledReplicas: active.filter((p) => Object.entries(templateLabels).every(([k, v]) => labelsOf(p)[k] === v)).length,
      readyReplicas: active.filter(podReady).length,
      availableReplicas: active.filter((p) => this.available(p, minReady)).length,
      observedGeneration: meta(rs).generation,
    };
    if (old.conditions) status.conditions = old.conditions;
    for (const k of ['readyReplicas', 'availableReplicas', 'fullyLabeledReplicas']) if (status[k] === 0) delete status[k];
    if (JSON.stringify(status) !== JSON.stringify(old)) this.api.updateStatus(this.rss, rs, status);
  }
}

/** controller.ActivePods ordering for scale-down: unassigned < assigned, pending < running, not ready < ready, newer < older. */
function rankForDeletion(pods: Obj[]): Obj[] {
  const phaseRank = (p: Obj) => ({ Pending: 0, Unknown: 1, Running: 2 })[String((p.status as Any | undefined)?.phase)] ?? 0;
  return [...pods].sort((a, b) => {
    const na = (a.spec as Any | undefined)?.nodeName ? 1 : 0;
    const nb = (b.spec as Any | undefined)?.nodeName ? 1 : 0;
    if (na !== nb) return na - nb;
    if (phaseRank(a) !== phaseRank(b)) return phaseRank(a) - phaseRank(b);
    if (podReady(a) !== podReady(b)) return podReady(a) ? 1 : -1;
    return String(meta(b).creationTimestamp).localeCompare(String(meta(a).creationTimestamp));
  });
}
