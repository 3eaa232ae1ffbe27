// kube-scheduler for pods of the default scheduler, with the plugins whose
// verdicts Kompox's pods meet (pkg/scheduler/framework/plugins):
// - VolumeBinding PreFilter: every claim must exist, not be Lost
//   (`persistentvolumeclaim "x" bound to non-existent persistentvolume "y"`),
//   not be being deleted, and be bound unless its class binds on first use
//   (`pod has unbound immediate PersistentVolumeClaims`);
// - per node: NodeUnschedulable, TaintToleration, NodeAffinity (nodeSelector
//   and required node affinity), VolumeBinding Filter (the bound volume
//   exists and its node affinity admits the node);
// - the FailedScheduling message of FitError: `0/N nodes are available: ...`
//   with the preemption post-filter's verdict.
// A feasible pod is bound (spec.nodeName, PodScheduled True, event Scheduled);
// an unschedulable one gets PodScheduled False/Unschedulable and a
// FailedScheduling event, and is tried again whenever something changes.
import type { ApiCore } from '../apiserver.js';
import type { ResourceInfo } from '../resources.js';
import type { Obj } from '../store.js';
import { ANN_BIND_COMPLETED } from './persistentvolume.js';
import { type Any, annotations, deleting, getCondition, labelsOf, nameOf, nodeSelectorMatches, nsOf, setCondition } from './util.js';

const SOURCE = { component: 'default-scheduler' };

interface Verdict {
  node?: string;
  message?: string;
}

function tolerates(tolerations: Any[], taint: Any): boolean {
  return tolerations.some((t) => {
    if (t.effect && t.effect !== taint.effect) return false;
    if (t.operator === 'Exists') return !t.key || t.key === taint.key;
    return t.key === taint.key && (t.value ?? '') === (taint.value ?? '');
  });
}

export class Scheduler {
  private readonly pods: ResourceInfo;
  private readonly nodes: ResourceInfo;
  private readonly pvcs: ResourceInfo;
  private readonly pvs: ResourceInfo;
  private readonly classes: ResourceInfo;

  constructor(private readonly api: ApiCore) {
    this.pods = api.kind('v1', 'Pod');
    this.nodes = api.kind('v1', 'Node');
    this.pvcs = api.kind('v1', 'PersistentVolumeClaim');
    this.pvs = api.kind('v1', 'PersistentVolume');
    this.classes = api.kind('storage.k8s.io/v1', 'StorageClass');
  }

  sync(): void {
    for (const pod of this.api.store.list(this.pods)) {
      const spec = (pod.spec ?? {}) as Any;
      if (spec.nodeName || deleting(pod) || (spec.schedulerName ?? 'default-scheduler') !== 'default-scheduler') continue;
      if ((pod.status as Any | undefined)?.phase && (pod.status as Any).phase !== 'Pending') continue;
      const v = this.schedule(pod);
      if (v.node) this.bind(pod, v.node);
      else this.unschedulable(pod, v.message!);
    }
  }

  /** VolumeBinding PreFilter (podHasPVCs, then unbound immediate claims). */
  private preFilter(pod: Obj): string | undefined {
    let unboundImmediate = false;
    for (const v of (((pod.spec as Any)?.volumes ?? []) as Any[])) {
      const claimName = v.persistentVolumeClaim?.claimName ?? (v.ephemeral ? `${nameOf(pod)}-${v.name}` : undefined);
      if (!claimName) continue;
      const claim = this.api.store.get(this.pvcs, nsOf(pod), String(claimName));
      if (!claim) {
        return v.ephemeral ? `waiting for ephemeral volume controller to create the persistentvolumeclaim "${claimName}"` : `persistentvolumeclaim "${claimName}" not found`;
      }
      const cs = (claim.spec ?? {}) as Any;
      if ((claim.status as Any | undefined)?.phase === 'Lost') return `persistentvolumeclaim "${claimName}" bound to non-existent persistentvolume "${String(cs.volumeName ?? '')}"`;
      if (deleting(claim)) return `persistentvolumeclaim "${claimName}" is being deleted`;
      const bound = Boolean(cs.volumeName) && annotations(claim)[ANN_BIND_COMPLETED] !== undefined;
      if (bound) continue;
      const sc = cs.storageClassName ? this.api.store.get(this.classes, undefined, String(cs.storageClassName)) : undefined;
      const delayed = (sc as Any | undefined)?.volumeBindingMode === 'WaitForFirstConsumer';
      if (!delayed || cs.volumeName) unboundImmediate = true;
    }
    return unboundImmediate ? 'pod has unbound immediate PersistentVolumeClaims' : undefined;
  }

