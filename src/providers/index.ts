// Lazy driver registry: a driver's module (and its cloud SDK) is imported
// only when a command needs that driver. The pure volume facts of every
// driver load separately and cheaply (no SDK), for `app validate`.
import { KompoxError } from '../domain/errors.js';
import { DRIVERS, type DriverName } from '../domain/model.js';
import type { DriverFactory, DriverHost, DriverVolumes, ProviderDriver } from '../domain/ports/driver.js';

const drivers: Partial<Record<DriverName, () => Promise<{ createDriver: DriverFactory }>>> = {
  k3s: () => import('./k3s/index.js'),
};

const volumeFacts: Record<DriverName, () => Promise<{ volumes: DriverVolumes }>> = {
  aks: () => import('./aks/volume.js'),
  eks: () => import('./eks/volume.js'),
  gke: () => import('./gke/volume.js'),
  oke: () => import('./oke/volume.js'),
  k3s: () => import('./k3s/volume.js'),
};

/**
 * Test seam: a driver a test process puts in place of a built-in one (e.g. an
 * in-memory reference driver, so the CLI and the composition root can be
 * tested end to end). Only code running in the process can set it; no
 * configuration file or setting reaches it. The pure volume facts
 * (loadDriverVolumes) stay the built-in ones.
 */
const overrides = new Map<DriverName, DriverFactory>();

/** Puts `factory` in place of the `name` driver for this process (undefined: the built-in one again). */
export function overrideDriverForTests(name: DriverName, factory: DriverFactory | undefined): void {
  if (factory) overrides.set(name, factory);
  else overrides.delete(name);
}

function checkDriverName(driver: string): DriverName {
  if (!(DRIVERS as readonly string[]).includes(driver)) {
    throw new KompoxError('config', `unknown provider driver "${driver}"`, {
      field: 'provider.driver',
      hint: `Use one of: ${DRIVERS.join(', ')}.`,
    });
  }
  return driver as DriverName;
}

export async function loadDriver(driver: string, host: DriverHost): Promise<ProviderDriver> {
  const name = checkDriverName(driver);
  const override = overrides.get(name);
  if (override) return override(host);
  const load = drivers[name];
  if (!load) {
    throw new KompoxError('config', `the ${name} driver is not available in this version of Kompox`, {
      code: 'driver.unavailable',
      field: 'provider.driver',
      hint: `Drivers available now: ${Object.keys(drivers).join(', ')}.`,
    });
  }
  return (await load()).createDriver(host);
}

/** The driver's pure volume facts (class, PV source), without loading the driver. */
export async function loadDriverVolumes(driver: string): Promise<DriverVolumes> {
  return (await volumeFacts[checkDriverName(driver)]()).volumes;
}
