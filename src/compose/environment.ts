// The variables a project is interpolated with: the source's variables over
// the project's `.env` file, as docker compose does (with the shell's). Files
// are read through the AppSource only.
import { KompoxError, type Location } from '../domain/errors.js';
import { SourceAccessError, type AppSource } from '../domain/source.js';
import { parseDotenv } from './dotenv.js';
import { sourceFieldError, type PathField } from './project-path.js';

export type Env = Record<string, string>;

/** A file of the source as UTF-8 text; a source refusal names `where` when given. */
export async function readSourceText(source: AppSource, path: string, where: PathField): Promise<string> {
  try {
    return new TextDecoder().decode(await source.readFile(path));
  } catch (e) {
    throw sourceFieldError(e, where);
  }
}

/** The file is there and is a regular file; a source refusal (symbolic link out of a sandbox) names `where`. */
export async function isSourceFile(source: AppSource, path: string, where: PathField): Promise<boolean> {
  try {
    return (await source.stat(path))?.kind === 'file';
  } catch (e) {
    throw sourceFieldError(e, where);
  }
}

/** Reads a dotenv file; `display` names it in messages. */
export async function readEnvFile(
  source: AppSource,
  path: string,
  display: string,
  lookup: (k: string) => string | undefined,
  lines?: Record<string, number>,
  where: PathField = { field: 'env_file', location: { file: display } },
): Promise<Env> {
  let text: string;
  try {
    text = new TextDecoder().decode(await source.readFile(path));
  } catch (e) {
    if (e instanceof SourceAccessError && e.reason !== 'outside') {
      throw new KompoxError('config', `cannot read env file ${display}: ${e.reason === 'missing' ? 'it does not exist' : e.message}`, {
        location: where.location,
        hint: 'Check that the file exists and is readable',
      });
    }
    throw sourceFieldError(e, where);
  }
  return parseDotenv(text, { file: display, lookup, lines });
}

/** One environment from several (later ones win), without a prototype: only given variables are found. */
export function envOf(...parts: ReadonlyArray<Readonly<Record<string, string>>>): Env {
  return Object.assign(Object.create(null) as Env, ...parts);
}

/** `base` wins over the file's values; the file fills what `base` does not define. */
export async function withEnvFile(
  source: AppSource,
  base: Env,
  path: string | undefined,
  display: string,
  mustExist: boolean,
  from?: Location,
  field = 'env_file',
): Promise<Env> {
  if (!path) return envOf(base);
  const where: PathField = { field, location: from ?? { file: display } };
  if (!(await isSourceFile(source, path, where))) {
    if (mustExist) {
      throw new KompoxError('config', `env file ${display} not found`, { location: from ?? { file: display }, hint: 'Create it or fix the path' });
    }
    return envOf(base);
  }
  const fromFile = await readEnvFile(source, path, display, (k) => (Object.hasOwn(base, k) ? base[k] : undefined), undefined, where);
  return envOf(fromFile, base);
}
