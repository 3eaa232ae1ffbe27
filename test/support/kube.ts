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
