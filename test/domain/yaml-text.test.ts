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

/** The strings YAML 1.1 (spec, yaml package, or Go's yaml.v2) reads as something else than a string. */
export const YAML11_TRAPS = [
  // booleans, in every case the readers know and a few they do not
  ...['y', 'Y', 'yes', 'Yes', 'YES', 'yEs', 'n', 'N', 'no', 'No', 'NO', 'nO', 'on', 'On', 'ON', 'oN', 'off', 'Off', 'OFF', 'oFF', 'true', 'True', 'TRUE', 'tRUE', 'false', 'False', 'FALSE'],
  // nulls and merge/value keys
  ...['~', 'null', 'Null', 'NULL', 'nULL', '<<', '=', ''],
  // integers: octal, 0o, hex, binary, underscores, signs, Go's base prefixes
  ...['0777', '0o17', '0O17', '0o1_7', '+0o17', '0x1F', '0X1F', '-0x1f', '0x_1F', '0b1010', '0B11', '+0b1', '1_000', '1__0', '08', '09', '+1', '-0', '0', '007', '12345678901234567890'],
  // floats: exponents, leading/trailing dots, underscores, inf/nan
  ...['1e3', '1E3', '1e+3', '1_0e3', '.5', '+.5', '-.5', '1.', '1_0.5', '1.0', '.inf', '-.inf', '+.INF', '.Inf', '.nan', '.NaN', '.NAN'],
  // sexagesimal (base 60) numbers and timestamps
  ...['12:30', '1:20:30', '-1:30', '190:20:30.15', '2001-12-14', '2001-12-14t21:59:43.10-05:00', '2001-12-14 21:59:43.10 -5', '2002-12-14T00:00:00Z'],
  // characters YAML 1.1 takes for line breaks or refuses, and other awkward text
  ...['a\u2028b', 'x\u0085y', 'p\u2029', 'del\x7f', 'c1\x9b', '\ufeffbom', 'nul\x00', 'bell\x07', 'tab\there', ' lead', 'trail ', 'a: b', 'a #b', '#c', '- x', '? q', '%YAML', '---', '...', '@at', '`tick', '!tag', '&anchor', '*alias', '{x}', '[y]', '"q"', "'s'", 'line1\nline2\n', 'no newline\nat end', '\n', 'héllo ✓', '日本語'],
];

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

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

// Pieces that make up numbers, words, timestamps and breaks in YAML 1.1.
const PIECES = ['0', '1', '7', '9', '_', '.', ':', '-', '+', 'e', 'E', 'x', 'X', 'o', 'O', 'b', 'B', 'f', 'y', 'n', 'Y', 'N', 'es', 'o', 'ff', 'n', 'rue', 'alse', 'ull', '~', 'inf', 'nan', ' ', 't', 'T', 'Z', '#', '\n', '\t', '\u2028', '\u0085', '\x7f', '\ufeff', '"', "'", '\\', '<<', '=', '%', '@', 'é'];

test('generated strings (seeded): YAML 1.1 and 1.2 read back exactly the printed string', () => {
  const r = rng(20240917);
  for (let i = 0; i < 4000; i++) {
    const n = 1 + Math.floor(r() * 6);
    let s = '';
    for (let j = 0; j < n; j++) s += PIECES[Math.floor(r() * PIECES.length)];
    const data = { v: s, l: [s, { [s]: s }] };
    roundTrips(toYamlText(data), [data], `case ${i} ${JSON.stringify(s)}`);
  }
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
