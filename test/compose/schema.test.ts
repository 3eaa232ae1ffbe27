// The vendored schema, its generated validator, and the diagnostics helpers.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { composeValidator, fieldPath } from '../../src/compose/schema.js';
import { closest } from '../../src/domain/suggest.js';
import { COMPOSE_SCHEMA, compileSchema, generateValidatorSource, schemaSha256 } from '../../src/schema/codegen.js';

const { schemaUrl: SCHEMA_URL, validatorUrl: VALIDATOR_URL } = COMPOSE_SCHEMA;

describe('compose schema', () => {
  it('is vendored with its license and provenance', () => {
    const dir = new URL('./', SCHEMA_URL);
    for (const f of ['compose-spec.json', 'LICENSE-compose-go', 'README.md']) assert.ok(existsSync(new URL(f, dir)), f);
    assert.match(readFileSync(new URL('README.md', dir), 'utf8'), /e70e961c3a3acebf0800b882f1afb3dbf1fb74a2/);
    const schema = JSON.parse(readFileSync(SCHEMA_URL, 'utf8')) as { $schema: string };
    assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
  });

  it('the generated validator is up to date with the schema (regenerate with `npx tsx src/schema/codegen.ts`)', async () => {
    const text = readFileSync(SCHEMA_URL, 'utf8');
    const current = readFileSync(VALIDATOR_URL, 'utf8');
    assert.ok(current.includes(JSON.stringify(schemaSha256(text))), 'validator was generated from this schema');
    assert.equal(await generateValidatorSource(COMPOSE_SCHEMA, text), current);
  });

  it('the generated and the run-time compiled validator agree', async () => {
    const generated = await composeValidator();
    const compiled = await compileSchema<typeof generated>(COMPOSE_SCHEMA, JSON.parse(readFileSync(SCHEMA_URL, 'utf8')) as object);
    const samples: unknown[] = [
      { services: { web: { image: 'x', ports: ['80:80', { target: 80 }] } } },
      { services: { web: { imagee: 'x', ports: 80, depends_on: { db: { condition: 'bogus' } } } } },
      { services: { 'bad name': {} }, volumes: { v: null }, 'x-ext': 1 },
    ];
    for (const s of samples) {
      const a = generated(s);
      const errorsA = generated.errors;
      assert.equal(compiled(s), a);
      assert.deepEqual(compiled.errors, errorsA);
    }
  });

  it('suggests the closest key only when it is plausibly a typo', () => {
    assert.equal(closest('imagee', ['image', 'command', 'ports']), 'image');
    assert.equal(closest('enviroment', ['environment', 'env_file']), 'environment');
    assert.equal(closest('Image', ['image']), 'image');
    assert.equal(closest('zzzzzzzz', ['image', 'command']), undefined);
  });

  it('formats field paths with list indices', () => {
    assert.equal(fieldPath(['services', 'web', 'ports', 0, 'target']), 'services.web.ports[0].target');
    assert.equal(fieldPath([]), '');
  });
});
