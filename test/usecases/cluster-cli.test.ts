// kompoxops cluster deploy/undeploy/status through the real binary, against
// the in-process fake API server (the CLI runs as a child process, so it is
// spawned asynchronously: the fake answers from this process's event loop).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, type CliResult } from '../support/cli.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/index.js';
import { OPENSSL_MISSING, makeCert } from '../ingress/helpers.js';

function run(args: string[], cwd: string): Promise<CliResult> {
  return runCli(args, { cwd });
}

function opsYaml(settings: Record<string, string>): string {
  const s = Object.entries(settings)
    .map(([k, v]) => `    ${k}: ${JSON.stringify(v)}`)
    .join('\n');
  return `version: 1
service:
  name: ops
provider:
  name: aks1
  driver: aks
  settings: {}
cluster:
  name: c1
  auth:
    type: kubectl
    kubeconfig: ./kubeconfig
  ingress:
    controller: traefik
    namespace: traefik
  domain: example.com
  settings:
${s || '    {}'}
`;
}

function writes(fake: FakeKube): number {
  return fake.requests.filter((r) => r.method !== 'GET').length;
}

describe('kompoxops cluster (CLI)', () => {
  let fake: FakeKube;
  let dir: string;
  before(async () => {
    fake = await startFakeKube();
    dir = mkdtempSync(join(tmpdir(), 'kompox-cluster-cli-'));
    copyFileSync(fake.kubeconfigPath, join(dir, 'kubeconfig'));
  });
  after(async () => {
    rmSync(dir, { recursive: true, force: true });
    await fake?.close();
  });

  test('cluster deploy --help lists the settings', async () => {
    const r = await run(['cluster', 'deploy', '--help'], dir);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /Usage: kompoxops cluster deploy/);
    assert.match(r.stdout, /ACME_EMAIL/);
    assert.match(r.stdout, /--dry-run/);
  });

  test('missing ACME_EMAIL: one clear error with file:line, exit 1, nothing applied', async () => {
    writeFileSync(join(dir, 'kompoxops.yml'), opsYaml({}));
    const n = writes(fake);
    const r = await run(['cluster', 'deploy'], dir);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: kompoxops\.yml:\d+:\d+: cluster\.settings\.ACME_EMAIL is not set\. .*ACME_EMAIL: you@example\.com/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.equal(writes(fake), n);
  });

  test('deploy, status, undeploy', { skip: OPENSSL_MISSING }, async () => {
    const cert = makeCert(['*.c1.example.com'], 90);
    try {
      copyFileSync(cert.certPath, join(dir, 'wild.crt'));
      copyFileSync(cert.keyPath, join(dir, 'wild.key'));
      writeFileSync(
        join(dir, 'kompoxops.yml'),
        opsYaml({ ACME_EMAIL: 'ops@example.com', INGRESS_TLS_CERT_FILE: 'wild.crt', INGRESS_TLS_KEY_FILE: 'wild.key' }),
      );
      let r = await run(['cluster', 'deploy'], dir);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /changed 10 of 10 objects \(Traefik in namespace traefik\); wildcard certificate \*\.c1\.example\.com valid until/);
      assert.match(r.stderr, /Deployment traefik\/traefik created/);
      assert.match(r.stdout, /custom hosts get Let's Encrypt certificates from resolver letsencrypt\n/);

      r = await run(['cluster', 'deploy', '-o', 'json'], dir);
      assert.equal(r.code, 0, r.stderr);
      const again = JSON.parse(r.stdout);
      assert.ok(again.objects.every((o: { action: string }) => o.action === 'unchanged'));

      r = await run(['cluster', 'status', '-o', 'json'], dir);
      assert.equal(r.code, 0, r.stderr);
      const s = JSON.parse(r.stdout);
      assert.equal(s.reachable, true);
      assert.equal(s.ingress.installed, true);
      assert.equal(s.defaultDomain, 'c1.example.com');
      assert.deepEqual(s.wildcardCertificate.dnsNames, ['*.c1.example.com']);

      r = await run(['cluster', 'status'], dir);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^FIELD\s+VALUE/);
      assert.match(r.stdout, /reachable\s+yes/);
      assert.match(r.stdout, /default domain\s+\*\.c1\.example\.com/);

      r = await run(['cluster', 'undeploy'], dir);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /deleted 8 objects; kept .*PersistentVolumeClaim traefik\/traefik-acme/);
      r = await run(['cluster', 'undeploy', '--purge', '-o', 'yaml'], dir);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /kept: \[\]/);
    } finally {
      cert.cleanup();
    }
  });

  test('status of an unreachable cluster: reachable no, exit 1, no stack trace', async () => {
    const f = await startFakeKube();
    const d = mkdtempSync(join(tmpdir(), 'kompox-cluster-cli-'));
    try {
      copyFileSync(f.kubeconfigPath, join(d, 'kubeconfig'));
      await f.close(); // nothing listens there any more
      writeFileSync(join(d, 'kompoxops.yml'), opsYaml({}));
      const r = await run(['cluster', 'status'], d);
      assert.equal(r.code, 1);
      assert.match(r.stdout, /reachable\s+no: cannot reach the Kubernetes API server at https?:\/\/127\.0\.0\.1:\d+: connection refused/);
      assert.doesNotMatch(r.stdout + r.stderr, /\n\s+at /);
      const j = await run(['cluster', 'status', '-o', 'json'], d);
      assert.equal(j.code, 1);
      assert.equal(JSON.parse(j.stdout).reachable, false);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});
