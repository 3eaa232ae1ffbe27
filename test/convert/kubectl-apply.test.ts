// Every manifest Kompox prints is accepted by `kubectl apply --dry-run=server`:
// the golden manifests exactly as `app validate --out-manifest` prints them
// and the generic Traefik installation of `cluster deploy`, piped into the real kubectl (whose YAML reader is Go's YAML 1.1 yaml.v2)
// against the in-process fake API server, or against a real cluster when
// KOMPOX_TEST_KUBECONFIG is set. On the fake, what kubectl sent is compared
// with what Kompox meant: a `yes` that kubectl turned into a boolean fails
// here even though the fake does not check Go types.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { startFakeKube, type FakeKube } from '../support/fake-kube/index.js';
import { objectsToYaml } from '../../src/usecases/app-load.js';
import { toYamlText } from '../../src/domain/yaml-text.js';
import type { KubeObject } from '../../src/kube/types.js';
import { FIXTURES, convertingCases, runGoldenCase } from './golden-cases.js';
import { buildIngressObjects } from '../../src/ingress/index.js';
import { toYamlDocuments } from '../../src/domain/yaml-text.js';
import { CASES as INGRESS_CASES } from '../ingress/fixtures/cases.js';
import { YAML11_TRAPS, generatedStrings, generatedTexts } from '../support/yaml-traps.js';

const REAL = process.env.KOMPOX_TEST_KUBECONFIG;
const SKIP =
  spawnSync('kubectl', ['version', '--client']).status !== 0
    ? 'kubectl is not installed'
    : !REAL && spawnSync('openssl', ['version']).status !== 0
      ? 'the openssl CLI is not installed (the fake API server needs TLS for kubectl to send its token)'
      : false;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** kubectl, asynchronously: the fake API server runs in this process and must keep answering. */
function kubectl(kubeconfig: string, args: string[], input = ''): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn('kubectl', ['--kubeconfig', kubeconfig, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stdout, stderr }));
    p.stdin.end(input);
  });
}

/** Every field of `want` is in `got` with the same value (the server adds defaults and annotations). */
function assertSubset(got: unknown, want: unknown, path: string): void {
  if (want !== null && typeof want === 'object' && !Array.isArray(want)) {
    assert.ok(got !== null && typeof got === 'object' && !Array.isArray(got), `${path}: expected a mapping, kubectl sent ${JSON.stringify(got)}`);
    for (const [k, v] of Object.entries(want)) assertSubset((got as Record<string, unknown>)[k], v, `${path}.${k}`);
    return;
  }
  if (Array.isArray(want)) {
    assert.ok(Array.isArray(got) && got.length === want.length, `${path}: expected a list of ${want.length}, kubectl sent ${JSON.stringify(got)}`);
    want.forEach((v, i) => assertSubset(got[i], v, `${path}[${i}]`));
    return;
  }
  assert.deepEqual(got, want, `${path}: Kompox printed ${JSON.stringify(want)}, kubectl read ${JSON.stringify(got)}`);
}

