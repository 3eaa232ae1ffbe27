// Image references as container runtimes read them (distribution/reference's
// normalisation), and which images are public without asking.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BOX_IMAGE, boxImage, imageSettingProblems, knownPublic, parseImageRef } from '../../src/domain/images.js';

test('parseImageRef: Docker Hub defaults, library/, hosts with dots or ports, localhost, digests', () => {
  const cases: [string, ReturnType<typeof parseImageRef>][] = [
    ['nginx', { registry: 'docker.io', repository: 'library/nginx' }],
    ['nginx:1.27', { registry: 'docker.io', repository: 'library/nginx', tag: '1.27' }],
    ['gitea/gitea:1.22', { registry: 'docker.io', repository: 'gitea/gitea', tag: '1.22' }],
    ['docker.io/nginx', { registry: 'docker.io', repository: 'library/nginx' }],
    ['index.docker.io/library/nginx:1', { registry: 'docker.io', repository: 'library/nginx', tag: '1' }],
    ['ghcr.io/org/app:v2', { registry: 'ghcr.io', repository: 'org/app', tag: 'v2' }],
    ['registry.example.com:5000/team/app', { registry: 'registry.example.com:5000', repository: 'team/app' }],
    ['localhost/app:1', { registry: 'localhost', repository: 'app', tag: '1' }],
    ['127.0.0.1:5000/a/b/c:1', { registry: '127.0.0.1:5000', repository: 'a/b/c', tag: '1' }],
    [
      `busybox@sha256:${'a'.repeat(64)}`,
      { registry: 'docker.io', repository: 'library/busybox', digest: `sha256:${'a'.repeat(64)}` },
    ],
    ['myacr.azurecr.io/app:1@sha256:' + 'b'.repeat(64), { registry: 'myacr.azurecr.io', repository: 'app', tag: '1', digest: 'sha256:' + 'b'.repeat(64) }],
    ['Registry.Example.com/app', { registry: 'registry.example.com', repository: 'app' }],
  ];
  for (const [image, want] of cases) assert.deepEqual(parseImageRef(image), want, image);
  for (const bad of ['', 'a b', 'nginx:', 'http://x/y', 'Team/App']) assert.equal(parseImageRef(bad), undefined, bad);
});

test('knownPublic: official Docker Hub images and public-only registries, nothing else', () => {
  assert.equal(knownPublic(parseImageRef('nginx:1.27')!), true);
  assert.equal(knownPublic(parseImageRef('registry.k8s.io/pause:3.9')!), true);
  assert.equal(knownPublic(parseImageRef('gitea/gitea:1.22')!), false);
  assert.equal(knownPublic(parseImageRef('ghcr.io/org/app:1')!), false);
});

test('the box image: pinned default, the mirror rule, an override used as written and checked like the others', () => {
  assert.match(BOX_IMAGE, /^docker\.io\/library\/alpine:3\.21\.3@sha256:[0-9a-f]{64}$/);
  assert.equal(boxImage({}), BOX_IMAGE);
  assert.equal(boxImage({ KOMPOX_REGISTRY_MIRROR: 'mirror.example.com/hub' }), BOX_IMAGE.replace('docker.io', 'mirror.example.com/hub'));
  assert.equal(boxImage({ KOMPOX_BOX_IMAGE: 'registry.example.com/box:1', KOMPOX_REGISTRY_MIRROR: 'mirror.example.com' }), 'registry.example.com/box:1');
  assert.deepEqual(
    imageSettingProblems({ KOMPOX_BOX_IMAGE: 'alpine' }).map((p) => [p.key, p.problem]),
    [['KOMPOX_BOX_IMAGE', '"alpine" has no tag or digest']],
  );
});
