// Ingress naming rules shared by the converter (which writes Ingress objects),
// cluster deploy (which configures Traefik) and status (which prints URLs).
import type { Cluster } from './model.js';

/** Traefik certificate resolvers created by `cluster deploy`. */
export const CERT_RESOLVER_PRODUCTION = 'letsencrypt';
export const CERT_RESOLVER_STAGING = 'letsencrypt-staging';

/** Cluster setting that selects the Let's Encrypt staging resolver (tests, trials). */
export const SETTING_ACME_STAGING = 'ACME_STAGING';

function truthy(v: string | undefined): boolean {
  return v !== undefined && /^(1|true|yes|on)$/i.test(v.trim());
}

/** The resolver app ingresses use for custom hosts on this cluster. */
export function certResolverFor(cluster: Pick<Cluster, 'settings'>): string {
  return truthy(cluster.settings[SETTING_ACME_STAGING]) ? CERT_RESOLVER_STAGING : CERT_RESOLVER_PRODUCTION;
}
