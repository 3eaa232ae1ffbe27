// The container images Kompox itself adds to a cluster (never the user's own
// compose images): one small helper image for every helper container (the
// data-directory init container of app pods, Traefik's acme.json init
// container, and later transfer and maintenance pods) and Traefik for the
// generic ingress. Both are fully qualified and pinned, so a pod template
// never changes by itself and a mirror or private registry can serve them.
//
// Cluster settings (cluster.settings in kompoxops.yml):
//   KOMPOX_HELPER_IMAGE     replaces the helper image (used as written)
//   INGRESS_TRAEFIK_IMAGE   replaces the Traefik image (used as written)
//   KOMPOX_BOX_IMAGE        replaces the maintenance box's image (used as written)
//   KOMPOX_REGISTRY_MIRROR  registry (with an optional path) that serves the
//                           default images instead of Docker Hub:
//                           docker.io/library/busybox:1.37.0@sha256:… becomes
//                           MIRROR/library/busybox:1.37.0@sha256:…
import type { Settings } from './model.js';

/** busybox 1.37.0, pinned by the digest of its multi-platform image index (docker-library/repo-info). */
export const HELPER_IMAGE = 'docker.io/library/busybox:1.37.0@sha256:9db7b59979c38555a39def84a31fb98b5296952f9e3afd4f6f11f05b07adfab0';
/**
 * The maintenance box's default image (`kompoxops box`): Alpine 3.21.3, pinned by
 * the digest of its multi-platform image index. Alpine is busybox (a shell,
 * tar and the usual tools, like the helper image) plus a package manager: the
 * box installs rsync from the Alpine 3.21 package repository when it starts
 * (src/usecases/box-pod.ts), because no pinned official image ships rsync.
 */
export const BOX_IMAGE = 'docker.io/library/alpine:3.21.3@sha256:a8560b36e8b8210634f77d9f7f9efd7ffa463e380b75e2e74aff4511df3ef88c';
/** Traefik v3.3 (the RBAC rules in ingress/traefik.ts are the ones v3.3 needs). */
export const TRAEFIK_IMAGE = 'docker.io/library/traefik:v3.3.6';

export const SETTING_HELPER_IMAGE = 'KOMPOX_HELPER_IMAGE';
export const SETTING_TRAEFIK_IMAGE = 'INGRESS_TRAEFIK_IMAGE';
export const SETTING_REGISTRY_MIRROR = 'KOMPOX_REGISTRY_MIRROR';
export const SETTING_BOX_IMAGE = 'KOMPOX_BOX_IMAGE';

// The reference grammar of github.com/distribution/reference (no IPv6 hosts).
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
const DOMAIN = `${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*(?::[0-9]+)?`;
const TAG = '[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}';
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';

/** An image reference pinned by a tag, a digest or both (an untagged name would mean :latest). */
export const PINNED_IMAGE_RE = new RegExp(`^(?:${DOMAIN}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*(?::${TAG}(?:@${DIGEST})?|@${DIGEST})$`);

/**
 * A registry, optionally with a path: its first part must look like a host
 * (a dot, a port, or localhost), or it would be read as a Docker Hub user.
 */
