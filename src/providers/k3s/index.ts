import type { Provider } from '../../domain/model.js';
import type { ProviderDriver } from '../driver.js';

export function createDriver(_p: Provider): ProviderDriver {
  throw new Error('k3s driver: not implemented yet');
}
