// The generic variant: Traefik installed by Kompox itself (AKS, EKS, GKE, OKE).
// Mirrors what the official Helm chart renders (entrypoints on 8000/8443 so
// the container runs as non-root, Service ports 80/443 mapped to them, /ping
// probes, read-only root filesystem), without CRDs: the default certificate
// comes through the file provider.
import type { KubeObject } from '../domain/ports/kube.js';
import { acmePermissionsInitContainer, acmeResolverArgs, redirectArgs } from './acme.js';
import {
  ACME_MOUNT_PATH,
  ACME_PVC_NAME,
  ACME_STORAGE_SIZE,
  ANN_CONFIG_HASH,
  ANN_DEFAULT_CLASS,
  CLUSTER_ROLE_NAME,
  DYNAMIC_CONFIGMAP_NAME,
  INGRESS_CLASS,
  INGRESS_CONTROLLER,
  TRAEFIK_IMAGE,
  TRAEFIK_NAME,
  TRAEFIK_UID,
  ingressLabels,
} from './names.js';
import type { IngressSpec } from './spec.js';
import { shortHash } from '../domain/names.js';

/** Namespaces that exist on every cluster: never created or deleted by Kompox. */
export const SYSTEM_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease'];

const SELECTOR = { 'app.kubernetes.io/instance': 'kompox-ingress', 'app.kubernetes.io/name': TRAEFIK_NAME };

const DYNAMIC_DIR = '/etc/traefik/dynamic';
const CERT_DIR = '/etc/traefik/certs';
const DYNAMIC_FILE = 'default-certificate.yaml';

/**
 * RBAC of Traefik v3.3's Kubernetes Ingress provider (from the official chart's
 * clusterrole.yaml for v3.1–v3.3 with only kubernetesIngress enabled):
 * since v3.1 endpoints come from EndpointSlices (the core `endpoints` resource
 * is no longer read) and nodes are read for NodePort load-balancing.
 */
export function traefikClusterRoleRules(): Record<string, unknown>[] {
  return [
    { apiGroups: [''], resources: ['nodes', 'services'], verbs: ['get', 'list', 'watch'] },
    { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'] },
    { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'watch'] },
    { apiGroups: ['extensions', 'networking.k8s.io'], resources: ['ingressclasses', 'ingresses'], verbs: ['get', 'list', 'watch'] },
    { apiGroups: ['extensions', 'networking.k8s.io'], resources: ['ingresses/status'], verbs: ['update'] },
  ];
}

/** Traefik dynamic configuration (file provider) that sets the default certificate. */
export function defaultCertificateDynamicConfig(): string {
  return [
    'tls:',
    '  stores:',
    '    default:',
    '      defaultCertificate:',
    `        certFile: ${CERT_DIR}/tls.crt`,
    `        keyFile: ${CERT_DIR}/tls.key`,
    '',
  ].join('\n');
}

export function traefikArgs(spec: IngressSpec): string[] {
  const args = [
    '--entryPoints.traefik.address=:8080/tcp',
    '--entryPoints.web.address=:8000/tcp',
    '--entryPoints.websecure.address=:8443/tcp',
    ...redirectArgs(),
    '--entryPoints.websecure.http.tls=true',
    '--ping=true',
    '--ping.entryPoint=traefik',
    '--providers.kubernetesingress=true',
    `--providers.kubernetesingress.ingressclass=${INGRESS_CLASS}`,
    `--providers.kubernetesingress.ingressendpoint.publishedservice=${spec.namespace}/${TRAEFIK_NAME}`,
  ];
  if (spec.defaultCertificate) args.push(`--providers.file.directory=${DYNAMIC_DIR}`, '--providers.file.watch=true');
  args.push(...acmeResolverArgs(spec.acmeEmail), '--log.level=INFO', '--global.checknewversion=false', '--global.sendanonymoususage=false');
  return args;
}

function meta(name: string, namespace?: string, annotations?: Record<string, string>) {
  return {
    name,
    ...(namespace ? { namespace } : {}),
    labels: ingressLabels(),
    ...(annotations && Object.keys(annotations).length ? { annotations } : {}),
  };
}

