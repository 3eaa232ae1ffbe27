// Explicit inputs (issue 10, item 1): the app use cases read only what their
// AppSource holds. A sandboxed source (what the PaaS server will build from a
// tenant's upload) cannot reach a variable or a file of the process running
// Kompox, and says which compose field tried; a bundle of a project gives the
// same Kubernetes objects as the same project read from its directory.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { loadConfig, requireApp } from '../../src/config/index.js';
import { DiagnosticsError, KompoxError, formatError } from '../../src/domain/errors.js';
import type { AppSource } from '../../src/domain/source.js';
import { bundleSource, directorySource } from '../../src/source/index.js';
import { loadApp, validateApp } from '../../src/usecases/app-load.js';
import { buildAppManifest } from '../../src/usecases/app-manifest.js';
import { makeCtx } from '../convert/helpers.js';
import { DRIVER_VOLUMES, volumeInputs } from '../support/volumes.js';

const SECRET = 'server-secret-7f3a9c';
const VAR = 'KOMPOX_TEST_SERVER_SECRET';
let outside: string;
let secretFile: string;

before(() => {
  // a secret of the server: in its environment and in a file next to (not inside) the tenant's project
  process.env[VAR] = SECRET;
  outside = mkdtempSync(join(tmpdir(), 'kompox-server-'));
  secretFile = join(outside, 'secret.txt');
  writeFileSync(secretFile, `${VAR}=${SECRET}\n`);
});
after(() => {
  delete process.env[VAR];
  rmSync(outside, { recursive: true, force: true });
});

const ctx = () => makeCtx({ app: { projectDir: undefined } });
/** The pure volume facts of the test app's driver (validate needs no driver session). */
const volumes = DRIVER_VOLUMES[ctx().provider.driver];

/** Runs validate (load + conversion) and returns the KompoxError it must fail with. */
async function refusal(source: AppSource): Promise<KompoxError> {
  try {
    const r = await validateApp(ctx(), source, { manifest: true, volumes });
    assert.fail(`expected a refusal, got a manifest:\n${r.manifestYaml}`);
  } catch (e) {
    if (e instanceof assert.AssertionError) throw e;
    assert.ok(e instanceof KompoxError, `not a KompoxError: ${String(e)}`);
    assert.ok(!(e instanceof DiagnosticsError), `a sandbox refusal is one error, not conversion diagnostics: ${e.message}`);
    assert.ok(!formatError(e).includes(SECRET), 'the message must not show the secret');
    return e;
  }
}

const upload = (files: Record<string, string>, env: Record<string, string> = {}) => bundleSource(files, { env, compose: { files: ['compose.yaml'] } });
const svc = (extra: string) => `services:\n  web:\n    image: nginx\n${extra}`;

