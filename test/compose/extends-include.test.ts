// extends, include and profiles (compose-go loader/extends_test.go,
// include_test.go, and the Compose Specification's profiles section).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { load, loadError } from './helpers.js';

describe('extends', () => {
  it('same file, chained, merged with the merge rules', async () => {
    const p = await load({
      'compose.yaml': `services:
  base:
    image: base
    environment: {A: "1", B: "1"}
    ports: ["80:80"]
    command: base
  mid:
    extends: base
    environment: {B: "2"}
  leaf:
    extends:
      service: mid
    command: leaf
    ports: ["81:81"]
`,
    });
    const leaf = p.project.services.leaf!;
    assert.equal(leaf.image, 'base');
    assert.deepEqual(leaf.environment, { A: '1', B: '2' });
    assert.deepEqual(leaf.command, ['leaf']);
    assert.deepEqual(leaf.ports!.map((x) => x.target), [80, 81]);
    assert.equal(leaf.extends, undefined);
    assert.deepEqual(p.project.services.mid!.environment, { A: '1', B: '2' });
    assert.deepEqual(p.project.services.base!.environment, { A: '1', B: '1' }, 'the base is not modified');
    // a value inherited from the base points at the base's line
    assert.equal(p.locate(['services', 'leaf', 'image'])?.line, 3);
  });

  it('from another file: paths in it resolve against that file', async () => {
    const p = await load({
      'compose.yaml': 'services:\n  web:\n    extends:\n      file: common/base.yaml\n      service: app\n    image: mine\n',
      'common/base.yaml': 'services:\n  app:\n    image: theirs\n    build: ./ctx\n    volumes: [./data:/data]\n    env_file: app.env\n',
      'common/app.env': 'FROM_FILE=yes\n',
    });
    const web = p.project.services.web!;
    assert.equal(web.image, 'mine');
    assert.equal(web.build!.context, join(p.projectDir, 'common/ctx'));
    assert.equal(web.volumes![0]!.source, join(p.projectDir, 'common/data'));
    assert.deepEqual(web.environment, { FROM_FILE: 'yes' });
    assert.deepEqual(Object.keys(p.project.services), ['web'], 'services of the extended file are not imported');
    assert.deepEqual(p.files, [join(p.projectDir, 'compose.yaml'), join(p.projectDir, 'common/base.yaml')]);
    assert.equal(p.locate(['services', 'web', 'build'])?.file, join('common', 'base.yaml'));
  });

  it('a cycle is an error naming the chain', async () => {
    const e = await loadError({ 'compose.yaml': 'services:\n  a:\n    image: x\n    extends: b\n  b:\n    image: x\n    extends: a\n' });
    assert.match(e.message, /extends cycle/);
    assert.match(e.message, /a \(compose.yaml\).*b \(compose.yaml\)/);
    assert.equal(e.location?.file, 'compose.yaml');
    assert.ok(e.location?.line === 4 || e.location?.line === 7);
  });

  it('an unknown base service is an error with file:line', async () => {
    const e = await loadError({ 'compose.yaml': 'services:\n  a:\n    image: x\n    extends:\n      service: nope\n' });
    assert.match(e.message, /"nope"/);
    assert.deepEqual(e.location, { file: 'compose.yaml', line: 4, column: 5 });
    assert.equal(e.field, 'services.a.extends');
  });

  it('a missing extended file is an error pointing at the extends', async () => {
    const e = await loadError({ 'compose.yaml': 'services:\n  a:\n    extends:\n      file: missing.yaml\n      service: x\n' });
    assert.match(e.message, /missing\.yaml does not exist/);
    assert.equal(e.location?.line, 3);
  });
});

describe('include', () => {
  it('imports services, volumes and secrets of included projects with their own paths and .env', async () => {
    const p = await load(
      {
        'compose.yaml': 'include:\n  - db/compose.yaml\nservices:\n  web:\n    image: web\n    depends_on: [db]\n',
        'db/compose.yaml': 'services:\n  db:\n    image: "postgres:${PG_VERSION}"\n    volumes: [data:/var/lib/postgresql/data, ./init:/docker-entrypoint-initdb.d]\nvolumes:\n  data: {}\n',
        'db/.env': 'PG_VERSION=16\n',
      },
    );
    assert.deepEqual(Object.keys(p.project.services).sort(), ['db', 'web']);
    const db = p.project.services.db!;
    assert.equal(db.image, 'postgres:16');
    assert.equal(db.volumes![1]!.source, join(p.projectDir, 'db/init'));
    assert.deepEqual(p.project.volumes, { data: {} });
    assert.equal(p.locate(['services', 'db', 'image'])?.file, join('db', 'compose.yaml'));
    assert.ok(p.files.includes(join(p.projectDir, 'db/compose.yaml')));
  });

  it('long form with project_directory and env_file; parent environment wins', async () => {
    const p = await load(
      {
        'compose.yaml': 'include:\n  - path: sub/compose.yaml\n    project_directory: other\n    env_file: sub/vars.env\nservices: {}\n',
        'sub/compose.yaml': 'services:\n  s:\n    image: "${IMG}:${TAG}"\n    build: .\n',
        'sub/vars.env': 'IMG=from-file\nTAG=1\n',
      },
      { env: { TAG: 'parent' } },
    );
    const s = p.project.services.s!;
    assert.equal(s.image, 'from-file:parent');
    assert.equal(s.build!.context, join(p.projectDir, 'other'));
  });

  it('a resource defined both locally and in an included file is an error', async () => {
    const e = await loadError({
      'compose.yaml': 'include: [sub.yaml]\nservices:\n  a:\n    image: local\n',
      'sub.yaml': 'services:\n  a:\n    image: included\n',
    });
    assert.match(e.message, /services\.a is defined both here and in the included sub\.yaml/);
    assert.equal(e.location?.line, 3);
  });

  it('an include cycle is an error', async () => {
    const e = await loadError({ 'compose.yaml': 'include: [b.yaml]\nservices: {}\n', 'b.yaml': 'include: [compose.yaml]\nservices: {}\n' });
    assert.match(e.message, /include cycle/);
  });

  it('a missing included file is an error naming the include entry', async () => {
    const e = await loadError({ 'compose.yaml': 'include:\n  - nope.yaml\nservices: {}\n' });
    assert.match(e.message, /nope\.yaml does not exist/);
    assert.deepEqual(e.location, { file: 'compose.yaml', line: 2, column: 5 });
  });
});

