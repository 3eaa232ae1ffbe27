// What a front end knows about the machine it runs on, handed down
// explicitly: nothing below the composition root reads process.env,
// process.cwd() or the home directory itself.
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';

export interface HostEnv {
  /** Environment variables (the CLI: the shell's; a server: only what it chooses to pass). */
  env: Readonly<Record<string, string | undefined>>;
  /** Working directory (relative paths on the command line). */
  cwd: string;
  /** Home directory, for `~` in paths; absent: `~` is not available. */
  homeDir?: string;
}

/** The CLI's host: this process's environment, working and home directory. */
export function processHost(): HostEnv {
  return { env: process.env, cwd: process.cwd(), homeDir: homedir() };
}

/** `~` and `~/x` expand to the home directory; other relative paths resolve against `baseDir`. */
export function expandUserPath(p: string, baseDir: string, homeDir: string | undefined): string {
  if ((p === '~' || p.startsWith('~/')) && homeDir) return p === '~' ? homeDir : join(homeDir, p.slice(2));
  return isAbsolute(p) ? p : resolve(baseDir, p);
}

/** Like kubectl: $KUBECONFIG's first entry, else ~/.kube/config. */
export function defaultKubeconfigPath(host: Pick<HostEnv, 'env' | 'homeDir'>): string | undefined {
  const env = host.env.KUBECONFIG;
  if (env) return env.split(process.platform === 'win32' ? ';' : ':').filter(Boolean)[0];
  return host.homeDir ? join(host.homeDir, '.kube', 'config') : undefined;
}
