// The start-up rule, checked statically: command-definition modules import
// only commander, the small CLI helpers and each other at top level;
// everything heavy is `await import(...)`ed inside actions. (startup.test.ts
// checks the behaviour; this test names the offending import.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ROOT } from '../support/cli.js';

const DIR = join(ROOT, 'src/cli/kompoxops');
const ALLOWED = new Set(['commander', '../common.js', '../version.js']);

/** Top-level value imports (not `import type`) and re-exports of a module's source. */
function valueImports(source: string): string[] {
  const out: string[] = [];
  const re = /^(?:import|export)\s+(?!type\b)(?:[^'";]*?\sfrom\s+)?['"]([^'"]+)['"]/gms;
  for (const m of source.matchAll(re)) out.push(m[1]!);
  return out;
}

test('valueImports sees value imports and skips type-only ones', () => {
  const src = "import type { A } from 'heavy-a';\nimport {\n  b,\n  type C,\n} from 'heavy-b';\nimport 'side-effect';\nexport { d } from './d.js';\n";
  assert.deepEqual(valueImports(src), ['heavy-b', 'side-effect', './d.js']);
});

test('src/cli/kompoxops/*.ts import only commander, ../common.js, ../version.js and siblings at top level', () => {
  const files = readdirSync(DIR).filter((f) => f.endsWith('.ts'));
  const siblings = new Set(files.map((f) => `./${f.replace(/\.ts$/, '.js')}`));
  const bad: string[] = [];
  for (const f of files) {
    for (const spec of valueImports(readFileSync(join(DIR, f), 'utf8'))) {
      if (!ALLOWED.has(spec) && !siblings.has(spec)) bad.push(`${f}: ${spec}`);
    }
  }
  assert.deepEqual(bad, [], 'move these into the action handler as await import(...)');
});

test('no module imports node:http as an ES module (its namespace reads the lazy WebSocket getters and loads undici: src/kube/node-http.ts)', () => {
  const bad: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) {
        const source = readFileSync(p, 'utf8');
        const dynamic = /import\(\s*['"](?:node:)?http['"]\s*\)/.test(source);
        if (dynamic || valueImports(source).some((s) => s === 'node:http' || s === 'http')) bad.push(relative(ROOT, p));
      }
    }
  };
  walk(join(ROOT, 'src'));
  assert.deepEqual(bad, [], "use `http` from src/kube/node-http.ts (or `import type` for types)");
});
