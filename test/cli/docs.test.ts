// The README's Quickstart is a contract (two command lines), the
// kompoxops.yml reference documents every key the loader accepts, and the
// README's JSON error shape is what the CLI prints.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { KEYS } from '../../src/config/validate.js';
import { BOX_IMAGE, HELPER_IMAGE, SETTING_BOX_IMAGE, SETTING_HELPER_IMAGE, SETTING_REGISTRY_MIRROR, SETTING_TRAEFIK_IMAGE, TRAEFIK_IMAGE } from '../../src/domain/images.js';
import { SETTING_REGISTRY_CHECK } from '../../src/usecases/registry-check.js';
import { ROOT, runCli } from '../support/cli.js';

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

test("README's JSON error shape is the one the CLI prints: its keys in that order, on stderr's last line, stdout empty", async () => {
  const readme = readFileSync(`${ROOT}/README.md`, 'utf8').replace(/\s+/g, ' ');
  const m = /`\{"error":\{([^}]*)\}\}`/.exec(readme);
  assert.ok(m, 'README shows the JSON error object');
  const documented = [...m[1]!.matchAll(/"(\w+)":/g)].map((x) => x[1]);
  const r = await runCli(['disk', 'list', '-f', 'no-such-kompoxops.yml', '-o', 'json'], { cwd: tmpdir() });
  assert.equal(r.code, 1, r.stderr);
  assert.equal(r.stdout, '');
  const printed = Object.keys((JSON.parse(r.stderr.trim().split('\n').at(-1)!) as { error: Record<string, unknown> }).error);
  // every key the README shows, in its order; the others it names as "where known" (location, field, details)
  assert.deepEqual(printed.filter((k) => documented.includes(k)), documented, `printed ${printed.join(', ')}`);
  for (const k of printed.filter((k) => !documented.includes(k))) assert.ok(['location', 'field', 'details'].includes(k) && readme.includes(`\`${k}\``), `README names the key ${k}`);
});
