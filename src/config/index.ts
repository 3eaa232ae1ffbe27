// Public API of the kompoxops.yml loader.
import type { KompoxError, Location } from '../domain/errors.js';
import type { ComposeInput } from '../domain/source.js';
import type { App, AppContext, Cluster, Provider, Service } from '../domain/model.js';

/** kompoxops.yml, loaded and validated, as domain objects. */
export interface OpsConfig {
  /** Absolute path of the kompoxops.yml that was read. */
  path: string;
  /** Its directory: relative paths in it resolve against this. */
  dir: string;
  service: Service;
  provider: Provider;
  cluster: Cluster;
  /** Absent when the file configures a cluster only. */
  app?: App;
  /**
   * The app's compose as kompoxops.yml gives it: a file (absolute path), or the
   * inline text padded so that line:column in compose errors are positions in
   * kompoxops.yml (`filename` is kompoxops.yml). Set with `app`.
   */
  appCompose?: ComposeInput;
  /** Why the app cannot be used yet (its compose file cannot be read): app commands get it from requireApp. */
  appError?: KompoxError;
  /** Source position of a field path, e.g. ['app', 'volumes', 0, 'size']. */
  locate(path: ReadonlyArray<string | number>): Location | undefined;
}

export interface FindOptions {
  /** `-C DIR`: run as if started there. */
  chdir?: string;
  /** `-f FILE`: this kompoxops.yml (relative to chdir/cwd). */
  file?: string;
  /** The front end's working directory: -C, -f and messages are relative to it. */
  cwd: string;
}

export {
  CONFIG_FILE_NAMES,
  displayPath,
  findConfigPath,
  loadConfig,
  loadOpsConfig,
  requireApp,
} from './loader.js';
export { appSource, type ShellInputs } from './app-source.js';
export type { AppContext };
