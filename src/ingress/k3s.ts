// The K3s variant: K3s ships Traefik through its Helm controller (HelmChart
// `traefik` in kube-system). Installing a second controller would fight it
// for ports 80/443, so we configure that one through a HelmChartConfig whose
// values are merged over K3s's own (keys of the official traefik chart).
import { stringify } from 'yaml';
import type { KubeObject } from '../domain/ports/kube.js';
import { acmePermissionsInitContainer, acmeResolverArgs, redirectArgs } from './acme.js';
import {
  ACME_MOUNT_PATH,
  ACME_STORAGE_SIZE,
  K3S_ACME_PVC_NAME,
  K3S_HELM_CHART_CONFIG,
  TRAEFIK_UID,
  ingressLabels,
} from './names.js';
import type { IngressSpec } from './spec.js';

/** The chart values Kompox sets (merged by the Helm controller over K3s's defaults). */
export function k3sTraefikValues(spec: IngressSpec): Record<string, unknown> {
  const values: Record<string, unknown> = {
    // Arguments rather than `ports.web.redirections` / `certificatesResolvers`:
    // those keys changed between chart versions K3s releases ship; flags did not.
    additionalArguments: [...redirectArgs(), ...acmeResolverArgs(spec.acmeEmail)],
    deployment: { initContainers: [acmePermissionsInitContainer('data')] },
    // Our own PVC (existingClaim) so removing the HelmChartConfig keeps acme.json.
    persistence: { accessMode: 'ReadWriteOnce', enabled: true, existingClaim: K3S_ACME_PVC_NAME, name: 'data', path: ACME_MOUNT_PATH },
    podSecurityContext: { fsGroup: TRAEFIK_UID, fsGroupChangePolicy: 'OnRootMismatch' },
    // One pod at a time: the ACME volume is ReadWriteOnce. `rollingUpdate: null`
    // removes the chart's default rollingUpdate block (invalid with Recreate).
    updateStrategy: { rollingUpdate: null, type: 'Recreate' },
  };
  if (spec.defaultCertificate) {
    // K3s installs Traefik's CRDs (traefik-crd chart), so the chart's TLSStore works here.
    values.tlsStore = { default: { defaultCertificate: { secretName: spec.defaultCertificate.secretName } } };
  }
  return values;
}

/** Objects of the K3s variant, in apply order. */
export function buildK3sObjects(spec: IngressSpec): KubeObject[] {
  const ns = spec.namespace;
  const out: KubeObject[] = [];
  const cert = spec.defaultCertificate;
  if (cert?.pem) {
    out.push({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: cert.secretName, namespace: ns, labels: ingressLabels() },
      type: 'kubernetes.io/tls',
      data: {
        'tls.crt': Buffer.from(cert.pem.cert).toString('base64'),
        'tls.key': Buffer.from(cert.pem.key).toString('base64'),
      },
    });
  }
  out.push({
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: K3S_ACME_PVC_NAME, namespace: ns, labels: ingressLabels() },
    spec: {
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: ACME_STORAGE_SIZE } },
      ...(spec.storageClass ? { storageClassName: spec.storageClass } : {}),
    },
  });
  out.push({
    apiVersion: 'helm.cattle.io/v1',
    kind: 'HelmChartConfig',
    metadata: { name: K3S_HELM_CHART_CONFIG, namespace: ns, labels: ingressLabels() },
    spec: { valuesContent: stringify(k3sTraefikValues(spec), { sortMapEntries: true, lineWidth: 0 }) },
  });
  return out;
}
