// app deploy's check of the images' registries, before anything is applied:
// every image whose registry has no stored credentials, no access by the
// nodes' identity (the driver's registryAccess) and is not known to be public
// is looked at with the registry probe (anonymous pull check), when the front
// end gives one. What would fail to pull, or cannot be told (also without a
// probe), becomes a warning; nothing
// stops the deploy (the rollout reports a pull failure with its reason).
//
// Cluster/app setting KOMPOX_REGISTRY_CHECK: `probe` (default: ask the
// registry anonymously), `offline` (no network: warn for what cannot be
// told), `off` (no check).
import type { Diagnostic } from '../domain/errors.js';
import type { Op } from '../domain/events.js';
import { knownPublic, parseImageRef, type ImageRef } from '../domain/images.js';
import { lookupSetting, type AppContext } from '../domain/model.js';
import type { KubeObject } from '../domain/ports/kube.js';
import type { ProviderDriver } from '../domain/ports/driver.js';
import type { RegistryProbe } from '../domain/ports/registry.js';
import { credentialsFor } from '../domain/registry.js';
import { KompoxError } from '../domain/errors.js';

export const SETTING_REGISTRY_CHECK = 'KOMPOX_REGISTRY_CHECK';
export type RegistryCheckMode = 'probe' | 'offline' | 'off';

export function registryCheckMode(ctx: AppContext): RegistryCheckMode {
  const s = lookupSetting(ctx, SETTING_REGISTRY_CHECK);
  if (!s) return 'probe';
  if (s.value === 'probe' || s.value === 'offline' || s.value === 'off') return s.value;
  throw new KompoxError('config', `${s.field} must be probe, offline or off, got "${s.value}"`, {
    field: s.field,
    hint: 'probe asks each registry whether an image is public, offline never calls a registry, off skips the check.',
  });
}

/** How the pod will get each image. */
export interface ImageAccess {
  image: string;
  registry: string;
  /** credentials: stored for the registry; identity: the nodes' own access; public: known or answered so; private/unknown: warned (unknown also when no probe was given). */
  access: 'credentials' | 'identity' | 'public' | 'private' | 'unknown';
  /** The `auths` keys that match, the driver's words, or why it cannot be told. */
  detail?: string;
}

/** Every image of the pod templates among `objects` (containers and init containers), sorted, once each. */
export function podImages(objects: KubeObject[]): string[] {
  const images = new Set<string>();
  for (const o of objects) {
    const spec = ((o.spec as { template?: { spec?: Record<string, unknown> } } | undefined)?.template?.spec ?? (o.kind === 'Pod' ? o.spec : undefined)) as
      | { containers?: { image?: string }[]; initContainers?: { image?: string }[] }
      | undefined;
    for (const c of [...(spec?.initContainers ?? []), ...(spec?.containers ?? [])]) if (c.image) images.add(c.image);
  }
  return [...images].sort();
}

const HINT = "Store the registry's credentials for the app (a Docker config.json with its auths), or give the cluster's nodes access to the registry.";

/**
 * How each image will be pulled, and a warning for each that may fail.
 * `registries`: the stored config's `auths` keys. The probe is asked at most
 * once per image, all at once.
 */
export async function checkImageAccess(
  ctx: AppContext,
  images: string[],
  registries: readonly string[],
  driver: Pick<ProviderDriver, 'registryAccess'> | undefined,
  probe: RegistryProbe | undefined,
  op: Op = {},
): Promise<{ images: ImageAccess[]; warnings: Diagnostic[] }> {
  const mode = registryCheckMode(ctx);
  if (mode === 'off') return { images: [], warnings: [] };
  const out: ImageAccess[] = [];
  const ask: { i: number; ref: ImageRef }[] = [];
  for (const image of images) {
    const ref = parseImageRef(image);
    if (!ref) continue; // not a reference: the kubelet reports InvalidImageName
    const keys = credentialsFor(registries, ref);
    const identity = keys.length ? undefined : driver?.registryAccess?.byIdentity(ctx, ref.registry);
    const a: ImageAccess = { image, registry: ref.registry, access: keys.length ? 'credentials' : identity ? 'identity' : knownPublic(ref) ? 'public' : 'unknown' };
    if (keys.length) a.detail = keys.join(', ');
    else if (identity) a.detail = identity;
    out.push(a);
    if (a.access === 'unknown') {
      if (mode === 'probe' && probe) ask.push({ i: out.length - 1, ref });
      else if (mode === 'offline') a.detail = `${SETTING_REGISTRY_CHECK} is offline: no registry is asked`;
      // a front end that gives no probe (a server must not send tenants' image names from its own network) cannot tell either
      else a.detail = 'registries are not asked from here';
    }
  }
  await Promise.all(
    ask.map(async ({ i, ref }) => {
      const r = await probe!.visibility(ref, op);
      out[i]!.access = r.visibility === 'public' ? 'public' : r.visibility;
      if (r.reason) out[i]!.detail = r.reason;
    }),
  );
  const warnings: Diagnostic[] = [];
  for (const a of out) {
    if (a.access === 'private') {
      warnings.push({ level: 'warning', message: `image ${a.image}: registry ${a.registry} does not serve it without credentials, and none are stored for it: the pull will fail (ErrImagePull)`, hint: HINT });
    } else if (a.access === 'unknown') {
      warnings.push({ level: 'warning', message: `image ${a.image}: no credentials are stored for registry ${a.registry}, and whether the image is public cannot be told (${a.detail}); a private image will fail to pull`, hint: HINT });
    }
  }
  return { images: out, warnings };
}
