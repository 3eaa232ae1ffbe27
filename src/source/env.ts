// The variables a source hands to the compose loader: a frozen copy with the
// defined values only (a shell environment has `undefined` holes in its type).
// No prototype, so that a variable named `constructor` or `toString` is not
// found unless it was given.
export function definedEnv(env: Readonly<Record<string, string | undefined>> | undefined): Readonly<Record<string, string>> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const [k, v] of Object.entries(env ?? {})) if (v !== undefined) out[k] = v;
  return Object.freeze(out);
}
