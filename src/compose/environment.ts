// The variables a project is interpolated with: the given environment (process
// env by default) over the project's `.env` file, as docker compose does.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { KompoxError } from '../domain/errors.js';
import { parseDotenv } from './dotenv.js';

export type Env = Record<string, string>;

export function definedOnly(env: Record<string, string | undefined>): Env {
  const out: Env = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  return out;
}

/** Reads a dotenv file; `display` names it in messages. */
export function readEnvFile(path: string, display: string, lookup: (k: string) => string | undefined, lines?: Record<string, number>): Env {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new KompoxError('config', `cannot read env file ${display}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, {
      location: { file: display },
      hint: 'Check that the file exists and is readable',
    });
  }
  return parseDotenv(text, { file: display, lookup, lines });
}

/** `base` wins over the file's values; the file fills what `base` does not define. */
export function withEnvFile(base: Env, path: string | undefined, display: string, mustExist: boolean): Env {
  if (!path) return { ...base };
  if (!existsSync(path) || !statSync(path).isFile()) {
    if (mustExist) {
      throw new KompoxError('config', `env file ${display} not found`, { location: { file: display }, hint: 'Create it or fix the path' });
    }
    return { ...base };
  }
  const fromFile = readEnvFile(path, display, (k) => base[k]);
  return { ...fromFile, ...base };
}
