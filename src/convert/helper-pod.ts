// The helper pod: a short-lived pod in an app's namespace that mounts some of
// the app's disks, for Kompox's own work on them: moving data through the
// cluster (src/usecases/transfer.ts: export, import, snapshot export) and,
// later, the maintenance box. Pure: options in, objects out; running it is
// src/usecases/helper-pod.ts.
//
// What it is, and why:
//   - each disk through its own statically bound PV/PVC pair, built as the
//     app's are (staticBinding: same PV source, reclaim policy Retain, so
//     deleting the pair never deletes the disk), named after the pod so the
//     app's own pair and a running deploy are never touched;
//   - the pinned, overridable helper image (domain/images.ts) running
//     nothing but a wait: Kompox execs the commands, their data travels over
//     the API server's exec stream, so the pod listens on nothing, needs no
//     Service and no change to the namespace's NetworkPolicy, and gets no
//     service account token and no service links;
//   - as few privileges as the work allows: root (uid 0) only because
//     reading and restoring files of any owner needs it, every capability
//     dropped except the ones the purpose needs (reading: DAC_OVERRIDE on a
//     read-only mount; restoring: CHOWN, DAC_OVERRIDE, FOWNER, FSETID), no
//     privilege escalation, seccomp RuntimeDefault, a read-only root
//     filesystem; all within the Pod Security "baseline" level. With `user`
//     it runs as that user with every capability dropped ("restricted");
//   - pinned to a node when asked (a disk another pod uses can only be
//     mounted on that pod's node), and bounded: activeDeadlineSeconds ends
//     it even if Kompox goes away (the PV/PVC pair is swept later).
import type { AppVolume, Disk } from '../domain/model.js';
import { ANN_APP } from '../domain/model.js';
import { appId, appNamespace, shortHash } from '../domain/names.js';
import type { VolumeSourceSpec } from '../domain/ports/driver.js';
import type { KubeObject } from '../domain/ports/kube.js';
import type { AppContext } from '../domain/model.js';
import { staticBinding } from './storage.js';

/** Label on every helper object: its purpose (`transfer`, `box`...). */
export const HELPER_LABEL = 'kompox.dev/helper';
/** Label on a helper's PV/PVC: the pod they belong to (cleanup, leftovers). */
export const HELPER_POD_LABEL = 'kompox.dev/helper-pod';
export const HELPER_CONTAINER = 'helper';
/** Where disk i is mounted in the helper: /kompox/disks/{volume}. */
export const HELPER_MOUNT_ROOT = '/kompox/disks';

/** Capabilities per kind of work (Linux names, as in securityContext.capabilities.add). */
export const HELPER_CAPABILITIES = {
  /** Read every file of any owner and mode (the mount is read-only, so DAC_OVERRIDE cannot write). */
  read: ['DAC_OVERRIDE'],
  /** Write files and restore their owner, mode (setuid/setgid included) and times. */
  write: ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID'],
} as const;

export interface HelperDisk {
  volume: AppVolume;
  disk: Disk;
  /** The disk's PV source, from the driver's pvSource. */
  source: VolumeSourceSpec;
  readOnly: boolean;
}

export interface HelperPodOptions {
  /** What the pod is for: the `kompox.dev/helper` label and part of its name (`transfer`, `box`). */
  purpose: string;
  /** Unique part of the names (a random suffix). */
  id: string;
  image: string;
  disks: HelperDisk[];
  /** Capabilities to keep (HELPER_CAPABILITIES); ignored with `user`. */
  capabilities?: readonly string[];
  /** Run as this user and group, with no capability at all; default root with `capabilities`. */
  user?: { uid: number; gid: number };
  /** Only on this node (kubernetes.io/hostname). */
  node?: string;
  /** The pod ends after this many seconds whatever happens (default 24 h). */
  deadlineSeconds?: number;
  /** A human note recorded as an annotation (`export of disk x`). */
  description?: string;
  /** Memory limit (default 256Mi: tar streams, it does not buffer). */
  memoryLimit?: string;
}

export interface HelperPodObjects {
  pod: KubeObject;
  pvs: KubeObject[];
  pvcs: KubeObject[];
  /** Where each disk is mounted, in the order of `disks`. */
  mountPaths: string[];
}

/** The helper's memory limit: its commands stream (tar, sha256sum), they hold no data set in memory. */
export const HELPER_MEMORY_LIMIT = '256Mi';

/** How long a helper pod may live at most (activeDeadlineSeconds): a day. */
export const HELPER_DEADLINE_SECONDS = 24 * 3600;

/**
 * The command a helper waits with: nothing runs until Kompox execs; SIGTERM
 * ends it at once. It also ends by itself (exit 0: the pod Succeeded) once
 * nothing else has run in its container for `idleChecks` checks `periodS`
 * seconds apart. Kompox removes its helper when it is done, also after a
 * failure or Ctrl-C, but a Kompox that was killed (SIGKILL, a crash, the
 * workstation off or its connection gone for good) cannot: the pod then held
 * the disk attached to its node until its deadline, a day later, and on a
 * cloud a ReadWriteOnce disk attaches to one node at a time, so an app moved
 * to another node meanwhile could not start ("Multi-Attach error").
 *
 * Idle means the container's PID namespace (each container has its own,
 * and `kubectl exec`'s processes join it) holds no process but this shell:
 * while Kompox works there is always one (tar, its size walk, the checks;
 * a tar waiting for data or blocked writing counts). Where the shell cannot
 * tell (no /proc, or a shared process namespace with a pause process), it
 * never counts as idle and the deadline alone ends it. Orphans of an exec
 * are this shell's children once their parent dies, and `wait` reaps them.
 */
