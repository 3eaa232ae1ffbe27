// projectToYaml: YAML like `docker compose config`, stable and re-loadable.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { projectToYaml } from '../../src/compose/index.js';
import { loadDir } from '../support/source.js';
import { load, project } from './helpers.js';

describe('projectToYaml', () => {
  it('orders name, services (sorted), networks, volumes, secrets, configs; sorts keys', async () => {
    const p = await load({
      'compose.yaml':
        'configs:\n  c: {file: ./c}\nsecrets:\n  s: {file: ./s}\nvolumes:\n  v:\nnetworks:\n  n:\nservices:\n  zeta:\n    image: z\n    ports: ["8080:80"]\n    environment: {B: "2", A: "1"}\n  alpha:\n    image: a\n    volumes: [v:/v]\n    networks: [n]\n    secrets: [s]\n    configs: [c]\n',
    });
    const text = projectToYaml(p.project);
    const topKeys = text.split('\n').filter((l) => /^[a-z]/.test(l)).map((l) => l.split(':')[0]);
    assert.deepEqual(topKeys, ['name', 'services', 'networks', 'volumes', 'secrets', 'configs']);
    assert.ok(text.indexOf('  alpha:') < text.indexOf('  zeta:'));
    assert.ok(text.indexOf('A: "1"') < text.indexOf('B: "2"'));
    assert.match(text, /published: "8080"/);
    assert.match(text, /^name: proj$/m);
  });

  it('is deterministic and loads back to the same project', async () => {
    const p = await load({ 'compose.yaml': 'services:\n  web:\n    image: nginx\n    command: nginx -g "daemon off;"\n    healthcheck:\n      test: curl -f localhost\n      interval: 90s\n' });
    const text = projectToYaml(p.project);
    assert.equal(projectToYaml(p.project), text);
    const dir = project({ 'compose.yaml': text });
    const again = await loadDir(dir, { env: {} });
    assert.deepEqual(again.project.services, p.project.services);
    assert.deepEqual(parse(text).services.web.command, ['nginx', '-g', 'daemon off;']);
    assert.equal(parse(text).services.web.healthcheck.interval, '1m30s');
  });
});

describe('projectToYaml quoting', () => {
  it('quotes strings a YAML 1.1 reader would misread, and they load back as strings', async () => {
    const p = await load({ 'compose.yaml': 'services:\n  a:\n    image: x\n    environment:\n      A: "yes"\n      B: "on"\n      C: "22:22"\n      D: "null"\n      E: plain\n' });
    const text = projectToYaml(p.project);
    assert.match(text, /A: "yes"/);
    assert.match(text, /B: "on"/);
    assert.match(text, /C: "22:22"/);
    assert.match(text, /D: "null"/);
    assert.match(text, /E: plain/);
    assert.deepEqual(parse(text).services.a.environment, { A: 'yes', B: 'on', C: '22:22', D: 'null', E: 'plain' });
  });
});