export const REGISTRY_MIRROR_RE = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})+(?::[0-9]+)?|${DOMAIN_COMPONENT}:[0-9]+|localhost)(?:/${PATH_COMPONENT})*$`);

function setting(settings: Settings | undefined, key: string): string | undefined {
  const v = settings?.[key]?.trim();
  return v ? v : undefined;
}

/** `docker.io/library/busybox:1.37.0@…` on `mirror.example.com/hub` → `mirror.example.com/hub/library/busybox:1.37.0@…`. */
export function mirrored(image: string, mirror: string | undefined): string {
  if (!mirror) return image;
  const slash = image.indexOf('/');
  return `${mirror}/${image.slice(slash + 1)}`;
}

/** The helper image for this cluster's settings. */
export function helperImage(settings: Settings | undefined): string {
  return setting(settings, SETTING_HELPER_IMAGE) ?? mirrored(HELPER_IMAGE, setting(settings, SETTING_REGISTRY_MIRROR));
}

/** The Traefik image for this cluster's settings (generic ingress). */
export function traefikImage(settings: Settings | undefined): string {
  return setting(settings, SETTING_TRAEFIK_IMAGE) ?? mirrored(TRAEFIK_IMAGE, setting(settings, SETTING_REGISTRY_MIRROR));
}

/** The maintenance box's image for these settings (the same mirror rule as the helper image). */
export function boxImage(settings: Settings | undefined): string {
  return setting(settings, SETTING_BOX_IMAGE) ?? mirrored(BOX_IMAGE, setting(settings, SETTING_REGISTRY_MIRROR));
}

/** The Traefik image only when the user set one (K3s runs its own Traefik image otherwise). */
export function traefikImageOverride(settings: Settings | undefined): string | undefined {
  return setting(settings, SETTING_TRAEFIK_IMAGE);
}

export interface ImageSettingProblem {
  key: string;
  value: string;
  problem: string;
  hint: string;
}

/** What is wrong with the image settings among `settings` (empty when nothing). */
export function imageSettingProblems(settings: Settings): ImageSettingProblem[] {
  const out: ImageSettingProblem[] = [];
  for (const key of [SETTING_HELPER_IMAGE, SETTING_TRAEFIK_IMAGE, SETTING_BOX_IMAGE]) {
    const v = settings[key];
    if (v === undefined || PINNED_IMAGE_RE.test(v)) continue;
    const example = key === SETTING_HELPER_IMAGE ? HELPER_IMAGE.replace(/@.*/, '') : key === SETTING_BOX_IMAGE ? BOX_IMAGE.replace(/@.*/, '') : TRAEFIK_IMAGE;
    out.push({
      key,
      value: v,
      problem: PINNED_IMAGE_RE.test(`${v}:x`) ? `"${v}" has no tag or digest` : `"${v}" is not an image reference`,
      hint: `Write registry/repository:tag, optionally with @sha256:digest, e.g. ${example.replace('docker.io', 'registry.example.com')}; a tag or digest pins the image so pods do not change by themselves.`,
    });
  }
  const m = settings[SETTING_REGISTRY_MIRROR];
  if (m !== undefined && !REGISTRY_MIRROR_RE.test(m)) {
    out.push({
      key: SETTING_REGISTRY_MIRROR,
      value: m,
      problem: `"${m}" is not a registry`,
      hint: 'Write the registry host (with a dot or a port, or localhost) and an optional path, without a scheme or trailing slash, e.g. registry.example.com/dockerhub; Kompox pulls its own images (helper, Traefik) from there instead of docker.io.',
    });
  }
  return out;
}

// ---------------------------------------------------------------- image references

/** An image reference taken apart the way container runtimes read it (docker.io defaults applied). */
export interface ImageRef {
  /** Registry host with an optional port, lower-cased: `docker.io`, `ghcr.io`, `registry.example.com:5000`. */
  registry: string;
  /** Repository path inside the registry: `library/nginx`, `team/app`. */
  repository: string;
  tag?: string;
  digest?: string;
}

const NAME_RE = new RegExp(`^(?:(${DOMAIN})/)?(${PATH_COMPONENT}(?:/${PATH_COMPONENT})*)(?::(${TAG}))?(?:@(${DIGEST}))?$`);

/** Docker Hub's registry as image references name it; the other names it goes by (config.json keys, old clients) mean the same. */
export const DOCKER_HUB = 'docker.io';
const DOCKER_HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);

/** `index.docker.io` and the other names of Docker Hub → `docker.io`; everything else lower-cased. */
export function canonicalRegistry(host: string): string {
  const h = host.toLowerCase();
  return DOCKER_HUB_ALIASES.has(h) ? DOCKER_HUB : h;
}

/**
 * Parses an image reference with the rules of github.com/distribution/reference
 * (ParseNormalizedNamed): the first path component is a registry only when it
 * has a dot or a port or is `localhost`; otherwise the image is on Docker Hub,
 * and a single-component name there is an official image (`library/`).
 * Undefined when `image` is not a reference at all.
 */
export function parseImageRef(image: string): ImageRef | undefined {
  const m = NAME_RE.exec(image.trim());
  if (!m) return undefined;
  let [, domain, path, tag, digest] = m as unknown as [string, string | undefined, string, string | undefined, string | undefined];
  if (domain !== undefined && !/[.:]/.test(domain) && domain !== 'localhost' && domain.toLowerCase() === domain) {
    // `user/app`: the first component is a Docker Hub namespace, not a host (an upper-case one is a host: paths are lower case)
    path = `${domain}/${path}`;
    domain = undefined;
  }
  const registry = canonicalRegistry(domain ?? DOCKER_HUB);
  if (registry === DOCKER_HUB && !path.includes('/')) path = `library/${path}`;
  return { registry, repository: path, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

/**
 * Registries whose every image is public, so they never need credentials:
 * Docker Hub's official images (`docker.io/library/…`, maintained by Docker,
 * always public) and registries that serve only public images.
 */
const PUBLIC_ONLY_REGISTRIES = new Set(['registry.k8s.io', 'mcr.microsoft.com', 'public.ecr.aws']);

/** True when the image is known to be public without asking its registry. */
export function knownPublic(ref: ImageRef): boolean {
  return PUBLIC_ONLY_REGISTRIES.has(ref.registry) || (ref.registry === DOCKER_HUB && ref.repository.startsWith('library/'));
}