describe('kubectl apply --dry-run=server accepts every printed manifest', { skip: SKIP }, () => {
  let fake: FakeKube | undefined;
  let kubeconfig: string;
  // namespaces this test created on a real cluster (removed at the end)
  const created = new Set<string>();
  // The fake serves no OpenAPI document, which kubectl's client-side validation
  // downloads first; a real server gets kubectl's default (strict) validation.
  const validate = () => (fake ? ['--validate=false'] : []);

  before(async () => {
    if (REAL) kubeconfig = REAL;
    else {
      fake = await startFakeKube({ tls: true });
      kubeconfig = fake.kubeconfigPath;
    }
  });
  after(async () => {
    for (const ns of created) await kubectl(kubeconfig, ['delete', 'namespace', ns, '--wait=false']);
    await fake?.close();
  });

  /** Namespaced objects can only be dry-run into a namespace that exists. */
  async function ensureNamespace(ns: string): Promise<void> {
    const got = await kubectl(kubeconfig, ['get', 'namespace', ns, '-o', 'name']);
    if (got.code === 0) return;
    const r = await kubectl(kubeconfig, ['create', 'namespace', ns]);
    assert.equal(r.code, 0, r.stderr);
    if (REAL) created.add(ns);
  }

  async function dryRunApply(text: string): Promise<KubeObject[]> {
    const r = await kubectl(kubeconfig, ['apply', '--dry-run=server', ...validate(), '-o', 'json', '-f', '-'], text);
    assert.equal(r.code, 0, `kubectl apply --dry-run=server failed:\n${r.stderr}\n--- manifest ---\n${text}`);
    const out = JSON.parse(r.stdout) as KubeObject & { items?: KubeObject[] };
    return out.kind === 'List' ? (out.items ?? []) : [out];
  }

  test('there are golden manifests to apply', () => {
    assert.ok(convertingCases.includes('yaml11-strings'), 'the YAML 1.1 fixture is among them');
    assert.ok(convertingCases.length >= 10);
  });

  for (const name of convertingCases) {
    test(`golden manifest: ${name}`, async () => {
      const { result } = await runGoldenCase(join(FIXTURES, name));
      const text = await objectsToYaml(result.objects);
      for (const ns of new Set(result.objects.map((o) => o.metadata.namespace).filter((n): n is string => Boolean(n)))) await ensureNamespace(ns);
      const applied = await dryRunApply(text);
      assert.equal(applied.length, result.objects.length, 'kubectl applied every document');
      if (!fake) return; // a real server normalises some values (quantities); it checked the types itself
      for (const want of result.objects) {
        const got = applied.find((o) => o.kind === want.kind && o.metadata.name === want.metadata.name);
        assert.ok(got, `${want.kind} ${want.metadata.name} came back`);
        assertSubset(got, want, `${want.kind}/${want.metadata.name}`);
      }
      // dry run: nothing was stored
      if (fake) assert.ok(!fake.store.list(fake.resource('apps/v1', 'Deployment')!, undefined).some((d) => result.objects.some((o) => o.kind === 'Deployment' && o.metadata.name === d.metadata?.name && o.metadata.namespace === d.metadata?.namespace)));
    });
  }

  // The generic Traefik installation of `cluster deploy` (K3s's HelmChartConfig needs K3s's CRD).
  for (const [name, spec] of Object.entries(INGRESS_CASES).filter(([, c]) => c.variant === 'traefik')) {
    // on a real cluster, kube-system may hold the cluster's own Traefik, which a dry run would patch
    const skip = REAL && spec.namespace === 'kube-system' ? 'the case writes into kube-system, left alone on a real cluster' : false;
    test(`ingress objects: ${name}`, { skip }, async () => {
      const objects = buildIngressObjects(spec);
      await ensureNamespace(spec.namespace);
      const applied = await dryRunApply(toYamlDocuments(objects));
      assert.equal(applied.length, objects.length);
      if (fake) for (const want of objects) assertSubset(applied.find((o) => o.kind === want.kind && o.metadata.name === want.metadata.name), want, `${want.kind}/${want.metadata.name}`);
    });
  }

  test('kubectl reads every YAML 1.1 trap back as the string Kompox printed (ConfigMap keys and values, generated strings)', async () => {
    const ns = 'kompox-yaml11-test';
    await ensureNamespace(ns);
    // Kubernetes strings are UTF-8 without NUL; keys are [-._a-zA-Z0-9]+, not "." and not starting with "..".
    const values = [...YAML11_TRAPS, ...generatedStrings(7, 1500), ...generatedTexts(11, 500)].filter((s) => !s.includes('\x00'));
    const data: Record<string, string> = {};
    values.forEach((v, i) => (data[`v${i}`] = v));
    for (const k of YAML11_TRAPS.filter((s) => /^[-._a-zA-Z0-9]+$/.test(s) && s !== '.' && !s.startsWith('..'))) data[k] = k;
    const cm: KubeObject = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'yaml11-traps', namespace: ns, labels: { on: 'yes', y: 'n' } }, data };
    const [got] = await dryRunApply(`---\n${toYamlText(cm)}`);
    assert.deepEqual(got!.data, data);
    assert.equal(got!.metadata.labels?.on, 'yes');
    assert.equal(got!.metadata.labels?.y, 'n');
  });
});
