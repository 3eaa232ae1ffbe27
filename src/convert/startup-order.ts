// Compose `depends_on` → start order inside the one app pod. Kubernetes runs
// init containers one by one, and a *sidecar* (an init container with
// restartPolicy: Always, Kubernetes >= 1.29) lets the next one start as soon as
// it has started — after its startupProbe succeeds when it has one. So:
//   - a service others wait for (service_started / service_healthy) becomes a
//     sidecar; service_healthy turns its healthcheck into a startupProbe;
//   - a service others wait to *complete* (service_completed_successfully)
//     becomes a regular init container: it must exit 0 before the next starts;
//   - everything else stays a regular container and starts after all of them.
// Sidecars also stop after the regular containers, so a database outlives the
// app that writes to it. Without native sidecars (a server older than 1.29, as
// app deploy found it, or the cluster setting KOMPOX_SIDECARS=false) the
// services fall back to one flat container list, with warnings.
import type { ComposeProject, Healthcheck, ServiceDependency } from '../compose/model.js';
import type { AppContext } from '../domain/model.js';
import { nativeSidecars, type KubernetesVersion } from '../domain/kube-version.js';
import type { Diagnostics } from './diagnostics.js';

/** container: a regular container; sidecar: init container with restartPolicy Always; oneshot: init container run to completion. */
export type ServiceRole = 'container' | 'sidecar' | 'oneshot';

export interface StartupPlan {
  /** Every service's role. */
  roles: Map<string, ServiceRole>;
  /** Sidecar and one-shot services in start order (topological, ties broken by name). */
  initOrder: string[];
  /** Sidecars some service waits for with service_healthy and whose healthcheck can become a startupProbe. */
  healthGated: Set<string>;
}

export const SIDECARS_SETTING = 'KOMPOX_SIDECARS';

/** True when the healthcheck has a runnable test (not disabled, not NONE, not empty). */
export function hasHealthTest(hc: Healthcheck | undefined): boolean {
  if (!hc || hc.disable) return false;
  const test: unknown = hc.test;
  if (typeof test === 'string') return test.trim() !== '';
  if (!Array.isArray(test) || test.length === 0 || test[0] === 'NONE') return false;
  return !(test[0] === 'CMD' || test[0] === 'CMD-SHELL') || test.length > 1;
}

function healthDisabled(hc: Healthcheck | undefined): boolean {
  return Boolean(hc && (hc.disable || (Array.isArray(hc.test) && hc.test[0] === 'NONE')));
}

/** KOMPOX_SIDECARS as written: true, false, or undefined when not set (or not a boolean: an error). */
function sidecarsSetting(ctx: AppContext, diags: Diagnostics): boolean | undefined {
  const raw = ctx.cluster.settings?.[SIDECARS_SETTING];
  if (raw === undefined) return undefined;
  const v = String(raw).trim().toLowerCase();
  if (v === 'true' || v === '1' || v === 'yes') return true;
  if (v === 'false' || v === '0' || v === 'no') return false;
  diags.error({
    message: `cluster.settings.${SIDECARS_SETTING} "${raw}" is not true or false`,
    path: ['cluster', 'settings', SIDECARS_SETTING], key: `cluster.settings.${SIDECARS_SETTING}`,
    hint: 'Write "false" for clusters older than Kubernetes 1.29 (no native sidecars), or remove the setting.',
  });
  return undefined;
}

function hasDependencies(project: ComposeProject, services: string[]): boolean {
  return services.some((s) => deps(project, s).length > 0);
}

/**
 * Native sidecars or the flat layout, and why not: the setting decides when
 * set; otherwise the server's version (when known). Returns the reason for
 * the flat layout, or undefined for sidecars.
 */
function flatReason(ctx: AppContext, project: ComposeProject, services: string[], diags: Diagnostics, k: KubernetesVersion | undefined): string | undefined {
  const setting = sidecarsSetting(ctx, diags);
  if (setting === false) return `${SIDECARS_SETTING}=false`;
  const served = k ? nativeSidecars(k) : 'served';
  if (served === 'served' || !hasDependencies(project, services)) return undefined;
  const path = ['cluster', 'settings', SIDECARS_SETTING];
  if (setting === true) {
    // 1.28: the user says the SidecarContainers feature gate is on
    if (served === 'feature-gate') return undefined;
    diags.error({
      message: `cluster.settings.${SIDECARS_SETTING} is true, but the API server runs Kubernetes ${k!.gitVersion}, which has no native sidecars (init containers with restartPolicy: Always need Kubernetes 1.29, or 1.28 with the SidecarContainers feature gate); nothing was changed`,
      path, key: `cluster.settings.${SIDECARS_SETTING}`,
      hint: `Remove the setting (or write "false") to deploy without depends_on start order, or upgrade the cluster to Kubernetes 1.29 or later.`,
    });
    return undefined;
  }
  diags.warn({
    message: `the API server runs Kubernetes ${k!.gitVersion}, which has no native sidecars (init containers with restartPolicy: Always, Kubernetes 1.29 or later${served === 'feature-gate' ? '; 1.28 only with the SidecarContainers feature gate' : ''}): depends_on start order is not enforced, all services start together`,
    key: `cluster.settings.${SIDECARS_SETTING}`,
    hint:
      served === 'feature-gate'
        ? `If this cluster enables the SidecarContainers feature gate, set cluster.settings.${SIDECARS_SETTING}: "true"; otherwise upgrade to Kubernetes 1.29, or set it to "false" to say the flat layout is intended.`
        : `Upgrade the cluster to Kubernetes 1.29 or later for start order, or set cluster.settings.${SIDECARS_SETTING}: "false" to say the flat layout is intended.`,
  });
  return `Kubernetes ${k!.gitVersion} has no native sidecars`;
}

