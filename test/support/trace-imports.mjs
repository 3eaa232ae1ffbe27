// Records every module the process resolves, one URL per line, to the file
// named by KOMPOX_TRACE_IMPORTS. Used as `node --import ./trace-imports.mjs`
// to prove that `kompoxops --help` does not load the heavy dependencies.
// The same file is the hooks module: module.register loads it again in the
// loader thread, where it exports the resolve hook.
import { register } from 'node:module';
import { appendFileSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';

let out;

export async function initialize(data) {
  out = data?.out;
}

export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  if (out) appendFileSync(out, `${r.url}\n`);
  return r;
}

if (isMainThread && process.env.KOMPOX_TRACE_IMPORTS) {
  register(import.meta.url, { data: { out: process.env.KOMPOX_TRACE_IMPORTS } });
}
