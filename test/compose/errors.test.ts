// Error messages: every bad input is one KompoxError('config') naming the file,
// line and column, the key, and what to do.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadDir } from '../support/source.js';
import { DiagnosticsError, KompoxError } from '../../src/domain/errors.js';
import { load, loadError, project } from './helpers.js';

describe('compose loader errors', () => {
  it('unknown key: names the key, the service, file:line:column and the closest known key', async () => {
    const e = await loadError({ 'compose.yml': 'services:\n  web:\n    image: nginx\n    imagee: nginx\n' });
    assert.equal(e.kind, 'config');
    assert.deepEqual(e.location, { file: 'compose.yml', line: 4, column: 5 });
    assert.equal(e.message, 'services.web: unknown key "imagee" — did you mean "image"?');
    assert.match(e.text, /^compose\.yml:4:5: services\.web: unknown key "imagee" — did you mean "image"\?/);
  });

  it('unknown top-level key and unknown key in a nested long syntax', async () => {
    const top = await loadError({ 'compose.yaml': 'service:\n  web:\n    image: x\n' });
    assert.match(top.message, /unknown key "service" — did you mean "services"\?/);
    assert.deepEqual(top.location, { file: 'compose.yaml', line: 1, column: 1 });
    const nested = await loadError({ 'compose.yaml': 'services:\n  web:\n    image: x\n    ports:\n      - target: 80\n        publisehd: 8080\n' });
    assert.match(nested.message, /services\.web\.ports\[0\]: unknown key "publisehd" — did you mean "published"\?/);
    assert.deepEqual(nested.location, { file: 'compose.yaml', line: 6, column: 9 });
  });

  it('an unknown key without a close match lists the known keys', async () => {
    const e = await loadError({ 'compose.yaml': 'services:\n  web:\n    image: x\n    healthcheck:\n      zzzzzzzz: 1\n' });
    assert.match(e.message, /services\.web\.healthcheck: unknown key "zzzzzzzz"/);
    assert.match(e.hint ?? '', /interval/);
  });

  it('wrong type: names the path and the expected type', async () => {
    const e = await loadError({ 'compose.yaml': 'services:\n  web:\n    image: x\n    ports: "80:80"\n' });
    assert.equal(e.message, 'services.web.ports must be list, not string');
    assert.deepEqual(e.location, { file: 'compose.yaml', line: 4, column: 5 });
    const e2 = await loadError({ 'compose.yaml': 'services:\n  web:\n    image: x\n    read_only: maybe\n' });
    assert.equal(e2.message, 'services.web.read_only: "maybe" is not a boolean');
    assert.deepEqual(e2.location, { file: 'compose.yaml', line: 4, column: 16 });
  });

  it('several schema errors are collected into one DiagnosticsError, sorted by line', async () => {
    const e = await loadError({ 'compose.yaml': 'services:\n  web:\n    imagee: x\n    restrat: always\n    ports: 80\n' });
    assert.ok(e instanceof DiagnosticsError);
    assert.deepEqual(
      e.diagnostics.map((d) => d.location?.line),
      [3, 4, 5],
    );
    assert.match(e.diagnostics[1]!.message, /"restrat" — did you mean "restart"/);
    assert.equal(e.diagnostics[0]!.service, 'web');
  });

  it('duplicate list items name both indices and point at the repeat', async () => {
    const e = await loadError({ 'compose.yaml': 'services:\n  web:\n    image: x\n    ports:\n      - 80\n      - 81\n      - 80\n' });
    assert.equal(e.message, 'services.web.ports: items 0 and 2 are duplicates');
    assert.deepEqual(e.location, { file: 'compose.yaml', line: 7, column: 9 });
  });

  it('interpolation errors name the list index like the schema errors', async () => {
    const e = await loadError({ 'compose.yaml': 'services:\n  web:\n    image: x\n    environment:\n      - A=1\n      - B=${\n' });
    assert.match(e.message, /\(in services\.web\.environment\[1\]\)/);
  });

  it('invalid service names are reported as such', async () => {
    const e = await loadError({ 'compose.yaml': 'services:\n  "my app":\n    image: x\n' });
    assert.match(e.message, /invalid name "my app"/);
    assert.equal(e.location?.line, 2);
  });

  it('YAML syntax error with file:line:column', async () => {
    const e = await loadError({ 'compose.yaml': 'services:\n  web:\n    image: "unterminated\n' });
    assert.match(e.message, /YAML syntax error/);
    assert.equal(e.location?.file, 'compose.yaml');
    assert.equal(typeof e.location?.line, 'number');
    assert.equal(typeof e.location?.column, 'number');
  });

  it('duplicate keys are a YAML error at the duplicate', async () => {
    const e = await loadError({ 'compose.yaml': 'services:\n  web:\n    image: a\n    image: b\n' });
    assert.equal(e.message, 'YAML syntax error: duplicate key "image" in this mapping');
    assert.deepEqual(e.location, { file: 'compose.yaml', line: 4, column: 5 });
  });

  it('a missing required variable names the variable, the message and file:line', async () => {
    const e = await loadError({ 'compose.yaml': 'services:\n  web:\n    image: x\n    environment:\n      DB_PASSWORD: ${DB_PASSWORD:?set the database password}\n' });
    assert.match(e.message, /required variable DB_PASSWORD is missing a value: set the database password/);
    assert.deepEqual(e.location, { file: 'compose.yaml', line: 5, column: 20 });
    assert.equal(e.field, 'services.web.environment.DB_PASSWORD');
    assert.match(e.hint ?? '', /DB_PASSWORD/);
  });

  it('an invalid interpolation says how to escape $', async () => {
    const e = await loadError({ 'compose.yaml': 'services:\n  web:\n    image: x\n    command: echo $1\n' });
    assert.match(e.message, /invalid interpolation format/);
    assert.match(e.hint ?? '', /\$\$/);
    assert.equal(e.location?.line, 4);
  });

  it('a compose file that does not exist', async () => {
    const dir = project({});
    await assert.rejects(loadDir(dir, { env: {}, files: ['nope.yaml'] }), (e: unknown) => {
      return e instanceof KompoxError && e.kind === 'config' && /nope\.yaml does not exist/.test(e.message) && e.location?.file === 'nope.yaml';
    });
    await assert.rejects(loadDir(dir, { env: {} }), (e: unknown) => e instanceof KompoxError && /no compose file found/.test(e.message) && /compose\.yaml/.test(e.hint ?? ''));
  });

  it('an empty file and a non-mapping file', async () => {
    assert.match((await loadError({ 'compose.yaml': '# nothing\n' })).message, /is empty/);
    assert.match((await loadError({ 'compose.yaml': '- a\n- b\n' })).message, /must be a mapping/);
  });

  it('depends_on an undefined service', async () => {
    const e = await loadError({ 'compose.yaml': 'services:\n  web:\n    image: x\n    depends_on:\n      - dbb\n' });
    assert.equal(e.message, 'service "web" depends on undefined service "dbb"');
    assert.deepEqual(e.location, { file: 'compose.yaml', line: 5, column: 9 });
  });

  it('a named volume, secret or config that is not declared', async () => {
    const v = await loadError({ 'compose.yaml': 'services:\n  db:\n    image: x\n    volumes: [data:/data]\n' });
    assert.match(v.message, /undefined volume "data"/);
    assert.equal(v.location?.line, 4);
    const s = await loadError({ 'compose.yaml': 'services:\n  db:\n    image: x\n    secrets: [pw]\n' });
    assert.match(s.message, /undefined secret "pw"/);
  });

  it('bad port and volume short syntax name the entry', async () => {
    const p = await loadError({ 'compose.yaml': 'services:\n  web:\n    image: x\n    ports:\n      - "80"\n      - "8080:http"\n' });
    assert.match(p.message, /services\.web\.ports\[1\]: invalid container port "http"/);
    assert.deepEqual(p.location, { file: 'compose.yaml', line: 6, column: 9 });
    const v = await loadError({ 'compose.yaml': 'services:\n  web:\n    image: x\n    volumes: ["./a:/b:bogus"]\n' });
    assert.match(v.message, /services\.web\.volumes\[0\]: unknown option "bogus"/);
  });

  it('errors in an override file name that file', async () => {
    const e = await loadError({ 'compose.yaml': 'services:\n  a:\n    image: x\n', 'compose.override.yaml': 'services:\n  a:\n    imag: y\n' });
    assert.deepEqual(e.location, { file: 'compose.override.yaml', line: 3, column: 5 });
  });
});

