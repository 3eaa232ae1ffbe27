// The config loader's CLI entry for app sources: the app of a kompoxops.yml as
// an AppSource over its project directory, with the variables of the shell the
// CLI was started from. The CLI passes the process's environment, working
// directory and home directory in; nothing here reads them.
import type { AppSource } from '../domain/source.js';
import { directorySource } from '../source/directory.js';
import type { OpsConfig } from './index.js';
import { requireApp } from './loader.js';

export interface ShellInputs {
  /** Variables for interpolation and `environment:` secrets/configs (the CLI: process.env). */
  env: Readonly<Record<string, string | undefined>>;
  /** File names in messages are relative to it when inside (the CLI: the working directory). */
  displayDir?: string;
  /** To expand `~` in bind sources, env_file and the like (the CLI: the user's home directory). */
  homeDir?: string;
}

/** The app's project directory (kompoxops.yml's directory for inline compose, else the compose file's), unsandboxed as docker compose is. */
export function appSource(config: OpsConfig, shell: ShellInputs): AppSource {
  const ctx = requireApp(config);
  const root = ctx.app.projectDir ?? config.dir;
  return directorySource(root, {
    env: shell.env,
    compose: config.appCompose,
    ...(shell.homeDir !== undefined ? { homeDir: shell.homeDir } : {}),
    ...(shell.displayDir !== undefined ? { displayDir: shell.displayDir } : {}),
  });
}
