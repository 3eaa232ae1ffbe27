// Shared by the bin/ launchers: loads a CLI module from the compiled dist/
// (built by `npm install`/`npm run build`), or from the TypeScript sources
// through tsx in a checkout without dist/.
import { existsSync } from 'node:fs';

/** The module at `src/<path>.ts` (compiled: `dist/<path>.js`), e.g. `cli/kompoxops/main`. */
export async function loadCli(path) {
  const dist = new URL(`../dist/${path}.js`, import.meta.url);
  if (existsSync(dist)) return import(dist.href);
  const { register } = await import('tsx/esm/api');
  register();
  return import(new URL(`../src/${path}.ts`, import.meta.url).href);
}
