// K3s driver entry (loaded lazily by providers/index.ts).
import type { DriverHost, ProviderDriver } from '../../domain/ports/driver.js';
import { K3sDriver } from './driver.js';

export { K3sDriver, tagMatchesApp } from './driver.js';
export { k3sSettings } from './settings.js';
export { volumes } from './volume.js';

export function createDriver(host: DriverHost): ProviderDriver {
  return new K3sDriver(host);
}
