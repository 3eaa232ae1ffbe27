// Compute resources. Per container from compose (deploy.resources, mem_limit,
// cpus, mem_reservation); app.resources (cpu, memory) is the pod's budget:
// what the compose values leave of it is split evenly over the containers that
// have no value of their own (cpu → requests only, so nothing is throttled;
// memory → request and limit, so the pod never exceeds its budget).
// Kubernetes' effective pod request is max(sum of regular containers and
// sidecars, each run-to-completion init container + the sidecars started before
// it), so the budget is split over the steady-state containers (regular and
// sidecar); a one-shot init container without values of its own gets what the
// sidecars started before it leave of the budget (it runs alone with them).
import type { AppContext } from '../domain/model.js';
import type { ServiceConfig } from '../compose/model.js';
import type { Diagnostics } from './diagnostics.js';
import type { ServiceRole } from './startup-order.js';
import { bytesQuantity, milliQuantity, parseBytes, parseCpus, parseQuantity } from './units.js';

export interface ContainerResources {
  limits?: { cpu?: string; memory?: string };
  requests?: { cpu?: string; memory?: string };
}

interface Explicit {
  limitCpu?: number; // millicores
  reqCpu?: number;
  limitMem?: number; // bytes
  reqMem?: number;
}

function explicitResources(service: string, svc: ServiceConfig, diags: Diagnostics): Explicit {
  const r = svc.deploy?.resources;
  const out: Explicit = {};
  const cpu = (v: string | number | undefined, key: string): number | undefined => {
    if (v === undefined) return undefined;
    const n = parseCpus(v);
    if (n === undefined) diags.error({ service, key, message: `service "${service}": ${key} "${v}" is not a CPU count`, hint: 'Write e.g. 0.5 or 2.' });
    return n;
  };
  const mem = (v: string | number | undefined, key: string): number | undefined => {
    if (v === undefined) return undefined;
    const n = parseBytes(v);
    if (n === undefined) diags.error({ service, key, message: `service "${service}": ${key} "${v}" is not a memory size`, hint: 'Write e.g. 512m or 1g.' });
    return n;
  };
  out.limitCpu = cpu(r?.limits?.cpus, 'deploy') ?? cpu(svc.cpus, 'cpus');
  out.reqCpu = cpu(r?.reservations?.cpus, 'deploy');
  out.limitMem = mem(r?.limits?.memory, 'deploy') ?? mem(svc.mem_limit, 'mem_limit');
  out.reqMem = mem(r?.reservations?.memory, 'deploy') ?? mem(svc.mem_reservation as string | number | undefined, 'mem_reservation');
  return out;
}

