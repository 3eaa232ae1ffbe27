// execStream (binary exec with backpressure, stdin EOF, exit status, cancel)
// through the real adapter against the fake API server, whose kubelet runs
// the commands of busybox pods for real, with their volumes mounted
// (test/support/fake-kube/host-exec.ts).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { randomBytes, createHash } from 'node:crypto';
import { chmod, chown, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { isReleasable, markReleasable } from '../../src/archive/memory.js';
import { KompoxError } from '../../src/domain/errors.js';
import type { KubeClient } from '../../src/kube/index.js';
import type { FakeKube } from '../support/fake-kube/index.js';
import { hostExecSupport } from '../support/fake-kube/index.js';
import { BUSYBOX } from '../support/fake-kube/host-exec.js';
import { eventually, startFakeCluster } from '../support/kube.js';

const NS = 'xfer';
const IMAGE = 'docker.io/library/busybox:1.37.0';
const namespaceOnly = hostExecSupport().mode === 'namespace' ? undefined : `commands run by path mapping here (${hostExecSupport().reason}): read-only mounts and capabilities are not enforced`;

function sink(): { stream: PassThrough; bytes(): Buffer } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { stream, bytes: () => Buffer.concat(chunks) };
}

/** A pod mounting `dir` (a hostPath PV) at /data, read-only when asked. */
async function startPod(kube: KubeClient, name: string, dir: string, opts: { readOnly?: boolean; securityContext?: Record<string, unknown> } = {}): Promise<void> {
  await kube.apply({
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name: `pv-${name}` },
    spec: {
      capacity: { storage: '1Gi' },
      accessModes: ['ReadWriteOnce'],
      persistentVolumeReclaimPolicy: 'Retain',
      storageClassName: 'manual',
      hostPath: { path: dir },
      claimRef: { namespace: NS, name: `pvc-${name}` },
    },
  });
  await kube.apply({
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: { name: `pvc-${name}`, namespace: NS },
    spec: { accessModes: ['ReadWriteOnce'], storageClassName: 'manual', volumeName: `pv-${name}`, resources: { requests: { storage: '1Gi' } } },
  });
  await kube.apply({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: NS },
    spec: {
      restartPolicy: 'Never',
      containers: [
        {
          name: 'helper',
          image: IMAGE,
          command: ['sleep', '3600'],
          volumeMounts: [{ name: 'd', mountPath: '/data', ...(opts.readOnly ? { readOnly: true } : {}) }],
          ...(opts.securityContext ? { securityContext: opts.securityContext } : {}),
        },
      ],
      volumes: [{ name: 'd', persistentVolumeClaim: { claimName: `pvc-${name}` } }],
    },
  });
  await eventually(async () => {
    const pod = await kube.get({ apiVersion: 'v1', kind: 'Pod', name, namespace: NS });
    return (pod?.status as { phase?: string } | undefined)?.phase === 'Running';
  }, `pod ${name} running`);
}

