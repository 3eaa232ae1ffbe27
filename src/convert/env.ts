// environment → container env. Effective values are exactly docker compose's
// (the loader merged env_file under environment). Values that came from an
// env_file and look secret go to the Secret `{service}-env` via secretKeyRef;
// a key also set in `environment` is plain (its value won in compose too).
import type { ServiceConfig } from '../compose/model.js';
import type { Diagnostics } from './diagnostics.js';
import { putSecretValue, type ObjectMetaBase } from './files.js';
import { dnsSubdomain } from './naming.js';
import type { PodState } from './pod-state.js';

export const SECRET_ENV_RE = /PASS|SECRET|TOKEN|KEY|CREDENTIAL|PRIVATE/i;
const SECRET_KEY_RE = /^[-._a-zA-Z0-9]+$/;

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef: { name: string; key: string } };
}

/** Kubernetes expands `$(VAR)` in env values, command and args; `$$` is its escape for `$`. */
export function escapeDollars(s: string): string {
  return s.replace(/\$/g, '$$$$');
}

export function convertEnv(
  service: string,
  svc: ServiceConfig,
  fromFile: readonly string[],
  state: PodState,
  meta: ObjectMetaBase,
  diags: Diagnostics,
): EnvVar[] {
  const env = svc.environment ?? {};
  const fileKeys = new Set(fromFile);
  const out: EnvVar[] = [];
  const secretName = dnsSubdomain(`${service}-env`);
  for (const name of Object.keys(env).sort()) {
    const value = env[name];
    if (value === null || value === undefined) {
      diags.warn({
        service, key: 'environment', path: ['services', service, 'environment', name],
        message: `service "${service}": environment variable ${name} has no value (it is unset where kompoxops runs) and is omitted`,
        hint: `Set ${name} in the environment or .env, or give it a value.`,
      });
      continue;
    }
    if (fileKeys.has(name) && SECRET_ENV_RE.test(name) && SECRET_KEY_RE.test(name)) {
      putSecretValue(state, meta, secretName, name, new TextEncoder().encode(value));
      out.push({ name, valueFrom: { secretKeyRef: { name: secretName, key: name } } });
    } else {
      out.push({ name, value: escapeDollars(value) });
    }
  }
  return out;
}
