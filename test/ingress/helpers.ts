// Test helper: real self-signed certificates made with the openssl CLI in a
// temp dir (node:crypto makes keys but not X.509 certificates).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const OPENSSL_MISSING: string | false = (() => {
  const r = spawnSync('openssl', ['version'], { encoding: 'utf8' });
  return r.status === 0 ? false : 'the openssl CLI is not installed (needed to make test certificates)';
})();

export interface TestCert {
  cert: string;
  key: string;
  certPath: string;
  keyPath: string;
  dir: string;
  cleanup(): void;
}

/** A self-signed P-256 certificate for `names` (first is the CN), valid `days` days. */
export function makeCert(names: string[], days = 10): TestCert {
  const dir = mkdtempSync(join(tmpdir(), 'kompox-cert-'));
  const certPath = join(dir, 'tls.crt');
  const keyPath = join(dir, 'tls.key');
  const r = spawnSync(
    'openssl',
    [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-keyout', keyPath, '-out', certPath,
      '-subj', `/CN=${names[0]}`,
      '-addext', `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}`,
      '-days', String(days),
    ],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`openssl failed: ${r.stderr}`);
  return {
    cert: readFileSync(certPath, 'utf8'),
    key: readFileSync(keyPath, 'utf8'),
    certPath,
    keyPath,
    dir,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A cluster as kompoxops.yml would give it (name c1, domain example.com). */
export function testCluster(settings: Record<string, string>, namespace = 'traefik'): import('../../src/domain/model.js').Cluster {
  return {
    name: 'c1',
    provider: 'p1',
    auth: { type: 'kubectl' },
    ingress: { controller: 'traefik', namespace },
    domain: 'example.com',
    settings,
  };
}
