// Public API of the ingress object generation (pure: spec → objects).
import type { KubeObject } from '../domain/ports/kube.js';
import { buildK3sObjects } from './k3s.js';
import type { IngressSpec } from './spec.js';
import { buildTraefikObjects } from './traefik.js';

export type { DefaultCertificate, IngressSpec, IngressVariant } from './spec.js';
export { buildK3sObjects, k3sTraefikValues } from './k3s.js';
export { buildTraefikObjects, traefikArgs, traefikClusterRoleRules, SYSTEM_NAMESPACES } from './traefik.js';
export * from './names.js';

/** The ingress objects for a cluster, in apply order. */
export function buildIngressObjects(spec: IngressSpec): KubeObject[] {
  return spec.variant === 'k3s' ? buildK3sObjects(spec) : buildTraefikObjects(spec);
}
