// Shared, order-independent state while building the one pod: pod volumes,
// the data directories the init container creates, and the ConfigMaps/Secrets
// the mounts refer to. Everything is keyed by name and emitted sorted.
import type { KubeObject } from '../domain/ports/kube.js';
import { shortHash } from '../domain/names.js';

export interface VolumeMount {
  name: string;
  mountPath: string;
  subPath?: string;
  readOnly?: boolean;
}

export class PodState {
  /** Pod volumes by name. */
  readonly volumes = new Map<string, Record<string, unknown>>();
  /** Directories (`/kompox/<volume>/<subPath>`) the init container creates, with an owner uid:gid when known. */
  readonly dataDirs = new Map<string, { podVolume: string; appVolume: string; subPath: string; owners: Set<string> }>();
  readonly configMaps = new Map<string, KubeObject>();
  readonly secrets = new Map<string, KubeObject>();
  /** Top-level compose volumes already warned about (one warning per volume, not per mount). */
  readonly warnedVolumes = new Set<string>();
  /** Object names already taken, with the key that took them (to resolve collisions deterministically). */
  private readonly taken = new Map<string, string>();

  /** Claims `base` for `owner`; a different owner gets `base-<hash>`. */
  claimName(base: string, owner: string, max = 253): string {
    const prev = this.taken.get(base);
    if (prev === undefined || prev === owner) {
      this.taken.set(base, owner);
      return base;
    }
    const h = shortHash(owner, 6);
    const name = `${base.slice(0, max - 7)}-${h}`;
    this.taken.set(name, owner);
    return name;
  }

  /** Registers a pod volume; returns its name (a different volume wanting the same name gets a hashed one). */
  addVolume(name: string, spec: Record<string, unknown>): string {
    const want = JSON.stringify(spec);
    for (let candidate = name, n = 0; ; n++) {
      const prev = this.volumes.get(candidate);
      if (!prev) {
        this.volumes.set(candidate, { name: candidate, ...spec });
        return candidate;
      }
      const { name: _n, ...prevSpec } = prev;
      if (JSON.stringify(prevSpec) === want) return candidate;
      const h = shortHash(`${want}#${n}`, 6);
      candidate = `${name.slice(0, 56)}-${h}`;
    }
  }

  addDataDir(podVolume: string, appVolume: string, subPath: string, owner: string | undefined): void {
    const key = `${appVolume}/${subPath}`;
    let d = this.dataDirs.get(key);
    if (!d) {
      d = { podVolume, appVolume, subPath, owners: new Set() };
      this.dataDirs.set(key, d);
    }
    if (owner) d.owners.add(owner);
  }
}

export function sortedByName<T extends { name: string }>(list: Iterable<T>): T[] {
  return [...list].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export function byKey<T>(key: (t: T) => string): (a: T, b: T) => number {
  return (a, b) => {
    const x = key(a);
    const y = key(b);
    return x < y ? -1 : x > y ? 1 : 0;
  };
}
