// Public API of the compose loader. The implementation lives in the modules of
// this folder; callers import from here only.
import type { Diagnostic, Location } from '../domain/errors.js';
import type { AppSource } from '../domain/source.js';
import type { ComposeProject } from './model.js';

export type { ComposeProject } from './model.js';
export * from './model.js';

export interface ComposeLoadOptions {
  /**
   * Everything the project may read: the compose text or files (source.compose;
   * undefined: COMPOSE_FILE, else the default file compose.yaml, compose.yml,
   * docker-compose.yml, docker-compose.yaml plus its override file), the project
   * directory (source.root: relative paths, `.env` and env_file resolve against it),
   * and the variables for interpolation (source.env; the project `.env` fills what
   * they do not define). Nothing else is read: no process environment, no file
   * outside what the source gives.
   */
  source: AppSource;
  /** Overrides the project name (otherwise `name:` in the file, then COMPOSE_PROJECT_NAME, then the directory name). */
  projectName?: string;
  /** Explicit `.env` file (relative to the project directory); default `.env` there when it exists. */
  envFile?: string;
  /** Active profiles (`--profile`); COMPOSE_PROFILES from the environment is added. */
  profiles?: string[];
  /**
   * File names in messages and `locate()` are relative to this directory when the
   * file is inside it (else absolute). Default: source.displayDir when the file is
   * inside it (the CLI's working directory, like kompoxops.yml messages), else the project directory.
   */
  displayDir?: string;
}

export interface LoadedProject {
  project: ComposeProject;
  /** source.root */
  projectDir: string;
  /** What the project was read from: file facts for the converter are read through the same source. */
  source: AppSource;
  /** The files that were read, in merge order (absolute). */
  files: string[];
  warnings: Diagnostic[];
  /** Source position of a path in the model, e.g. ['services', 'web', 'ports', 0]. */
  locate(path: ReadonlyArray<string | number>): Location | undefined;
  /** Per service: environment keys whose effective value came from an env_file (not overridden by `environment`). */
  envFromFile: Record<string, string[]>;
}

export { loadCompose } from './loader.js';
export { projectToYaml } from './output.js';
// Additive helpers for other modules (kompoxops.yml loader, PaaS).
export { normalizeProjectName } from './finalize.js';
export { DEFAULT_FILES as DEFAULT_COMPOSE_FILES, DEFAULT_OVERRIDE_FILES as DEFAULT_COMPOSE_OVERRIDE_FILES } from './loader.js';
