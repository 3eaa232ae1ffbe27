// Paths written in a compose project, resolved against the directory they are
// relative to. A sandboxed source (a tenant's upload) refuses `~`, absolute
// paths and paths that lead out of the project, naming the field that holds them.
import { posix } from 'node:path';
import { KompoxError, type Location } from '../domain/errors.js';
import { SANDBOX_CODES, SourceAccessError, sandboxError, sandboxRefusal, type AppSource, type PathRefusal } from '../domain/source.js';

export interface PathField {
  /** Dotted compose field, e.g. `services.web.env_file`. */
  field: string;
  location?: Location;
}

const REFUSALS: Record<PathRefusal, (w: string) => string> = {
  absolute: (w) => `"${w}" is an absolute path; only files inside the project can be used`,
  home: (w) => `"${w}" refers to a home directory; only files inside the project can be used`,
  outside: (w) => `"${w}" leads outside the project; only files inside the project can be used`,
};

/** `written` resolved against `baseDir` (absolute); for a sandboxed source it must stay inside the root. */
export function projectPath(source: AppSource, written: string, baseDir: string, where: PathField, opts: { home?: boolean } = {}): string {
  const resolved = posix.resolve(baseDir, written);
  if (!source.sandboxed) return resolved;
  const refusal = sandboxRefusal(source.root, written, resolved, opts);
  if (refusal === undefined) return resolved;
  throw sandboxError(SANDBOX_CODES[refusal], where.field, REFUSALS[refusal](written), {
    location: where.location,
    hint: 'Write the path relative to the project directory (e.g. ./conf/app.ini) and send the file with the project',
  });
}

/** A source refusal or missing file as an error about the field that named the path; anything else unchanged. */
export function sourceFieldError(e: unknown, where: PathField): unknown {
  if (!(e instanceof SourceAccessError)) return e;
  const code = e.reason === 'outside' ? SANDBOX_CODES.symlink : undefined;
  if (code) return sandboxError(code, where.field, e.message, { location: where.location, hint: e.hint, cause: e });
  return new KompoxError('config', `${where.field}: ${e.message}`, { location: where.location, field: where.field, hint: e.hint, cause: e });
}
