// The init container that prepares the data directories on the disks before
// the app containers start. Kubernetes would create a missing subPath itself,
// but root-owned and only when the container starts; doing it here is explicit,
// sorted and deduplicated, and lets a service's numeric user own its directory.
import { byKey, type PodState } from './pod-state.js';
import { INIT_MOUNT_ROOT } from './storage.js';

export const INIT_CONTAINER = 'kompox-init';

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** `image`: the cluster's helper image (domain/images.ts helperImage), pinned so the pod template never changes by itself. */
export function initContainer(state: PodState, name: string, image: string): Record<string, unknown> | undefined {
  if (state.dataDirs.size === 0) return undefined;
  const dirs = [...state.dataDirs.values()].sort(byKey((d) => `${d.appVolume}/${d.subPath}`));
  const lines = ['set -e'];
  for (const d of dirs) {
    const p = shellQuote(`${INIT_MOUNT_ROOT}/${d.appVolume}/${d.subPath}`);
    lines.push(`mkdir -p ${p}`);
    // Docker gives a fresh named volume the image's ownership; here the directory is root's unless one service's numeric user gets it.
    if (d.owners.size === 1) lines.push(`chown ${[...d.owners][0]} ${p}`);
  }
  const mounts = [...new Map(dirs.map((d) => [d.podVolume, { name: d.podVolume, mountPath: `${INIT_MOUNT_ROOT}/${d.appVolume}` }])).values()].sort(
    byKey((m) => m.mountPath),
  );
  return { name, image, command: ['sh', '-c', lines.join('\n')], volumeMounts: mounts };
}
