// Running the commands of some pods for real (the fake kubelet's container
// runtime for `exec`): a pod whose image this machine can stand in for
// (busybox images by default: the helper pods Kompox starts to move data)
// and whose volumes are PersistentVolumes it can map to directories here
// (a `local` or `hostPath` PV, or a CSI volume of a driver registered with
// registerCsiDriver) gets its exec'd command run on this machine, with
//   - a root filesystem of its own: a private mount namespace (`unshare -m`)
//     with a tmpfs root holding the host's /usr, /lib*, /etc read-only and,
//     for busybox images when /usr/bin/busybox is installed, a /bin of
//     busybox applets only (PATH=/bin), so the command meets busybox's tar,
//     sh, find, stat as in the real image; otherwise the host's tools;
//   - every volume bind-mounted at its mountPath, read-only where the
//     volumeMount, the claim or the PV says so; readOnlyRootFilesystem honoured;
//   - the container's user and capabilities (runAsUser/runAsGroup,
//     capabilities drop/add, allowPrivilegeEscalation: false → no_new_privs)
//     through setpriv, so a pod that lacks a capability fails here as it
//     would on a node.
// Without `unshare` (not root, no mount namespaces) the fallback maps paths:
// every mountPath in the command's arguments is replaced by its directory
// and the command runs as this process's user; read-only mounts, the user and
// capabilities are then NOT enforced (`hostExecSupport().mode === 'paths'`;
// tests that depend on them skip with that reason).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Obj } from './store.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = Record<string, any>;

/** What a CSI driver tells the fake about its volumes (the reference block-storage driver registers one). */
export interface CsiVolumeHost {
  /** The directory on this machine that holds the volume's filesystem; undefined when the driver does not know the handle. */
  path(handle: string): string | undefined;
  /**
   * The attach/detach controller attaching the volume to `node` before a pod
   * there mounts it. Throws (the message becomes the FailedAttachVolume
   * event) when the volume cannot be attached, e.g. a ReadWriteOnce disk
   * attached to another node (Multi-Attach).
   */
  attach?(handle: string, node: string): void;
  /** The volume is detached from `node` (no pod there uses it any more). */
  detach?(handle: string, node: string): void;
}

/** How images are stood in for: `busybox` (busybox applets, host tools when busybox is not installed) or `host` (this machine's tools). */
export type Toolbox = 'busybox' | 'host';

export interface HostMount {
  /** Directory on this machine. */
  source: string;
  /** mountPath in the container. */
  target: string;
  readOnly: boolean;
}

export interface HostExecPlan {
  mounts: HostMount[];
  toolbox: Toolbox;
  uid: number;
  gid: number;
  /** Capabilities the process keeps (lower case, without `cap_`). */
  capabilities: string[];
  noNewPrivs: boolean;
  readOnlyRoot: boolean;
  env: Record<string, string>;
}

export const BUSYBOX = '/usr/bin/busybox';

/** The default for which images run on this machine: busybox images (any registry, tag or digest). */
export function defaultHostImage(image: string): Toolbox | undefined {
  const repo = image.replace(/@.*$/, '').replace(/:[^/:]*$/, '');
  return /(^|\/)busybox$/.test(repo) ? 'busybox' : undefined;
}

/** Linux's default capability set of a container runtime (containerd/CRI-O), which `drop`/`add` change. */
const DEFAULT_CAPS = ['chown', 'dac_override', 'fowner', 'fsetid', 'kill', 'setgid', 'setuid', 'setpcap', 'net_bind_service', 'net_raw', 'sys_chroot', 'mknod', 'audit_write', 'setfcap'];

function capName(c: string): string {
  return String(c).toLowerCase().replace(/^cap_/, '');
}

