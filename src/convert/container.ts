// One compose service → one container of the app pod (the fields that belong
// to the container itself; volumes, env, probes and ports come from their modules).
import type { ServiceConfig } from '../compose/model.js';
import type { Diagnostics } from './diagnostics.js';
import { escapeDollars } from './env.js';

/** Capabilities Pod Security "baseline" allows to add; anything else may be refused by the cluster. */
export const BASELINE_CAPABILITIES: ReadonlySet<string> = new Set([
  'AUDIT_WRITE', 'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'MKNOD', 'NET_BIND_SERVICE', 'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYS_CHROOT',
]);

function capName(c: string): string {
  return c.trim().toUpperCase().replace(/^CAP_/, '');
}

export function containerBasics(service: string, svc: ServiceConfig, diags: Diagnostics): Record<string, unknown> {
  const c: Record<string, unknown> = {};
  c.image = svc.image;
  if (svc.pull_policy !== undefined) {
    const map: Record<string, string> = { always: 'Always', never: 'Never', missing: 'IfNotPresent', if_not_present: 'IfNotPresent' };
    const p = map[String(svc.pull_policy)];
    if (p) c.imagePullPolicy = p;
    else diags.warn({ service, key: 'pull_policy', message: `service "${service}": pull_policy ${String(svc.pull_policy)} is ignored (the cluster pulls the image; it never builds)` });
  }
  // Docker ENTRYPOINT = Kubernetes command; Docker CMD = Kubernetes args.
  if (Array.isArray(svc.entrypoint)) c.command = svc.entrypoint.map(escapeDollars);
  if (Array.isArray(svc.command)) c.args = svc.command.map(escapeDollars);
  if (svc.working_dir) c.workingDir = svc.working_dir;
  if (svc.tty) c.tty = true;
  if (svc.stdin_open) c.stdin = true;

  const sc: Record<string, unknown> = {};
  if (svc.user !== undefined && svc.user !== '') {
    const m = /^(\d+)(?::(\d+))?$/.exec(String(svc.user).trim());
    if (m) {
      sc.runAsUser = Number(m[1]);
      if (m[2] !== undefined) sc.runAsGroup = Number(m[2]);
    } else {
      diags.warn({
        service, key: 'user',
        message: `service "${service}": user "${svc.user}" is a name; Kubernetes needs a numeric uid, so the image's default user is used`,
        hint: 'Write the numeric uid[:gid] (e.g. user: "999:999") to run as that user.',
      });
    }
  }
  const add = [...new Set((svc.cap_add ?? []).map(capName))].sort();
  const drop = [...new Set((svc.cap_drop ?? []).map(capName))].sort();
  if (add.length || drop.length) sc.capabilities = { ...(add.length ? { add } : {}), ...(drop.length ? { drop } : {}) };
  const beyond = add.filter((a) => !BASELINE_CAPABILITIES.has(a));
  if (beyond.length) {
    diags.warn({
      service, key: 'cap_add',
      message: `service "${service}": cap_add ${beyond.join(', ')} goes beyond the Pod Security baseline; a cluster that enforces it refuses the pod`,
    });
  }
  if (svc.read_only) sc.readOnlyRootFilesystem = true;
  if (Object.keys(sc).length) c.securityContext = sc;
  return c;
}
