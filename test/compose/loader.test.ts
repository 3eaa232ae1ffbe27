// Loader behaviour around the project: env_file, project name, .env, locate.
import assert from 'node:assert/strict';
import { basename, join } from 'node:path';
import { describe, it } from 'node:test';
import { loadDir } from '../support/source.js';
import { load, loadError, project } from './helpers.js';

describe('env_file', () => {
  it('is read relative to the project, merged under environment, recorded in envFromFile', async () => {
    const p = await load(
      {
        'compose.yaml': 'services:\n  a:\n    image: x\n    env_file:\n      - common.env\n      - path: ./local.env\n        required: false\n      - path: ./override.env\n    environment:\n      B: from-environment\n      D:\n',
        'common.env': 'A=common\nB=common\nC=${HOST_VAR}\nD=file\n',
        'override.env': 'A=override\n',
      },
      { env: { HOST_VAR: 'host' } },
    );
    const a = p.project.services.a!;
    assert.deepEqual(a.environment, { A: 'override', B: 'from-environment', C: 'host', D: null });
    assert.equal(a.env_file, undefined);
    assert.deepEqual(p.envFromFile, { a: ['A', 'C'] });
    // values from env files point at their line there; environment values at the compose file
    assert.deepEqual(p.locate(['services', 'a', 'environment', 'C']), { file: 'common.env', line: 3 });
    assert.deepEqual(p.locate(['services', 'a', 'environment', 'A']), { file: 'override.env', line: 1 });
    assert.equal(p.locate(['services', 'a', 'environment', 'B'])?.file, 'compose.yaml');
  });

  it('format: raw takes values literally', async () => {
    const p = await load({ 'compose.yaml': 'services:\n  a:\n    image: x\n    env_file:\n      - path: raw.env\n        format: raw\n', 'raw.env': 'Q="quoted $X"\n' });
    assert.deepEqual(p.project.services.a!.environment, { Q: '"quoted $X"' });
  });

  it('env_file as a string', async () => {
    const p = await load({ 'compose.yaml': 'services:\n  a:\n    image: x\n    env_file: app.env\n', 'app.env': 'X=1\n' });
    assert.deepEqual(p.project.services.a!.environment, { X: '1' });
  });

  it('a missing required env_file is an error naming the service and line', async () => {
    const e = await loadError({ 'compose.yaml': 'services:\n  a:\n    image: x\n    env_file: missing.env\n' });
    assert.match(e.message, /services\.a\.env_file: missing\.env not found/);
    assert.deepEqual(e.location, { file: 'compose.yaml', line: 4, column: 5 });
  });
});

describe('project name', () => {
  it('option, then name:, then COMPOSE_PROJECT_NAME, then the directory name (normalised)', async () => {
    const files = { 'compose.yaml': 'services:\n  a:\n    image: x\n' };
    const dir = project(files, 'My.Project_Dir-1');
    assert.equal((await loadDir(dir, { env: {} })).project.name, 'myproject_dir-1');
    assert.equal((await loadDir(dir, { env: { COMPOSE_PROJECT_NAME: 'fromenv' } })).project.name, 'fromenv');
    assert.equal((await loadDir(dir, { env: {}, projectName: 'opt' })).project.name, 'opt');
    const named = project({ 'compose.yaml': 'name: ${N:-named}\nservices:\n  a:\n    image: x\n' });
    assert.equal((await loadDir(named, { env: { COMPOSE_PROJECT_NAME: 'fromenv' } })).project.name, 'named');
    assert.equal((await loadDir(named, { env: {}, projectName: 'opt' })).project.name, 'opt');
  });

  it('an invalid explicit name is an error', async () => {
    const e = await loadError({ 'compose.yaml': 'name: Bad Name\nservices: {}\n' });
    assert.match(e.message, /invalid project name "Bad Name"/);
    assert.equal(e.location?.line, 1);
  });
});

describe('.env of the project', () => {
  it('is used for interpolation; the given environment wins; envFile option picks another file', async () => {
    const files = {
      'compose.yaml': 'services:\n  a:\n    image: "${IMAGE}:${TAG:-latest}"\n',
      '.env': 'IMAGE=fromdotenv\nTAG=1\n',
      'alt.env': 'IMAGE=alt\n',
    };
    const dir = project(files);
    assert.equal((await loadDir(dir, { env: {} })).project.services.a!.image, 'fromdotenv:1');
    assert.equal((await loadDir(dir, { env: { TAG: '2' } })).project.services.a!.image, 'fromdotenv:2');
    assert.equal((await loadDir(dir, { env: {}, envFile: 'alt.env' })).project.services.a!.image, 'alt:latest');
  });

  it('never reads process.env: only the variables of the source and the project .env', async () => {
    const dir = project({ 'compose.yaml': 'services:\n  a:\n    image: "img:${KOMPOX_TEST_COMPOSE_IMG:-unset}"\n' });
    process.env.KOMPOX_TEST_COMPOSE_IMG = 'from-process';
    try {
      assert.equal((await loadDir(dir)).project.services.a!.image, 'img:unset');
      assert.equal((await loadDir(dir, { env: { KOMPOX_TEST_COMPOSE_IMG: 'given' } })).project.services.a!.image, 'img:given');
    } finally {
      delete process.env.KOMPOX_TEST_COMPOSE_IMG;
    }
  });
});

