// The set-up most Kubernetes tests share: the in-process fake API server and
// the real KubeClient adapter connected to it through its kubeconfig, so tests
// exercise the same HTTP path production uses.
import { connectKubeconfig, type KubeClient } from '../../src/kube/index.js';
import { startFakeKube, type FakeKube, type FakeKubeOptions } from './fake-kube/index.js';

export interface FakeCluster {
  fake: FakeKube;
  kube: KubeClient;
}

/** A fresh fake API server and a client connected to it; close with `fake.close()`. */
export async function startFakeCluster(opts: FakeKubeOptions = {}): Promise<FakeCluster> {
  const fake = await startFakeKube(opts);
  return { fake, kube: await connectKubeconfig({ path: fake.kubeconfigPath }) };
}

/**
 * Polls `probe` until it returns a value that is not undefined/false, as a
 * client of a real cluster must: controllers act asynchronously. Fails with
 * `what` and the last value seen when `timeoutMs` passes (generous: on a real
 * cluster pods start and stop in seconds). Not a timing assertion.
 */
export async function eventually<T>(probe: () => Promise<T | undefined | false> | T | undefined | false, what: string, opts: { timeoutMs?: number; pollMs?: number } = {}): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  let last: unknown;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v as T;
    last = v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, opts.pollMs ?? 20));
  }
}
