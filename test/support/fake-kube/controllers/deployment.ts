// The Deployment controller (pkg/controller/deployment): one ReplicaSet per
// pod template, named `<deployment>-<pod-template-hash>`, owned by the
// Deployment (controller, blockOwnerDeletion), its selector and pods labelled
// with the hash, and revision annotations on both.
// - Recreate: old ReplicaSets are scaled to 0 first, and the new one is
//   created or scaled up only once no pod of an old one is left (Terminating
//   pods count);
// - RollingUpdate: the new ReplicaSet grows within maxSurge while old ones
//   shrink within maxUnavailable (NewRSNewReplicas, reconcileOldReplicaSets);
// - status: replicas, updatedReplicas, readyReplicas, availableReplicas,
//   unavailableReplicas, observedGeneration, and the Available and
//   Progressing conditions (NewReplicaSetCreated, FoundNewReplicaSet,
//   ReplicaSetUpdated, NewReplicaSetAvailable, ProgressDeadlineExceeded after
//   progressDeadlineSeconds without progress);
// - old ReplicaSets beyond revisionHistoryLimit are deleted once empty.
import type { ApiCore } from '../apiserver.js';
import type { ResourceInfo } from '../resources.js';
import type { Obj } from '../store.js';
import { canonical } from '../ssa.js';
import {
  type Any,
  type Condition,
  controllerRef,
  controllerRefTo,
  deleting,
  getCondition,
  labelSelectorMatches,
  labelsOf,
  meta,
  nameOf,
  nsOf,
  setCondition,
  uidOf,
} from './util.js';

const MANAGER = 'kube-controller-manager';
const SOURCE = { component: 'deployment-controller' };
const HASH = 'pod-template-hash';
const REVISION = 'deployment.kubernetes.io/revision';
const DESIRED = 'deployment.kubernetes.io/desired-replicas';
const MAX = 'deployment.kubernetes.io/max-replicas';
const NOT_COPIED = new Set(['kubectl.kubernetes.io/last-applied-configuration', REVISION, 'deployment.kubernetes.io/revision-history', DESIRED, MAX, 'deprecated.deployment.rollback.to']);

/** FNV-1a, 32 bit. */
function fnv32a(s: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(s, 'utf8')) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** controller.ComputeHash: a hash of the pod template (and the collision count), written with rand.SafeEncodeString. */
export function podTemplateHash(template: unknown, collisionCount?: number): string {
  const h = fnv32a(JSON.stringify(canonical(template)) + (collisionCount !== undefined ? `#${collisionCount}` : ''));
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  return [...String(h)].map((c) => alphabet[c.charCodeAt(0) % alphabet.length]).join('');
}

function withoutHash(template: unknown): unknown {
  const t = structuredClone((template ?? {}) as Any);
  if (t.metadata?.labels) {
    delete t.metadata.labels[HASH];
    if (!Object.keys(t.metadata.labels).length) delete t.metadata.labels;
  }
  return canonical(t);
}

/** intstr.GetScaledValueFromIntOrPercent. */
function scaled(v: unknown, total: number, roundUp: boolean): number {
  if (typeof v === 'number') return v;
  const m = /^(\d+)%$/.exec(String(v ?? ''));
  if (!m) return Number(v ?? 0) || 0;
  const x = (Number(m[1]) * total) / 100;
  return roundUp ? Math.ceil(x) : Math.floor(x);
}

const spec = (o: Obj): Any => (o.spec ?? {}) as Any;
const replicasOf = (rs: Obj): number => Number(spec(rs).replicas ?? 0);
const statusOf = (o: Obj): Any => (o.status ?? {}) as Any;
const revisionOf = (rs: Obj): number => Number(meta(rs).annotations?.[REVISION] ?? 0);

export class DeploymentController {
  private readonly deployments: ResourceInfo;
  private readonly rss: ResourceInfo;
  private readonly pods: ResourceInfo;

  constructor(private readonly api: ApiCore) {
    this.deployments = api.kind('apps/v1', 'Deployment');
    this.rss = api.kind('apps/v1', 'ReplicaSet');
    this.pods = api.kind('v1', 'Pod');
  }

