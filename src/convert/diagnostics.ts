// Collects warnings and errors while converting, so one run reports every
// problem at once (with file:line from the loader) instead of stopping at the first.
import type { Diagnostic, Location } from '../domain/errors.js';

export type Locator = (path: ReadonlyArray<string | number>) => Location | undefined;

export interface DiagInput {
  message: string;
  service?: string;
  key?: string;
  hint?: string;
  /** Model path used to find the source position, e.g. ['services', 'web', 'ports', 0]. */
  path?: ReadonlyArray<string | number>;
  location?: Location;
}

export class Diagnostics {
  readonly warnings: Diagnostic[] = [];
  readonly errors: Diagnostic[] = [];
  /**
   * @param locator compose model positions (services.*, volumes.*, ...)
   * @param configLocator kompoxops.yml positions (app.*, cluster.*, provider.*)
   */
  constructor(
    private readonly locator?: Locator,
    private readonly configLocator?: Locator,
  ) {}

  private make(level: Diagnostic['level'], d: DiagInput): Diagnostic {
    const path = d.path ?? (d.service ? ['services', d.service, ...(d.key ? [d.key] : [])] : undefined);
    let location = d.location;
    const isConfig = path !== undefined && ['app', 'cluster', 'provider', 'service'].includes(String(path[0]));
    const locator = isConfig ? this.configLocator : this.locator;
    if (!location && path && locator) {
      // Fall back to the closest located ancestor (e.g. the service when a key was merged from an env_file).
      for (let n = path.length; n > 0 && !location; n--) location = locator(path.slice(0, n));
    }
    const out: Diagnostic = { level, message: d.message };
    if (location) out.location = location;
    if (d.service !== undefined) out.service = d.service;
    if (d.key !== undefined) out.key = d.key;
    if (d.hint !== undefined) out.hint = d.hint;
    return out;
  }

  warn(d: DiagInput): void {
    this.warnings.push(this.make('warning', d));
  }

  error(d: DiagInput): void {
    this.errors.push(this.make('error', d));
  }
}

/** Sorts like a compiler's output: global diagnostics first, then by file, line, column (stable). */
export function sortDiagnostics(list: Diagnostic[]): Diagnostic[] {
  const key = (d: Diagnostic) => [d.location?.file ?? '', d.location?.line ?? 0, d.location?.column ?? 0] as const;
  return list
    .map((d, i) => ({ d, i }))
    .sort((a, b) => {
      const x = key(a.d);
      const y = key(b.d);
      if (x[0] !== y[0]) return x[0] < y[0] ? -1 : 1;
      return x[1] - y[1] || x[2] - y[2] || a.i - b.i;
    })
    .map((e) => e.d);
}
