// Public API of the kompoxops.yml loader.
import type { Location } from '../domain/errors.js';
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
  appConfigLocator,
  displayPath,
  findConfigPath,
  inlineComposeSource,
  loadConfig,
  loadOpsConfig,
  requireApp,
  type ComposeSource,
} from './loader.js';
export type { AppContext };