describe('variables', () => {
  it('only given names are found: no inherited object properties (constructor, toString)', async () => {
    const p = await load({ 'compose.yaml': 'services:\n  a:\n    image: "x:${constructor:-none}"\n    environment: [toString, hasOwnProperty]\n' });
    assert.equal(p.project.services.a!.image, 'x:none');
    assert.deepEqual(p.project.services.a!.environment, { toString: null, hasOwnProperty: null });
  });
});

describe('locate', () => {
  it('returns file:line:column of nodes and the nearest known ancestor otherwise', async () => {
    const p = await load({ 'compose.yaml': 'services:\n  web:\n    image: nginx\n    ports:\n      - "8080:80"\n      - target: 443\n' });
    assert.deepEqual(p.locate(['services', 'web']), { file: 'compose.yaml', line: 2, column: 3 });
    assert.deepEqual(p.locate(['services', 'web', 'ports', 0]), { file: 'compose.yaml', line: 5, column: 9 });
    assert.deepEqual(p.locate(['services', 'web', 'ports', 1, 'target']), { file: 'compose.yaml', line: 6, column: 9 });
    assert.deepEqual(p.locate(['services', 'web', 'ports', 0, 'published']), { file: 'compose.yaml', line: 5, column: 9 });
    assert.equal(basename(p.files[0]!), 'compose.yaml');
  });
});

describe('file names in messages', () => {
  it('are relative to displayDir when given, else to the project directory (outside the current directory)', async () => {
    const dir = project({ 'compose.yaml': 'services:\n  web:\n    image: x\n' });
    const p = await loadDir(dir, { env: {} });
    assert.equal(p.locate(['services', 'web'])?.file, 'compose.yaml');
    const q = await loadDir(dir, { env: {}, displayDir: join(dir, '..') });
    assert.equal(q.locate(['services', 'web'])?.file, join(basename(dir), 'compose.yaml'));
    const r = await loadDir(dir, { env: {}, displayDir: '/nonexistent-elsewhere' });
    assert.equal(r.locate(['services', 'web'])?.file, join(dir, 'compose.yaml'));
  });
});

describe('label_file', () => {
  it('labels from files are merged under labels (labels win) and the key is removed', async () => {
    const p = await load({
      'compose.yaml': 'services:\n  a:\n    image: x\n    label_file: [./base.labels, extra.labels]\n    labels: {own: "1", shared: mine}\n',
      'base.labels': 'com.example.team=core\nshared=file\n',
      'extra.labels': 'com.example.tier=db\n',
    });
    assert.deepEqual(p.project.services.a!.labels, { 'com.example.team': 'core', 'com.example.tier': 'db', own: '1', shared: 'mine' });
    assert.equal(p.project.services.a!.label_file, undefined);
    assert.deepEqual(p.locate(['services', 'a', 'labels', 'com.example.tier']), { file: 'extra.labels', line: 1 });
  });
  it('a missing label file is an error', async () => {
    const e = await loadError({ 'compose.yaml': 'services:\n  a:\n    image: x\n    label_file: nope.labels\n' });
    assert.match(e.message, /label_file: nope\.labels not found/);
    assert.equal(e.location?.line, 4);
  });
});

describe('interpolation reaches every value', () => {
  it('include paths, extends files and names are interpolated; COMPOSE_PROJECT_NAME may come from .env', async () => {
    const p = await load({
      '.env': 'SUB=parts\nCOMPOSE_PROJECT_NAME=from-dotenv\n',
      'compose.yaml': 'include: ["${SUB}/db.yaml"]\nservices:\n  web:\n    extends: {file: "${SUB}/base.yaml", service: base}\n',
      'parts/db.yaml': 'services:\n  db:\n    image: db\n',
      'parts/base.yaml': 'services:\n  base:\n    image: base\n',
    });
    assert.equal(p.project.name, 'from-dotenv');
    assert.deepEqual(Object.keys(p.project.services).sort(), ['db', 'web']);
    assert.equal(p.project.services.web!.image, 'base');
  });

  it('an explicit envFile that does not exist is an error', async () => {
    const e = await loadError({ 'compose.yaml': 'services: {}\n' }, { envFile: 'missing.env' });
    assert.match(e.message, /env file missing\.env not found/);
  });
});