function deps(project: ComposeProject, service: string): [string, ServiceDependency][] {
  return Object.entries(project.services[service]?.depends_on ?? {})
    .filter(([d]) => project.services[d] !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** Without sidecars every service is a regular container; say which conditions are not enforced (and why: `reason`). */
function flatPlan(project: ComposeProject, services: string[], diags: Diagnostics, reason: string): StartupPlan {
  for (const service of services) {
    for (const [dep, d] of deps(project, service)) {
      const path = ['services', service, 'depends_on', dep];
      if (d.condition === 'service_healthy') {
        diags.warn({
          service, key: 'depends_on', path,
          message: `service "${service}": depends_on ${dep} (service_healthy) is not enforced (${reason}): all services start together in one pod`,
          hint: `Make "${service}" retry connecting to ${dep} until it is ready (${dep}'s readiness probe keeps traffic away until then).`,
        });
      } else if (d.condition === 'service_completed_successfully') {
        diags.warn({
          service, key: 'depends_on', path,
          message: `service "${service}": depends_on ${dep} (service_completed_successfully) is not enforced (${reason}): ${dep} runs as a regular container of the pod and is restarted whenever it exits`,
          hint: `Run one-off tasks with kompoxops app exec instead, or make ${dep} idempotent and long-running.`,
        });
      }
    }
  }
  return { roles: new Map(services.map((s) => [s, 'container'])), initOrder: [], healthGated: new Set() };
}

/** `kubernetes`: the target server's version when known (app deploy); absent, native sidecars are assumed. */
export function planStartup(ctx: AppContext, project: ComposeProject, services: string[], diags: Diagnostics, kubernetes?: KubernetesVersion): StartupPlan {
  const flat = flatReason(ctx, project, services, diags, kubernetes);
  if (flat) return flatPlan(project, services, diags, flat);
  // Who waits for whom, and how: dependency → [dependent, condition].
  const waiters = new Map<string, [string, ServiceDependency['condition']][]>();
  for (const service of services) {
    for (const [dep, d] of deps(project, service)) {
      if (!waiters.has(dep)) waiters.set(dep, []);
      waiters.get(dep)!.push([service, d.condition]);
    }
  }
  const roles = new Map<string, ServiceRole>();
  const healthGated = new Set<string>();
  for (const service of services) {
    const w = waiters.get(service);
    if (!w) {
      roles.set(service, 'container');
      continue;
    }
    const svc = project.services[service]!;
    const completers = w.filter(([, c]) => c === 'service_completed_successfully').map(([s]) => s);
    if (completers.length) {
      roles.set(service, 'oneshot');
      for (const [s, c] of w) {
        if (c !== 'service_healthy') continue;
        diags.warn({
          service: s, key: 'depends_on', path: ['services', s, 'depends_on', service],
          message: `service "${s}": depends_on ${service} (service_healthy) cannot wait for health: "${completers[0]}" waits for ${service} to complete, so ${service} runs to completion before the other services start`,
          hint: `Use condition: service_completed_successfully for ${service} in "${s}" too.`,
        });
      }
      if ((svc.ports?.length ?? 0) > 0 || (svc.expose?.length ?? 0) > 0) {
        diags.warn({
          service, key: svc.ports?.length ? 'ports' : 'expose',
          message: `service "${service}" runs to completion before the app starts (service_completed_successfully from "${completers[0]}"), so nothing listens on its ports once the app runs`,
          hint: `Remove the ports of ${service}, or use condition: service_started if it is a long-running server.`,
        });
      }
      continue;
    }
    roles.set(service, 'sidecar');
    const healthy = w.filter(([, c]) => c === 'service_healthy').map(([s]) => s);
    if (!healthy.length) continue;
    const hc = svc.healthcheck;
    if (hasHealthTest(hc)) {
      healthGated.add(service);
    } else if (healthDisabled(hc)) {
      // docker compose up refuses this too ("container ... has no healthcheck configured").
      for (const s of healthy) {
        diags.error({
          service: s, key: 'depends_on', path: ['services', s, 'depends_on', service],
          message: `service "${s}": depends_on ${service} (service_healthy), but ${service}'s healthcheck is disabled, so it never becomes healthy (docker compose up fails the same way)`,
          hint: `Give ${service} a healthcheck test, or use condition: service_started.`,
        });
      }
    } else {
      // The image may have a HEALTHCHECK (compose would use it), but Kubernetes cannot see it.
      for (const s of healthy) {
        diags.warn({
          service: s, key: 'depends_on', path: ['services', s, 'depends_on', service],
          message: `service "${s}": depends_on ${service} (service_healthy) is enforced as start order only: ${service} has no healthcheck test in the compose file (an image HEALTHCHECK is invisible to Kubernetes), so "${s}" starts once ${service} has started`,
          hint: `Add a healthcheck with a test to ${service}; it becomes ${service}'s startupProbe.`,
        });
      }
    }
  }
  return { roles, initOrder: topoOrder(project, services.filter((s) => roles.get(s) !== 'container')), healthGated };
}

/** Kahn's algorithm over the init services; among the ready ones the smallest name goes first. */
function topoOrder(project: ComposeProject, init: string[]): string[] {
  const set = new Set(init);
  const pending = new Map(init.map((s) => [s, new Set(deps(project, s).map(([d]) => d).filter((d) => set.has(d)))]));
  const order: string[] = [];
  while (pending.size) {
    const ready = [...pending.keys()].filter((s) => pending.get(s)!.size === 0).sort();
    // A cycle is rejected by the compose loader; should one slip through, keep the rest in name order.
    const next = ready[0] ?? [...pending.keys()].sort()[0]!;
    order.push(next);
    pending.delete(next);
    for (const d of pending.values()) d.delete(next);
  }
  return order;
}
