// The fake Kubernetes API server for tests (see server.ts). Usage:
//   const fake = await startFakeKube();
//   ... connect with fake.kubeconfigPath ...
//   await fake.close();
export { startFakeKube } from './server.js';
export type { FakeKube, FakeKubeOptions, ForbidRule, RequestRecord, ExecRequest, ExecResult } from './server.js';
export type { ResourceInfo } from './resources.js';
export { FakeStore } from './store.js';
export { FakeClock, type ClockOptions } from './clock.js';
export type { ContainerBehaviour, ContainerKind, BehaviourHook } from './controllers/kubelet.js';
export type { FakeNodeSpec } from './nodes.js';
export type { PrivateRegistry } from './controllers/kubelet-config.js';
export { SCHEMA_PROVENANCE } from './schema.js';
export type { CsiVolumeHost, HostExecSupport, Toolbox } from './host-exec.js';
export { hostExecSupport } from './host-exec.js';
