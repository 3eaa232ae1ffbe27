import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { STACK_LINE, runCli } from '../support/cli.js';

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'kompox-init-'));
}

test('init writes a template that app validate accepts', async () => {
  const dir = tmp();
  try {
    const r = await runCli(['-C', dir, 'init', '--driver', 'aks', '--app', 'shop', '--name', 'prod', '--domain', 'apps.example.org']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /wrote .*kompoxops\.yml \(driver aks\)/);
    const text = readFileSync(join(dir, 'kompoxops.yml'), 'utf8');
    assert.match(text, /driver: aks/);
    assert.match(text, /AZURE_SUBSCRIPTION_ID/);
    writeFileSync(join(dir, 'compose.yml'), 'services:\n  web:\n    image: nginx\n');
    const v = await runCli(['-C', dir, 'app', 'validate', '-o', 'json']);
    assert.equal(v.code, 0, v.stderr);
    const summary = JSON.parse(v.stdout) as { valid: boolean; app: string; services: string[] };
    assert.equal(summary.valid, true);
    assert.equal(summary.app, 'shop');
    assert.deepEqual(summary.services, ['web']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('init refuses to overwrite without --force (exit 1, file unchanged)', async () => {
  const dir = tmp();
  try {
    writeFileSync(join(dir, 'kompoxops.yml'), 'mine\n');
    const r = await runCli(['-C', dir, 'init']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /already exists.*Use --force to overwrite it/);
    assert.doesNotMatch(r.stderr, STACK_LINE);
    assert.equal(readFileSync(join(dir, 'kompoxops.yml'), 'utf8'), 'mine\n');
    const f = await runCli(['-C', dir, 'init', '--force']);
    assert.equal(f.code, 0, f.stderr);
    assert.match(readFileSync(join(dir, 'kompoxops.yml'), 'utf8'), /driver: k3s/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('init with a bad driver or name is a usage error and writes nothing', async () => {
  const dir = tmp();
  try {
    const r = await runCli(['-C', dir, 'init', '--driver', 'k8s']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown driver "k8s".*aks, eks, gke, oke, k3s/);
    const n = await runCli(['-C', dir, 'init', '--app', 'Bad_Name']);
    assert.equal(n.code, 2);
    assert.match(n.stderr, /--app "Bad_Name"/);
    assert.throws(() => readFileSync(join(dir, 'kompoxops.yml')), /ENOENT/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
