// The published JSON Schema and the loader must agree: editors show the same
// errors kompoxops reports. Files the loader rejects are rejected by the
// schema (except the documented semantic-only checks), and files the loader
// accepts are accepted by the schema.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { readSchema, schemaValidator } from '../../src/config/schema.js';
import { INGRESS_KEY_RE, QUANTITY_RE, SIZE_RE, DNS_NAME_RE, HOST_NAME_RE } from '../../src/config/quantity.js';
import { BAD, BAD_SEMANTIC_ONLY, WITH_DEPLOYMENT } from './cases.js';
import { LABEL_VALUE_RE } from '../../src/domain/names.js';
import { PINNED_IMAGE_RE, REGISTRY_MIRROR_RE } from '../../src/domain/images.js';
import { GOOD } from './helpers.js';

const GOOD_VARIANTS: Record<string, string> = {
  full: GOOD,
  'cluster only': 'version: 1\nservice: {name: ops}\nprovider: {name: p1, driver: aks}\ncluster: {name: c1}\n',
  'inline compose mapping': 'version: 1\nservice: {name: ops}\nprovider: {name: p1, driver: k3s}\ncluster: {name: c1}\napp:\n  name: a\n  compose:\n    services:\n      web: {image: nginx}\n',
  'inline compose text': 'version: 1\nservice: {name: ops}\nprovider: {name: p1, driver: k3s}\ncluster: {name: c1}\napp:\n  name: a\n  compose: |\n    services:\n      web: {image: nginx}\n',
  'empty optional sections (only comments)': GOOD.replace('  settings:\n    ACME_EMAIL: ops@example.com', '  settings:\n    # ACME_EMAIL: ops@example.com').replace(/  ingress:\n    http_80.*\n.*\n/, '  ingress:\n'),
  'numeric cpu and size': GOOD.replace('cpu: 500m', 'cpu: 2').replace('size: 10Gi', 'size: 10'),
  'deployment: pool and a list of zones': WITH_DEPLOYMENT(),
  'deployment: lists of pools, one zone': WITH_DEPLOYMENT('    pool: [user, spot]\n    zone: us-east-1a\n'),
  'deployment: an unquoted number as zone': WITH_DEPLOYMENT('    zone: 1\n'),
  'deployment: only comments': WITH_DEPLOYMENT('    # pool: user\n'),
  'image settings': GOOD.replace('ACME_EMAIL: ops@example.com', 'ACME_EMAIL: ops@example.com\n    KOMPOX_HELPER_IMAGE: registry.example.com/tools/busybox:1.37.0@sha256:9db7b59979c38555a39def84a31fb98b5296952f9e3afd4f6f11f05b07adfab0\n    INGRESS_TRAEFIK_IMAGE: localhost:5000/traefik:v3.3.6\n    KOMPOX_REGISTRY_MIRROR: mirror.example.com:5000/dockerhub'),
};

test('the schema is draft 2020-12 and describes every top-level section', () => {
  const s = readSchema() as { $schema: string; properties: Record<string, { description?: string }> };
  assert.equal(s.$schema, 'https://json-schema.org/draft/2020-12/schema');
  for (const k of ['version', 'service', 'provider', 'cluster', 'app']) assert.ok(s.properties[k]?.description, `${k} has a description`);
});

test('the schema uses the same patterns as the loader', () => {
  const text = JSON.stringify(readSchema());
  for (const re of [LABEL_VALUE_RE, QUANTITY_RE, SIZE_RE, INGRESS_KEY_RE, DNS_NAME_RE, HOST_NAME_RE, PINNED_IMAGE_RE, REGISTRY_MIRROR_RE]) {
    assert.ok(text.includes(JSON.stringify(re.source)), `schema contains ${re.source}`);
  }
});

for (const [name, text] of Object.entries(GOOD_VARIANTS)) {
  test(`schema accepts a valid file: ${name}`, async () => {
    const validate = await schemaValidator();
    assert.equal(validate(parse(text)), true, JSON.stringify(validate.errors));
  });
}

for (const b of BAD) {
  test(`schema rejects what the loader rejects: ${b.name}`, async () => {
    for (const compile of [false, true]) {
      const validate = await schemaValidator({ compile });
      assert.equal(validate(parse(b.text)), false, compile ? 'compiled now' : 'pre-generated');
    }
  });
}

test('the pre-generated validator is up to date with the schema (regenerate: npx tsx src/schema/codegen.ts)', async () => {
  const { createRequire } = await import('node:module');
  const { fileURLToPath } = await import('node:url');
  const { readFileSync } = await import('node:fs');
  const { CONFIG_SCHEMA, schemaSha256 } = await import('../../src/schema/codegen.js');
  const { schemaUrl: SCHEMA_URL, validatorUrl: VALIDATOR_URL } = CONFIG_SCHEMA;
  const mod = createRequire(VALIDATOR_URL)(fileURLToPath(VALIDATOR_URL)) as { schemaSha256: string };
  assert.equal(mod.schemaSha256, schemaSha256(readFileSync(SCHEMA_URL, 'utf8')));
});

for (const b of BAD_SEMANTIC_ONLY) {
  test(`semantic-only check the schema cannot express: ${b.name}`, async () => {
    const validate = await schemaValidator();
    assert.equal(validate(parse(b.text)), true);
  });
}

test('schema violations become diagnostics with field and line:column', async () => {
  const { parseYamlSource } = await import('../../src/config/source.js');
  const { schemaDiagnostics } = await import('../../src/config/schema.js');
  const src = parseYamlSource(GOOD.replace('size: 10Gi', 'size: 10GB').replace('  domain:', '  domian:'), 'kompoxops.yml');
  const diags = await schemaDiagnostics(src, src.value);
  const msgs = diags.map((d) => `${d.location?.line}:${d.location?.column} ${d.message}`).sort();
  assert.deepEqual(msgs, ['15:3 cluster.domian: key not allowed here (schema)', '32:13 app.volumes[0].size: must be number, or must match pattern "^(?!0+(\\.0+)?(Mi|Gi|Ti)?$)([0-9]+(\\.[0-9]+)?)(Mi|Gi|Ti)?$" (schema)']);
});

for (const [name, text] of Object.entries(GOOD_VARIANTS)) {
  test(`loader accepts the same valid file: ${name}`, async () => {
    const { loadConfig } = await import('../../src/config/index.js');
    const { scratch } = await import('./helpers.js');
    const s = scratch({ 'kompoxops.yml': text });
    try {
      const c = await loadConfig(`${s.dir}/kompoxops.yml`);
      assert.equal(c.service.name, 'ops');
    } finally {
      s.cleanup();
    }
  });
}
