import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from '../support/cli.js';

for (const bin of ['kompoxsvc', 'kompox'] as const) {
  test(`${bin} says it is not yet available and exits 2`, async () => {
    const r = await runCli(['--help'], { bin });
    assert.equal(r.code, 2);
    assert.match(r.stderr, new RegExp(`^${bin}: not yet available`));
    assert.equal(r.stdout, '');
  });
}