describe('execStream against the fake kubelet running busybox pods for real', () => {
  let fake: FakeKube;
  let kube: KubeClient;
  let dir: string;
  before(async () => {
    ({ fake, kube } = await startFakeCluster());
    await kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
    dir = await mkdtemp(join(tmpdir(), 'exec-stream-'));
  });
  after(async () => {
    await fake?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('binary stdin reaches the command up to EOF, stdout comes back byte for byte, exit codes are reported', async () => {
    const d = await mkdtemp(join(dir, 'rw-'));
    await startPod(kube, 'rw', d);
    const data = randomBytes(6 * 1024 * 1024 + 123);
    const r = await kube.execStream(NS, 'rw', 'helper', ['sh', '-c', 'cat > /data/blob && sha256sum < /data/blob'], { stdin: Readable.from([data.subarray(0, 1000), data.subarray(1000)]), stdout: sink().stream });
    assert.equal(r.exitCode, 0);
    assert.ok((await readFile(join(d, 'blob'))).equals(data));
    const out = sink();
    assert.deepEqual(await kube.execStream(NS, 'rw', 'helper', ['cat', '/data/blob'], { stdout: out.stream }), { exitCode: 0 });
    assert.equal(createHash('sha256').update(out.bytes()).digest('hex'), createHash('sha256').update(data).digest('hex'));
    const err = sink();
    assert.equal((await kube.execStream(NS, 'rw', 'helper', ['sh', '-c', 'echo oops >&2; exit 3'], { stderr: err.stream })).exitCode, 3);
    assert.equal(err.bytes().toString(), 'oops\n');
  });

  test('over plain HTTP what the client sends is masked with random keys (RFC 6455)', async () => {
    const d = await mkdtemp(join(dir, 'mask-'));
    await startPod(kube, 'mask', d);
    const before = { ...fake.wsMasks };
    const data = randomBytes(1024 * 1024);
    assert.equal((await kube.execStream(NS, 'mask', 'helper', ['sh', '-c', 'cat > /data/blob'], { stdin: Readable.from([data]) })).exitCode, 0);
    assert.ok((await readFile(join(d, 'blob'))).equals(data));
    assert.ok(fake.wsMasks.other - before.other >= 4, `random keys: ${JSON.stringify(fake.wsMasks)}`);
    assert.equal(fake.wsMasks.zero, before.zero);
    assert.equal(fake.wsMasks.unmasked, 0);
  });

  test('input the command reads slowly: its exit status arrives once it exits, not after a close timeout', async () => {
    // The fake pauses the WebSocket while the command's stdin is full; once stdin is ended no 'drain' comes, and
    // a socket left paused cannot read the client's answer to the closing handshake (ws waits 30 s, then drops it).
    const d = await mkdtemp(join(dir, 'slowin-'));
    await startPod(kube, 'slowin', d);
    const data = randomBytes(8 * 1024 * 1024);
    const started = Date.now();
    const r = await kube.execStream(NS, 'slowin', 'helper', ['sh', '-c', 'sleep 1; cat > /data/blob'], { stdin: Readable.from([data]) });
    assert.equal(r.exitCode, 0);
    assert.ok((await readFile(join(d, 'blob'))).equals(data));
    const took = Date.now() - started;
    assert.ok(took < 20_000, `the exit status took ${took} ms (the WebSocket's close timeout is 30 s)`);
  });

  test('a slow reader holds the command back instead of piling up memory', async () => {
    const d = await mkdtemp(join(dir, 'slow-'));
    await writeFile(join(d, 'big'), randomBytes(24 * 1024 * 1024));
    await startPod(kube, 'slow', d);
    let received = 0;
    let maxBacklog = 0;
    // a reader that takes one chunk per tick with a small buffer: the adapter must pause the socket
    const slow = new Writable({
      highWaterMark: 64 * 1024,
      write(chunk: Buffer, _enc, cb) {
        received += chunk.length;
        maxBacklog = Math.max(maxBacklog, this.writableLength);
        setImmediate(cb);
      },
    });
    const r = await kube.execStream(NS, 'slow', 'helper', ['cat', '/data/big'], { stdout: slow });
    assert.equal(r.exitCode, 0);
    assert.equal(received, 24 * 1024 * 1024);
    // without backpressure the whole file would queue up in the writable
    assert.ok(maxBacklog < 16 * 1024 * 1024, `backlog grew to ${maxBacklog} bytes`);
  });

  test('the signal ends the stream at once: interrupted, and the command is stopped', async () => {
    const d = await mkdtemp(join(dir, 'cancel-'));
    await startPod(kube, 'cancel', d);
    const ac = new AbortController();
    const out = new PassThrough();
    out.once('data', () => ac.abort());
    const p = kube.execStream(NS, 'cancel', 'helper', ['sh', '-c', 'echo started; exec sleep 600'], { stdout: out }, { signal: ac.signal });
    await assert.rejects(p, (e: unknown) => e instanceof KompoxError && e.kind === 'interrupted');
    const rec = await eventually(() => fake.hostExecs.find((x) => x.pod === 'cancel' && x.exitCode !== undefined), 'the command to be stopped');
    assert.notEqual(rec.exitCode, 0);
  });

  test('a pod deleted while a command runs in it: the runtime kills the command with its container, and the stream ends with exit 137', async () => {
    const d = await mkdtemp(join(dir, 'deleted-'));
    await startPod(kube, 'deleted', d);
    const out = new PassThrough();
    const started = new Promise<void>((resolve) => out.once('data', () => resolve()));
    const p = kube.execStream(NS, 'deleted', 'helper', ['sh', '-c', 'echo started; exec sleep 600'], { stdout: out });
    await started;
    await kube.delete({ apiVersion: 'v1', kind: 'Pod', name: 'deleted', namespace: NS });
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('the command outlived its pod by 30 s')), 30_000)))]).finally(() => clearTimeout(timer));
    assert.equal(r.exitCode, 137);
    const rec = fake.hostExecs.find((x) => x.pod === 'deleted');
    assert.equal(rec?.exitCode, 137);
  });

  test('a container that is not running cannot be exec\'d into (the kubelet says so)', async () => {
    await kube.apply({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'unscheduled', namespace: NS }, spec: { nodeSelector: { 'no-such-label': 'x' }, containers: [{ name: 'helper', image: IMAGE }] } });
    const r = await kube.execStream(NS, 'unscheduled', 'helper', ['true'], {});
    assert.equal(r.exitCode, 1);
    assert.match(r.message ?? '', /container not found \("helper"\)/);
  });

  test('busybox tools stand in for the image when busybox is installed; read-only mounts refuse writes', { skip: namespaceOnly }, async () => {
    const d = await mkdtemp(join(dir, 'ro-'));
    await writeFile(join(d, 'keep'), 'x');
    await startPod(kube, 'ro', d, { readOnly: true });
    const out = sink();
    const r = await kube.execStream(NS, 'ro', 'helper', ['sh', '-c', 'ls -l /bin/tar; touch /data/new'], { stdout: out.stream, stderr: out.stream });
    assert.notEqual(r.exitCode, 0);
    assert.match(out.bytes().toString(), /Read-only file system/);
    // busybox's applets stand in only when busybox is installed (.ci/run installs it); otherwise the host's tar answers
    if (fake.hostExec.mode === 'namespace' && existsSync(BUSYBOX)) assert.match(out.bytes().toString(), /busybox/);
    assert.deepEqual((await import('node:fs')).readdirSync(d), ['keep']);
  });

  test('the container keeps only the capabilities its securityContext leaves it', { skip: namespaceOnly }, async () => {
    const d = await mkdtemp(join(dir, 'caps-'));
    await writeFile(join(d, 'private'), 'secret');
    await chown(join(d, 'private'), 1234, 1234);
    await chmod(join(d, 'private'), 0o600);
    const base = { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } };
    await startPod(kube, 'nocaps', d, { readOnly: true, securityContext: base });
    await startPod(kube, 'dacread', d, { readOnly: true, securityContext: { ...base, capabilities: { drop: ['ALL'], add: ['DAC_OVERRIDE'] } } });
    const denied = sink();
    assert.notEqual((await kube.execStream(NS, 'nocaps', 'helper', ['cat', '/data/private'], { stdout: denied.stream, stderr: denied.stream })).exitCode, 0);
    assert.match(denied.bytes().toString(), /Permission denied/);
    const ok = sink();
    assert.equal((await kube.execStream(NS, 'dacread', 'helper', ['cat', '/data/private'], { stdout: ok.stream })).exitCode, 0);
    assert.equal(ok.bytes().toString(), 'secret');
  });
});

