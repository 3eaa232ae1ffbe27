// Stored secrets through the real binary against the fake API server with its
// controllers (issue 12): a private image fails to pull until the registry's
// credentials are stored, then the pod pulls with them (the fake's kubelet
// checks imagePullSecrets); environment overrides win over compose's
// `environment:` in the environment the kubelet builds; status and validate
// name the secrets; and no value ever appears in any output of any command
// involved (one list of outputs, grepped for every secret in every encoding).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { appNamespace } from '../../src/domain/names.js';
import { startFakeKube, type FakeKube } from '../support/fake-kube/index.js';
import { startTestRegistry, type TestRegistry } from '../support/registry.js';
import { eventually } from '../support/kube.js';
import { activePods, hostFs, kompoxops, step, writeProject, type Run } from './lifecycle-support.js';

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const ns = appNamespace({ service: { name: 'ops' }, provider: { name: 'k3s1', service: 'ops', driver: 'k3s', settings: {} }, app: { name: 'web' } as never });
const REGISTRY_PASSWORD = 'Rg-pw-71f3c9-never-printed';
const DB_PASSWORD = 'Db-pw-8e21aa-never-printed';
const API_TOKEN = 'tok_5d0c77b2_never_printed';
const b64 = (s: string) => Buffer.from(s).toString('base64');
/** Every form a secret could leak in: as is, base64 (Secret data), and the config.json `auth` field. */
const FORBIDDEN = [REGISTRY_PASSWORD, DB_PASSWORD, API_TOKEN, b64(REGISTRY_PASSWORD), b64(DB_PASSWORD), b64(API_TOKEN), b64(`robot:${REGISTRY_PASSWORD}`)];

