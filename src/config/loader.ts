import type { AppContext } from '../domain/model.js';
import type { FindOptions, OpsConfig } from './index.js';

export function findConfigPath(_o: FindOptions): string {
  throw new Error('not implemented yet');
}
export async function loadConfig(_path: string): Promise<OpsConfig> {
  throw new Error('not implemented yet');
}
/** findConfigPath + loadConfig */
export async function loadOpsConfig(o: FindOptions): Promise<OpsConfig> {
  return loadConfig(findConfigPath(o));
}
/** The app context, or a clear error when kompoxops.yml has no `app`. */
export function requireApp(_c: OpsConfig): AppContext {
  throw new Error('not implemented yet');
}
