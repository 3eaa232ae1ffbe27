// What users see when the cluster cannot be used: one clear KompoxError each.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KompoxError, formatError } from '../../src/domain/errors.js';
import { connectKubeconfig } from '../../src/kube/index.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/index.js';

function kompoxError(check: (e: KompoxError) => void) {
  return (e: unknown) => {
    assert.ok(e instanceof KompoxError, `expected KompoxError, got ${String((e as Error)?.stack ?? e)}`);
    check(e);
    return true;
  };
}

function kubeconfig(server: string, user: string): string {
  return `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
    server: ${server}
    insecure-skip-tls-verify: true
users:
- name: u
  user:
${user}
contexts:
- name: ctx
  context: {cluster: c, user: u}
current-context: ctx
`;
}

describe('kubeconfig and connection errors', () => {
  let dir: string;
  let fake: FakeKube;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kube-errors-'));
    fake = await startFakeKube();
  });
  after(async () => {
    rmSync(dir, { recursive: true, force: true });
    await fake.close();
  });

  test('a missing kubeconfig file names the path', async () => {
    const p = join(dir, 'nope');
    await assert.rejects(connectKubeconfig({ path: p }), kompoxError((e) => {
      assert.equal(e.kind, 'config');
      assert.match(formatError(e), new RegExp(`kubeconfig file ${p} does not exist`));
    }));
  });

  test('a kubeconfig that is not YAML names the file', async () => {
    const p = join(dir, 'bad');
    writeFileSync(p, 'clusters: [\n  - {name: x');
    await assert.rejects(connectKubeconfig({ path: p }), kompoxError((e) => {
      assert.equal(e.kind, 'config');
      assert.match(formatError(e), /not a valid kubeconfig/);
      assert.equal(e.location?.file, p);
    }));
  });

  test('an unknown context lists the defined ones', async () => {
    await assert.rejects(connectKubeconfig({ path: fake.kubeconfigPath, context: 'other' }), kompoxError((e) => {
      assert.match(e.message, /context "other" is not defined/);
      assert.match(e.hint ?? '', /fake/);
      assert.equal(e.field, 'cluster.auth.context');
    }));
  });

  test('a closed port: cannot reach the API server at URL', async () => {
    const srv = net.createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as net.AddressInfo).port;
    await new Promise<void>((r) => srv.close(() => r()));
    const p = join(dir, 'closed');
    writeFileSync(p, kubeconfig(`http://127.0.0.1:${port}`, '    token: x'));
    await assert.rejects(connectKubeconfig({ path: p }), kompoxError((e) => {
      assert.equal(e.kind, 'unavailable');
      assert.equal(e.message, `cannot reach the Kubernetes API server at http://127.0.0.1:${port}: connection refused`);
    }));
  });

  test('an unknown host name is reported as such', async () => {
    const p = join(dir, 'nohost');
    writeFileSync(p, kubeconfig('https://kompox-no-such-host.invalid:6443', '    token: x'));
    await assert.rejects(connectKubeconfig({ path: p }), kompoxError((e) => {
      assert.equal(e.kind, 'unavailable');
      assert.match(e.message, /cannot reach the Kubernetes API server at https:\/\/kompox-no-such-host\.invalid:6443: /);
    }));
  });

  test('expired credentials (401) say to log in again', async () => {
    fake.setAuth('expired');
    try {
      await assert.rejects(connectKubeconfig({ path: fake.kubeconfigPath }), kompoxError((e) => {
        assert.equal(e.kind, 'auth');
        assert.match(e.message, /rejected the credentials \(401 Unauthorized\)/);
        assert.match(e.hint ?? '', /log in again/);
      }));
    } finally {
      fake.setAuth('ok');
    }
  });

  test('forbidden (403) shows the server message and the missing permission', async () => {
    fake.forbid({ verb: 'create', resource: 'namespaces' });
    fake.forbid({ verb: 'patch', resource: 'namespaces' });
    try {
      const kube = await connectKubeconfig({ path: fake.kubeconfigPath });
      await assert.rejects(kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'denied' } }), kompoxError((e) => {
        assert.equal(e.kind, 'auth');
        assert.match(e.message, /User "kompox-test" cannot patch resource "namespaces" in API group "" at the cluster scope/);
        assert.match(e.hint ?? '', /permission to patch namespaces at cluster scope/);
      }));
    } finally {
      fake.allowAll(); // leave the shared server as the other tests expect it
    }
  });

  test('an exec credential plugin that is not installed is named', async () => {
    const p = join(dir, 'exec');
    writeFileSync(
      p,
      kubeconfig(fake.url, '    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: kompox-no-such-plugin\n      args: [get-token]'),
    );
    await assert.rejects(connectKubeconfig({ path: p }), kompoxError((e) => {
      assert.equal(e.kind, 'auth');
      assert.match(e.message, /credential plugin "kompox-no-such-plugin" of kubeconfig user "u" .* could not be run: command not found/);
    }));
  });

  test('an exec credential plugin that fails shows its message', async () => {
    const p = join(dir, 'execfail');
    writeFileSync(
      p,
      kubeconfig(fake.url, `    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: ${process.execPath}\n      args: ['-e', 'console.error("AADSTS700082: refresh token expired"); process.exit(1)']`),
    );
    await assert.rejects(connectKubeconfig({ path: p }), kompoxError((e) => {
      assert.equal(e.kind, 'auth');
      assert.match(e.message, /failed: AADSTS700082: refresh token expired/);
    }));
  });

  test('an exec credential plugin that works is used', async () => {
    const p = join(dir, 'execok');
    const out = JSON.stringify({ apiVersion: 'client.authentication.k8s.io/v1beta1', kind: 'ExecCredential', status: { token: 'fake-token' } });
    writeFileSync(
      p,
      kubeconfig(fake.url, `    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: ${process.execPath}\n      args: ['-e', 'process.stdout.write(${JSON.stringify(out).replace(/'/g, "''")})']`),
    );
    const kube = await connectKubeconfig({ path: p });
    assert.match((await kube.version()).gitVersion, /fake/);
  });
});

