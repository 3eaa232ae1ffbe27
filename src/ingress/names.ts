// Names and labels of the ingress objects `cluster deploy` creates (the
// images are in domain/images.ts). Changing a name here renames live objects (undeploy finds them by
// label, so old ones are still cleaned up, but the ACME PVC would be new and
// Let's Encrypt certificates would be requested again).

/** The uid/gid the official image and chart run Traefik as. */
export const TRAEFIK_UID = 65532;

export const DEFAULT_INGRESS_NAMESPACE = 'traefik';
/** K3s runs its bundled Traefik here. */
export const K3S_NAMESPACE = 'kube-system';

export const INGRESS_CLASS = 'traefik';
export const INGRESS_CONTROLLER = 'traefik.io/ingress-controller';
export const ANN_DEFAULT_CLASS = 'ingressclass.kubernetes.io/is-default-class';

export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
export const LABEL_PART_OF = 'app.kubernetes.io/part-of';
export const MANAGED_BY = 'kompox';
export const PART_OF = 'kompox-ingress';
/** Selects everything `cluster deploy` created (undeploy, status). */
export const INGRESS_SELECTOR = `${LABEL_MANAGED_BY}=${MANAGED_BY},${LABEL_PART_OF}=${PART_OF}`;

/** Pod template annotation: hash of the default certificate and dynamic config, so a new cert rolls the pod. */
export const ANN_CONFIG_HASH = 'kompox.dev/ingress-config-hash';

// Object names (generic variant).
export const TRAEFIK_NAME = 'traefik';
export const CLUSTER_ROLE_NAME = 'kompox-traefik';
export const ACME_PVC_NAME = 'traefik-acme';
export const DYNAMIC_CONFIGMAP_NAME = 'traefik-dynamic';
export const DEFAULT_CERT_SECRET_NAME = 'traefik-default-cert';

// Object names (K3s variant).
export const K3S_HELM_CHART_CONFIG = 'traefik';
export const K3S_ACME_PVC_NAME = 'kompox-traefik-acme';
export const K3S_DEFAULT_CERT_SECRET_NAME = 'kompox-traefik-default-cert';
/** Deployment and Service names of K3s's bundled chart. */
export const K3S_TRAEFIK_NAME = 'traefik';

export const ACME_STORAGE_SIZE = '128Mi';
export const ACME_MOUNT_PATH = '/data';
export const ACME_STORAGE_FILE = `${ACME_MOUNT_PATH}/acme.json`;
export const LETSENCRYPT_STAGING_CA = 'https://acme-staging-v02.api.letsencrypt.org/directory';

/** Cluster settings read by cluster deploy. */
export const SETTING_ACME_EMAIL = 'ACME_EMAIL';
export const SETTING_STORAGE_CLASS = 'INGRESS_STORAGE_CLASS';
export const SETTING_TLS_CERT_FILE = 'INGRESS_TLS_CERT_FILE';
export const SETTING_TLS_KEY_FILE = 'INGRESS_TLS_KEY_FILE';
export const SETTING_TLS_SECRET = 'INGRESS_TLS_SECRET';

/** Labels on every object of the ingress installation. */
export function ingressLabels(extra: Record<string, string> = {}): Record<string, string> {
  return sortKeys({ ...extra, [LABEL_MANAGED_BY]: MANAGED_BY, [LABEL_PART_OF]: PART_OF });
}

export function sortKeys<T>(o: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** The default (wildcard) domain of a cluster: `{cluster}.{domain}`, when a domain is configured. */
export function defaultDomain(cluster: { name: string; domain?: string }): string | undefined {
  return cluster.domain ? `${cluster.name}.${cluster.domain}` : undefined;
}