  sync(): void {
    for (const d of this.api.store.list(this.deployments)) {
      const live = this.api.store.get(this.deployments, nsOf(d), nameOf(d));
      if (live) this.syncDeployment(live);
    }
  }

  private isRolling(d: Obj): boolean {
    return (spec(d).strategy?.type ?? 'RollingUpdate') === 'RollingUpdate';
  }

  /** MaxSurge / MaxUnavailable (both 0 would stall: maxUnavailable becomes 1). */
  private limits(d: Obj): { maxSurge: number; maxUnavailable: number } {
    const replicas = Number(spec(d).replicas ?? 1);
    if (!this.isRolling(d) || replicas === 0) return { maxSurge: 0, maxUnavailable: 0 };
    const ru = (spec(d).strategy?.rollingUpdate ?? {}) as Any;
    const maxSurge = scaled(ru.maxSurge ?? '25%', replicas, true);
    let maxUnavailable = scaled(ru.maxUnavailable ?? '25%', replicas, false);
    if (maxSurge === 0 && maxUnavailable === 0) maxUnavailable = 1;
    return { maxSurge, maxUnavailable: Math.min(maxUnavailable, replicas) };
  }

  /** The ReplicaSets the Deployment controls (adopting orphans its selector matches). */
  private replicaSetsOf(d: Obj): Obj[] {
    const out: Obj[] = [];
    for (const rs of this.api.store.list(this.rss, nsOf(d))) {
      const ref = controllerRef(rs);
      if (ref) {
        if (ref.uid === uidOf(d)) out.push(rs);
        continue;
      }
      if (deleting(d) || deleting(rs) || !labelSelectorMatches(spec(d).selector, labelsOf(rs))) continue;
      const next = structuredClone(rs);
      meta(next).ownerReferences = [...((meta(next).ownerReferences ?? []) as unknown[]), controllerRefTo(d, 'apps/v1', 'Deployment')];
      const adopted = this.api.update(this.rss, next, MANAGER);
      if (adopted) out.push(adopted);
    }
    return out;
  }

  private podsOf(rs: Obj): Obj[] {
    return this.api.store.list(this.pods, nsOf(rs)).filter((p) => controllerRef(p)?.uid === uidOf(rs));
  }

