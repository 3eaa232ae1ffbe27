// Every duration flag (--timeout, --stop-timeout, --since) goes through one parser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { durationFlag } from '../../src/cli/common.js';
import { KompoxError } from '../../src/domain/errors.js';

test('durationFlag: plain seconds or h/m/s, as milliseconds', () => {
  assert.equal(durationFlag('300', '--timeout'), 300_000);
  assert.equal(durationFlag('30s', '--timeout'), 30_000);
  assert.equal(durationFlag('5m', '--timeout'), 300_000);
  assert.equal(durationFlag('1h30m', '--timeout'), 5_400_000);
  assert.equal(durationFlag(' 2h ', '--timeout'), 7_200_000);
});

test('durationFlag: anything else is a usage error naming the flag and the forms', () => {
  for (const bad of ['', '0', '0s', '-5', '1.5', 'soon', '5 m', '1d', 'm']) {
    assert.throws(
      () => durationFlag(bad, '--stop-timeout'),
      (e: unknown) => e instanceof KompoxError && e.kind === 'usage' && e.message.includes(`--stop-timeout "${bad}"`) && /30s, 5m/.test(e.hint ?? ''),
      bad,
    );
  }
});
