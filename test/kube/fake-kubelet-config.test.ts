// The fake kubelet's pull credentials and environment (issue 12), through the
// real client: an image of a private registry pulls only with a matching
// imagePullSecret (else ErrImagePull, as containerd reports it); the
// environment is built as Kubernetes documents it (envFrom in order, env wins,
// $(VAR) expansion), and a missing Secret is CreateContainerConfigError.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { KubeClient, KubeObject } from '../../src/domain/ports/kube.js';
import { eventually, startFakeCluster } from '../support/kube.js';
import type { FakeKube } from '../support/fake-kube/index.js';

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const NS = 'k';
const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('fake kubelet: pull secrets and environment', () => {
  let fake: FakeKube;
  let kube: KubeClient;
  before(async () => {
    ({ fake, kube } = await startFakeCluster({ privateRegistries: [{ registry: 'registry.example.com:5000', username: 'robot', password: 'right' }] }));
    await kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
  });
  after(async () => fake?.close());

  const pod = (name: string, spec: Any): KubeObject => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: NS }, spec: { restartPolicy: 'Always', ...spec } });
  const waiting = async (name: string) =>
    eventually(async () => {
      const st = (await kube.get({ apiVersion: 'v1', kind: 'Pod', name, namespace: NS }))?.status as Any | undefined;
      const cs = st?.containerStatuses?.[0];
      return cs?.state?.waiting?.reason && cs.state.waiting.reason !== 'ContainerCreating' && cs.state.waiting.reason !== 'PodInitializing' ? cs.state.waiting : cs?.state?.running ? { running: true } : undefined;
    }, `pod ${name} to start or fail`);
  const pullSecret = (name: string, user: string, password: string, key = 'registry.example.com:5000'): KubeObject => ({
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'kubernetes.io/dockerconfigjson',
    metadata: { name, namespace: NS },
    data: { '.dockerconfigjson': b64(JSON.stringify({ auths: { [key]: { auth: b64(`${user}:${password}`) } } })) },
  });

  test('a private registry: ErrImagePull without credentials or with wrong ones; pulls with the right ones', async () => {
    const image = 'registry.example.com:5000/team/app:1';
    await kube.apply(pod('anon', { containers: [{ name: 'c', image }] }));
    const w = await waiting('anon');
    assert.equal(w.reason, 'ErrImagePull');
    assert.match(w.message, /pull access denied, repository does not exist or may require authorization/);

    await kube.apply(pullSecret('wrong', 'robot', 'nope'));
    await kube.apply(pod('wrong', { imagePullSecrets: [{ name: 'wrong' }, { name: 'missing' }], containers: [{ name: 'c', image }] }));
    assert.equal((await waiting('wrong')).reason, 'ErrImagePull');
    const events = await kube.list('v1', 'Event', { namespace: NS });
    assert.ok(events.some((e) => e.reason === 'FailedToRetrieveImagePullSecret' && (e.involvedObject as Any).name === 'wrong' && /\(missing\)/.test(String(e.message))));

    await kube.apply(pullSecret('right', 'robot', 'right', 'https://registry.example.com:5000/v2/'));
    await kube.apply(pod('right', { imagePullSecrets: [{ name: 'right' }], containers: [{ name: 'c', image }] }));
    assert.deepEqual(await waiting('right'), { running: true });
    // public registries need nothing
    await kube.apply(pod('public', { containers: [{ name: 'c', image: 'nginx:1.27' }] }));
    assert.deepEqual(await waiting('public'), { running: true });
  });

  test('environment: envFrom in order, env wins, $(VAR) expanded; a missing Secret keeps the container from being created', async () => {
    await kube.apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cm', namespace: NS }, data: { A: 'cm-a', B: 'cm-b' } });
    await kube.apply({ apiVersion: 'v1', kind: 'Secret', type: 'Opaque', metadata: { name: 'over', namespace: NS }, data: { B: b64('secret-b'), C: b64('secret-c') } });
    await kube.apply(
      pod('env', {
        containers: [
          {
            name: 'c',
            image: 'nginx:1.27',
            envFrom: [{ configMapRef: { name: 'cm' } }, { secretRef: { name: 'over' } }],
            env: [{ name: 'C', value: 'env-c' }, { name: 'D', value: '$(A)-$$(A)-$(NOPE)' }],
          },
        ],
      }),
    );
    assert.deepEqual(await waiting('env'), { running: true });
    assert.deepEqual(fake.containerEnv(NS, 'env', 'c'), { A: 'cm-a', B: 'secret-b', C: 'env-c', D: 'cm-a-$(A)-$(NOPE)' });

    await kube.apply(pod('nosecret', { containers: [{ name: 'c', image: 'nginx:1.27', envFrom: [{ secretRef: { name: 'later' } }] }] }));
    assert.deepEqual(await waiting('nosecret'), { reason: 'CreateContainerConfigError', message: 'secret "later" not found' });
    // the kubelet retries: once the Secret exists, the container starts
    await kube.apply({ apiVersion: 'v1', kind: 'Secret', type: 'Opaque', metadata: { name: 'later', namespace: NS }, data: { X: b64('1') } });
    await eventually(async () => ((await waiting('nosecret')) as Any).running, 'the container to start once the Secret exists');
    assert.deepEqual(fake.containerEnv(NS, 'nosecret', 'c'), { X: '1' });
  });
});
