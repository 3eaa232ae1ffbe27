// The one place the CLI turns the shell into an AppSource: the app's project
// directory from kompoxops.yml (-C/-f), the process's environment for
// interpolation, the working directory for file names in messages and the home
// directory for `~`. Use cases only ever see the source.
import type { OpsConfig } from '../config/index.js';
import type { AppSource } from '../domain/source.js';

export async function cliAppSource(config: OpsConfig): Promise<AppSource> {
  const { appSource } = await import('../config/app-source.js');
  const { homedir } = await import('node:os');
  return appSource(config, { env: process.env, displayDir: process.cwd(), homeDir: homedir() });
}
