// What the ingress object builders need, decided by the deploy use case from
// the cluster config and the live cluster (default IngressClass, TLS source).
// Plain data so the builders stay pure and golden-testable.

export type IngressVariant = 'traefik' | 'k3s';

export interface DefaultCertificate {
  /** Secret (type kubernetes.io/tls) in the ingress namespace that holds the wildcard cert. */
  secretName: string;
  /** PEM contents when Kompox creates the Secret from files; absent when the Secret already exists. */
  pem?: { cert: string; key: string };
  /** Hash of the certificate content; rolls the Traefik pod when it changes. */
  contentHash: string;
}

export interface IngressSpec {
  variant: IngressVariant;
  /** Namespace Traefik runs in (`kube-system` for K3s). */
  namespace: string;
  /** Let's Encrypt account e-mail. */
  acmeEmail: string;
  /** Storage class of the ACME PVC; absent = the cluster default. */
  storageClass?: string;
  /** Mark our IngressClass as the cluster default (generic variant only). */
  defaultIngressClass: boolean;
  defaultCertificate?: DefaultCertificate;
  /**
   * Create (and label as ours) the namespace. Default: yes, except for system
   * namespaces. Deploy passes false when the namespace already existed without
   * our labels, so undeploy --purge never deletes a namespace the user made.
   */
  manageNamespace?: boolean;
  /** The helper image of the acme.json init container; default domain/images.ts HELPER_IMAGE. */
  helperImage?: string;
  /**
   * The Traefik image. Generic variant: default domain/images.ts TRAEFIK_IMAGE.
   * K3s: only when the user set one (INGRESS_TRAEFIK_IMAGE); otherwise K3s's own.
   */
  traefikImage?: string;
}