describe('a sandboxed bundle never reaches the process', () => {
  it('an `environment:` secret naming a server variable is refused, naming the field and line', async () => {
    const e = await refusal(upload({ 'compose.yaml': `${svc('    secrets: [token]\n')}secrets:\n  token:\n    environment: ${VAR}\n` }));
    assert.equal(e.field, 'secrets.token.environment');
    assert.deepEqual(e.location, { file: 'compose.yaml', line: 7, column: 5 });
    assert.match(e.message, new RegExp(`variable ${VAR} is not one of the variables given with the app`));
  });

  it('an `environment:` config naming HOME (set in every shell) is refused too', async () => {
    const e = await refusal(upload({ 'compose.yaml': `${svc('    configs: [home]\n')}configs:\n  home:\n    environment: HOME\n` }));
    assert.equal(e.field, 'configs.home.environment');
    assert.equal(e.location?.line, 7);
  });

  it('interpolation and KEY-only environment entries see only the bundle variables', async () => {
    const files = { 'compose.yaml': `services:\n  web:\n    image: "nginx:\${${VAR}:-unset}"\n    environment:\n      - ${VAR}\n      - GIVEN\n` };
    const r = await validateApp(ctx(), upload(files, { GIVEN: 'yes' }), { manifest: true, compose: true, volumes });
    assert.ok(!r.manifestYaml!.includes(SECRET) && !r.composeYaml!.includes(SECRET), 'the server variable leaked into the output');
    assert.match(r.composeYaml!, /image: nginx:unset/);
    assert.match(r.manifestYaml!, /name: GIVEN\n\s+value: "?yes"?/);
    assert.ok(r.warnings.some((w) => w.message.includes(VAR)), 'the unset variable is named in a warning');
  });

  const pathCases: Array<{ name: string; files: () => Record<string, string>; field: string; line?: number; says: RegExp }> = [
    { name: 'secret file by absolute path', files: () => ({ 'compose.yaml': `${svc('    secrets: [token]\n')}secrets:\n  token:\n    file: ${secretFile}\n` }), field: 'secrets.token.file', line: 7, says: /is an absolute path/ },
    { name: 'secret file through ..', files: () => ({ 'compose.yaml': `${svc('    secrets: [token]\n')}secrets:\n  token:\n    file: ../../../../../../../..${secretFile}\n` }), field: 'secrets.token.file', line: 7, says: /leads outside the project/ },
    { name: 'config file through ..', files: () => ({ 'compose.yaml': `${svc('    configs: [c]\n')}configs:\n  c:\n    file: ./conf/../../x\n` }), field: 'configs.c.file', line: 7, says: /leads outside the project/ },
    { name: 'env_file by absolute path', files: () => ({ 'compose.yaml': svc(`    env_file: ${secretFile}\n`) }), field: 'services.web.env_file', line: 4, says: /is an absolute path/ },
    { name: 'env_file through ..', files: () => ({ 'compose.yaml': svc('    env_file:\n      - path: ../secret.txt\n        required: false\n') }), field: 'services.web.env_file', line: 4, says: /leads outside the project/ },
    { name: 'label_file by absolute path', files: () => ({ 'compose.yaml': svc(`    label_file: ${secretFile}\n`) }), field: 'services.web.label_file', line: 4, says: /is an absolute path/ },
    { name: 'bind source by absolute path', files: () => ({ 'compose.yaml': svc(`    volumes: ["${outside}:/srv:ro"]\n`) }), field: 'services.web.volumes[0]', line: 4, says: /is an absolute path/ },
    { name: 'bind source in the home directory', files: () => ({ 'compose.yaml': svc('    volumes:\n      - ~/.ssh:/root/.ssh:ro\n') }), field: 'services.web.volumes[0]', line: 5, says: /refers to a home directory/ },
    { name: 'bind source through ..', files: () => ({ 'compose.yaml': svc('    volumes:\n      - type: bind\n        source: ../..\n        target: /host\n') }), field: 'services.web.volumes[0]', line: 5, says: /leads outside the project/ },
    { name: 'include of a server file', files: () => ({ 'compose.yaml': `include:\n  - ${join(outside, 'compose.yaml')}\n${svc('')}` }), field: 'include[0]', line: 2, says: /is an absolute path/ },
    { name: 'include env_file outside', files: () => ({ 'compose.yaml': `include:\n  - path: sub.yaml\n    env_file: ../secret.txt\n${svc('')}`, 'sub.yaml': 'services: {}\n' }), field: 'include[0].env_file', line: 2, says: /leads outside the project/ },
    { name: 'extends from a server file', files: () => ({ 'compose.yaml': svc(`    extends:\n      file: ${join(outside, 'base.yaml')}\n      service: base\n`) }), field: 'services.web.extends.file', line: 4, says: /is an absolute path/ },
    { name: 'COMPOSE_FILE in the bundle .env', files: () => ({ '.env': `COMPOSE_FILE=${join(outside, 'compose.yaml')}\n`, 'compose.yaml': svc('') }), field: 'COMPOSE_FILE', says: /is an absolute path/ },
    { name: 'build context outside', files: () => ({ 'compose.yaml': svc('    build: ../../\n') }), field: 'services.web.build.context', line: 4, says: /leads outside the project/ },
  ];
  for (const c of pathCases) {
    it(`${c.name} is refused, naming the field`, async () => {
      const files = c.files();
      const source = c.field === 'COMPOSE_FILE' ? bundleSource(files, {}) : upload(files);
      const e = await refusal(source);
      assert.equal(e.field, c.field);
      assert.match(e.message, c.says);
      if (c.line !== undefined) assert.equal(e.location?.file, 'compose.yaml');
      if (c.line !== undefined) assert.equal(e.location?.line, c.line);
    });
  }

  it('the bundle itself cannot name a file outside it', () => {
    for (const bad of ['/etc/passwd', '../x', 'a/../../x', 'a//b', './a']) {
      assert.throws(() => bundleSource({ [bad]: 'x' }), (e: unknown) => e instanceof KompoxError && e.field === `files.${bad}`, bad);
    }
  });
});