/** The capabilities a container's securityContext leaves it (containerd's rules: drop ALL, then add). */
export function effectiveCaps(sc: Any | undefined): string[] {
  const drop = ((sc?.capabilities?.drop ?? []) as string[]).map(capName);
  const add = ((sc?.capabilities?.add ?? []) as string[]).map(capName);
  const base = drop.includes('all') ? [] : DEFAULT_CAPS.filter((c) => !drop.includes(c));
  return [...new Set([...base, ...add.filter((c) => c !== 'all')])].sort();
}

export interface HostExecSupport {
  mode: 'namespace' | 'paths';
  /** Why the namespace mode is not available (paths mode). */
  reason?: string;
}

let support: HostExecSupport | undefined;

/** Whether commands run in a private mount namespace here (root, unshare, mount, setpriv) or by path mapping. */
export function hostExecSupport(): HostExecSupport {
  if (support) return support;
  if (process.getuid?.() !== 0) return (support = { mode: 'paths', reason: 'not running as root (mount namespaces need it)' });
  for (const tool of ['unshare', 'setpriv', 'chroot', 'mount']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status !== 0) return (support = { mode: 'paths', reason: `${tool} is not installed` });
  }
  const dir = mkdtempSync(join(tmpdir(), 'fake-kubelet-probe-'));
  try {
    const r = spawnSync('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', `mount -t tmpfs probe '${dir}'`], { encoding: 'utf8' });
    support = r.status === 0 ? { mode: 'namespace' } : { mode: 'paths', reason: `unshare -m does not work here: ${(r.stderr || r.error?.message || '').trim()}` };
  } finally {
    rmdirSync(dir);
  }
  return support;
}

/** The script run inside the new mount namespace: builds the root, mounts the volumes, drops privileges, execs. */
const NAMESPACE_SCRIPT = `set -e
R=$1; TOOLBOX=$2; RO_ROOT=$3; shift 3
mount -t tmpfs -o mode=0755 kompox-fake-root "$R"
for d in usr lib lib32 lib64 libx32 etc bin sbin; do
  if [ "$TOOLBOX" = busybox ] && { [ "$d" = bin ] || [ "$d" = sbin ]; }; then continue; fi
  if [ -L "/$d" ]; then cp -P "/$d" "$R/$d"
  elif [ -d "/$d" ]; then mkdir "$R/$d"; mount --rbind "/$d" "$R/$d"; mount -o remount,bind,ro "$R/$d"
  fi
done
if [ "$TOOLBOX" = busybox ]; then
  mkdir "$R/bin"
  for a in $(${BUSYBOX} --list); do ln -s ${BUSYBOX} "$R/bin/$a"; done
  ln -s bin "$R/sbin"
fi
mkdir -p "$R/dev" "$R/proc" "$R/tmp" "$R/root"
mount --rbind /dev "$R/dev"
mount -t proc proc "$R/proc"
if [ "$RO_ROOT" != 1 ]; then mount -t tmpfs tmpfs "$R/tmp"; fi
while [ "$1" != -- ]; do
  mkdir -p "$R$2"
  mount --bind "$1" "$R$2"
  if [ "$3" = ro ]; then mount -o remount,bind,ro "$R$2"; fi
  shift 3
done
shift
if [ "$RO_ROOT" = 1 ]; then mount -o remount,ro "$R"; fi
exec chroot "$R" "$@"
`;

/**
 * Starts `command` as the plan says. The child is the leader of its own
 * process group (kill the group to stop it); `cleanup` removes the empty
 * directory the root was mounted on once it has exited.
 */
