// Deterministic names. Changing anything here renames live resources, so
// every function is covered by tests with literal expected values.
import { createHash } from 'node:crypto';
import { TAG_APP, TAG_CREATED_AT, TAG_NAME, TAG_VOLUME, type AppContext } from './model.js';

const LABEL_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** RFC 1123 DNS label: lower-case alphanumerics and '-', 1..63 chars, alphanumeric at both ends. */
export function isDnsLabel(s: string): boolean {
  return s.length >= 1 && s.length <= 63 && LABEL_RE.test(s);
}

/** Why `s` is not a DNS label, or undefined when it is one. */
export function dnsLabelProblem(s: string): string | undefined {
  if (s.length === 0) return 'must not be empty';
  if (s.length > 63) return `is ${s.length} characters long; at most 63 are allowed`;
  if (/[A-Z]/.test(s)) return 'must be lower case';
  if (!/^[a-z0-9-]+$/.test(s)) return "may contain only a-z, 0-9 and '-'";
  if (!LABEL_RE.test(s)) return "must start and end with a letter or digit";
  return undefined;
}

/**
 * A non-empty Kubernetes label value: at most 63 characters, alphanumerics,
 * '-', '_' and '.', alphanumeric at both ends (node pool and zone names).
 * The same expression is in schema/kompoxops.schema.json.
 */
export const LABEL_VALUE_RE = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;

/** Why `s` is not a (non-empty) label value, or undefined when it is one. */
export function labelValueProblem(s: string): string | undefined {
  if (s.length === 0) return 'must not be empty';
  if (s.length > 63) return `is ${s.length} characters long; at most 63 are allowed`;
  if (!/^[-A-Za-z0-9_.]+$/.test(s)) return "may contain only letters, digits, '-', '_' and '.'";
  if (!LABEL_VALUE_RE.test(s)) return 'must start and end with a letter or digit';
  return undefined;
}

/**
 * Why `s` is not a Kubernetes label (or taint) key — `[prefix/]name`, the
 * prefix a DNS subdomain, the name like a label value — or undefined.
 */
export function labelKeyProblem(s: string): string | undefined {
  const slash = s.indexOf('/');
  const prefix = slash >= 0 ? s.slice(0, slash) : undefined;
  const name = slash >= 0 ? s.slice(slash + 1) : s;
  if (prefix !== undefined) {
    if (prefix.length === 0 || prefix.length > 253 || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(prefix)) {
      return `has the prefix "${prefix}", which is not a lower-case DNS subdomain`;
    }
  }
  const p = labelValueProblem(name);
  return p ? `has the name part "${name}", which ${p}` : undefined;
}

export function shortHash(text: string, len = 6): string {
  return createHash('sha256').update(text).digest('hex').slice(0, len);
}

/** `{service}/{provider}/{cluster}/{app}`: the kompox-app tag and kompox.dev/app annotation. */
export function appId(ctx: Pick<AppContext, 'service' | 'provider' | 'cluster' | 'app'>): string {
  return `${ctx.service.name}/${ctx.provider.name}/${ctx.cluster.name}/${ctx.app.name}`;
}

/**
 * Disks and snapshots belong to the app, not the cluster: a kompox-app tag
 * matches when service, provider and app match; the cluster part may differ
 * (the app was moved to another cluster of the same provider). Every driver
 * filters its lists with this.
 */
export function tagMatchesApp(tag: string | undefined, ctx: Pick<AppContext, 'service' | 'provider' | 'app'>): boolean {
  const parts = (tag ?? '').split('/');
  return parts.length === 4 && parts[0] === ctx.service.name && parts[1] === ctx.provider.name && parts[3] === ctx.app.name;
}

/** The tags (spec) every driver writes on a new disk or snapshot. */
export function ownershipTags(ctx: Pick<AppContext, 'service' | 'provider' | 'cluster' | 'app'>, volume: string, name: string, createdAt: string): Record<string, string> {
  return { [TAG_APP]: appId(ctx), [TAG_CREATED_AT]: createdAt, [TAG_NAME]: name, [TAG_VOLUME]: volume };
}