describe('the CLI shape (an unsandboxed directory) takes variables only from its source too', () => {
  it('an `environment:` secret is read from the source, never from process.env', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kompox-cli-env-'));
    try {
      writeFileSync(join(dir, 'compose.yaml'), `${svc('    secrets: [token]\n')}secrets:\n  token:\n    environment: ${VAR}\n`);
      await assert.rejects(validateApp(ctx(), directorySource(dir, { env: {} }), { volumes }), (e: unknown) => {
        assert.ok(e instanceof DiagnosticsError, String(e));
        assert.match(e.message, new RegExp(`environment variable ${VAR} is not set`));
        return true;
      });
      const r = await validateApp(ctx(), directorySource(dir, { env: { [VAR]: 'given-by-the-front-end' } }), { manifest: true, volumes });
      assert.ok(r.manifestYaml!.includes(Buffer.from('given-by-the-front-end').toString('base64')));
      assert.ok(!r.manifestYaml!.includes(Buffer.from(SECRET).toString('base64')));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a sandboxed directory (an unpacked upload) never follows a link out', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'kompox-upload-'));
    symlinkSync(secretFile, join(dir, 'linked.env'));
    symlinkSync(outside, join(dir, 'linkdir'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  const sandboxed = (compose: string, env: Record<string, string> = {}) => {
    writeFileSync(join(dir, 'compose.yaml'), compose);
    return directorySource(dir, { sandboxed: true, env, compose: { files: ['compose.yaml'] } });
  };

  const cases: Array<{ name: string; compose: string; field: string; line: number }> = [
    { name: 'env_file', compose: svc('    env_file: linked.env\n'), field: 'services.web.env_file', line: 4 },
    { name: 'secret file', compose: `${svc('    secrets: [token]\n')}secrets:\n  token:\n    file: ./linked.env\n`, field: 'secrets.token.file', line: 7 },
    { name: 'read-only bind file', compose: svc('    volumes: ["./linked.env:/etc/app.env:ro"]\n'), field: 'services.web.volumes[0]', line: 4 },
    { name: 'read-only bind directory', compose: svc('    volumes: ["./linkdir:/etc/app:ro"]\n'), field: 'services.web.volumes[0]', line: 4 },
    { name: 'file under a linked directory', compose: svc('    env_file: linkdir/secret.txt\n'), field: 'services.web.env_file', line: 4 },
  ];
  for (const c of cases) {
    it(`${c.name}: a symbolic link out of the project is refused, naming the field`, async () => {
      const e = await refusal(sandboxed(c.compose));
      assert.equal(e.field, c.field);
      assert.match(e.message, /leads outside the project through a symbolic link/);
      assert.equal(e.location?.line, c.line);
      assert.ok(!e.message.includes(outside), 'the message does not show where the link leads');
    });
  }

  it('the same links are what they were for the CLI (unsandboxed): env_file may point anywhere, a linked bind is a conversion error', async () => {
    const cli = (compose: string) => {
      writeFileSync(join(dir, 'compose.yaml'), compose);
      return directorySource(dir, { env: {}, compose: { files: ['compose.yaml'] } });
    };
    const loaded = await loadApp(ctx(), cli(svc('    env_file: linked.env\n')));
    assert.equal(loaded.project.services.web!.environment![VAR], SECRET, 'the CLI user may read their own files');
    await assert.rejects(validateApp(ctx(), cli(svc('    volumes: ["./linked.env:/etc/app.env:ro"]\n')), { volumes }), (e: unknown) => {
      assert.ok(e instanceof DiagnosticsError);
      assert.match(e.message, /is a symbolic link to .*secret\.txt, outside the project directory/);
      return true;
    });
  });
});

describe('a bundle gives what the same project gives from its directory', () => {
  const FIXTURES = fileURLToPath(new URL('../convert/fixtures/', import.meta.url));
  const SKIP = new Set(['kompoxops.yml', 'expected.yaml', 'warnings.txt', 'errors.txt', 'env.yaml', 'disks.yaml']);
  const filesOf = (dir: string, rel = ''): Record<string, Uint8Array> => {
    const out: Record<string, Uint8Array> = {};
    for (const name of readdirSync(join(dir, rel))) {
      const r = rel ? `${rel}/${name}` : name;
      if (!rel && SKIP.has(name)) continue;
      if (statSync(join(dir, r)).isDirectory()) Object.assign(out, filesOf(dir, r));
      else out[r] = new Uint8Array(readFileSync(join(dir, r)));
    }
    return out;
  };
  const fixtures = readdirSync(FIXTURES).filter((n) => existsSync(join(FIXTURES, n, 'expected.yaml'))).sort();

  it('covers env_file, secrets and configs (file and environment), bind files and read-only bind directories', () => {
    for (const n of ['env-file', 'secrets-configs', 'bind-files', 'bind-config-dir']) assert.ok(fixtures.includes(n), `fixture ${n} is missing`);
  });

  for (const name of fixtures) {
    it(`golden fixture ${name}`, async () => {
      const dir = join(FIXTURES, name);
      const ops = await loadConfig(join(dir, 'kompoxops.yml'));
      const c = requireApp(ops);
      const envPath = join(dir, 'env.yaml');
      const env = (existsSync(envPath) ? parse(readFileSync(envPath, 'utf8')) : {}) as Record<string, string>;
      const disksPath = join(dir, 'disks.yaml');
      const disks = existsSync(disksPath) ? parse(readFileSync(disksPath, 'utf8')) : {};
      const composeFile = relative(dir, c.app.composePath!);
      const fromDir = await loadApp(c, directorySource(dir, { env, compose: { files: [composeFile] } }));
      const fromBundle = await loadApp(c, bundleSource(filesOf(dir), { env, compose: { files: [composeFile] }, root: `/srv/uploads/${name}` }));
      const a = await buildAppManifest(c, fromDir, { disks, locateConfig: ops.locate, volumes: volumeInputs(c, disks) });
      const b = await buildAppManifest(c, fromBundle, { disks, locateConfig: ops.locate, volumes: volumeInputs(c, disks) });
      assert.deepEqual(b.objects, a.objects);
      assert.deepEqual(b.objects, parseAllDocuments(readFileSync(join(dir, 'expected.yaml'), 'utf8')).map((d) => d.toJSON()));
      assert.deepEqual([...fromBundle.warnings, ...b.warnings].map((w) => w.message), [...fromDir.warnings, ...a.warnings].map((w) => w.message));
    });
  }

  it('.env, COMPOSE_FILE, include, extends and relative env_file work inside a bundle', async () => {
    const files: Record<string, string> = {
      '.env': 'COMPOSE_FILE=main.yaml:extra.yaml\nTAG=2\nTOKEN_NAME=token\n',
      'main.yaml': 'include:\n  - lib/db.yaml\nservices:\n  web:\n    extends: {file: lib/base.yaml, service: base}\n    image: "nginx:${TAG}"\n    env_file: [conf/web.env]\n    secrets: [token]\nsecrets:\n  token:\n    environment: API_TOKEN\n',
      'extra.yaml': 'services:\n  web:\n    configs: [site]\nconfigs:\n  site:\n    file: ./conf/site.conf\n',
      'lib/base.yaml': 'services:\n  base:\n    image: busybox\n    volumes: ["./shared.conf:/etc/shared.conf:ro"]\n',
      'lib/shared.conf': 'shared=1\n',
      'lib/db.yaml': 'services:\n  db:\n    image: postgres:16\n    env_file: ../conf/db.env\n',
      'conf/web.env': 'MODE=prod\nGREETING=hello ${TAG}\n',
      'conf/db.env': 'POSTGRES_DB=app\n',
      'conf/site.conf': 'server {}\n',
    };
    const env = { API_TOKEN: 'tenant-token' };
    const bundle = bundleSource(files, { env, root: '/srv/uploads/proj' });
    const dir = mkdtempSync(join(tmpdir(), 'kompox-bundle-same-'));
    try {
      for (const [rel, text] of Object.entries(files)) {
        mkdirSync(dirname(join(dir, rel)), { recursive: true });
        writeFileSync(join(dir, rel), text);
      }
      const fromDir = await validateApp(ctx(), directorySource(dir, { env }), { compose: true, volumes });
      const fromBundle = await validateApp(ctx(), bundle, { compose: true, volumes });
      assert.deepEqual(fromBundle.objects, fromDir.objects);
      const web = fromBundle.objects.find((o) => o.kind === 'Deployment')!;
      const text = JSON.stringify(fromBundle.objects);
      assert.match(JSON.stringify(web), /"image":"nginx:2"/);
      assert.match(text, /hello 2/);
      assert.match(text, /POSTGRES_DB/);
      assert.match(text, /shared=1/);
      assert.match(text, /server \{\}/);
      assert.match(text, new RegExp(Buffer.from('tenant-token').toString('base64')));
      assert.deepEqual(fromBundle.summary.services, ['db', 'web']);
      assert.deepEqual(fromBundle.summary.files.map((f) => relative('/srv/uploads/proj', f)), ['main.yaml', 'lib/db.yaml', 'lib/base.yaml', 'extra.yaml']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('without compose files named, the bundle default file is used; none is a clear error', async () => {
    const r = await loadApp(ctx(), bundleSource({ 'docker-compose.yml': svc('') }));
    assert.deepEqual(Object.keys(r.project.services), ['web']);
    await assert.rejects(loadApp(ctx(), bundleSource({ 'README.md': 'x' })), (e: unknown) => e instanceof KompoxError && /no compose file found in upload/.test(e.message));
  });
});
