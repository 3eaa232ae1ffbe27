import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { ROOT, STACK_LINE, runCli } from '../support/cli.js';

const EXAMPLE = join(ROOT, 'examples/gitea');

/** Copy of the example in a scratch dir, so tests can write next to it. */
function exampleCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), 'kompox-validate-'));
  cpSync(EXAMPLE, dir, { recursive: true });
  return dir;
}

function snapshotDir(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of readdirSync(dir).sort()) out[n] = `${statSync(join(dir, n)).mtimeMs}:${readFileSync(join(dir, n), 'utf8')}`;
  return out;
}

/** True while src/usecases/app-manifest.ts is still the stub. */
async function manifestStub(): Promise<string | undefined> {
  const text = readFileSync(join(ROOT, 'src/usecases/app-manifest.ts'), 'utf8');
  return /throw new Error\('not implemented yet'\)/.test(text) ? 'buildAppManifest is still the stub (the converter has not landed)' : undefined;
}

test('example: summary without flags', async () => {
  const r = await runCli(['-C', 'examples/gitea', 'app', 'validate']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^valid: app gitea: 2 services \(db, gitea\), 2 compose volumes, 1 app volume \(default\), 2 published ports, \d+ Kubernetes objects/);
  assert.match(r.stdout, /^  https:\/\/git\.example\.com\n  https:\/\/gitea-3000\.k3s\.example\.com\n/m);
});

test('example: --out-compose - prints the canonical compose model', async () => {
  const r = await runCli(['-C', 'examples/gitea', 'app', 'validate', '--out-compose', '-']);
  assert.equal(r.code, 0, r.stderr);
  const p = parse(r.stdout) as { name: string; services: Record<string, { image: string; ports?: Array<{ target: number; published: string }>; healthcheck?: { test: string[] } }>; volumes: Record<string, unknown> };
  assert.equal(p.name, 'gitea');
  assert.deepEqual(Object.keys(p.services).sort(), ['db', 'gitea']);
  assert.deepEqual(p.services.gitea!.ports!.map((x) => x.target).sort((a, b) => a - b), [22, 3000]);
  assert.deepEqual(p.services.db!.healthcheck!.test, ['CMD-SHELL', 'pg_isready -U gitea -d gitea']);
  assert.deepEqual(Object.keys(p.volumes).sort(), ['db-data', 'gitea-data']);
  // interpolation default applied
  assert.equal((p.services.db as unknown as { environment: Record<string, string> }).environment.POSTGRES_PASSWORD, 'gitea');
});

test('example: --out-manifest - prints the Kubernetes objects (npm run example)', async (t) => {
  const stub = await manifestStub();
  if (stub) return t.skip(stub);
  const r = await runCli(['-C', 'examples/gitea', 'app', 'validate', '--out-manifest', '-']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^---\n/);
  const docs = parseAllDocuments(r.stdout).map((d) => d.toJS() as { kind: string; metadata: { name: string }; spec?: { rules?: Array<{ host: string }> } });
  const kinds = docs.map((d) => d.kind);
  for (const k of ['Namespace', 'PersistentVolume', 'PersistentVolumeClaim', 'Deployment', 'Service', 'Ingress']) assert.ok(kinds.includes(k), `manifest has a ${k}`);
  assert.ok(kinds.indexOf('Namespace') < kinds.indexOf('Deployment'), 'apply order: Namespace first');
  const hosts = docs.filter((d) => d.kind === 'Ingress').flatMap((d) => d.spec?.rules?.map((x) => x.host) ?? []).sort();
  assert.deepEqual(hosts, ['git.example.com', 'gitea-3000.k3s.example.com']);
  // what the YAML says (after serialisation) is valid against the Kubernetes API schema
  const { validateObjects } = await import('../convert/helpers.js');
  validateObjects(docs as never);
});

test('npm run example runs exactly the command tested above', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  assert.equal(pkg.scripts.example, 'node bin/kompoxops.mjs -C examples/gitea app validate --out-manifest -');
});

test('--out-compose FILE is relative to -C and written only when valid', async () => {
  const dir = exampleCopy();
  try {
    const before = snapshotDir(dir);
    const r = await runCli(['-C', dir, 'app', 'validate', '--out-compose', 'out.yml']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /wrote out\.yml/);
    assert.ok((parse(readFileSync(join(dir, 'out.yml'), 'utf8')) as { services: object }).services);
    // inputs untouched
    const after = snapshotDir(dir);
    delete after['out.yml'];
    assert.deepEqual(after, before);

    // invalid compose: exit 1, the output file is not written
    writeFileSync(join(dir, 'compose.yml'), readFileSync(join(dir, 'compose.yml'), 'utf8').replace('restart: always', 'restrat: always'));
    const bad = await runCli(['-C', dir, 'app', 'validate', '--out-compose', 'out2.yml']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /compose\.yml:\d+:\d+/);
    assert.doesNotMatch(bad.stderr, STACK_LINE);
    assert.throws(() => statSync(join(dir, 'out2.yml')), /ENOENT/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('refuses to write output over an input file', async () => {
  const dir = exampleCopy();
  try {
    const before = readFileSync(join(dir, 'compose.yml'), 'utf8');
    const r = await runCli(['-C', dir, 'app', 'validate', '--out-compose', 'compose.yml']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /refusing to write output over the input file compose\.yml/);
    assert.equal(readFileSync(join(dir, 'compose.yml'), 'utf8'), before);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('-o json summary, and --profile is passed to the compose loader', async () => {
  const dir = exampleCopy();
  try {
    writeFileSync(
      join(dir, 'compose.yml'),
      readFileSync(join(dir, 'compose.yml'), 'utf8').replace('volumes:\n  gitea-data:', '  adminer:\n    image: adminer:5\n    profiles: [debug]\n\nvolumes:\n  gitea-data:'),
    );
    const plain = await runCli(['-C', dir, 'app', 'validate', '-o', 'json']);
    assert.equal(plain.code, 0, plain.stderr);
    assert.deepEqual((JSON.parse(plain.stdout) as { services: string[] }).services, ['db', 'gitea']);
    const withProfile = await runCli(['-C', dir, 'app', 'validate', '-o', 'json', '--profile', 'debug']);
    assert.equal(withProfile.code, 0, withProfile.stderr);
    assert.deepEqual((JSON.parse(withProfile.stdout) as { services: string[] }).services, ['adminer', 'db', 'gitea']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('conversion problems are validation errors too, located in kompoxops.yml', async () => {
  const dir = exampleCopy();
  try {
    writeFileSync(join(dir, 'kompoxops.yml'), readFileSync(join(dir, 'kompoxops.yml'), 'utf8').replace('http_3000:', 'http_4000:'));
    const r = await runCli(['-C', dir, 'app', 'validate']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /kompoxops\.yml:\d+:\d+: app\.ingress\.http_4000: port 4000 is not published/);
    assert.doesNotMatch(r.stderr, STACK_LINE);
    assert.equal(r.stdout, '');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