/** Objects of the generic variant, in apply order. */
export function buildTraefikObjects(spec: IngressSpec): KubeObject[] {
  const ns = spec.namespace;
  const out: KubeObject[] = [];
  if (spec.manageNamespace !== false && !SYSTEM_NAMESPACES.includes(ns)) out.push({ apiVersion: 'v1', kind: 'Namespace', metadata: meta(ns) });
  out.push({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(TRAEFIK_NAME, ns) });
  out.push({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: meta(CLUSTER_ROLE_NAME),
    rules: traefikClusterRoleRules(),
  });
  out.push({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: meta(CLUSTER_ROLE_NAME),
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: CLUSTER_ROLE_NAME },
    subjects: [{ kind: 'ServiceAccount', name: TRAEFIK_NAME, namespace: ns }],
  });
  out.push({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'IngressClass',
    metadata: meta(INGRESS_CLASS, undefined, spec.defaultIngressClass ? { [ANN_DEFAULT_CLASS]: 'true' } : undefined),
    spec: { controller: INGRESS_CONTROLLER },
  });

  const cert = spec.defaultCertificate;
  let dynamicConfig = '';
  if (cert) {
    if (cert.pem) {
      out.push({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: meta(cert.secretName, ns),
        type: 'kubernetes.io/tls',
        data: {
          'tls.crt': Buffer.from(cert.pem.cert).toString('base64'),
          'tls.key': Buffer.from(cert.pem.key).toString('base64'),
        },
      });
    }
    dynamicConfig = defaultCertificateDynamicConfig();
    out.push({ apiVersion: 'v1', kind: 'ConfigMap', metadata: meta(DYNAMIC_CONFIGMAP_NAME, ns), data: { [DYNAMIC_FILE]: dynamicConfig } });
  }

  out.push({
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: meta(ACME_PVC_NAME, ns),
    spec: {
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: ACME_STORAGE_SIZE } },
      ...(spec.storageClass ? { storageClassName: spec.storageClass } : {}),
    },
  });

  const volumes: Record<string, unknown>[] = [
    { name: 'data', persistentVolumeClaim: { claimName: ACME_PVC_NAME } },
    { emptyDir: {}, name: 'tmp' },
  ];
  const mounts: Record<string, unknown>[] = [
    { mountPath: ACME_MOUNT_PATH, name: 'data' },
    { mountPath: '/tmp', name: 'tmp' },
  ];
  if (cert) {
    volumes.push({ configMap: { name: DYNAMIC_CONFIGMAP_NAME }, name: 'dynamic' });
    volumes.push({ name: 'default-cert', secret: { secretName: cert.secretName } });
    mounts.push({ mountPath: DYNAMIC_DIR, name: 'dynamic', readOnly: true });
    mounts.push({ mountPath: CERT_DIR, name: 'default-cert', readOnly: true });
  }
  const probe = (failureThreshold: number) => ({
    failureThreshold,
    httpGet: { path: '/ping', port: 8080, scheme: 'HTTP' },
    initialDelaySeconds: 2,
    periodSeconds: 10,
    successThreshold: 1,
    timeoutSeconds: 2,
  });
  const args = traefikArgs(spec);
  const configHash = shortHash(JSON.stringify({ args, dynamicConfig, cert: cert ? [cert.secretName, cert.contentHash] : null }), 16);

  out.push({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta(TRAEFIK_NAME, ns),
    spec: {
      replicas: 1,
      // ACME storage (acme.json on an RWO volume) cannot be shared by two pods.
      strategy: { type: 'Recreate' },
      selector: { matchLabels: SELECTOR },
      template: {
        metadata: { annotations: { [ANN_CONFIG_HASH]: configHash }, labels: ingressLabels(SELECTOR) },
        spec: {
          serviceAccountName: TRAEFIK_NAME,
          terminationGracePeriodSeconds: 60,
          securityContext: {
            fsGroup: TRAEFIK_UID,
            fsGroupChangePolicy: 'OnRootMismatch',
            runAsGroup: TRAEFIK_UID,
            runAsNonRoot: true,
            runAsUser: TRAEFIK_UID,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          initContainers: [acmePermissionsInitContainer('data')],
          containers: [
            {
              name: 'traefik',
              image: TRAEFIK_IMAGE,
              args,
              ports: [
                { containerPort: 8080, name: 'traefik', protocol: 'TCP' },
                { containerPort: 8000, name: 'web', protocol: 'TCP' },
                { containerPort: 8443, name: 'websecure', protocol: 'TCP' },
              ],
              readinessProbe: probe(1),
              livenessProbe: probe(3),
              resources: { requests: { cpu: '100m', memory: '64Mi' } },
              securityContext: {
                allowPrivilegeEscalation: false,
                capabilities: { drop: ['ALL'] },
                readOnlyRootFilesystem: true,
              },
              volumeMounts: mounts,
            },
          ],
          volumes,
        },
      },
    },
  });

  out.push({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(TRAEFIK_NAME, ns),
    spec: {
      type: 'LoadBalancer',
      selector: SELECTOR,
      ports: [
        { name: 'web', port: 80, protocol: 'TCP', targetPort: 'web' },
        { name: 'websecure', port: 443, protocol: 'TCP', targetPort: 'websecure' },
      ],
    },
  });
  return out;
}
