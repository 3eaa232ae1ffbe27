// Multi-file merge conformance: the Compose Specification's merge rules
// (13-merge.md) and compose-go override/merge tests.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadDir } from '../support/source.js';
import { load, project } from './helpers.js';

const BASE = `services:
  web:
    image: web:1
    command: ["serve", "--port", "80"]
    entrypoint: /bin/base
    environment:
      A: base
      B: base
    labels: [l1=base]
    ports:
      - "8080:80"
      - "9000:9000"
    volumes:
      - ./data:/data
      - cache:/cache
    healthcheck:
      test: ["CMD", "base"]
      interval: 10s
    secrets: [s1]
    dns: [1.1.1.1]
    x-meta: {a: 1}
volumes:
  cache: {}
secrets:
  s1:
    file: ./s1
`;

describe('merging compose files', () => {
  it('merges files in order with the Compose merge rules', async () => {
    const p = await load(
      {
        'compose.yaml': BASE,
        'override.yaml': `services:
  web:
    image: web:2
    command: serve --debug
    environment:
      B: over
      C: over
    labels: {l2: over}
    ports:
      - "8080:80"
      - "7000:70"
    volumes:
      - ./other:/data
      - ./logs:/logs
    healthcheck:
      test: ["CMD", "over"]
    secrets:
      - source: s1
        target: /run/secrets/s1
    dns: [1.1.1.1, 8.8.8.8]
    x-meta: {b: 2}
`,
      },
      { files: ['compose.yaml', 'override.yaml'] },
    );
    const web = p.project.services.web!;
    assert.equal(web.image, 'web:2');
    assert.deepEqual(web.command, ['serve', '--debug'], 'command is replaced, not appended');
    assert.deepEqual(web.entrypoint, ['/bin/base']);
    assert.deepEqual(web.environment, { A: 'base', B: 'over', C: 'over' });
    assert.deepEqual(web.labels, { l1: 'base', l2: 'over' });
    assert.deepEqual(
      web.ports!.map((x) => `${x.published}:${x.target}`),
      ['8080:80', '9000:9000', '7000:70'],
      'ports merge by unique key',
    );
    assert.deepEqual(
      web.volumes!.map((v) => `${v.source}:${v.target}`),
      [`${join(p.projectDir, 'other')}:/data`, 'cache:/cache', `${join(p.projectDir, 'logs')}:/logs`],
      'volumes merge by target',
    );
    assert.deepEqual(web.healthcheck, { test: ['CMD', 'over'], interval: '10s' }, 'healthcheck.test replaced, rest merged');
    assert.deepEqual(web.secrets, [{ source: 's1', target: '/run/secrets/s1' }], 'secrets merge by target');
    assert.deepEqual(web.dns, ['1.1.1.1', '8.8.8.8']);
    assert.deepEqual(web['x-meta'], { b: 2 }, 'extensions are replaced');
    assert.deepEqual(p.files, [join(p.projectDir, 'compose.yaml'), join(p.projectDir, 'override.yaml')]);
    // positions follow the value that won
    assert.deepEqual(p.locate(['services', 'web', 'image']), { file: 'override.yaml', line: 3, column: 5 });
    assert.equal(p.locate(['services', 'web', 'entrypoint'])?.file, 'compose.yaml');
    assert.deepEqual(p.locate(['services', 'web', 'ports', 2]), { file: 'override.yaml', line: 11, column: 9 });
    assert.deepEqual(p.locate(['services', 'web', 'ports', 1]), { file: 'compose.yaml', line: 12, column: 9 });
  });

  it('!reset removes and !override replaces inherited values', async () => {
    const p = await load(
      {
        'compose.yaml': BASE,
        'compose.override.yaml': `services:
  web:
    ports: !override
      - "1234:80"
    environment: !override
      ONLY: me
    volumes: !reset []
    healthcheck: !reset
    labels: !reset {}
    secrets: !reset
`,
      },
      {},
    );
    const web = p.project.services.web!;
    assert.deepEqual(web.ports, [{ mode: 'ingress', target: 80, published: '1234', protocol: 'tcp' }]);
    assert.deepEqual(web.environment, { ONLY: 'me' });
    assert.equal(web.volumes, undefined);
    assert.equal(web.healthcheck, undefined);
    assert.equal(web.labels, undefined);
    assert.equal(web.secrets, undefined);
    assert.equal(web.image, 'web:1');
  });

  it('!reset and !override in a single file are simply dropped / unwrapped', async () => {
    const p = await load({ 'compose.yaml': 'services:\n  a:\n    image: x\n    ports: !override ["80:80"]\n    dns: !reset []\n' });
    assert.equal(p.project.services.a!.ports!.length, 1);
    assert.equal(p.project.services.a!.dns, undefined);
  });

  it('default discovery: compose.yaml plus compose.override.yml beside it', async () => {
    const dir = project({
      'compose.yaml': 'services:\n  a:\n    image: base\n',
      'compose.override.yml': 'services:\n  a:\n    image: over\n',
      'docker-compose.yml': 'services:\n  z:\n    image: ignored\n',
    });
    const p = await loadDir(dir, { env: {} });
    assert.equal(p.project.services.a!.image, 'over');
    assert.equal(p.project.services.z, undefined);
    assert.deepEqual(p.files, [join(dir, 'compose.yaml'), join(dir, 'compose.override.yml')]);
    assert.ok(p.warnings.some((w) => w.message.includes('multiple compose files')));
  });

  it('default discovery falls back to docker-compose.yml and its docker-compose.override.yml', async () => {
    const dir = project({
      'docker-compose.yml': 'services:\n  a:\n    image: base\n',
      'docker-compose.override.yml': 'services:\n  a:\n    environment: [X=1]\n',
    });
    const p = await loadDir(dir, { env: {} });
    assert.deepEqual(p.project.services.a, { image: 'base', environment: { X: '1' } });
  });

  it('COMPOSE_FILE selects files when none are given', async () => {
    const dir = project({ 'a.yml': 'services:\n  a:\n    image: a\n', 'b.yml': 'services:\n  b:\n    image: b\n' });
    const p = await loadDir(dir, { env: { COMPOSE_FILE: 'a.yml:b.yml' } });
    assert.deepEqual(Object.keys(p.project.services).sort(), ['a', 'b']);
  });

  it('relative paths in every file resolve against the project directory', async () => {
    const dir = project({ 'compose.yaml': 'services:\n  a:\n    image: a\n', 'sub/extra.yaml': 'services:\n  a:\n    volumes: [./d:/d]\n' });
    const p = await loadDir(dir, { env: {}, files: ['compose.yaml', 'sub/extra.yaml'] });
    assert.equal(p.project.services.a!.volumes![0]!.source, join(dir, 'd'));
  });

  it('inline content is loaded instead of files', async () => {
    const dir = project({});
    const p = await loadDir(dir, { env: {}, content: { text: 'services:\n  a:\n    image: inline\n', filename: 'kompoxops.yml' } });
    assert.equal(p.project.services.a!.image, 'inline');
    assert.equal(p.locate(['services', 'a', 'image'])?.file, 'kompoxops.yml');
  });
});

