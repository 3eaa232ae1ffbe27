import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DiagnosticsError, ExitCode, KompoxError, formatDiagnostic, formatError } from '../../src/domain/errors.js';

test('formatError puts the location first and the hint last, in one paragraph', () => {
  const e = new KompoxError('config', 'unknown key "imagee"', {
    location: { file: 'compose.yml', line: 4, column: 5 },
    hint: 'Did you mean "image"?',
  });
  assert.equal(formatError(e), 'compose.yml:4:5: unknown key "imagee". Did you mean "image"?');
  assert.equal(e.exitCode, ExitCode.failed);
});

test('field path is named when the message does not already name it', () => {
  const e = new KompoxError('config', 'must be a DNS label', { field: 'app.name' });
  assert.equal(formatError(e), 'must be a DNS label (field app.name)');
});

test('exit codes by kind', () => {
  assert.equal(new KompoxError('usage', 'x').exitCode, ExitCode.usage);
  assert.equal(new KompoxError('timeout', 'x').exitCode, ExitCode.notReady);
  assert.equal(new KompoxError('conflict', 'x', { exitCode: 5 }).exitCode, 5);
});

test('DiagnosticsError lists every diagnostic', () => {
  const e = new DiagnosticsError([
    { level: 'error', message: 'a', location: { file: 'f', line: 1 } },
    { level: 'error', message: 'b' },
  ]);
  assert.match(e.message, /error: f:1: a\n {2}error: b/);
  assert.equal(formatDiagnostic({ level: 'warning', message: 'w', hint: 'do x.' }), 'warning: w. do x.');
});
