// K3s driver entry (loaded lazily by providers/index.ts).
import type { Provider } from '../../domain/model.js';
import type { ProviderDriver } from '../driver.js';
import { K3sDriver } from './driver.js';

export { K3sDriver, tagMatchesApp } from './driver.js';
export { k3sSettings } from './settings.js';

export function createDriver(p: Provider): ProviderDriver {
  return new K3sDriver(p);
}
