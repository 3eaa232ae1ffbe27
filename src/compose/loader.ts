import type { ComposeLoadOptions, LoadedProject } from './index.js';

export async function loadCompose(_opts: ComposeLoadOptions): Promise<LoadedProject> {
  throw new Error('compose loader: not implemented yet');
}
