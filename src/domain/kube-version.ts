// The API server's Kubernetes version (GET /version) as numbers, and what it
// serves that Kompox depends on. Pure: the deploy use case reads the version,
// the converter gets the result as plain data.

export interface KubernetesVersion {
  /** As the server reports it, e.g. v1.28.15+k3s1. */
  gitVersion: string;
  major: number;
  minor: number;
}

/**
 * From GET /version. gitVersion first (`v1.28.15+k3s1`); managed clusters
 * report minor as "28+" (EKS, GKE), which is read as 28. Undefined when the
 * server reports no usable version.
 */
export function kubernetesVersion(v: { gitVersion?: string; major?: string; minor?: string }): KubernetesVersion | undefined {
  const m = /^v?(\d+)\.(\d+)/.exec(v.gitVersion ?? '');
  const major = Number(m?.[1] ?? parseInt(v.major ?? '', 10));
  const minor = Number(m?.[2] ?? parseInt(v.minor ?? '', 10));
  if (!Number.isInteger(major) || !Number.isInteger(minor)) return undefined;
  return { gitVersion: v.gitVersion || `v${major}.${minor}`, major, minor };
}

/**
 * Native sidecars (init containers with restartPolicy: Always, KEP-753):
 * served from 1.29 (beta, on by default); 1.28 has them only behind the alpha
 * SidecarContainers feature gate (off by default: the field is dropped);
 * older servers do not know the field.
 */
export function nativeSidecars(v: Pick<KubernetesVersion, 'major' | 'minor'>): 'served' | 'feature-gate' | 'absent' {
  if (v.major > 1 || v.minor >= 29) return 'served';
  return v.minor === 28 ? 'feature-gate' : 'absent';
}