  private syncDeployment(d0: Obj): void {
    let d = d0;
    const rsList = this.replicaSetsOf(d);
    if (deleting(d) || spec(d).paused) {
      this.syncStatus(d, rsList, this.findNew(d, rsList));
      return;
    }
    const template = withoutHash(spec(d).template);
    let newRS = this.findNew(d, rsList);
    let oldRSs = rsList.filter((rs) => rs !== newRS);

    if (!this.isRolling(d)) {
      // Recreate: never scale up before the old pods are gone
      const activeOld = oldRSs.filter((rs) => replicasOf(rs) > 0);
      if (activeOld.length) {
        for (const rs of activeOld) this.scale(d, rs, 0);
        this.syncStatus(d, this.replicaSetsOf(d), newRS);
        return;
      }
      const oldPodsRunning =
        oldRSs.some((rs) => Number(statusOf(rs).replicas ?? 0) > 0) ||
        oldRSs.some((rs) => this.podsOf(rs).some((p) => !['Failed', 'Succeeded'].includes(String(statusOf(p).phase))));
      if (oldPodsRunning) {
        this.syncStatus(d, rsList, newRS);
        return;
      }
    }
    if (newRS) {
      d = this.syncRevision(d, newRS, oldRSs) ?? d;
      newRS = this.api.store.get(this.rss, nsOf(newRS), nameOf(newRS)) ?? newRS;
    } else {
      const created = this.createNew(d, rsList, template);
      if (!created) return;
      newRS = created.rs;
      d = created.d;
    }
    oldRSs = this.replicaSetsOf(d).filter((rs) => uidOf(rs) !== uidOf(newRS!));
    const replicas = Number(spec(d).replicas ?? 1);

    if (!this.isRolling(d)) {
      if (replicasOf(newRS) !== replicas) this.scale(d, newRS, replicas);
    } else {
      const { maxSurge, maxUnavailable } = this.limits(d);
      const all = [...oldRSs, newRS];
      const total = all.reduce((n, rs) => n + replicasOf(rs), 0);
      if (replicasOf(newRS) > replicas) this.scale(d, newRS, replicas);
      else if (replicasOf(newRS) < replicas) {
        const maxTotal = replicas + maxSurge;
        const up = Math.min(Math.max(0, maxTotal - total), replicas - replicasOf(newRS));
        if (up > 0) this.scale(d, newRS, replicasOf(newRS) + up);
      }
      const fresh = this.api.store.get(this.rss, nsOf(newRS), nameOf(newRS)) ?? newRS;
      const oldCount = oldRSs.reduce((n, rs) => n + replicasOf(rs), 0);
      if (oldCount > 0) {
        const allCount = oldCount + replicasOf(fresh);
        const minAvailable = replicas - maxUnavailable;
        const newUnavailable = replicasOf(fresh) - Number(statusOf(fresh).availableReplicas ?? 0);
        let budget = allCount - minAvailable - newUnavailable;
        // unhealthy old replicas first, then healthy ones while enough stay available
        for (const rs of [...oldRSs].sort((a, b) => String(meta(a).creationTimestamp).localeCompare(String(meta(b).creationTimestamp)))) {
          if (budget <= 0) break;
          const unhealthy = replicasOf(rs) - Number(statusOf(rs).availableReplicas ?? 0);
          const n = Math.min(budget, Math.max(0, unhealthy));
          if (n > 0) {
            this.scale(d, rs, replicasOf(rs) - n);
            budget -= n;
          }
        }
        const allNow = [...oldRSs.map((rs) => this.api.store.get(this.rss, nsOf(rs), nameOf(rs)) ?? rs), fresh];
        const available = allNow.reduce((n, rs) => n + Number(statusOf(rs).availableReplicas ?? 0), 0);
        let down = available - minAvailable;
        for (const rs of allNow.filter((x) => uidOf(x) !== uidOf(fresh))) {
          if (down <= 0) break;
          const n = Math.min(replicasOf(rs), down);
          if (n > 0) {
            this.scale(d, rs, replicasOf(rs) - n);
            down -= n;
          }
        }
      }
    }
    const all = this.replicaSetsOf(d);
    const current = all.find((rs) => uidOf(rs) === uidOf(newRS!));
    this.cleanup(d, all.filter((rs) => rs !== current));
    this.syncStatus(d, all, current);
  }

  /** FindNewReplicaSet: the oldest ReplicaSet whose template equals the Deployment's (the hash label aside). */
  private findNew(d: Obj, rsList: Obj[]): Obj | undefined {
    const t = JSON.stringify(withoutHash(spec(d).template));
    return [...rsList]
      .sort((a, b) => String(meta(a).creationTimestamp).localeCompare(String(meta(b).creationTimestamp)))
      .find((rs) => JSON.stringify(withoutHash(spec(rs).template)) === t);
  }