describe('!reset / !override (compose-go reset_test.go)', () => {
  const base = 'name: test-reset\nnetworks:\n  test:\n    name: test\n    external: true\nservices: {}\n';
  it('!reset {} removes a top-level resource', async () => {
    const p = await load({ 'a.yaml': base, 'b.yaml': 'networks:\n  test: !reset {}\n' }, { files: ['a.yaml', 'b.yaml'] });
    assert.equal(p.project.networks?.test, undefined);
  });
  it('!override {} replaces it', async () => {
    const p = await load({ 'a.yaml': base, 'b.yaml': 'networks:\n  test: !override {}\n' }, { files: ['a.yaml', 'b.yaml'] });
    assert.deepEqual(p.project.networks?.test, {});
  });
  it('anchors reused by aliases are not cycles', async () => {
    const p = await load({ 'compose.yaml': 'services:\n  a: &a\n    image: alpine\n  a2: *a\n' });
    assert.deepEqual(p.project.services.a2, { image: 'alpine' });
  });
  it('a merge key that refers to its own anchor is an error, not a hang', async () => {
    await assert.rejects(load({ 'compose.yaml': 'x-healthcheck: &healthcheck\n  egress-service:\n    <<: *healthcheck\nservices: {}\n' }), (e: unknown) => {
      return e instanceof Error && 'location' in e && /compose\.yaml/.test(JSON.stringify((e as { location: unknown }).location));
    });
  });
});