describe('apiError mapping', () => {
  test('a terminating namespace is a conflict, not a permission problem', async () => {
    const { apiError, KubeApiError } = await import('../../src/kube/errors.js');
    const e = apiError(
      new KubeApiError(403, { message: 'configmaps "x" is forbidden: unable to create new content in namespace ns because it is being terminated', reason: 'Forbidden', code: 403 }, 'PATCH', '/x'),
      'https://k',
      'apply of ConfigMap ns/x',
    );
    assert.equal(e.kind, 'conflict');
    assert.match(e.hint ?? '', /still being deleted/);
  });

  test('422 with one field cause names the field', async () => {
    const { apiError, KubeApiError } = await import('../../src/kube/errors.js');
    const e = apiError(
      new KubeApiError(422, { message: 'Deployment.apps "web" is invalid: spec.template.spec.containers[0].image: Required value', reason: 'Invalid', code: 422, details: { causes: [{ reason: 'FieldValueRequired', message: 'Required value', field: 'spec.template.spec.containers[0].image' }] } }, 'PATCH', '/x'),
      'https://k',
      'apply of Deployment ns/web',
    );
    assert.equal(e.kind, 'config');
    assert.equal(e.field, 'spec.template.spec.containers[0].image');
    assert.match(formatError(e), /apply of Deployment ns\/web was rejected by the API server: Deployment\.apps "web" is invalid/);
  });

  test('a field the server does not know (server-side apply 500 or 400, strict decoding 400) names the version and the field; never "retry later"', async () => {
    const { apiError, KubeApiError } = await import('../../src/kube/errors.js');
    const ssa = 'failed to create typed patch object (ns/web; apps/v1, Kind=Deployment): .spec.template.spec.initContainers[name="writer"].restartPolicy: field not declared in schema';
    for (const [code, message] of [
      [500, ssa],
      [400, ssa],
      [400, 'strict decoding error: unknown field "spec.template.spec.initContainers[0].restartPolicy"'],
    ] as const) {
      const e = apiError(new KubeApiError(code, { message, code }, 'PATCH', '/x'), 'https://k', 'apply of Deployment ns/web', { serverVersion: 'v1.27.16+k3s1' });
      const text = formatError(e);
      assert.equal(e.kind, 'config', text);
      assert.match(text, /^apply of Deployment ns\/web was rejected: the API server \(Kubernetes v1\.27\.16\+k3s1\) does not support \.spec\.template\.spec\.initContainers\[/);
      assert.match(text, /needs Kubernetes 1\.29 or later/);
      assert.doesNotMatch(text, /Retry later/);
    }
    const other = apiError(new KubeApiError(400, { message: 'failed to create typed patch object (ns/x; /v1, Kind=Service): .spec.topologyKeys: field not declared in schema', code: 400 }, 'PATCH', '/x'), 'https://k', 'apply of Service ns/x');
    assert.match(formatError(other), /the API server does not support \.spec\.topologyKeys\. The cluster runs a Kubernetes version that does not know this field/);
    // a 500 that is not about the schema stays a server problem
    const busy = apiError(new KubeApiError(500, { message: 'etcdserver: request timed out', code: 500 }, 'PATCH', '/x'), 'https://k', 'apply of Service ns/x');
    assert.equal(busy.kind, 'unavailable');
    assert.match(formatError(busy), /Retry later/);
  });
});
