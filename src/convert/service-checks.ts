// Service-level checks that are more than a policy-table row: image/build,
// network_mode, restart, static IPs, deploy keys (depends_on: startup-order.ts).
import type { ServiceConfig } from '../compose/model.js';
import type { Diagnostics } from './diagnostics.js';
import { byKey } from './pod-state.js';
import type { ServiceRole } from './startup-order.js';

/** Service-level checks that are more than a policy-table row. */
export function checkService(service: string, svc: ServiceConfig, diags: Diagnostics, role: ServiceRole = 'container'): void {
  if (!svc.image) {
    diags.error({
      service, key: svc.build ? 'build' : 'image',
      message: `service "${service}" has ${svc.build ? 'build: but no image:' : 'no image:'}; the cluster cannot build images`,
      hint: `Add image: <registry>/<name>:<tag> to service "${service}" and push the built image there (docker compose build && docker compose push).`,
    });
  } else if (svc.build) {
    diags.warn({ service, key: 'build', message: `service "${service}": build is ignored; the cluster pulls image ${svc.image}`, hint: 'Push the image after building it (docker compose push).' });
  }
  const nm = svc.network_mode;
  if (nm === 'host') {
    diags.error({
      service, key: 'network_mode',
      message: `service "${service}": network_mode: host is not allowed: the host network breaks tenant isolation and nodes are shared`,
      hint: 'Remove network_mode: host and publish the ports the app needs under ports:.',
    });
  } else if (nm !== undefined && nm !== 'bridge' && nm !== 'default' && !nm.startsWith('service:') && !nm.startsWith('container:')) {
    diags.warn({ service, key: 'network_mode', message: `service "${service}": network_mode: ${nm} is ignored; the service shares the pod network` });
  }
  // A one-shot init container runs once to success (a failed run is retried): what restart: no / on-failure mean for a setup task.
  if (role !== 'oneshot' && svc.restart !== undefined && (svc.restart === 'no' || svc.restart.startsWith('on-failure'))) {
    diags.warn({
      service, key: 'restart',
      message: `service "${service}": restart: ${svc.restart} is not honoured; a Deployment's pod restarts every container that exits (restartPolicy Always)`,
    });
  }
  for (const [net, cfg] of Object.entries(svc.networks ?? {}).sort(byKey(([k]) => k))) {
    for (const k of ['ipv4_address', 'ipv6_address'] as const) {
      if (cfg?.[k]) {
        diags.warn({
          service, key: 'networks', path: ['services', service, 'networks', net, k],
          message: `service "${service}": networks.${net}.${k} ${cfg[k]} is ignored (pod IPs are assigned by the cluster); other services reach it as localhost or by its service name`,
        });
      }
    }
  }
  const deploy = svc.deploy ?? {};
  for (const k of Object.keys(deploy).sort()) {
    if (k === 'resources') continue;
    if (k === 'replicas' && (deploy.replicas === undefined || deploy.replicas === 1)) continue;
    diags.warn({
      service, key: 'deploy', path: ['services', service, 'deploy', k],
      message: `service "${service}": deploy.${k} is ignored${k === 'replicas' ? ' (the app runs as one pod with one replica: its disk is ReadWriteOnce)' : ''}`,
    });
  }
  if (deploy.resources?.limits?.pids !== undefined) {
    diags.warn({ service, key: 'deploy', message: `service "${service}": deploy.resources.limits.pids is ignored (PID limits are set by the cluster)` });
  }
}