describe('multi-document YAML (compose-go multidoc_test.go)', () => {
  it('documents of one file merge in order', async () => {
    const p = await load({
      'abcdef.yaml': 'services:\n  base:\n    image: alpine\n',
      'compose.yaml': 'services:\n  app:\n    extends:\n      file: abcdef.yaml\n      service: base\n---\nservices:\n  app:\n    environment:\n      HELLO: WORLD\n',
    });
    assert.deepEqual(p.project.services.app, { image: 'alpine', environment: { HELLO: 'WORLD' } });
    assert.equal(p.locate(['services', 'app', 'environment', 'HELLO'])?.line, 10);
  });
  it('a trailing separator is ignored', async () => {
    const p = await load({ 'compose.yaml': 'services:\n  app:\n    image: nginx\n---\n' });
    assert.equal(p.project.services.app!.image, 'nginx');
  });
});

describe('merge dedup and unicity (compose-go merge_dedup_test.go, uncity.go)', () => {
  it('strictly identical list entries are dropped when merging', async () => {
    const p = await load(
      {
        'a.yaml': 'services:\n  test:\n    image: foo\n    dns: [8.8.8.8]\n    cap_add: [NET_ADMIN]\n    volumes:\n      - type: volume\n        source: data\n        target: /data\nvolumes: {data: {}}\n',
        'b.yaml': 'services:\n  test:\n    dns: [8.8.8.8, 9.9.9.9]\n    cap_add: [NET_ADMIN, SYS_PTRACE]\n    volumes:\n      - type: volume\n        source: data\n        target: /data\n',
      },
      { files: ['a.yaml', 'b.yaml'] },
    );
    const t = p.project.services.test!;
    assert.deepEqual(t.dns, ['8.8.8.8', '9.9.9.9']);
    assert.deepEqual(t.cap_add, ['NET_ADMIN', 'SYS_PTRACE']);
    assert.deepEqual(t.volumes, [{ type: 'volume', source: 'data', target: '/data' }]);
  });

  it('merging the same override twice is idempotent', async () => {
    const over = 'services:\n  test:\n    dns: [9.9.9.9]\n    extra_hosts: ["host1:127.0.0.1", "host2:127.0.0.2"]\n';
    const p = await load(
      { 'a.yaml': 'services:\n  test:\n    image: x\n    dns: [8.8.8.8]\n    extra_hosts: ["host1:127.0.0.1"]\n', 'b.yaml': over, 'c.yaml': over },
      { files: ['a.yaml', 'b.yaml', 'c.yaml'] },
    );
    assert.deepEqual(p.project.services.test!.dns, ['8.8.8.8', '9.9.9.9']);
    assert.deepEqual(p.project.services.test!.extra_hosts, ['host1=127.0.0.1', 'host2=127.0.0.2']);
  });

  it('within one file, a later volume/secret with the same target replaces the earlier one', async () => {
    const p = await load({ 'compose.yaml': 'services:\n  a:\n    image: x\n    volumes: ["./one:/data", "./two:/data"]\n    secrets: [s, {source: s, mode: 0400}]\nsecrets:\n  s: {file: ./s}\n' });
    assert.deepEqual(p.project.services.a!.volumes!.map((v) => v.source), [join(p.projectDir, 'two')]);
    assert.deepEqual(p.project.services.a!.secrets, [{ source: 's', mode: 256 }]);
    assert.equal(p.locate(['services', 'a', 'volumes', 0])?.column, 30, 'the winning entry');
  });

  it('logging options merge only with the same driver', async () => {
    const base = 'services:\n  a:\n    image: x\n    logging:\n      driver: json-file\n      options: {max-size: 10m}\n';
    const same = await load({ 'a.yaml': base, 'b.yaml': 'services:\n  a:\n    logging:\n      options: {max-file: "3"}\n' }, { files: ['a.yaml', 'b.yaml'] });
    assert.deepEqual(same.project.services.a!.logging, { driver: 'json-file', options: { 'max-size': '10m', 'max-file': '3' } });
    const other = await load({ 'a.yaml': base, 'b.yaml': 'services:\n  a:\n    logging:\n      driver: syslog\n      options: {tag: x}\n' }, { files: ['a.yaml', 'b.yaml'] });
    assert.deepEqual(other.project.services.a!.logging, { driver: 'syslog', options: { tag: 'x' } });
  });
});
