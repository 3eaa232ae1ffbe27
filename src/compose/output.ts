import type { ComposeProject } from './model.js';

export function projectToYaml(_p: ComposeProject): string {
  throw new Error('not implemented yet');
}
