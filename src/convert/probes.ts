// healthcheck → probes. Docker only marks a container unhealthy; Kubernetes
// acts on probes, so: readinessProbe (traffic only when healthy, like
// depends_on: service_healthy) and livenessProbe (restart after `retries`
// failures). start_period → startupProbe: liveness is held off until the first
// success, which is what Docker's start period means (failures don't count yet).
// A sidecar another service waits for with service_healthy always gets a
// startupProbe: Kubernetes starts the next container only once it succeeds.
import type { Healthcheck } from '../compose/model.js';
import type { Diagnostics } from './diagnostics.js';
import { parseDuration, wholeSeconds } from './units.js';

export interface Probes {
  readinessProbe?: Record<string, unknown>;
  livenessProbe?: Record<string, unknown>;
  startupProbe?: Record<string, unknown>;
}

const DEFAULT_INTERVAL = 30;
const DEFAULT_TIMEOUT = 30;
const DEFAULT_RETRIES = 3;
const DEFAULT_START_INTERVAL = 5;

function durationField(hc: Healthcheck, key: 'interval' | 'timeout' | 'start_period' | 'start_interval', service: string, diags: Diagnostics): number | undefined {
  const v = hc[key];
  if (v === undefined) return undefined;
  const s = parseDuration(v);
  if (s === undefined) {
    diags.error({
      service, key: 'healthcheck', path: ['services', service, 'healthcheck', key],
      message: `service "${service}": healthcheck.${key} "${v}" is not a duration`, hint: 'Write e.g. 30s, 1m30s or 500ms.',
    });
  }
  return s;
}

/**
 * @param opts.gate the service is a sidecar others wait for to be healthy: its startupProbe is the
 *   health gate (period start_interval when given else interval; failures cover start_period + retries × interval).
 */
export function convertHealthcheck(service: string, hc: Healthcheck | undefined, diags: Diagnostics, opts: { gate?: boolean } = {}): Probes {
  if (!hc || hc.disable) return {};
  let test: string[] | undefined = typeof (hc.test as unknown) === 'string' ? ['CMD-SHELL', hc.test as unknown as string] : hc.test;
  if (test && test[0] === 'NONE') return {};
  if (!test || test.length === 0) {
    diags.warn({
      service, key: 'healthcheck',
      message: `service "${service}": healthcheck has no test; the image's own HEALTHCHECK is not visible to Kubernetes, so no probe is set`,
      hint: 'Add test: ["CMD", ...] to get probes.',
    });
    return {};
  }
  let command: string[];
  if (test[0] === 'CMD') command = test.slice(1);
  else if (test[0] === 'CMD-SHELL') command = ['/bin/sh', '-c', test.slice(1).join(' ')];
  else command = ['/bin/sh', '-c', test.join(' ')];
  if (command.length === 0) {
    diags.error({ service, key: 'healthcheck', message: `service "${service}": healthcheck test has no command`, hint: 'Write test: ["CMD", "curl", "-f", "http://localhost"].' });
    return {};
  }
  const interval = durationField(hc, 'interval', service, diags) ?? DEFAULT_INTERVAL;
  const timeout = durationField(hc, 'timeout', service, diags) ?? DEFAULT_TIMEOUT;
  const startPeriod = durationField(hc, 'start_period', service, diags);
  const startInterval = durationField(hc, 'start_interval', service, diags) ?? DEFAULT_START_INTERVAL;
  const retries = hc.retries ?? DEFAULT_RETRIES;
  const base = {
    exec: { command },
    periodSeconds: wholeSeconds(interval),
    timeoutSeconds: wholeSeconds(timeout),
    failureThreshold: Math.max(1, retries),
  };
  const probes: Probes = { readinessProbe: { ...base }, livenessProbe: { ...base } };
  if (opts.gate) {
    const period = hc.start_interval !== undefined ? startInterval : interval;
    const cover = (startPeriod ?? 0) + Math.max(1, retries) * interval;
    probes.startupProbe = {
      exec: { command },
      periodSeconds: wholeSeconds(period),
      timeoutSeconds: wholeSeconds(timeout),
      failureThreshold: Math.max(1, Math.ceil(cover / wholeSeconds(period))),
    };
  } else if (startPeriod !== undefined && startPeriod > 0) {
    const period = wholeSeconds(startInterval);
    probes.startupProbe = {
      exec: { command },
      periodSeconds: period,
      timeoutSeconds: wholeSeconds(timeout),
      // The start period, then the usual `retries` before giving up.
      failureThreshold: Math.ceil(startPeriod / period) + Math.max(1, retries),
    };
  }
  return probes;
}
