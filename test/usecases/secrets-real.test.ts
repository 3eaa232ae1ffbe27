// Stored secrets against a real API server (KOMPOX_TEST_KUBECONFIG), and the
// same steps against the fake with its controllers (so the test itself is
// known to work where no cluster is given): the server accepts the stored
// Secrets and the pod's references (imagePullSecrets, envFrom) as Kompox
// writes them, and, when the cluster runs the pod, the environment its
// kubelet builds has the override over compose `environment:`. A cluster
// without nodes (the pod stays Pending) still checks the wiring.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HELPER_IMAGE } from '../../src/domain/images.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/index.js';
import { activePods, hostFs, kompoxops, writeProject, type Run } from './lifecycle-support.js';

const ENV_VALUE = 'Ov-8c1d2e-real';
const COMPOSE = `services:\n  web:\n    image: ${HELPER_IMAGE}\n    command: ["sleep", "3600"]\n    environment:\n      DB_PASSWORD: dev-password\n      APP_MODE: dev\n`;

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

async function story(kubeconfig: string, context: string | undefined, note: (s: string) => void, containerEnv?: (namespace: string) => Promise<Record<string, string>>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'kompox-secrets-real-'));
  const app = `sec-${process.pid}`;
  const run = (args: string[]) => kompoxops(dir, args);
  const ok = (r: Run) => assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.out}\nstderr: ${r.err}`);
  try {
    await writeFile(join(dir, 'kubeconfig'), await readFile(kubeconfig, 'utf8'));
    await writeProject(dir, { diskRoot: join(dir, 'disks'), snapshotRoot: join(dir, 'snapshots'), kubeconfig: './kubeconfig', app }, COMPOSE);
    if (context) {
      const yml = join(dir, 'kompoxops.yml');
      await writeFile(yml, (await readFile(yml, 'utf8')).replace('kubeconfig: ./kubeconfig }', `kubeconfig: ./kubeconfig, context: ${context} }`));
    }
    const auth = Buffer.from('robot:Rg-pw-real-test').toString('base64');
    await writeFile(join(dir, 'config.json'), JSON.stringify({ auths: { 'registry.example.com:5000': { auth } } }));
    await writeFile(join(dir, 'prod.env'), `DB_PASSWORD=${ENV_VALUE}\n`);
    ok(await run(['secret', 'pull', 'set', '-f', 'config.json']));
    ok(await run(['secret', 'env', 'set', '-S', 'web', '-f', 'prod.env']));
    const d = await run(['app', 'deploy', '--timeout', '60s']);
    assert.ok(d.code === 0 || d.code === 3, `exit ${d.code}\n${d.err}`);
    const manifest = await run(['app', 'validate', '--out-manifest', '-', '--stored-secrets', '-o', 'json']);
    ok(manifest);
    const st = JSON.parse((await run(['app', 'status', '-o', 'json'])).out);
    assert.deepEqual(st.secrets, { pull: { secret: 'kompox-pull', registries: ['registry.example.com:5000'] }, env: [{ service: 'web', secret: 'kompox-env-web', keys: ['DB_PASSWORD'] }] });
    // what the server stored
    const { connectKubeconfig } = await import('../../src/kube/index.js');
    const kube = await connectKubeconfig({ path: join(dir, 'kubeconfig'), ...(context ? { context } : {}) });
    const secret = await kube.get({ apiVersion: 'v1', kind: 'Secret', name: 'kompox-pull', namespace: st.namespace });
    assert.equal(secret?.type, 'kubernetes.io/dockerconfigjson');
    const dep = (await kube.list('apps/v1', 'Deployment', { namespace: st.namespace }))[0] as Any;
    assert.deepEqual(dep.spec.template.spec.imagePullSecrets, [{ name: 'kompox-pull' }]);
    assert.deepEqual(dep.spec.template.spec.containers[0].envFrom, [{ secretRef: { name: 'kompox-env-web' } }]);
    assert.deepEqual(dep.spec.template.spec.containers[0].env, [{ name: 'APP_MODE', value: 'dev' }]);
    if (d.code === 0) {
      // the container's environment: the real kubelet's (through exec), or the fake kubelet's record
      const env = containerEnv ? await containerEnv(st.namespace) : Object.fromEntries((await run(['app', 'exec', '--', 'env'])).out.split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
      assert.equal(env.DB_PASSWORD, ENV_VALUE, 'the override wins');
      assert.equal(env.APP_MODE, 'dev', 'the compose value stays');
    } else if (containerEnv) assert.fail(`the fake runs the pod: ${d.err}`);
    else note(`the pod did not run within 60s (${d.err.trim().split('\n').at(-1)}): the environment was not checked`);
    for (const r of [d, manifest]) assert.ok(!r.out.includes(ENV_VALUE) && !r.err.includes(ENV_VALUE), 'no value in the output');
  } finally {
    await run(['app', 'destroy', '--yes', '--delete-namespace']).catch(() => undefined);
    await hostFs.rm(dir);
  }
}

describe('stored secrets, real API server and fake', () => {
  let fake: FakeKube | undefined;
  after(async () => fake?.close());

  test('fake API server with controllers: wiring and the environment the kubelet builds', async (t) => {
    fake = await startFakeKube();
    const f = fake;
    await story(f.kubeconfigPath, undefined, (s) => t.diagnostic(s), async (ns) => {
      const pod = activePods(f, ns).find((p) => p.status?.phase === 'Running');
      assert.ok(pod, 'the app pod runs');
      return f.containerEnv(ns, pod.metadata.name, 'web') ?? {};
    });
  });

  test('real cluster: wiring, and the environment when the pod runs', { skip: process.env.KOMPOX_TEST_KUBECONFIG ? false : 'KOMPOX_TEST_KUBECONFIG is not set' }, async (t) => {
    await story(process.env.KOMPOX_TEST_KUBECONFIG!, process.env.KOMPOX_TEST_CONTEXT, (s) => t.diagnostic(s));
  });
});