export function spawnHostExec(plan: HostExecPlan, command: string[]): { child: ChildProcess; cleanup(): void } {
  const mode = hostExecSupport().mode;
  const toolbox: Toolbox = plan.toolbox === 'busybox' && existsSync(BUSYBOX) ? 'busybox' : 'host';
  const path = toolbox === 'busybox' ? '/bin' : '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  const env = { ...plan.env, PATH: plan.env.PATH ?? path, HOME: plan.uid === 0 ? '/root' : '/' };
  if (mode === 'paths') {
    // no mount namespace: rewrite the mount paths in the arguments (longest first)
    const mounts = [...plan.mounts].sort((a, b) => b.target.length - a.target.length);
    const args = command.map((a) => mounts.reduce((s, m) => s.split(m.target).join(m.source), a));
    const child = spawn(args[0]!, args.slice(1), { env: { ...env, PATH: process.env.PATH ?? path }, stdio: 'pipe', detached: true });
    return { child, cleanup: () => undefined };
  }
  const root = mkdtempSync(join(tmpdir(), 'fake-kubelet-root-'));
  const mountArgs = plan.mounts.flatMap((m) => [m.source, m.target, m.readOnly ? 'ro' : 'rw']);
  const bounding = ['-all', ...plan.capabilities.map((c) => `+${c}`)].join(',');
  const setpriv = [
    '/usr/bin/setpriv',
    `--reuid=${plan.uid}`,
    `--regid=${plan.gid}`,
    '--clear-groups',
    `--bounding-set=${bounding}`,
    '--inh-caps=-all',
    ...(plan.noNewPrivs ? ['--no-new-privs'] : []),
    '--',
    '/usr/bin/env',
    '-i',
    ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
    ...command,
  ];
  const child = spawn('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', NAMESPACE_SCRIPT, 'sh', root, toolbox, plan.readOnlyRoot ? '1' : '0', ...mountArgs, '--', ...setpriv], {
    stdio: 'pipe',
    detached: true,
  });
  return {
    child,
    cleanup: () => {
      try {
        rmdirSync(root);
      } catch {
        // still mounted by a process that has not exited yet: the temp dir stays (empty)
      }
    },
  };
}

/** Why a pod's volume cannot be mapped to a directory here, or the mount. */
export function volumeDirectory(
  pod: Obj,
  volumeName: string,
  lookup: { pvc(ns: string, name: string): Obj | undefined; pv(name: string): Obj | undefined; csi(driver: string): CsiVolumeHost | undefined },
): { dir: string; readOnly: boolean } | { problem: string } {
  const spec = (pod.spec ?? {}) as Any;
  const v = ((spec.volumes ?? []) as Any[]).find((x) => x.name === volumeName);
  if (!v) return { problem: `volume ${volumeName} is not in the pod` };
  if (!v.persistentVolumeClaim) return { problem: `volume ${volumeName} is not a PersistentVolumeClaim` };
  const ns = String((pod.metadata as Any).namespace);
  const claim = lookup.pvc(ns, String(v.persistentVolumeClaim.claimName));
  const pvName = (claim?.spec as Any | undefined)?.volumeName;
  const pv = pvName ? lookup.pv(String(pvName)) : undefined;
  if (!pv) return { problem: `claim ${v.persistentVolumeClaim.claimName} is not bound to a PersistentVolume` };
  const ps = (pv.spec ?? {}) as Any;
  let dir: string | undefined;
  let readOnly = Boolean(v.persistentVolumeClaim.readOnly);
  if (ps.local?.path) dir = String(ps.local.path);
  else if (ps.hostPath?.path) dir = String(ps.hostPath.path);
  else if (ps.csi?.driver) {
    const host = lookup.csi(String(ps.csi.driver));
    if (!host) return { problem: `CSI driver ${ps.csi.driver} is not registered with the fake` };
    dir = host.path(String(ps.csi.volumeHandle));
    readOnly ||= Boolean(ps.csi.readOnly);
    if (!dir) return { problem: `CSI driver ${ps.csi.driver} knows no volume ${ps.csi.volumeHandle}` };
  } else return { problem: `PersistentVolume ${pvName} has no source the fake can map` };
  try {
    if (!statSync(dir).isDirectory()) return { problem: `${dir} is not a directory` };
  } catch {
    return { problem: `${dir} does not exist` };
  }
  return { dir, readOnly };
}
