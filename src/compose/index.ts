// Public API of the compose loader. The implementation lives in the modules of
// this folder; callers import from here only.
import type { Diagnostic, Location } from '../domain/errors.js';
import type { ComposeProject } from './model.js';

export type { ComposeProject } from './model.js';
export * from './model.js';

export interface ComposeLoadOptions {
  /** Project directory: relative paths, `.env` and env_file resolve against it. Absolute. */
  projectDir: string;
  /**
   * Compose files (absolute or relative to projectDir), merged in order.
   * When empty and no `content`, the default file (compose.yaml, compose.yml,
   * docker-compose.yaml, docker-compose.yml) plus its override file are used.
   */
  files?: string[];
  /** Inline compose text (kompoxops.yml inline `app.compose`, or the PaaS). Used instead of files. */
  content?: { text: string; filename: string };
  /** Overrides the project name (otherwise `name:` in the file, then COMPOSE_PROJECT_NAME, then the directory name). */
  projectName?: string;
  /** Environment for interpolation; defaults to process.env. The project `.env` fills what it does not define. */
  env?: Record<string, string | undefined>;
  /** Explicit `.env` file; default `{projectDir}/.env` when it exists. */
  envFile?: string;
  /** Active profiles (`--profile`); COMPOSE_PROFILES from env is added. */
  profiles?: string[];
  /**
   * File names in messages and `locate()` are relative to this directory when the
   * file is inside it (else absolute). Default: the current directory when the
   * file is inside it (like kompoxops.yml messages), else the project directory.
   */
  displayDir?: string;
}

export interface LoadedProject {
  project: ComposeProject;
  projectDir: string;
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
