// app deploy's image check (issue 12): how each image will be pulled —
// stored credentials, the nodes' own access (the driver's hook), known public,
// or what the probe answers — and a warning for what may fail to pull.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ImageRef } from '../../src/domain/images.js';
import type { RegistryProbe } from '../../src/domain/ports/registry.js';
import { K3sDriver } from '../../src/providers/k3s/driver.js';
import { checkImageAccess } from '../../src/usecases/registry-check.js';
import { makeCtx } from '../convert/helpers.js';

const IMAGES = ['nginx:1.27', 'ghcr.io/org/app:1', 'registry.example.com/team/api:2', 'nodes.example.com/x:1', 'quay.io/open/tool:1'];

function probe(answers: Record<string, Awaited<ReturnType<RegistryProbe['visibility']>>>): RegistryProbe & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    async visibility(ref: ImageRef) {
      asked.push(`${ref.registry}/${ref.repository}`);
      return answers[ref.registry] ?? { visibility: 'unknown', reason: 'no answer' };
    },
  };
}

test('credentials, identity, known public and the probe each decide; private and unknown are warned about', async () => {
  const ctx = makeCtx({ providerSettings: { K3S_NODE_REGISTRIES: 'nodes.example.com' } });
  const p = probe({ 'registry.example.com': { visibility: 'private', reason: '401' }, 'quay.io': { visibility: 'public' } });
  const r = await checkImageAccess(ctx, IMAGES, ['https://ghcr.io/v2/'], new K3sDriver(), p, {});
  assert.deepEqual(
    r.images.map((i) => [i.image, i.access]),
    [
      ['nginx:1.27', 'public'],
      ['ghcr.io/org/app:1', 'credentials'],
      ['registry.example.com/team/api:2', 'private'],
      ['nodes.example.com/x:1', 'identity'],
      ['quay.io/open/tool:1', 'public'],
    ],
  );
  assert.deepEqual(p.asked.sort(), ['quay.io/open/tool', 'registry.example.com/team/api'], 'only what cannot be told otherwise is asked');
  assert.equal(r.images[3]!.detail, "the K3s nodes' own credentials (K3S_NODE_REGISTRIES: nodes.example.com)");
  assert.deepEqual(
    r.warnings.map((w) => w.message),
    ['image registry.example.com/team/api:2: registry registry.example.com does not serve it without credentials, and none are stored for it: the pull will fail (ErrImagePull)'],
  );
});

test('KOMPOX_REGISTRY_CHECK: offline warns about what it cannot tell without asking; off checks nothing; no probe or no answer: warned', async () => {
  const p = probe({});
  const offline = await checkImageAccess(makeCtx({ cluster: { settings: { KOMPOX_REGISTRY_CHECK: 'offline' } } }), IMAGES, [], undefined, p, {});
  assert.deepEqual(p.asked, []);
  assert.deepEqual(
    offline.warnings.map((w) => w.message),
    ['ghcr.io/org/app:1', 'registry.example.com/team/api:2', 'nodes.example.com/x:1', 'quay.io/open/tool:1'].map(
      (i) => `image ${i}: no credentials are stored for registry ${i.split('/')[0]}, and whether the image is public cannot be told (KOMPOX_REGISTRY_CHECK is offline: no registry is asked); a private image will fail to pull`,
    ),
  );
  const off = await checkImageAccess(makeCtx({ cluster: { settings: { KOMPOX_REGISTRY_CHECK: 'off' } } }), IMAGES, [], undefined, p, {});
  assert.deepEqual(off, { images: [], warnings: [] });
  // without a probe (a server front end) it cannot tell either: warned, never silently passed
  const none = await checkImageAccess(makeCtx(), IMAGES, [], undefined, undefined, {});
  assert.deepEqual(
    none.warnings.map((w) => w.message),
    ['ghcr.io/org/app:1', 'registry.example.com/team/api:2', 'nodes.example.com/x:1', 'quay.io/open/tool:1'].map(
      (i) => `image ${i}: no credentials are stored for registry ${i.split('/')[0]}, and whether the image is public cannot be told (registries are not asked from here); a private image will fail to pull`,
    ),
  );
  // a probe that gets no answer: warned with its reason
  const silent = await checkImageAccess(makeCtx(), ['ghcr.io/org/app:1'], [], undefined, probe({ 'ghcr.io': { visibility: 'unknown', reason: 'no answer within 5 s' } }), {});
  assert.deepEqual(
    silent.warnings.map((w) => w.message),
    ['image ghcr.io/org/app:1: no credentials are stored for registry ghcr.io, and whether the image is public cannot be told (no answer within 5 s); a private image will fail to pull'],
  );
  await assert.rejects(checkImageAccess(makeCtx({ cluster: { settings: { KOMPOX_REGISTRY_CHECK: 'maybe' } } }), IMAGES, [], undefined, p, {}), /cluster\.settings\.KOMPOX_REGISTRY_CHECK must be probe, offline or off, got "maybe"/);
});
