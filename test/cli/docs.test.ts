// The README's Quickstart is a contract (two command lines), and the
// kompoxops.yml reference documents every key the loader accepts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { KEYS } from '../../src/config/validate.js';
import { BOX_IMAGE, HELPER_IMAGE, SETTING_BOX_IMAGE, SETTING_HELPER_IMAGE, SETTING_REGISTRY_MIRROR, SETTING_TRAEFIK_IMAGE, TRAEFIK_IMAGE } from '../../src/domain/images.js';
import { SETTING_REGISTRY_CHECK } from '../../src/usecases/registry-check.js';
import { ROOT } from '../support/cli.js';

test('README Quickstart is exactly the two command lines', () => {
  const readme = readFileSync(`${ROOT}/README.md`, 'utf8');
  const m = /## Quickstart\n\n```sh\n([\s\S]*?)```/.exec(readme);
  assert.ok(m, 'README has a Quickstart sh block');
  assert.equal(m[1], 'npm ci && npm run example\nnpm ci && npm test\n');
});

test('docs/kompoxops-yml.md documents every key of kompoxops.yml', () => {
  const doc = readFileSync(`${ROOT}/docs/kompoxops-yml.md`, 'utf8');
  const fields = [
    ...KEYS.root,
    ...KEYS.service.map((k) => `service.${k}`),
    ...KEYS.provider.map((k) => `provider.${k}`),
    ...KEYS.cluster.map((k) => `cluster.${k}`),
    ...KEYS.auth.map((k) => `cluster.auth.${k}`),
    ...KEYS.ingress.map((k) => `cluster.ingress.${k}`),
    ...KEYS.app.map((k) => `app.${k}`),
    ...KEYS.volume.map((k) => `app.volumes[].${k}`),
  ];
  for (const f of fields) assert.ok(doc.includes(`\`${f}\``), `docs/kompoxops-yml.md mentions \`${f}\``);
  // the settings for the images Kompox adds, and the pinned defaults as they are in the code
  for (const s of [SETTING_HELPER_IMAGE, SETTING_TRAEFIK_IMAGE, SETTING_REGISTRY_MIRROR, SETTING_BOX_IMAGE, SETTING_REGISTRY_CHECK, HELPER_IMAGE, TRAEFIK_IMAGE, BOX_IMAGE]) assert.ok(doc.includes(`\`${s}\``), `docs/kompoxops-yml.md mentions \`${s}\``);
  assert.match(doc, /# yaml-language-server: \$schema=/);
});