describe('profiles', () => {
  const files = {
    'compose.yaml': `services:
  web:
    image: web
  debug:
    image: debug
    profiles: [debug]
  tools:
    image: tools
    profiles: [tools, debug]
`,
  };

  it('services with profiles are off unless a profile is active', async () => {
    assert.deepEqual(Object.keys((await load(files)).project.services), ['web']);
    assert.deepEqual(Object.keys((await load(files, { profiles: ['tools'] })).project.services).sort(), ['tools', 'web']);
    assert.deepEqual(Object.keys((await load(files, { profiles: ['debug'] })).project.services).sort(), ['debug', 'tools', 'web']);
    assert.deepEqual(Object.keys((await load(files, { profiles: ['*'] })).project.services).sort(), ['debug', 'tools', 'web']);
  });

  it('COMPOSE_PROFILES from the environment or .env is added', async () => {
    assert.deepEqual(Object.keys((await load(files, { env: { COMPOSE_PROFILES: 'tools' } })).project.services).sort(), ['tools', 'web']);
    assert.deepEqual(Object.keys((await load({ ...files, '.env': 'COMPOSE_PROFILES=debug,tools\n' })).project.services).sort(), ['debug', 'tools', 'web']);
  });

  it('an enabled service depending on a disabled one is an error (unless required: false)', async () => {
    const e = await loadError({ 'compose.yaml': 'services:\n  web:\n    image: w\n    depends_on: [db]\n  db:\n    image: d\n    profiles: [db]\n' });
    assert.match(e.message, /"web" depends on service "db", which is disabled by its profiles \(db\)/);
    assert.equal(e.location?.line, 4);
    const p = await load({ 'compose.yaml': 'services:\n  web:\n    image: w\n    depends_on:\n      db:\n        condition: service_started\n        required: false\n  db:\n    image: d\n    profiles: [db]\n' });
    assert.deepEqual(p.project.services.web!.depends_on, {});
  });
});

describe('include (nested)', () => {
  it('paths of a nested include are relative to the included project directory', async () => {
    const p = await load({
      'compose.yaml': 'include: [a/compose.yaml]\nservices: {}\n',
      'a/compose.yaml': 'include: [b/compose.yaml]\nservices:\n  a:\n    image: a\n',
      'a/b/compose.yaml': 'services:\n  b:\n    image: b\n    volumes: [./vol:/vol]\n',
    });
    assert.deepEqual(Object.keys(p.project.services).sort(), ['a', 'b']);
    assert.equal(p.project.services.b!.volumes![0]!.source, join(p.projectDir, 'a/b/vol'));
  });

  it('identical resources from several includes are not a conflict', async () => {
    const p = await load({
      'compose.yaml': 'include: [x.yaml, y.yaml]\nservices: {}\n',
      'x.yaml': 'services:\n  x:\n    image: x\nvolumes:\n  shared: {}\n',
      'y.yaml': 'services:\n  y:\n    image: y\nvolumes:\n  shared: {}\n',
    });
    assert.deepEqual(p.project.volumes, { shared: {} });
  });
});

describe('extends (chained across files)', () => {
  it('an extended file extending a third file resolves relative to its own directory', async () => {
    const p = await load({
      'compose.yaml': 'services:\n  web:\n    extends: {file: lib/one.yaml, service: one}\n',
      'lib/one.yaml': 'services:\n  one:\n    extends: {file: two/two.yaml, service: two}\n    environment: [ONE=1]\n',
      'lib/two/two.yaml': 'services:\n  two:\n    image: two\n    environment: [TWO=2]\n    volumes: [./d:/d]\n',
    });
    assert.deepEqual(p.project.services.web, {
      image: 'two',
      environment: { ONE: '1', TWO: '2' },
      volumes: [{ type: 'bind', source: join(p.projectDir, 'lib/two/d'), target: '/d', bind: { create_host_path: true } }],
    });
  });

  it('a cycle across files is detected', async () => {
    const e = await loadError({
      'compose.yaml': 'services:\n  a:\n    extends: {file: b.yaml, service: b}\n',
      'b.yaml': 'services:\n  b:\n    extends: {file: compose.yaml, service: a}\n',
    });
    assert.match(e.message, /extends cycle/);
  });
});
