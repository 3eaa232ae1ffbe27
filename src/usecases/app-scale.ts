// Stopping the app (its Deployments scaled to 0, waiting until its pods are
// gone) and starting it again with the replica counts it had: the steps of a
// maintenance box, which spans commands (the counts are recorded in between),
// and of snapshot.ts's withAppStopped, which does them within one call.
import { KompoxError } from '../domain/errors.js';
import { logEvent, sleep, throwIfAborted, type Op } from '../domain/events.js';
import type { AppContext } from '../domain/model.js';
import { APP_SELECTOR_LABEL, appNamespace } from '../domain/names.js';
import type { KubeClient, KubeObject } from '../domain/ports/kube.js';

const deploymentRef = (ctx: AppContext, name: string) => ({ apiVersion: 'apps/v1', kind: 'Deployment', name, namespace: appNamespace(ctx) });

/** The app's Deployments and their replica counts now, by name. */
export async function appReplicas(kube: KubeClient, ctx: AppContext): Promise<Record<string, number>> {
  const ns = appNamespace(ctx);
  const deps = await kube.list('apps/v1', 'Deployment', { namespace: ns, labelSelector: `app.kubernetes.io/instance=${ns}` });
  return Object.fromEntries(
    deps
      .map((d: KubeObject) => [d.metadata.name, ((d.spec as { replicas?: number } | undefined)?.replicas ?? 1) as number] as const)
      .sort(([a], [b]) => (a < b ? -1 : 1)),
  );
}

/** Scales each named Deployment to its count (those that no longer exist are skipped); `verb` words the log line. */
export async function scaleApp(kube: KubeClient, ctx: AppContext, replicas: Record<string, number>, op: Op, verb: 'stopping' | 'started'): Promise<void> {
  const now = await appReplicas(kube, ctx);
  for (const [name, count] of Object.entries(replicas)) {
    if (now[name] === undefined || now[name] === count) continue;
    await kube.mergePatch(deploymentRef(ctx, name), { spec: { replicas: count } });
    logEvent(op, verb === 'stopping' ? `stopping ${name} (replicas ${now[name]} → ${count})` : `started ${name} again (replicas ${count})`);
  }
}

/**
 * Waits until the app has no pod left (Terminating ones included); `what`
 * says, on a timeout (`code`, `hint`) or a cancel (`interrupted`), what was
 * (not) done.
 */
export async function waitAppStopped(
  kube: KubeClient,
  ctx: AppContext,
  timeoutMs: number,
  op: Op,
  what: { code: string; hint: string; interrupted?: string },
): Promise<void> {
  const ns = appNamespace(ctx);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    throwIfAborted(op, what.interrupted);
    const pods = await kube.list('v1', 'Pod', { namespace: ns, labelSelector: `${APP_SELECTOR_LABEL}=${ns}` });
    if (pods.length === 0) return;
    if (Date.now() > deadline) {
      throw new KompoxError('timeout', `the app's pod did not stop in time (${pods.map((p) => p.metadata.name).join(', ')} still there)`, { code: what.code, hint: what.hint });
    }
    await sleep(250, op).catch(() => throwIfAborted(op, what.interrupted));
  }
}
