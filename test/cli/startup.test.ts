// Start-up: `kompoxops --help` must not load the Kubernetes client, ssh2, tar
// or Ajv (they are imported inside command actions).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCli } from '../support/cli.js';

const TRACER = fileURLToPath(new URL('../support/trace-imports.mjs', import.meta.url));
const HEAVY = ['@kubernetes/client-node', 'ssh2', 'tar', 'ajv'];

async function traced(args: string[]): Promise<{ code: number | null; modules: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'kompox-trace-'));
  try {
    const out = join(dir, 'imports.txt');
    const r = await runCli(args, { nodeArgs: ['--import', TRACER], env: { KOMPOX_TRACE_IMPORTS: out } });
    let modules: string[] = [];
    try {
      modules = readFileSync(out, 'utf8').split('\n').filter(Boolean);
    } catch {
      /* nothing resolved */
    }
    return { code: r.code, modules };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const loads = (modules: string[], pkg: string) => modules.some((m) => m.includes(`/node_modules/${pkg}/`));

test('kompoxops --help loads commander but none of the heavy dependencies', async () => {
  const { code, modules } = await traced(['--help']);
  assert.equal(code, 0);
  assert.ok(loads(modules, 'commander'), 'the tracer sees commander (proves it records)');
  for (const pkg of HEAVY) assert.ok(!loads(modules, pkg), `--help loaded ${pkg}`);
});

test('the tracer sees lazily imported modules: app validate loads yaml, --help does not', async () => {
  const help = await traced(['--help']);
  assert.ok(!loads(help.modules, 'yaml'), '--help loaded yaml');
  const { code, modules } = await traced(['-C', 'examples/gitea', 'app', 'validate']);
  assert.equal(code, 0);
  assert.ok(loads(modules, 'yaml'), 'app validate loads yaml (imported inside the action)');
  for (const pkg of ['@kubernetes/client-node', 'ssh2']) assert.ok(!loads(modules, pkg), `app validate loaded ${pkg}`);
});
