// Traefik static-configuration arguments shared by both variants: the two
// Let's Encrypt resolvers (TLS-ALPN-01) and the HTTP→HTTPS redirect.
import { CERT_RESOLVER_PRODUCTION, CERT_RESOLVER_STAGING } from '../domain/ingress.js';
import { ACME_MOUNT_PATH, ACME_STORAGE_FILE, LETSENCRYPT_STAGING_CA, TRAEFIK_UID } from './names.js';

/**
 * Both resolvers share one acme.json: Traefik keys its ACME store by resolver
 * name, and one file keeps the init container (touch + chmod 600) simple.
 */
export function acmeResolverArgs(email: string): string[] {
  const args: string[] = [];
  for (const name of [CERT_RESOLVER_PRODUCTION, CERT_RESOLVER_STAGING]) {
    const p = `--certificatesresolvers.${name}.acme`;
    if (name === CERT_RESOLVER_STAGING) args.push(`${p}.caserver=${LETSENCRYPT_STAGING_CA}`);
    args.push(`${p}.email=${email}`, `${p}.storage=${ACME_STORAGE_FILE}`, `${p}.tlschallenge=true`);
  }
  return args;
}

/**
 * Redirect plain HTTP to HTTPS. The target is the *exposed* port `:443`, not
 * the entrypoint name: `to=websecure` would redirect to the container port 8443.
 */
export function redirectArgs(): string[] {
  return [
    '--entryPoints.web.http.redirections.entryPoint.to=:443',
    '--entryPoints.web.http.redirections.entryPoint.scheme=https',
    '--entryPoints.web.http.redirections.entryPoint.permanent=true',
  ];
}

/**
 * Init container that prepares acme.json: Traefik refuses a storage file whose
 * mode is not 600, and a fresh volume is owned by root. Runs as root with only
 * the capabilities touch/chmod/chown need.
 */
export function acmePermissionsInitContainer(volumeName: string, image: string): Record<string, unknown> {
  return {
    name: 'acme-permissions',
    image,
    command: [
      'sh',
      '-c',
      `touch ${ACME_STORAGE_FILE} && chmod 600 ${ACME_STORAGE_FILE} && chown ${TRAEFIK_UID}:${TRAEFIK_UID} ${ACME_STORAGE_FILE}`,
    ],
    securityContext: {
      allowPrivilegeEscalation: false,
      capabilities: { add: ['CHOWN', 'DAC_OVERRIDE', 'FOWNER'], drop: ['ALL'] },
      runAsGroup: 0,
      runAsNonRoot: false,
      runAsUser: 0,
    },
    volumeMounts: [{ mountPath: ACME_MOUNT_PATH, name: volumeName }],
  };
}