  /** The first filter a node fails, as the histogram reason. */
  private filter(pod: Obj, node: Obj): string | undefined {
    const spec = (pod.spec ?? {}) as Any;
    const ns = (node.spec ?? {}) as Any;
    const tolerations = (spec.tolerations ?? []) as Any[];
    if (ns.unschedulable && !tolerates(tolerations, { key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' })) return 'node(s) were unschedulable';
    const taint = ((ns.taints ?? []) as Any[]).find((t) => (t.effect === 'NoSchedule' || t.effect === 'NoExecute') && !tolerates(tolerations, t));
    if (taint) return `node(s) had untolerated taint {${taint.key}: ${taint.value ?? ''}}`;
    const labels = labelsOf(node);
    const selectorOk = Object.entries((spec.nodeSelector ?? {}) as Record<string, string>).every(([k, v]) => labels[k] === v);
    const required = spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
    if (!selectorOk || (required && !nodeSelectorMatches(required, node))) return "node(s) didn't match Pod's node affinity/selector";
    for (const v of ((spec.volumes ?? []) as Any[])) {
      const claimName = v.persistentVolumeClaim?.claimName;
      if (!claimName) continue;
      const claim = this.api.store.get(this.pvcs, nsOf(pod), String(claimName));
      const volumeName = (claim?.spec as Any | undefined)?.volumeName;
      if (!volumeName) continue;
      const pv = this.api.store.get(this.pvs, undefined, String(volumeName));
      if (!pv) return 'node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)';
      const affinity = (pv.spec as Any | undefined)?.nodeAffinity?.required;
      if (affinity && !nodeSelectorMatches(affinity, node)) return 'node(s) had volume node affinity conflict';
    }
    return undefined;
  }

  private schedule(pod: Obj): Verdict {
    const nodes = this.api.store.list(this.nodes);
    const n = nodes.length;
    const fit = (reasons: string) => `0/${n} nodes are available: ${reasons}. preemption: 0/${n} nodes are available: ${n} Preemption is not helpful for scheduling.`;
    const pre = this.preFilter(pod);
    if (pre) return { message: fit(pre) };
    if (!n) return { message: 'no nodes available to schedule pods' };
    const histogram = new Map<string, number>();
    const feasible: Obj[] = [];
    for (const node of nodes) {
      const why = this.filter(pod, node);
      if (why) histogram.set(why, (histogram.get(why) ?? 0) + 1);
      else feasible.push(node);
    }
    if (!feasible.length) {
      return { message: fit([...histogram].map(([r, c]) => `${c} ${r}`).sort().join(', ')) };
    }
    // least loaded node first (NodeResourcesFit's LeastAllocated, by pod count)
    const load = (node: Obj) => this.api.store.list(this.pods).filter((p) => (p.spec as Any | undefined)?.nodeName === nameOf(node)).length;
    feasible.sort((a, b) => load(a) - load(b) || nameOf(a).localeCompare(nameOf(b)));
    return { node: nameOf(feasible[0]!) };
  }

  private bind(pod: Obj, node: string): void {
    // the binding subresource: nodeName and PodScheduled=True in one write
    const next = structuredClone(pod);
    (next.spec as Any).nodeName = node;
    const st = (next.status ??= {}) as Any;
    st.conditions = setCondition(st.conditions, { type: 'PodScheduled', status: 'True' }, this.api.now(), { probeTime: true });
    delete st.nominatedNodeName;
    this.api.store.put(this.pods, next);
    this.api.events.record(pod, 'Normal', 'Scheduled', `Successfully assigned ${nsOf(pod)}/${nameOf(pod)} to ${node}`, SOURCE);
  }

  private unschedulable(pod: Obj, message: string): void {
    const st = (pod.status ?? {}) as Any;
    const cur = getCondition(st.conditions, 'PodScheduled');
    if (cur?.status === 'False' && cur.message === message) return;
    const conditions = setCondition(st.conditions, { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message }, this.api.now(), { probeTime: true });
    this.api.updateStatus(this.pods, pod, { ...st, phase: st.phase ?? 'Pending', conditions });
    this.api.events.record(pod, 'Warning', 'FailedScheduling', message, SOURCE);
  }
}
