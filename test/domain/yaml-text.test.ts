// Everything Kompox prints as YAML must read the same under YAML 1.1 (kubectl,
// the API server's sigs.k8s.io/yaml, Helm) and YAML 1.2 (the yaml package,
// docker compose). Each printed document is parsed with both and compared with
// the data it was printed from: a table of the strings YAML 1.1 resolves to
// something else, generated strings (seeded), every golden manifest, the
// ingress objects and their Helm values, a kubeconfig and the compose model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { toYamlDocuments, toYamlText } from '../../src/domain/yaml-text.js';
import { objectsToYaml } from '../../src/usecases/app-load.js';
import { kubeconfigYaml } from '../../src/usecases/cluster-kubeconfig.js';
import { buildIngressObjects } from '../../src/ingress/index.js';
import { projectToYaml } from '../../src/compose/index.js';
import { CASES as INGRESS_CASES } from '../ingress/fixtures/cases.js';
import { FIXTURES, convertingCases, runGoldenCase } from '../convert/golden-cases.js';
import { YAML11_TRAPS, generatedStrings, generatedTexts } from '../support/yaml-traps.js';

function roundTrips(text: string, want: unknown, what: string): void {
  const v11 = parseAllDocuments(text, { version: '1.1' }).map((d) => d.toJS());
  const v12 = parseAllDocuments(text, { version: '1.2' }).map((d) => d.toJS());
  for (const [docs, version] of [[v11, '1.1'], [v12, '1.2']] as const) {
    assert.deepEqual(docs, want, `${what}: reads differently under YAML ${version}:\n${text}`);
  }
}

test('every YAML 1.1 trap is printed so that YAML 1.1 and 1.2 read the same string (as value, key and list item)', () => {
  for (const s of YAML11_TRAPS) {
    const data = { value: s, list: [s], map: { [s]: s } };
    roundTrips(toYamlText(data), [data], JSON.stringify(s));
  }
});

test('the traps that are words or numbers are quoted, never plain', () => {
  const text = toYamlText({ a: 'yes', b: 'Off', c: '0777', d: '12:30', e: '1_000', f: '0o1_7', g: 'yEs' });
  for (const v of ['yes', 'Off', '0777', '12:30', '1_000', '0o1_7', 'yEs']) assert.ok(text.includes(`"${v}"`), `${v} is quoted in:\n${text}`);
  // and ordinary strings stay plain
  assert.match(toYamlText({ cpu: '500m', memory: '1Gi', image: 'nginx:1.27', v: '1.2.3' }), /^cpu: 500m\nmemory: 1Gi\nimage: nginx:1.27\nv: 1.2.3\n$/);
});

test('generated strings (seeded): YAML 1.1 and 1.2 read back exactly the printed string', () => {
  [...generatedStrings(20240917, 4000), ...generatedTexts(5, 1000)].forEach((s, i) => {
    const data = { v: s, l: [s, { [s]: s }] };
    roundTrips(toYamlText(data), [data], `case ${i} ${JSON.stringify(s)}`);
  });
});

test('numbers, booleans and null keep their types in both versions', () => {
  const data = { i: 8080, z: 0, neg: -1, f: 0.5, big: 2 ** 53 - 1, t: true, f2: false, n: null, list: [1, 'one', true, null] };
  roundTrips(toYamlText(data), [data], 'scalars');
});

test('every golden manifest, as app validate --out-manifest prints it, reads the same under YAML 1.1 and 1.2', async () => {
  assert.ok(convertingCases.length >= 10, `only ${convertingCases.length} cases`);
  for (const name of convertingCases) {
    const { result } = await runGoldenCase(join(FIXTURES, name));
    const text = await objectsToYaml(result.objects);
    assert.equal(text, toYamlDocuments(result.objects), 'the manifest goes through the shared printer');
    roundTrips(text, result.objects, name);
  }
});

test('the ingress objects and the Helm values inside the K3s HelmChartConfig read the same under YAML 1.1 and 1.2', () => {
  for (const [name, spec] of Object.entries(INGRESS_CASES)) {
    const objects = buildIngressObjects(spec);
    roundTrips(toYamlDocuments(objects), objects, name);
    for (const o of objects.filter((x) => x.kind === 'HelmChartConfig')) {
      const values = (o.spec as { valuesContent: string }).valuesContent;
      assert.deepEqual(parse(values, { version: '1.1' }), parse(values, { version: '1.2' }), `${name}: valuesContent`);
    }
  }
});

test('a kubeconfig whose names and namespace look like YAML 1.1 words or numbers reads the same in both versions', async () => {
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'on', cluster: { server: 'https://127.0.0.1:6443' } }],
    users: [{ name: 'on', user: { token: '0777' } }],
    contexts: [{ name: 'on', context: { cluster: 'on', user: 'on', namespace: 'no' } }],
    'current-context': 'on',
  };
  roundTrips(await kubeconfigYaml(doc), [doc], 'kubeconfig');
});

test('the canonical compose model reads the same under YAML 1.1 and 1.2', () => {
  const project = { name: 'p', services: { web: { image: 'nginx', environment: { A: 'yes', B: '0777', C: '12:30', D: 'off', E: '1_000' }, labels: { y: 'n' } } } };
  roundTrips(projectToYaml(project as never), [project], 'compose');
});
