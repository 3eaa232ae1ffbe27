// AppSource adapters (the port is src/domain/source.ts).
export { directorySource, type DirectorySourceOptions } from './directory.js';
export { bundleSource, type BundleSourceOptions } from './bundle.js';
export { definedEnv } from './env.js';
