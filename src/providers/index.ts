// Lazy driver registry: a driver's module (and its cloud SDK) is imported only
// when a command needs that driver.
import { KompoxError } from '../domain/errors.js';
import { DRIVERS, type DriverName, type Provider } from '../domain/model.js';
import type { ProviderDriver } from './driver.js';

export type { ProviderDriver } from './driver.js';

const loaders: Partial<Record<DriverName, () => Promise<{ createDriver(p: Provider): ProviderDriver }>>> = {
  k3s: () => import('./k3s/index.js'),
};

export async function loadDriver(provider: Provider): Promise<ProviderDriver> {
  if (!(DRIVERS as readonly string[]).includes(provider.driver)) {
    throw new KompoxError('config', `unknown provider driver "${provider.driver}"`, {
      field: 'provider.driver',
      hint: `Use one of: ${DRIVERS.join(', ')}.`,
    });
  }
  const load = loaders[provider.driver];
  if (!load) {
    throw new KompoxError('config', `the ${provider.driver} driver is not available in this version of Kompox`, {
      field: 'provider.driver',
      hint: `Drivers available now: ${Object.keys(loaders).join(', ')}.`,
    });
  }
  const mod = await load();
  return mod.createDriver(provider);
}
