// The maintenance box's pod (pure): a helper pod in the app's namespace that
// mounts the current disk of every app volume read-write at /data/VOLUME,
// runs a shell that waits, and an rsync daemon bound to 127.0.0.1 inside the
// pod, so it is reached only through the API server's port-forward (which
// enters the pod's network namespace): no Service, no SSH, and the namespace's
// NetworkPolicy stays as it is.
//
// rsync: an image without it but with Alpine's package manager (the default
// box image, see domain/images.ts) gets it installed from its release's
// package repository when the box starts; when that fails (no egress), the
// box still serves a shell and tar, and `box rsync` says what to do.
import { appLabels, appNamespace, appSelector, BOX_LABEL, BOX_POD_NAME } from '../domain/names.js';
import type { KubeObject } from '../domain/ports/kube.js';

/** The rsync daemon's port inside the pod (unprivileged; bound to 127.0.0.1 only). */
export const BOX_RSYNC_PORT = 8873;
/** Where the app volumes are mounted: /data/VOLUME. */
export const BOX_DATA_DIR = '/data';
/** Files the box's start script leaves: ready once set up; rsync when the daemon runs. */
export const BOX_READY_FILE = '/tmp/kompox-box.ready';
export const BOX_RSYNC_FILE = '/tmp/kompox-box.rsync';
export const BOX_CONTAINER = 'box';

/** Pod annotations: the box's mode and who made it. */
export const ANN_BOX_MODE = 'kompox.dev/box-mode';
export const ANN_BOX_SESSION = 'kompox.dev/box-session';

export interface RsyncdOptions {
  /** module name → directory */
  modules: Record<string, string>;
  address: string;
  port: number;
  /** Where the daemon keeps its pid and log. */
  runDir: string;
  /** Transfer as root (uid/gid 0): the box runs as root so files keep their owners. */
  asRoot: boolean;
}

/**
 * rsyncd.conf for the box: one read-write module per app volume; owners and
 * symlinks kept as they are (numeric ids, no munging: the daemon is reached
 * only by whoever may port-forward to the pod).
 */
export function rsyncdConf(o: RsyncdOptions): string {
  const lines = [
    '# kompox box: reached only through the Kubernetes API server (port-forward)',
    `address = ${o.address}`,
    `port = ${o.port}`,
    `pid file = ${o.runDir}/kompox-rsyncd.pid`,
    `log file = ${o.runDir}/kompox-rsyncd.log`,
    'use chroot = no',
    'munge symlinks = no',
    'numeric ids = yes',
    ...(o.asRoot ? ['uid = 0', 'gid = 0'] : []),
  ];
  for (const [name, path] of Object.entries(o.modules).sort(([a], [b]) => a.localeCompare(b))) {
    lines.push('', `[${name}]`, `  path = ${path}`, '  read only = no', '  list = yes');
  }
  return `${lines.join('\n')}\n`;
}

/** The box container's command: rsync (installed when missing and possible), the daemon, then wait until told to stop. */
export function boxScript(): string {
  return [
    'if ! command -v rsync >/dev/null 2>&1 && command -v apk >/dev/null 2>&1; then',
    '  apk add --no-cache --quiet rsync >/tmp/kompox-box-install.log 2>&1 || echo "kompox box: rsync could not be installed (/tmp/kompox-box-install.log)" >&2',
    'fi',
    'if command -v rsync >/dev/null 2>&1; then',
    '  printf "%s" "$KOMPOX_RSYNCD_CONF" >/tmp/kompox-rsyncd.conf',
    `  rsync --daemon --config=/tmp/kompox-rsyncd.conf && : >${BOX_RSYNC_FILE}`,
    'fi',
    `: >${BOX_READY_FILE}`,
    "trap 'exit 0' TERM INT",
    'while :; do sleep 3600 & wait $!; done',
  ].join('\n');
}

export interface BoxPodSpec {
  image: string;
  /** app volume → its current PersistentVolumeClaim */
  claims: Record<string, string>;
  /** The app keeps running: the box must run on the app pod's node (RWO disks attach to one node). */
  live: boolean;
  /** Started by a session command (shell/rsync/exec without a deployed box). */
  session: boolean;
  /** The stored pull Secret, when there is one (a private box image). */
  pullSecret?: string;
}

const volumeName = (volume: string) => `data-${volume}`;

export function boxPod(ctx: Parameters<typeof appNamespace>[0], spec: BoxPodSpec): KubeObject {
  const ns = appNamespace(ctx);
  const volumes = Object.keys(spec.claims).sort();
  const podSpec: Record<string, unknown> = {
    restartPolicy: 'Always',
    enableServiceLinks: false,
    automountServiceAccountToken: false,
    // the start script exits at once on TERM
    terminationGracePeriodSeconds: 5,
    securityContext: { seccompProfile: { type: 'RuntimeDefault' } },
    ...(spec.pullSecret ? { imagePullSecrets: [{ name: spec.pullSecret }] } : {}),
    containers: [
      {
        name: BOX_CONTAINER,
        image: spec.image,
        command: ['/bin/sh', '-c', boxScript()],
        workingDir: BOX_DATA_DIR,
        env: [
          {
            name: 'KOMPOX_RSYNCD_CONF',
            value: rsyncdConf({ modules: Object.fromEntries(volumes.map((v) => [v, `${BOX_DATA_DIR}/${v}`])), address: '127.0.0.1', port: BOX_RSYNC_PORT, runDir: '/tmp', asRoot: true }),
          },
        ],
        readinessProbe: { exec: { command: ['test', '-e', BOX_READY_FILE] }, periodSeconds: 1 },
        volumeMounts: volumes.map((v) => ({ name: volumeName(v), mountPath: `${BOX_DATA_DIR}/${v}` })),
      },
    ],
    volumes: volumes.map((v) => ({ name: volumeName(v), persistentVolumeClaim: { claimName: spec.claims[v]! } })),
  };
  if (spec.live) {
    // next to the running app: a ReadWriteOnce disk is attached to one node at a time
    podSpec.affinity = {
      podAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: { matchLabels: appSelector(ctx) }, topologyKey: 'kubernetes.io/hostname' }] },
    };
  }
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: BOX_POD_NAME,
      namespace: ns,
      labels: { ...appLabels(ctx), [BOX_LABEL]: ns },
      annotations: { [ANN_BOX_MODE]: spec.live ? 'live' : 'stopped', ...(spec.session ? { [ANN_BOX_SESSION]: 'true' } : {}) },
    },
    spec: podSpec,
  };
}