describe('execStream over TLS (wss)', () => {
  let fake: FakeKube;
  let kube: KubeClient;
  let dir: string;
  before(async () => {
    ({ fake, kube } = await startFakeCluster({ tls: true }));
    await kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
    dir = await mkdtemp(join(tmpdir(), 'exec-stream-tls-'));
  });
  after(async () => {
    await fake?.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('what the client sends goes with a zero masking key (no masked copy of every byte), and arrives intact', async () => {
    if (!fake.url.startsWith('https:')) throw new Error(`the fake is not serving TLS: ${fake.url}`);
    const d = await mkdtemp(join(dir, 'rw-'));
    await startPod(kube, 'rw', d);
    const data = randomBytes(3 * 1024 * 1024 + 7);
    const out = sink();
    const r = await kube.execStream(NS, 'rw', 'helper', ['sh', '-c', 'cat > /data/blob && sha256sum < /data/blob'], { stdin: Readable.from([data]), stdout: out.stream });
    assert.equal(r.exitCode, 0);
    assert.ok((await readFile(join(d, 'blob'))).equals(data));
    assert.equal(out.bytes().toString().split(' ')[0], createHash('sha256').update(data).digest('hex'));
    // 3 MiB in frames of at most 256 KiB: at least 12 of them, every one unmasked in effect
    assert.ok(fake.wsMasks.zero >= 12, `zero keys: ${JSON.stringify(fake.wsMasks)}`);
    assert.equal(fake.wsMasks.other, 0);
    assert.equal(fake.wsMasks.unmasked, 0);
  });

  test('stdin chunks handed over (markReleasable) are freed once in frames, others left alone; stdout messages that are all of their memory are handed over to the reader', async () => {
    const d = await mkdtemp(join(dir, 'rw-'));
    await startPod(kube, 'hand', d);
    const data = randomBytes(6 * 300 * 1024 + 5);
    const chunks: Buffer[] = [];
    for (let at = 0; at < data.length; at += 300 * 1024) {
      const c = Buffer.from(new ArrayBuffer(Math.min(300 * 1024, data.length - at)));
      data.copy(c, 0, at, at + c.length);
      chunks.push(c);
    }
    for (const c of chunks.slice(0, -2)) markReleasable(c);
    const r = await kube.execStream(NS, 'hand', 'helper', ['sh', '-c', 'cat > /data/blob'], { stdin: Readable.from(chunks) });
    assert.equal(r.exitCode, 0);
    assert.ok((await readFile(join(d, 'blob'))).equals(data), 'every byte arrived');
    assert.ok(chunks.slice(0, -2).every((c) => c.length === 0), 'the handed-over chunks were freed');
    assert.equal(chunks[chunks.length - 2]!.length, 300 * 1024, 'the others are left alone');

    let handed = 0;
    let total = 0;
    const out = new Writable({
      write(c: Buffer, _enc, cb) {
        total += c.length;
        if (isReleasable(c)) handed += c.length;
        cb();
      },
    });
    assert.equal((await kube.execStream(NS, 'hand', 'helper', ['cat', '/data/blob'], { stdout: out })).exitCode, 0);
    assert.equal(total, data.length);
    assert.ok(handed > total / 2, `most of stdout handed over: ${handed} of ${total}`);
  });
});
