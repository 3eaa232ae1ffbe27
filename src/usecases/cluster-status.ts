// `cluster status`: can we reach the API server, which Kubernetes version,
// is the ingress controller ready, where do custom DNS records point (the
// LoadBalancer address), and when does the wildcard certificate expire.
// Never throws for an unreachable cluster: that is a status (reachable: false).
import { KompoxError, formatError } from '../domain/errors.js';
import type { KubeClient, KubeObject } from '../domain/ports/kube.js';
import type { ClusterStatusInfo } from '../domain/ports/driver.js';
import { describeCertificate } from '../ingress/certificate.js';
import {
  ACME_PVC_NAME,
  INGRESS_CLASS,
  K3S_ACME_PVC_NAME,
  K3S_HELM_CHART_CONFIG,
  K3S_TRAEFIK_NAME,
  LABEL_PART_OF,
  PART_OF,
  TRAEFIK_NAME,
  defaultDomain,
} from '../ingress/names.js';
import { readIngressSettings } from '../ingress/settings.js';
import type { ClusterIngressInput } from './cluster-deploy.js';

export interface IngressStatus {
  variant: 'traefik' | 'k3s';
  namespace: string;
  /** The Traefik Deployment exists. */
  installed: boolean;
  /** Kompox's configuration is present (our Deployment; on K3s our HelmChartConfig). */
  configured: boolean;
  ready: boolean;
  replicas?: number;
  availableReplicas?: number;
  /** Public addresses of the LoadBalancer Service: point custom hosts' A records here... */
  ips: string[];
  /** ...or CNAME records here. */
  hostnames: string[];
  ingressClass?: string;
  acmeVolume?: { name: string; phase?: string };
}

export interface WildcardCertificateStatus {
  secret: string;
  dnsNames?: string[];
  notAfter?: string;
  expiresInDays?: number;
  /** Why the expiry is unknown (Secret missing or unreadable). */
  problem?: string;
}

export interface ClusterStatusReport {
  cluster: string;
  driver: string;
  server?: string;
  reachable: boolean;
  /** Why the cluster is not reachable. */
  reason?: string;
  kubernetesVersion?: string;
  ingress?: IngressStatus;
  /** `{cluster}.{domain}`: apps get `{app}.{defaultDomain}`. */
  defaultDomain?: string;
  wildcardCertificate?: WildcardCertificateStatus;
  /** What the provider driver adds (clusterStatus). */
  provider?: ClusterStatusInfo;
}

export interface ClusterStatusOptions {
  /** Connects to the cluster; its errors become `reachable: false`. */
  connect: () => Promise<KubeClient>;
  /** The provider driver's own view (e.g. a cloud LB FQDN), when it has one. */
  providerStatus?: () => Promise<ClusterStatusInfo>;
  now?: Date;
}

function reasonOf(e: unknown): string {
  return e instanceof KompoxError ? formatError(e) : (e as Error)?.message ?? String(e);
}

function uniqSorted(xs: string[]): string[] {
  return [...new Set(xs.filter(Boolean))].sort();
}

export async function getClusterStatus(input: ClusterIngressInput, opts: ClusterStatusOptions): Promise<ClusterStatusReport> {
  const settings = readIngressSettings(input.cluster, input.driver, input.locate);
  const report: ClusterStatusReport = {
    cluster: input.cluster.name,
    driver: input.driver,
    reachable: false,
    ...(defaultDomain(input.cluster) ? { defaultDomain: defaultDomain(input.cluster) } : {}),
  };
  let kube: KubeClient;
  try {
    kube = await opts.connect();
    report.server = kube.server;
    report.kubernetesVersion = (await kube.version()).gitVersion;
    report.reachable = true;
  } catch (e) {
    report.reason = reasonOf(e);
    return report;
  }

  const ns = settings.namespace;
  const k3s = settings.variant === 'k3s';
  const deploymentName = k3s ? K3S_TRAEFIK_NAME : TRAEFIK_NAME;
  const [deployment, service, ingressClass, pvc, chartConfig] = await Promise.all([
    kube.get({ apiVersion: 'apps/v1', kind: 'Deployment', name: deploymentName, namespace: ns }),
    kube.get({ apiVersion: 'v1', kind: 'Service', name: deploymentName, namespace: ns }),
    kube.get({ apiVersion: 'networking.k8s.io/v1', kind: 'IngressClass', name: INGRESS_CLASS }),
    kube.get({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', name: k3s ? K3S_ACME_PVC_NAME : ACME_PVC_NAME, namespace: ns }),
    k3s
      ? kube.get({ apiVersion: 'helm.cattle.io/v1', kind: 'HelmChartConfig', name: K3S_HELM_CHART_CONFIG, namespace: ns }).catch(() => undefined)
      : Promise.resolve(undefined),
  ]);
  const dstatus = (deployment?.status ?? {}) as { replicas?: number; availableReplicas?: number };
  const lb = ((service?.status as { loadBalancer?: { ingress?: Array<{ ip?: string; hostname?: string }> } } | undefined)?.loadBalancer
    ?.ingress ?? []) as Array<{ ip?: string; hostname?: string }>;
  const ingress: IngressStatus = {
    variant: settings.variant,
    namespace: ns,
    installed: Boolean(deployment),
    configured: k3s ? isOurs(chartConfig) : isOurs(deployment),
    ready: (dstatus.availableReplicas ?? 0) >= 1,
    ...(deployment ? { replicas: dstatus.replicas ?? 0, availableReplicas: dstatus.availableReplicas ?? 0 } : {}),
    ips: lb.map((i) => i.ip ?? ''),
    hostnames: lb.map((i) => i.hostname ?? ''),
    ...(ingressClass ? { ingressClass: ingressClass.metadata.name } : {}),
    ...(pvc ? { acmeVolume: { name: pvc.metadata.name, phase: (pvc.status as { phase?: string } | undefined)?.phase } } : {}),
  };

  if (opts.providerStatus) {
    try {
      const p = await opts.providerStatus();
      report.provider = p;
      if (p.ingressIP) ingress.ips.push(p.ingressIP);
      if (p.ingressFQDN) ingress.hostnames.push(p.ingressFQDN);
    } catch (e) {
      report.provider = { error: reasonOf(e) };
    }
  }
  ingress.ips = uniqSorted(ingress.ips);
  ingress.hostnames = uniqSorted(ingress.hostnames);
  report.ingress = ingress;

  const tls = settings.tls;
  if (tls.kind !== 'none') {
    const secret = await kube.get({ apiVersion: 'v1', kind: 'Secret', name: tls.secretName, namespace: ns });
    const crt = (secret?.data as Record<string, string> | undefined)?.['tls.crt'];
    const status: WildcardCertificateStatus = { secret: `${ns}/${tls.secretName}` };
    if (!secret) status.problem = 'the Secret does not exist (run cluster deploy)';
    else if (!crt) status.problem = 'the Secret has no tls.crt';
    else {
      try {
        const info = describeCertificate(Buffer.from(crt, 'base64'), opts.now);
        Object.assign(status, { dnsNames: info.dnsNames, notAfter: info.notAfter, expiresInDays: info.expiresInDays });
      } catch (e) {
        status.problem = `tls.crt is not a PEM certificate: ${(e as Error).message}`;
      }
    }
    report.wildcardCertificate = status;
  }
  return report;
}

function isOurs(o: KubeObject | undefined): boolean {
  return o?.metadata.labels?.[LABEL_PART_OF] === PART_OF;
}
