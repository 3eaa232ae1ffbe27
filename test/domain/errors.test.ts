import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DiagnosticsError, ERROR_KINDS, ExitCode, KompoxError, formatDiagnostic, formatError, unsupported, type ErrorKind } from '../../src/domain/errors.js';

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

test('one table maps every kind to an exit code, an HTTP status and a default code', () => {
  const want: Record<string, [number, number]> = {
    config: [1, 422],
    usage: [2, 400],
    notfound: [1, 404],
    conflict: [1, 409],
    auth: [1, 403],
    unsupported: [1, 501],
    unavailable: [1, 503],
    timeout: [3, 504],
    integrity: [1, 422],
    interrupted: [130, 499],
    internal: [1, 500],
  };
  assert.deepEqual(Object.keys(ERROR_KINDS).sort(), Object.keys(want).sort());
  for (const [kind, [exit, http]] of Object.entries(want)) {
    const e = new KompoxError(kind as ErrorKind, 'x');
    assert.equal(e.exitCode, exit, kind);
    assert.equal(e.httpStatus, http, kind);
    assert.equal(e.code, ERROR_KINDS[kind as ErrorKind].code, kind);
    assert.match(e.code, /^[a-z]+(\.[a-z-]+)*$/, kind);
  }
});

test('errors carry a stable code and structured details; a driver lacking an operation says so, typed', () => {
  const e = new KompoxError('conflict', 'disk "d1" is the current disk', { code: 'disk.delete.current', details: { disk: 'd1' } });
  assert.equal(e.code, 'disk.delete.current');
  assert.deepEqual(e.details, { disk: 'd1' });
  const u = unsupported('node pool create', 'k3s');
  assert.equal(u.kind, 'unsupported');
  assert.equal(u.code, 'driver.unsupported');
  assert.equal(u.message, 'node pool create is not supported by the k3s driver');
  assert.deepEqual(u.details, { operation: 'node pool create', driver: 'k3s' });
  assert.equal(u.httpStatus, 501);
});
