#!/usr/bin/env node
// Runs the compiled CLI (dist/, built by `npm install`/`npm run build`);
// falls back to the TypeScript sources through tsx in a checkout without dist/.
import { existsSync } from 'node:fs';

const dist = new URL('../dist/cli/unavailable.js', import.meta.url);
let mod;
if (existsSync(dist)) {
  mod = await import(dist.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  mod = await import(new URL('../src/cli/unavailable.ts', import.meta.url).href);
}
await mod.main('kompoxsvc');