describe('dependency cycles (compose-go compose-depends-on-self.yaml)', () => {
  it('a service depending on itself', async () => {
    const e = await loadError({ 'compose.yaml': 'name : depends-on-cycle\nservices:\n  service1:\n    image: service1\n    depends_on:\n      - service1\n' });
    assert.equal(e.message, 'dependency cycle detected: service1 -> service1');
    assert.deepEqual(e.location, { file: 'compose.yaml', line: 6, column: 9 });
  });
  it('an indirect cycle names the chain', async () => {
    const e = await loadError({ 'compose.yaml': 'services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [c]\n  c:\n    image: x\n    depends_on: [a]\n' });
    assert.equal(e.message, 'dependency cycle detected: a -> b -> c -> a');
    assert.equal(e.location?.line, 10);
  });
  it('a disabled service in a cycle does not count (compose-depends-on-profile-no-cycle)', async () => {
    const p = await load({ 'compose.yaml': 'services:\n  a:\n    image: x\n  b:\n    image: x\n    profiles: [p]\n    depends_on: [a]\n' });
    assert.deepEqual(Object.keys(p.project.services), ['a']);
  });
});

describe('long syntax without a target', () => {
  it('a port or volume without target is an error at the entry', async () => {
    const p = await loadError({ 'compose.yaml': 'services:\n  web:\n    image: x\n    ports:\n      - published: 80\n' });
    assert.match(p.message, /services\.web\.ports\[0\]: the port has no target/);
    assert.equal(p.location?.line, 5);
    const v = await loadError({ 'compose.yaml': 'services:\n  web:\n    image: x\n    volumes:\n      - type: volume\n        source: data\nvolumes: {data: {}}\n' });
    assert.match(v.message, /services\.web\.volumes\[0\]: the volume has no target/);
    assert.equal(v.location?.line, 5);
  });
});
