// Test helpers: a compose project loaded from a directory the way a front end
// would hand it over (a directory AppSource), with the options tests used to
// pass to the loader (env, files, inline content, home directory).
import { homedir } from 'node:os';
import { loadCompose, type ComposeLoadOptions, type LoadedProject } from '../../src/compose/index.js';
import { directorySource } from '../../src/source/index.js';

export interface DirLoadOptions extends Omit<ComposeLoadOptions, 'source'> {
  /** Variables of the source; default none. */
  env?: Record<string, string | undefined>;
  files?: string[];
  content?: { text: string; filename: string };
  /** Default: the test user's home directory (as the CLI passes it). */
  homeDir?: string;
  sandboxed?: boolean;
}

export function loadDir(dir: string, opts: DirLoadOptions = {}): Promise<LoadedProject> {
  const { env, files, content, homeDir, sandboxed, ...rest } = opts;
  const source = directorySource(dir, {
    env: env ?? {},
    compose: content ?? (files ? { files } : undefined),
    homeDir: homeDir ?? homedir(),
    sandboxed: sandboxed ?? false,
  });
  return loadCompose({ source, ...rest });
}
