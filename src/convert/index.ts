// Public API of the compose → Kubernetes converter (pure). The use case
// buildAppManifest (src/usecases/app-manifest.ts) gathers the file facts and calls it.
export { convertApp, ANN_CONFIG_HASH } from './convert.js';
export { INIT_IMAGE, INIT_CONTAINER } from './init-container.js';
export { SIDECARS_SETTING, type ServiceRole } from './startup-order.js';
export { SERVICE_KEY_POLICY, type KeyPolicy, type PolicyAction } from './policy.js';
export { NON_HTTP_TCP_PORTS } from './network.js';
export { ANN_PLACEHOLDER, appVolumes } from './storage.js';
export { classifyBind } from './volumes.js';
export type { ConvertFacts, ConvertInput, ConvertResult, FileFact, VolumeInput } from './types.js';
