// Contract of the KubeClient adapter. The same suite runs against a real
// cluster (KOMPOX_TEST_KUBECONFIG=path [KOMPOX_TEST_CONTEXT=name]) and against
// the in-process fake API server, so the fake is held to real behaviour.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { KompoxError } from '../../src/domain/errors.js';
import { connectKubeconfig, type KubeClient, type KubeObject } from '../../src/kube/index.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/index.js';
import { eventually } from '../support/kube.js';

export function kubeContract(label: string, setup: () => Promise<{ kubeconfigPath: string; context?: string; teardown(): Promise<void> }>): void {
  describe(`KubeClient contract (${label})`, () => {
    let kube: KubeClient;
    let teardown: () => Promise<void>;
    const ns = `kompox-contract-${randomBytes(3).toString('hex')}`;
    const nsObj = (extra: Record<string, string> = {}): KubeObject => ({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: ns, labels: { 'app.kubernetes.io/managed-by': 'kompox', ...extra } },
    });
    const cm = (name: string, data: Record<string, string>, labels: Record<string, string> = {}): KubeObject => ({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name, namespace: ns, labels },
      data,
    });

    before(async () => {
      const s = await setup();
      teardown = s.teardown;
      kube = await connectKubeconfig({ path: s.kubeconfigPath, context: s.context });
    });
    after(async () => {
      try {
        await kube?.delete({ apiVersion: 'v1', kind: 'Namespace', name: ns });
      } finally {
        await teardown?.();
      }
    });

    test('version answers with a gitVersion', async () => {
      const v = await kube.version();
      assert.match(v.gitVersion, /^v\d+\.\d+/);
    });

    test('apply into a namespace that does not exist fails with notfound', async () => {
      await assert.rejects(kube.apply(cm('early', { a: '1' })), (e: unknown) => {
        assert.ok(e instanceof KompoxError);
        assert.equal(e.kind, 'notfound');
        assert.match(e.message, /namespaces? "?kompox-contract/);
        return true;
      });
    });

    test('apply creates; an identical apply changes nothing (same resourceVersion)', async () => {
      const a = await kube.apply(nsObj());
      assert.equal(a.metadata.name, ns);
      const b = await kube.apply(nsObj());
      assert.equal(b.metadata.resourceVersion, a.metadata.resourceVersion);
      const c1 = await kube.apply(cm('one', { a: '1' }));
      const c2 = await kube.apply(cm('one', { a: '1' }));
      assert.equal(c2.metadata.resourceVersion, c1.metadata.resourceVersion);
      const got = await kube.get({ apiVersion: 'v1', kind: 'ConfigMap', name: 'one', namespace: ns });
      assert.deepEqual(got?.data, { a: '1' });
      assert.equal(got?.metadata.resourceVersion, c1.metadata.resourceVersion);
    });

    test('a changed apply bumps resourceVersion; a field no longer applied is removed', async () => {
      const a = await kube.apply(cm('two', { a: '1' }, { keep: 'x', drop: 'y' }));
      const b = await kube.apply(cm('two', { a: '2' }, { keep: 'x' }));
      assert.notEqual(b.metadata.resourceVersion, a.metadata.resourceVersion);
      assert.deepEqual(b.data, { a: '2' });
      assert.equal(b.metadata.labels?.drop, undefined);
      assert.equal(b.metadata.labels?.keep, 'x');
    });

    test('dry-run apply returns the result without storing it', async () => {
      const dry = await kube.apply(cm('dry', { a: '1' }), { dryRun: true });
      assert.deepEqual(dry.data, { a: '1' });
      assert.equal(await kube.get({ apiVersion: 'v1', kind: 'ConfigMap', name: 'dry', namespace: ns }), undefined);
    });

    test('Deployment generation changes only with spec', async () => {
      const dep = (image: string, label: string): KubeObject => ({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'web', namespace: ns, labels: { l: label } },
        spec: {
          // no pod, so the controller's writes (revision annotation, status) settle at once
          replicas: 0,
          selector: { matchLabels: { app: 'web' } },
          template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image }] } },
        },
      });
      const a = await kube.apply(dep('nginx:1', 'a'));
      const b = await kube.apply(dep('nginx:1', 'b'));
      assert.equal(b.metadata.generation, a.metadata.generation);
      const c = await kube.apply(dep('nginx:2', 'b'));
      assert.equal(c.metadata.generation, Number(a.metadata.generation) + 1);
      const ref = { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', namespace: ns };
      await eventually(async () => {
        const d = await kube.get(ref);
        return d?.metadata.annotations?.['deployment.kubernetes.io/revision'] === '2' && (d.status as { observedGeneration?: number } | undefined)?.observedGeneration === c.metadata.generation;
      }, 'the Deployment controller to roll out revision 2');
      const live = await kube.get(ref);
      const again = await kube.apply(dep('nginx:2', 'b'));
      assert.equal(again.metadata.resourceVersion, live!.metadata.resourceVersion);
      assert.equal(again.metadata.generation, c.metadata.generation);
    });

    test('annotations written by merge patch survive a later apply', async () => {
      await kube.mergePatch({ apiVersion: 'v1', kind: 'Namespace', name: ns }, { metadata: { annotations: { 'kompox.dev/disk-current-id': 'disk-1' } } });
      const after = await kube.apply(nsObj({ extra: 'yes' }));
      assert.equal(after.metadata.annotations?.['kompox.dev/disk-current-id'], 'disk-1');
      assert.equal(after.metadata.labels?.extra, 'yes');
    });

    test('another manager changing an owned field conflicts unless forced', async () => {
      await kube.apply(cm('owned', { a: '1' }));
      await assert.rejects(kube.apply(cm('owned', { a: '2' }), { fieldManager: 'someone-else', force: false }), (e: unknown) => {
        assert.ok(e instanceof KompoxError);
        assert.equal(e.kind, 'conflict');
        assert.match(e.message, /conflict/i);
        return true;
      });
      const forced = await kube.apply(cm('owned', { a: '2' }), { fieldManager: 'someone-else', force: true });
      assert.deepEqual(forced.data, { a: '2' });
    });

    test('map fields are owned key by key: another manager\'s key survives our re-apply', async () => {
      await kube.apply(cm('shared', { ours: '1' }));
      await kube.apply(cm('shared', { theirs: 'x' }), { fieldManager: 'other-tool', force: false });
      const again = await kube.apply(cm('shared', { ours: '2' }));
      assert.deepEqual(again.data, { ours: '2', theirs: 'x' });
      const dropped = await kube.apply(cm('shared', {}));
      assert.deepEqual(dropped.data, { theirs: 'x' });
    });

    test('list filters by label selector and fills in apiVersion/kind', async () => {
      await kube.apply(cm('sel-a', { a: '1' }, { tier: 'a', k: 'x' }));
      await kube.apply(cm('sel-b', { a: '1' }, { tier: 'b' }));
      const names = async (sel: string) =>
        (await kube.list('v1', 'ConfigMap', { namespace: ns, labelSelector: sel })).map((o) => o.metadata.name).sort();
      assert.deepEqual(await names('tier=a'), ['sel-a']);
      assert.deepEqual(await names('tier in (a,b)'), ['sel-a', 'sel-b']);
      assert.deepEqual(await names('tier notin (a),tier'), ['sel-b']);
      assert.deepEqual(await names('tier,!k'), ['sel-b']);
      assert.deepEqual(await names('tier!=b,tier'), ['sel-a']);
      const all = await kube.list('v1', 'ConfigMap', { namespace: ns, labelSelector: 'tier=a' });
      assert.equal(all[0]!.apiVersion, 'v1');
      assert.equal(all[0]!.kind, 'ConfigMap');
    });

    test('an invalid object is rejected with a config error naming the field', async () => {
      await assert.rejects(kube.apply(cm('Bad_Name', { a: '1' })), (e: unknown) => {
        assert.ok(e instanceof KompoxError);
        assert.equal(e.kind, 'config');
        assert.match(e.message, /Bad_Name/);
        return true;
      });
    });

    test('an unknown kind is reported as not served', async () => {
      await assert.rejects(kube.get({ apiVersion: 'example.invalid/v1', kind: 'Nope', name: 'x' }), (e: unknown) => {
        assert.ok(e instanceof KompoxError);
        assert.match(e.message, /does not serve Nope/);
        return true;
      });
    });

    test('delete reports whether the object existed', async () => {
      await kube.apply(cm('gone', { a: '1' }));
      const ref = { apiVersion: 'v1', kind: 'ConfigMap', name: 'gone', namespace: ns };
      assert.equal(await kube.delete(ref), true);
      assert.equal(await kube.get(ref), undefined);
      assert.equal(await kube.delete(ref), false);
    });
  });
}

if (process.env.KOMPOX_TEST_KUBECONFIG) {
  kubeContract('real cluster', async () => ({
    kubeconfigPath: process.env.KOMPOX_TEST_KUBECONFIG!,
    context: process.env.KOMPOX_TEST_CONTEXT,
    teardown: async () => {},
  }));
} else {
  test('KubeClient contract (real cluster)', { skip: 'KOMPOX_TEST_KUBECONFIG is not set' }, () => {});
}

kubeContract('fake API server', async () => {
  const fake: FakeKube = await startFakeKube();
  return { kubeconfigPath: fake.kubeconfigPath, teardown: () => fake.close() };
});

if (spawnSync('openssl', ['version']).status === 0) {
  kubeContract('fake API server over TLS', async () => {
    const fake: FakeKube = await startFakeKube({ tls: true });
    return { kubeconfigPath: fake.kubeconfigPath, teardown: () => fake.close() };
  });
} else {
  test('KubeClient contract (fake API server over TLS)', { skip: 'the openssl CLI is not installed (needed for the test certificate)' }, () => {});
}