/** Resources per service (by name); services without any get no entry. */
export function convertResources(
  ctx: AppContext,
  project: { services: Record<string, ServiceConfig> },
  all: string[],
  diags: Diagnostics,
  startup: { roles: ReadonlyMap<string, ServiceRole>; initOrder: readonly string[] } = { roles: new Map(), initOrder: [] },
): Map<string, ContainerResources> {
  const explicit = new Map(all.map((s) => [s, explicitResources(s, project.services[s]!, diags)]));
  const role = (s: string) => startup.roles.get(s) ?? 'container';
  // steady state: what runs once the pod is up
  const services = all.filter((s) => role(s) !== 'oneshot');
  const oneshots = startup.initOrder.filter((s) => role(s) === 'oneshot');
  const sidecarsBefore = (s: string) => startup.initOrder.slice(0, startup.initOrder.indexOf(s)).filter((x) => role(x) === 'sidecar');
  const budget = ctx.app.resources ?? {};
  let cpuBudget: number | undefined;
  let memBudget: number | undefined;
  for (const key of Object.keys(budget).sort()) {
    const v = String(budget[key]);
    const q = parseQuantity(v);
    if (key !== 'cpu' && key !== 'memory') {
      diags.warn({ message: `app.resources.${key} is not supported and is ignored`, path: ['app', 'resources', key], hint: 'Use cpu and memory.' });
    } else if (q === undefined || q <= 0) {
      diags.error({ message: `app.resources.${key} "${v}" is not a Kubernetes quantity`, path: ['app', 'resources', key], key: `app.resources.${key}`, hint: key === 'cpu' ? 'Write e.g. 500m or 2.' : 'Write e.g. 512Mi or 2Gi.' });
    } else if (key === 'cpu') cpuBudget = Math.round(q * 1000);
    else memBudget = Math.floor(q);
  }
  if (cpuBudget !== undefined) {
    const without = services.filter((s) => explicit.get(s)!.reqCpu === undefined);
    const used = services.reduce((a, s) => a + (explicit.get(s)!.reqCpu ?? 0), 0);
    if (used > cpuBudget) diags.warn({ message: `the services request ${milliQuantity(used)} CPU, more than app.resources.cpu ${budget.cpu}`, path: ['app', 'resources', 'cpu'] });
    if (without.length) {
      const share = Math.max(1, Math.floor((cpuBudget - Math.min(used, cpuBudget)) / without.length));
      for (const s of without) explicit.get(s)!.reqCpu = share;
    }
    for (const s of oneshots) {
      const e = explicit.get(s)!;
      if (e.reqCpu === undefined) e.reqCpu = Math.max(1, cpuBudget - sidecarsBefore(s).reduce((a, x) => a + (explicit.get(x)!.reqCpu ?? 0), 0));
    }
  }
  if (memBudget !== undefined) {
    const has = (e: Explicit) => e.limitMem !== undefined || e.reqMem !== undefined;
    const without = services.filter((s) => !has(explicit.get(s)!));
    const used = services.reduce((a, s) => a + (explicit.get(s)!.limitMem ?? explicit.get(s)!.reqMem ?? 0), 0);
    if (used > memBudget) diags.warn({ message: `the services' memory limits add up to ${bytesQuantity(used)}, more than app.resources.memory ${budget.memory}`, path: ['app', 'resources', 'memory'] });
    if (without.length) {
      const mi = 1024 * 1024;
      const share = Math.max(mi, Math.floor((memBudget - Math.min(used, memBudget)) / without.length / mi) * mi);
      for (const s of without) {
        explicit.get(s)!.reqMem = share;
        explicit.get(s)!.limitMem = share;
      }
    }
    for (const s of oneshots) {
      const e = explicit.get(s)!;
      if (has(e)) continue;
      const mi = 1024 * 1024;
      const left = memBudget - sidecarsBefore(s).reduce((a, x) => a + (explicit.get(x)!.limitMem ?? explicit.get(x)!.reqMem ?? 0), 0);
      e.reqMem = e.limitMem = Math.max(mi, Math.floor(left / mi) * mi);
    }
  }
  const out = new Map<string, ContainerResources>();
  for (const s of all) {
    const e = explicit.get(s)!;
    // A request above the limit is invalid; a budget share never exceeds the service's own limit.
    if (e.reqCpu !== undefined && e.limitCpu !== undefined && e.reqCpu > e.limitCpu) e.reqCpu = e.limitCpu;
    if (e.reqMem !== undefined && e.limitMem !== undefined && e.reqMem > e.limitMem) e.reqMem = e.limitMem;
    const r: ContainerResources = {};
    if (e.limitCpu !== undefined || e.limitMem !== undefined) {
      r.limits = {};
      if (e.limitCpu !== undefined) r.limits.cpu = milliQuantity(e.limitCpu);
      if (e.limitMem !== undefined) r.limits.memory = bytesQuantity(e.limitMem);
    }
    if (e.reqCpu !== undefined || e.reqMem !== undefined) {
      r.requests = {};
      if (e.reqCpu !== undefined) r.requests.cpu = milliQuantity(e.reqCpu);
      if (e.reqMem !== undefined) r.requests.memory = bytesQuantity(e.reqMem);
    }
    if (r.limits || r.requests) out.set(s, r);
  }
  return out;
}