describe('stored secrets (binary, fake API server with controllers, loopback registry)', () => {
  let fake: FakeKube;
  let reg: TestRegistry;
  let dir: string;
  const outputs: { args: string; out: string; err: string }[] = [];
  const run = async (args: string[], stdin?: string): Promise<Run> => {
    const r = await kompoxops(dir, args, stdin === undefined ? undefined : Buffer.from(stdin));
    outputs.push({ args: args.join(' '), out: r.out, err: r.err });
    return r;
  };
  const ok = (r: Run) => assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.out}\nstderr: ${r.err}`);
  const deployment = () => fake.store.get(fake.resource('apps/v1', 'Deployment')!, ns, 'web') as Any;

  before(async () => {
    reg = await startTestRegistry({ private: ['team/app'], username: 'robot', password: REGISTRY_PASSWORD });
    fake = await startFakeKube({ privateRegistries: [{ registry: reg.host, username: 'robot', password: REGISTRY_PASSWORD }] });
    dir = await mkdtemp(join(tmpdir(), 'kompox-secrets-cli-'));
    await writeProject(
      dir,
      { diskRoot: join(dir, 'disks'), snapshotRoot: join(dir, 'snapshots'), kubeconfig: fake.kubeconfigPath },
      `services:\n  web:\n    image: ${reg.host}/team/app:1\n    environment:\n      DB_PASSWORD: dev-password\n      APP_MODE: dev\n    ports: ["80:80"]\n    volumes: [data:/srv]\nvolumes:\n  data: {}\n`,
    );
    await writeFile(join(dir, 'config.json'), JSON.stringify({ auths: { [reg.host]: { auth: b64(`robot:${REGISTRY_PASSWORD}`) } }, credsStore: 'desktop' }));
    await writeFile(join(dir, 'prod.env'), `# production values, kept out of Git\nDB_PASSWORD='${DB_PASSWORD}'\nAPI_TOKEN=${API_TOKEN}\n`);
  });
  after(async () => {
    await fake?.close();
    await reg?.close();
    if (dir) await hostFs.rm(dir);
  });

  test('private image, pull credentials, environment overrides; no secret in any output', async () => {
    await step('without credentials the deploy warns before applying, and the pull fails', async () => {
      const r = await run(['app', 'deploy', '--timeout', '30s']);
      assert.equal(r.code, 1, r.err);
      assert.match(r.err, new RegExp(`warning: image ${reg.host}/team/app:1: registry ${reg.host} does not serve it without credentials, and none are stored for it: the pull will fail \\(ErrImagePull\\)`));
      assert.match(r.err, /ErrImagePull/);
    });

    await step('secret pull set: stores the credentials (names printed, never values)', async () => {
      const r = await run(['secret', 'pull', 'set', '-f', 'config.json']);
      ok(r);
      assert.equal(r.out, `stored registry credentials for ${reg.host} in Secret ${ns}/kompox-pull; the pods use them from the next app deploy\n`);
      const s = fake.store.get(fake.resource('v1', 'Secret')!, ns, 'kompox-pull') as Any;
      assert.equal(s.type, 'kubernetes.io/dockerconfigjson');
      // only the auths: the credential store setting of the machine is not stored
      assert.deepEqual(JSON.parse(Buffer.from(s.data['.dockerconfigjson'], 'base64').toString()), { auths: { [reg.host]: { auth: b64(`robot:${REGISTRY_PASSWORD}`) } } });
      ok(await run(['secret', 'pull', 'set', '-f', '-', '-o', 'json'], JSON.stringify({ auths: { [reg.host]: { auth: b64(`robot:${REGISTRY_PASSWORD}`) } } })));
      assert.deepEqual(JSON.parse(outputs.at(-1)!.out), { namespace: ns, secret: 'kompox-pull', changed: false, registries: [reg.host] });
    });

    await step('secret env set: the overrides of a service from a dotenv file', async () => {
      const r = await run(['secret', 'env', 'set', '-S', 'web', '-f', 'prod.env']);
      ok(r);
      assert.equal(r.out, `stored 2 environment overrides for service web (API_TOKEN, DB_PASSWORD) in Secret ${ns}/kompox-env-web; the pod uses them from the next app deploy\n`);
      const again = await run(['secret', 'env', 'set', '-S', 'web', '-f', 'prod.env']);
      ok(again);
      assert.match(again.out, /^unchanged: 2 environment overrides/);
    });

    await step('bad input: one paragraph naming file and line, never the text; nothing changed', async () => {
      await writeFile(join(dir, 'bad.json'), `{"auths": {"${reg.host}": {"auth": "${b64(`robot:${REGISTRY_PASSWORD}`)}"}} ${REGISTRY_PASSWORD}}`);
      const bad = await run(['secret', 'pull', 'set', '-f', 'bad.json']);
      assert.equal(bad.code, 2, bad.err);
      assert.match(bad.err, /^error: bad\.json(:\d+:\d+)?: is not valid JSON \(the content is not shown: it holds credentials\)\. /);
      await writeFile(join(dir, 'bad.env'), `GOOD=1\n${DB_PASSWORD}\n`);
      const badEnv = await run(['secret', 'env', 'set', '-S', 'web', '-f', 'bad.env']);
      assert.equal(badEnv.code, 1, badEnv.err);
      assert.match(badEnv.err, /^error: bad\.env:2: this line is not NAME=value \(its text is not shown: the file holds secrets\)\. Write one NAME=value per line\.\n$/);
      const noService = await run(['secret', 'env', 'set', '-S', 'wbe', '-f', 'prod.env']);
      assert.equal(noService.code, 1);
      assert.equal(noService.err, 'error: service "wbe" is not defined in the compose project. Name the service with -S: web.\n');
      assert.ok(!fake.store.get(fake.resource('v1', 'Secret')!, ns, 'kompox-env-wbe'));
    });

    await step('deploy: the pod pulls with the credentials, the overrides win over compose', async () => {
      const r = await run(['app', 'deploy', '--timeout', '30s']);
      ok(r);
      assert.doesNotMatch(r.err, /warning: image/);
      const spec = deployment().spec.template.spec;
      assert.deepEqual(spec.imagePullSecrets, [{ name: 'kompox-pull' }]);
      assert.deepEqual(spec.containers[0].envFrom, [{ secretRef: { name: 'kompox-env-web' } }]);
      assert.deepEqual(spec.containers[0].env, [{ name: 'APP_MODE', value: 'dev' }]);
      const pod = await eventually(() => activePods(fake, ns).find((p) => p.status?.phase === 'Running'), 'the app pod to run');
      assert.deepEqual(fake.containerEnv(ns, pod.metadata.name, 'web'), { API_TOKEN, DB_PASSWORD, APP_MODE: 'dev' });
      ok(await run(['app', 'deploy', '--dry-run']));
    });

    await step('status and list name the secrets, never values', async () => {
      const table = await run(['app', 'status']);
      ok(table);
      assert.match(table.out, new RegExp(`registry credentials: ${reg.host.replace(/\./g, '\\.')} \\(Secret kompox-pull\\)\\n`));
      assert.match(table.out, /env overrides: web: API_TOKEN, DB_PASSWORD \(Secret kompox-env-web\)\n/);
      const json = await run(['app', 'status', '-o', 'json']);
      ok(json);
      assert.deepEqual(JSON.parse(json.out).secrets, { pull: { secret: 'kompox-pull', registries: [reg.host] }, env: [{ service: 'web', secret: 'kompox-env-web', keys: ['API_TOKEN', 'DB_PASSWORD'] }] });
      ok(await run(['app', 'status', '-o', 'yaml']));
      const list = await run(['secret', 'list']);
      ok(list);
      assert.match(list.out, /^KIND +SECRET +REGISTRIES \/ VARIABLES\npull +kompox-pull +127\.0\.0\.1:\d+\nenv +kompox-env-web +web: API_TOKEN, DB_PASSWORD\n$/);
      ok(await run(['secret', 'list', '-o', 'yaml']));
    });

    await step('validate: the manifest references the stored secrets (read from the cluster when asked), values nowhere', async () => {
      const offline = await run(['app', 'validate', '--out-manifest', '-']);
      ok(offline);
      assert.doesNotMatch(offline.out, /kompox-env-web|imagePullSecrets/);
      const withRefs = await run(['app', 'validate', '--out-manifest', '-', '--stored-secrets']);
      ok(withRefs);
      assert.match(withRefs.out, /imagePullSecrets:\n +- name: kompox-pull\n/);
      assert.match(withRefs.out, /envFrom:\n +- secretRef:\n +name: kompox-env-web\n/);
      assert.doesNotMatch(withRefs.out, /name: DB_PASSWORD/);
      ok(await run(['app', 'validate', '--stored-secrets', '-o', 'json']));
    });

    await step('the box pulls with the stored credentials too', async () => {
      fake.onExec(() => ({ stdout: 'hello from the box\n', exitCode: 0 }));
      const r = await run(['box', 'exec', '--', 'ls', '/data']);
      ok(r);
      assert.equal(r.out, 'hello from the box\n');
    });

    await step('delete: the references go with the next deploy, the compose value applies again', async () => {
      ok(await run(['secret', 'env', 'delete', '-S', 'web']));
      // --debug too: debug details must not carry values either
      ok(await run(['--debug', 'app', 'deploy', '--timeout', '30s']));
      const spec = deployment().spec.template.spec;
      assert.equal(spec.containers[0].envFrom, undefined);
      assert.deepEqual(spec.imagePullSecrets, [{ name: 'kompox-pull' }]);
      const pod = await eventually(() => activePods(fake, ns).find((p) => p.status?.phase === 'Running' && !p.spec.containers[0].envFrom), 'the redeployed pod to run');
      assert.deepEqual(fake.containerEnv(ns, pod.metadata.name, 'web'), { DB_PASSWORD: 'dev-password', APP_MODE: 'dev' });
      ok(await run(['secret', 'pull', 'delete']));
      const noCreds = await run(['app', 'deploy', '--no-wait']);
      ok(noCreds);
      assert.match(noCreds.err, /warning: image .*: registry .* does not serve it without credentials, and none are stored for it/);
      assert.equal(deployment().spec.template.spec.imagePullSecrets, undefined);
      const again = await run(['secret', 'pull', 'delete']);
      ok(again);
      assert.equal(again.out, 'no registry credentials are stored for app web\n');
      assert.deepEqual(JSON.parse((await run(['secret', 'list', '-o', 'json'])).out), { env: [] });
    });

    await step('app destroy keeps the stored secrets (user data, like disks) and removes a box with the app', async () => {
      ok(await run(['secret', 'pull', 'set', '-f', 'config.json']));
      ok(await run(['secret', 'env', 'set', '-S', 'web', '-f', 'prod.env']));
      ok(await run(['box', 'deploy']));
      const d = await run(['app', 'destroy', '--yes']);
      ok(d);
      assert.match(d.err, /kept Secret\/\S+\/kompox-pull: stored for the app/);
      assert.match(d.err, /kept Secret\/\S+\/kompox-env-web: stored for the app/);
      const secrets = fake.resource('v1', 'Secret')!;
      assert.ok(fake.store.get(secrets, ns, 'kompox-pull') && fake.store.get(secrets, ns, 'kompox-env-web'));
      await eventually(() => !fake.store.get(fake.resource('v1', 'Pod')!, ns, 'kompox-box'), 'the box pod to be gone');
      assert.equal((fake.store.get(fake.resource('v1', 'Namespace')!, undefined, ns) as Any).metadata.annotations?.['kompox.dev/box'], undefined);
      assert.equal(fake.store.get(fake.resource('apps/v1', 'Deployment')!, ns, 'web'), undefined);
    });

    await step('no secret appears in any output of any command', async () => {
      assert.ok(outputs.length >= 20, `${outputs.length} commands ran`);
      for (const o of outputs) {
        for (const s of FORBIDDEN) {
          assert.ok(!o.out.includes(s) && !o.err.includes(s), `kompoxops ${o.args} printed a secret (${s.slice(0, 6)}…)`);
        }
      }
    });
  });
});