/**
 * The app's namespace: `k4x-{app}-{hash}`, hash over service/provider/app.
 * The cluster is deliberately not part of it, so an app keeps its namespace
 * when it moves to another cluster of the same provider.
 */
export function appNamespace(ctx: Pick<AppContext, 'service' | 'provider' | 'app'>): string {
  const hash = shortHash(`${ctx.service.name}/${ctx.provider.name}/${ctx.app.name}`);
  const prefix = 'k4x-';
  const maxApp = 63 - prefix.length - 1 - hash.length;
  const app = ctx.app.name.slice(0, maxApp).replace(/-+$/, '');
  return `${prefix}${app}-${hash}`;
}

/** Labels on every object Kompox creates for an app. */
export function appLabels(ctx: Pick<AppContext, 'service' | 'provider' | 'app'>): Record<string, string> {
  return {
    'app.kubernetes.io/name': ctx.app.name,
    'app.kubernetes.io/instance': appNamespace(ctx),
    'app.kubernetes.io/managed-by': 'kompox',
  };
}

/** The selector label that identifies the app's pod (status, logs, exec, destroy). */
export const APP_SELECTOR_LABEL = 'kompox.dev/app-instance';
export function appSelector(ctx: Pick<AppContext, 'service' | 'provider' | 'app'>): Record<string, string> {
  return { [APP_SELECTOR_LABEL]: appNamespace(ctx) };
}

/** Current time as RFC 3339 without milliseconds (the kompox-created-at format). */
export function nowRfc3339(d: Date = new Date()): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** A default disk/snapshot name: `{volume}-{yyyymmddhhmmss}` (sortable, DNS-safe). */
export function timestampName(prefix: string, d: Date = new Date()): string {
  const t = d.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  return `${prefix}-${t}`;
}

/**
 * PersistentVolume name for one disk of one volume. Cluster-scoped, so it
 * carries the namespace; it carries a hash of the disk id because a PV's
 * source is immutable: a disk swap creates a new PV (and PVC) instead of
 * editing the old one.
 */
export function pvName(namespace: string, volume: string, diskId: string | undefined): string {
  return `${namespace}-${volume}-${shortHash(diskId ?? '', 8)}`;
}

/** PersistentVolumeClaim name for one disk of one volume (namespaced). */
export function pvcName(volume: string, diskId: string | undefined): string {
  return `${volume}-${shortHash(diskId ?? '', 8)}`;
}

/**
 * Label on the Secrets stored for an app outside its compose files
 * (`secret pull|env set`): `pull` or `env`. They are user data, like disks:
 * `app deploy` never prunes them and `app destroy` keeps them.
 */
export const STORED_SECRET_LABEL = 'kompox.dev/stored-secret';
/** Annotation on an env override Secret: the compose service it belongs to. */
export const ANN_SECRET_SERVICE = 'kompox.dev/service';
/** Annotation on the pull Secret: its registries (the config's `auths` keys), so nothing has to decode the Secret to name them. */
export const ANN_SECRET_REGISTRIES = 'kompox.dev/registries';

/** The app's registry credentials (a kubernetes.io/dockerconfigjson Secret). */
export const PULL_SECRET_NAME = 'kompox-pull';

/** The Secret holding a service's environment overrides: `kompox-env-{service}` (service made DNS-safe, with a hash when it had to change). */
export function envOverrideSecretName(service: string): string {
  const prefix = 'kompox-env-';
  const max = 63 - prefix.length;
  if (isDnsLabel(service) && service.length <= max) return `${prefix}${service}`;
  const h = shortHash(service);
  const base = service.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, max - h.length - 1).replace(/-+$/, '');
  return `${prefix}${base ? `${base}-` : ''}${h}`;
}

/** Label on the maintenance box pod (`kompoxops box`); its value is the app namespace. Not the app selector: the app's ReplicaSet must never adopt the box. */
export const BOX_LABEL = 'kompox.dev/box';
/** The maintenance box pod's name. */
export const BOX_POD_NAME = 'kompox-box';