export function helperWaitCommand(periodS: number, idleChecks: number): string[] {
  const script = [
    'trap "exit 0" TERM',
    'idle=0',
    'while :; do',
    `  sleep ${periodS} & wait $!`,
    // -1: /proc says nothing (not mounted): never idle
    '  others=-1',
    '  for d in /proc/[0-9]*; do',
    '    [ -d "$d" ] || break',
    '    [ "$others" = -1 ] && others=0',
    '    [ "${d#/proc/}" = "$$" ] || others=$((others + 1))',
    '  done',
    '  if [ "$others" = 0 ]; then idle=$((idle + 1)); else idle=0; fi',
    `  [ "$idle" -ge ${idleChecks} ] && exit 0`,
    'done',
  ].join('\n');
  return ['sh', '-c', script];
}

/** How often the helper looks for work, and how many looks without any end it: 15 minutes idle. */
export const HELPER_IDLE_CHECK_S = 60;
export const HELPER_IDLE_CHECKS = 15;

/** The command the helper waits with (helperWaitCommand). */
export const HELPER_WAIT = helperWaitCommand(HELPER_IDLE_CHECK_S, HELPER_IDLE_CHECKS);

export function helperPodObjects(ctx: AppContext, o: HelperPodOptions): HelperPodObjects {
  const ns = appNamespace(ctx);
  const podName = `kompox-${o.purpose}-${o.id}`;
  const labels = { 'app.kubernetes.io/managed-by': 'kompox', 'app.kubernetes.io/name': ctx.app.name, [HELPER_LABEL]: o.purpose };
  const annotations: Record<string, string> = { [ANN_APP]: appId(ctx), ...(o.description ? { 'kompox.dev/description': o.description } : {}) };
  const pvs: KubeObject[] = [];
  const pvcs: KubeObject[] = [];
  const mounts: Record<string, unknown>[] = [];
  const volumes: Record<string, unknown>[] = [];
  const mountPaths: string[] = [];
  o.disks.forEach((d, i) => {
    // a cluster-wide name: the namespace, the pod's id and the disk
    const { pv, pvc } = staticBinding({
      pvName: `${ns}-${o.purpose}-${o.id}-${i}-${shortHash(d.disk.id, 6)}`,
      claim: `${podName}-${i}`,
      namespace: ns,
      capacityGiB: d.disk.sizeGiB,
      source: d.source,
      pvLabels: { ...labels, [HELPER_POD_LABEL]: podName },
      pvAnnotations: { ...annotations, 'kompox.dev/disk': d.disk.name },
      pvcLabels: { ...labels, [HELPER_POD_LABEL]: podName },
    });
    pvs.push(pv);
    pvcs.push(pvc);
    const name = `disk-${i}`;
    const mountPath = `${HELPER_MOUNT_ROOT}/${d.volume.name}${o.disks.filter((x) => x.volume.name === d.volume.name).length > 1 ? `-${i}` : ''}`;
    mountPaths.push(mountPath);
    volumes.push({ name, persistentVolumeClaim: { claimName: pvc.metadata.name, ...(d.readOnly ? { readOnly: true } : {}) } });
    mounts.push({ name, mountPath, ...(d.readOnly ? { readOnly: true } : {}) });
  });
  const user = o.user;
  const pod: KubeObject = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: podName, namespace: ns, labels: { ...labels }, annotations },
    spec: {
      restartPolicy: 'Never',
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      terminationGracePeriodSeconds: 5,
      activeDeadlineSeconds: o.deadlineSeconds ?? HELPER_DEADLINE_SECONDS,
      ...(o.node
        ? {
            affinity: {
              nodeAffinity: {
                requiredDuringSchedulingIgnoredDuringExecution: {
                  nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [o.node] }] }],
                },
              },
            },
          }
        : {}),
      securityContext: {
        runAsUser: user?.uid ?? 0,
        runAsGroup: user?.gid ?? 0,
        runAsNonRoot: user !== undefined && user.uid !== 0,
        seccompProfile: { type: 'RuntimeDefault' },
      },
      containers: [
        {
          name: HELPER_CONTAINER,
          image: o.image,
          imagePullPolicy: 'IfNotPresent',
          command: HELPER_WAIT,
          securityContext: {
            allowPrivilegeEscalation: false,
            privileged: false,
            readOnlyRootFilesystem: true,
            capabilities: { drop: ['ALL'], ...(!user && o.capabilities?.length ? { add: [...o.capabilities] } : {}) },
          },
          resources: { requests: { cpu: '50m', memory: '32Mi' }, limits: { memory: o.memoryLimit ?? HELPER_MEMORY_LIMIT } },
          volumeMounts: mounts,
        },
      ],
      volumes,
    },
  };
  return { pod, pvs, pvcs, mountPaths };
}