  private annotationsFor(d: Obj, revision: number): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries((meta(d).annotations ?? {}) as Record<string, string>)) if (!NOT_COPIED.has(k)) out[k] = v;
    const replicas = Number(spec(d).replicas ?? 1);
    out[REVISION] = String(revision);
    out[DESIRED] = String(replicas);
    out[MAX] = String(replicas + this.limits(d).maxSurge);
    return out;
  }

  private createNew(d: Obj, rsList: Obj[], template: unknown): { rs: Obj; d: Obj } | undefined {
    const hash = podTemplateHash(template, statusOf(d).collisionCount);
    const revision = Math.max(0, ...rsList.map(revisionOf)) + 1;
    const tpl = structuredClone(spec(d).template ?? {}) as Any;
    tpl.metadata ??= {};
    tpl.metadata.labels = { ...(tpl.metadata.labels ?? {}), [HASH]: hash };
    const selector = structuredClone(spec(d).selector ?? {}) as Any;
    selector.matchLabels = { ...(selector.matchLabels ?? {}), [HASH]: hash };
    const replicas = Number(spec(d).replicas ?? 1);
    let count = replicas;
    if (this.isRolling(d)) {
      const total = rsList.reduce((n, rs) => n + replicasOf(rs), 0);
      count = Math.min(Math.max(0, replicas + this.limits(d).maxSurge - total), replicas);
    }
    const rs = this.api.create(
      this.rss,
      {
        apiVersion: 'apps/v1',
        kind: 'ReplicaSet',
        metadata: {
          name: `${nameOf(d)}-${hash}`,
          namespace: nsOf(d),
          labels: { ...(tpl.metadata.labels as Record<string, string>) },
          annotations: this.annotationsFor(d, revision),
          ownerReferences: [controllerRefTo(d, 'apps/v1', 'Deployment')],
        },
        spec: { replicas: count, ...(spec(d).minReadySeconds ? { minReadySeconds: spec(d).minReadySeconds } : {}), selector, template: tpl },
      },
      MANAGER,
    );
    if (count > 0) this.api.events.record(d, 'Normal', 'ScalingReplicaSet', `Scaled up replica set ${nameOf(rs)} from 0 to ${count}`, SOURCE);
    let next = this.setRevision(d, revision);
    if (spec(next).progressDeadlineSeconds !== undefined) {
      const conditions = setCondition(statusOf(next).conditions, { type: 'Progressing', status: 'True', reason: 'NewReplicaSetCreated', message: `Created new replica set "${nameOf(rs)}"` }, this.api.now(), { updateTime: true });
      next = this.api.updateStatus(this.deployments, next, { ...statusOf(next), conditions }) ?? next;
    }
    return { rs, d: next };
  }

  private setRevision(d: Obj, revision: number): Obj {
    if (meta(d).annotations?.[REVISION] === String(revision)) return d;
    const next = structuredClone(d);
    (meta(next).annotations ??= {})[REVISION] = String(revision);
    return this.api.update(this.deployments, next, MANAGER) ?? d;
  }

  /** getNewReplicaSet for an existing one: its revision becomes the newest (a rollback), annotations follow the Deployment. */
  private syncRevision(d: Obj, rs: Obj, oldRSs: Obj[]): Obj | undefined {
    const maxOld = Math.max(0, ...oldRSs.map(revisionOf));
    const revision = revisionOf(rs) > maxOld ? revisionOf(rs) : maxOld + 1;
    const want = this.annotationsFor(d, revision);
    const have = (meta(rs).annotations ?? {}) as Record<string, string>;
    if (Object.entries(want).some(([k, v]) => have[k] !== v)) {
      const next = structuredClone(rs);
      meta(next).annotations = { ...have, ...want };
      this.api.update(this.rss, next, MANAGER);
    }
    let out = this.setRevision(d, revision);
    if (spec(out).progressDeadlineSeconds !== undefined && !getCondition(statusOf(out).conditions, 'Progressing')) {
      const conditions = setCondition(statusOf(out).conditions, { type: 'Progressing', status: 'True', reason: 'FoundNewReplicaSet', message: `Found new replica set "${nameOf(rs)}"` }, this.api.now(), { updateTime: true });
      out = this.api.updateStatus(this.deployments, out, { ...statusOf(out), conditions }) ?? out;
    }
    return out;
  }

  private scale(d: Obj, rs: Obj, to: number): void {
    const from = replicasOf(rs);
    if (from === to) return;
    const next = structuredClone(rs);
    (next.spec as Any).replicas = to;
    const ann = (meta(next).annotations ??= {}) as Record<string, string>;
    ann[DESIRED] = String(spec(d).replicas ?? 1);
    ann[MAX] = String(Number(spec(d).replicas ?? 1) + this.limits(d).maxSurge);
    this.api.update(this.rss, next, MANAGER);
    this.api.events.record(d, 'Normal', 'ScalingReplicaSet', `Scaled ${from < to ? 'up' : 'down'} replica set ${nameOf(rs)} from ${from} to ${to}`, SOURCE);
  }

  /** cleanupDeployment: old, empty ReplicaSets beyond revisionHistoryLimit, oldest first. */
  private cleanup(d: Obj, oldRSs: Obj[]): void {
    const limit = spec(d).revisionHistoryLimit;
    if (limit === undefined) return;
    const cleanable = oldRSs
      .filter((rs) => !deleting(rs) && replicasOf(rs) === 0 && Number(statusOf(rs).replicas ?? 0) === 0)
      .sort((a, b) => revisionOf(a) - revisionOf(b));
    const diff = oldRSs.filter((rs) => !deleting(rs)).length - Number(limit);
    for (const rs of cleanable.slice(0, Math.max(0, diff))) this.api.delete(this.rss, nsOf(rs), nameOf(rs), { propagationPolicy: 'Background' });
  }

  /** calculateStatus + syncRolloutStatus. */
  private syncStatus(d: Obj, all: Obj[], newRS: Obj | undefined): void {
    const sum = (f: (rs: Obj) => number) => all.reduce((n, rs) => n + f(rs), 0);
    const replicas = Number(spec(d).replicas ?? 1);
    const available = sum((rs) => Number(statusOf(rs).availableReplicas ?? 0));
    const old = statusOf(d);
    const now = this.api.now();
    const status: Any = {
      observedGeneration: meta(d).generation,
      replicas: sum((rs) => Number(statusOf(rs).replicas ?? 0)),
      updatedReplicas: newRS ? Number(statusOf(newRS).replicas ?? 0) : 0,
      readyReplicas: sum((rs) => Number(statusOf(rs).readyReplicas ?? 0)),
      availableReplicas: available,
      unavailableReplicas: Math.max(0, sum(replicasOf) - available),
    };
    if (old.collisionCount !== undefined) status.collisionCount = old.collisionCount;
    let conditions = (old.conditions ?? []) as Condition[];
    const avail = available >= replicas - this.limits(d).maxUnavailable;
    const setIfChanged = (c: Condition) => {
      const cur = getCondition(conditions, c.type);
      if (cur && cur.status === c.status && cur.reason === c.reason) return;
      conditions = setCondition(conditions, c, now, { updateTime: true });
    };
    setIfChanged(
      avail
        ? { type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable', message: 'Deployment has minimum availability.' }
        : { type: 'Available', status: 'False', reason: 'MinimumReplicasUnavailable', message: 'Deployment does not have minimum availability.' },
    );
    const deadline = spec(d).progressDeadlineSeconds;
    if (deadline === undefined) conditions = conditions.filter((c) => c.type !== 'Progressing');
    const cur = getCondition(conditions, 'Progressing');
    const complete = status.updatedReplicas === replicas && status.replicas === replicas && status.availableReplicas === replicas && Number(status.observedGeneration) >= Number(meta(d).generation ?? 0);
    const isComplete = status.replicas === status.updatedReplicas && cur?.reason === 'NewReplicaSetAvailable';
    const what = newRS ? `ReplicaSet "${nameOf(newRS)}"` : `Deployment "${nameOf(d)}"`;
    if (deadline !== undefined && !isComplete && !deleting(d)) {
      const oldOld = Number(old.replicas ?? 0) - Number(old.updatedReplicas ?? 0);
      const newOld = status.replicas - status.updatedReplicas;
      const progressing =
        status.updatedReplicas > Number(old.updatedReplicas ?? 0) || newOld < oldOld || status.readyReplicas > Number(old.readyReplicas ?? 0) || status.availableReplicas > Number(old.availableReplicas ?? 0);
      if (complete) setIfChanged({ type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable', message: `${what} has successfully progressed.` });
      else if (progressing) {
        conditions = conditions.filter((c) => c.type !== 'Progressing');
        conditions.push({ type: 'Progressing', status: 'True', lastUpdateTime: now, lastTransitionTime: cur?.status === 'True' ? cur.lastTransitionTime : now, reason: 'ReplicaSetUpdated', message: `${what} is progressing.` });
      } else if (cur && cur.reason !== 'ProgressDeadlineExceeded') {
        const due = Date.parse(String(cur.lastUpdateTime ?? cur.lastTransitionTime)) + Number(deadline) * 1000;
        if (this.api.clock.now() > due) setIfChanged({ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded', message: `${what} has timed out progressing.` });
        else this.api.wakeAt(`deadline/${uidOf(d)}`, due + 1);
      }
    }
    if (conditions.length) status.conditions = conditions;
    for (const k of ['replicas', 'updatedReplicas', 'readyReplicas', 'availableReplicas', 'unavailableReplicas']) if (status[k] === 0) delete status[k];
    if (JSON.stringify(status) !== JSON.stringify(old)) this.api.updateStatus(this.deployments, d, status);
  }
}
