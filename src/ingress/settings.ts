// Reads the ingress-related cluster settings from kompoxops.yml into a plain
// description (pure; no file or cluster I/O). Errors name the field to fix.
import { KompoxError, type Location } from '../domain/errors.js';
import type { Cluster } from '../domain/model.js';
import {
  DEFAULT_INGRESS_NAMESPACE,
  DEFAULT_CERT_SECRET_NAME,
  K3S_DEFAULT_CERT_SECRET_NAME,
  K3S_NAMESPACE,
  SETTING_ACME_EMAIL,
  SETTING_STORAGE_CLASS,
  SETTING_TLS_CERT_FILE,
  SETTING_TLS_KEY_FILE,
  SETTING_TLS_SECRET,
} from './names.js';
import type { IngressVariant } from './spec.js';
import { SETTING_TRAEFIK_IMAGE, helperImage, imageSettingProblems, traefikImage, traefikImageOverride } from '../domain/images.js';

/** Source position of a kompoxops.yml field path (OpsConfig.locate), when known. */
export type Locate = (path: ReadonlyArray<string | number>) => Location | undefined;

export type TlsSource =
  | { kind: 'files'; certFile: string; keyFile: string; secretName: string }
  | { kind: 'secret'; secretName: string }
  | { kind: 'none' };

export interface IngressSettings {
  variant: IngressVariant;
  namespace: string;
  /** Undefined when not set: deploy requires it, undeploy/status do not. */
  acmeEmail?: string;
  storageClass?: string;
  tls: TlsSource;
  /** The helper image (KOMPOX_HELPER_IMAGE, or the default behind KOMPOX_REGISTRY_MIRROR). */
  helperImage: string;
  /** The Traefik image to write; on K3s only when INGRESS_TRAEFIK_IMAGE is set. */
  traefikImage?: string;
}

const EMAIL_RE = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;

function setting(cluster: Cluster, key: string): string | undefined {
  const v = cluster.settings[key];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

/** Which variant a driver uses: K3s configures its bundled Traefik. */
export function ingressVariantFor(driver: string): IngressVariant {
  return driver === 'k3s' ? 'k3s' : 'traefik';
}

export function readIngressSettings(cluster: Cluster, driver: string, locate?: Locate): IngressSettings {
  const variant = ingressVariantFor(driver);
  const controller = cluster.ingress?.controller || 'traefik';
  if (controller !== 'traefik') {
    throw new KompoxError('config', `ingress controller "${controller}" is not supported`, {
      field: 'cluster.ingress.controller',
      location: locate?.(['cluster', 'ingress', 'controller']),
      hint: 'Kompox installs Traefik; set cluster.ingress.controller: traefik.',
    });
  }
  // K3s's Traefik lives in kube-system whatever cluster.ingress.namespace says.
  const namespace = variant === 'k3s' ? K3S_NAMESPACE : cluster.ingress?.namespace || DEFAULT_INGRESS_NAMESPACE;

  const acmeEmail = setting(cluster, SETTING_ACME_EMAIL);
  if (acmeEmail !== undefined && !EMAIL_RE.test(acmeEmail)) {
    throw new KompoxError('config', `cluster.settings.${SETTING_ACME_EMAIL} "${acmeEmail}" is not an e-mail address`, {
      field: `cluster.settings.${SETTING_ACME_EMAIL}`,
      location: locate?.(['cluster', 'settings', SETTING_ACME_EMAIL]),
      hint: "Let's Encrypt sends expiry notices there; use an address you read.",
    });
  }

  const certFile = setting(cluster, SETTING_TLS_CERT_FILE);
  const keyFile = setting(cluster, SETTING_TLS_KEY_FILE);
  const secret = setting(cluster, SETTING_TLS_SECRET);
  let tls: TlsSource = { kind: 'none' };
  if (certFile || keyFile) {
    if (!certFile || !keyFile) {
      const missing = certFile ? SETTING_TLS_KEY_FILE : SETTING_TLS_CERT_FILE;
      const given = certFile ? SETTING_TLS_CERT_FILE : SETTING_TLS_KEY_FILE;
      throw new KompoxError('config', `cluster.settings.${given} is set but cluster.settings.${missing} is not`, {
        field: `cluster.settings.${missing}`,
        location: locate?.(['cluster', 'settings', given]),
        hint: 'Set both the certificate file and its private key file.',
      });
    }
    if (secret) {
      throw new KompoxError('config', `set either cluster.settings.${SETTING_TLS_SECRET} or the certificate files, not both`, {
        field: `cluster.settings.${SETTING_TLS_SECRET}`,
        location: locate?.(['cluster', 'settings', SETTING_TLS_SECRET]),
        hint: `Remove ${SETTING_TLS_SECRET} to have Kompox create the Secret from ${SETTING_TLS_CERT_FILE}/${SETTING_TLS_KEY_FILE}, or remove the files.`,
      });
    }
    if (!cluster.domain) {
      throw new KompoxError('config', 'a wildcard certificate is configured but cluster.domain is not set', {
        field: 'cluster.domain',
        location: locate?.(['cluster']),
        hint: 'The certificate is for *.{cluster}.{domain}; set cluster.domain.',
      });
    }
    tls = {
      kind: 'files',
      certFile,
      keyFile,
      secretName: variant === 'k3s' ? K3S_DEFAULT_CERT_SECRET_NAME : DEFAULT_CERT_SECRET_NAME,
    };
  } else if (secret) {
    if (!/^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/.test(secret) || secret.length > 253) {
      throw new KompoxError('config', `cluster.settings.${SETTING_TLS_SECRET} "${secret}" is not a Secret name`, {
        field: `cluster.settings.${SETTING_TLS_SECRET}`,
        location: locate?.(['cluster', 'settings', SETTING_TLS_SECRET]),
        hint: `Give the name of a kubernetes.io/tls Secret in namespace ${namespace}.`,
      });
    }
    tls = { kind: 'secret', secretName: secret };
  }
  // kompoxops.yml's loader checks these too; a cluster from elsewhere (the PaaS store) is checked here
  const bad = imageSettingProblems(cluster.settings)[0];
  if (bad) {
    throw new KompoxError('config', `cluster.settings.${bad.key} ${bad.problem}`, { field: `cluster.settings.${bad.key}`, location: locate?.(['cluster', 'settings', bad.key]), hint: bad.hint });
  }
  const traefik = variant === 'k3s' ? traefikImageOverride(cluster.settings) : traefikImage(cluster.settings);
  if (variant === 'k3s' && traefik && !/:[^/]+$/.test(traefik.split('@')[0]!)) {
    throw new KompoxError('config', `cluster.settings.${SETTING_TRAEFIK_IMAGE} "${traefik}" has no tag; K3s's Traefik chart writes the image as repository:tag`, {
      field: `cluster.settings.${SETTING_TRAEFIK_IMAGE}`,
      location: locate?.(['cluster', 'settings', SETTING_TRAEFIK_IMAGE]),
      hint: 'Add the tag before the digest, e.g. registry.example.com/library/traefik:v3.3.6@sha256:….',
    });
  }
  return {
    variant,
    namespace,
    acmeEmail,
    storageClass: setting(cluster, SETTING_STORAGE_CLASS),
    tls,
    helperImage: helperImage(cluster.settings),
    ...(traefik ? { traefikImage: traefik } : {}),
  };
}
