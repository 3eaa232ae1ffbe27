// Value formats: Go durations, docker byte sizes, cpus, Kubernetes quantities, names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bytesQuantity, milliQuantity, parseBytes, parseCpus, parseDuration, parseQuantity, wholeSeconds } from '../../src/convert/units.js';
import { dataKey, dnsLabel, dnsSubdomain, isDnsSubdomain } from '../../src/convert/naming.js';

test('Go durations', () => {
  assert.equal(parseDuration('30s'), 30);
  assert.equal(parseDuration('1m30s'), 90);
  assert.equal(parseDuration('1h'), 3600);
  assert.equal(parseDuration('500ms'), 0.5);
  assert.equal(parseDuration('10'), 10);
  assert.equal(parseDuration(5), 5);
  assert.equal(parseDuration('1x'), undefined);
  assert.equal(parseDuration('s'), undefined);
  assert.equal(parseDuration('10s garbage'), undefined);
  assert.equal(wholeSeconds(0.5), 1);
  assert.equal(wholeSeconds(1.2), 2);
  assert.equal(wholeSeconds(0, 0), 0);
});

test('docker byte sizes → exact binary quantities', () => {
  assert.equal(parseBytes('512m'), 512 * 1024 ** 2);
  assert.equal(parseBytes('1.5G'), 1.5 * 1024 ** 3);
  assert.equal(parseBytes('1gb'), 1024 ** 3);
  assert.equal(parseBytes(2048), 2048);
  assert.equal(parseBytes('12 parsecs'), undefined);
  assert.equal(bytesQuantity(512 * 1024 ** 2), '512Mi');
  assert.equal(bytesQuantity(1.5 * 1024 ** 3), '1536Mi');
  assert.equal(bytesQuantity(1024 ** 3), '1Gi');
  assert.equal(bytesQuantity(1000), '1000');
});

test('cpus and quantities', () => {
  assert.equal(parseCpus('0.5'), 500);
  assert.equal(parseCpus(2), 2000);
  assert.equal(parseCpus('two'), undefined);
  assert.equal(milliQuantity(500), '500m');
  assert.equal(milliQuantity(2000), '2');
  assert.equal(parseQuantity('500m'), 0.5);
  assert.equal(parseQuantity('1Gi'), 1024 ** 3);
  assert.equal(parseQuantity('1G'), 1e9);
  assert.equal(parseQuantity('lots'), undefined);
});

test('Kubernetes names keep valid names and hash changed ones', () => {
  assert.equal(dnsLabel('web'), 'web');
  assert.match(dnsLabel('My_Service'), /^my-service-[0-9a-f]{6}$/);
  assert.notEqual(dnsLabel('a_b'), dnsLabel('a.b'));
  assert.ok(dnsLabel('x'.repeat(80)).length <= 63);
  assert.equal(dnsSubdomain('file-nginx.conf'), 'file-nginx.conf');
  assert.match(dnsSubdomain('config-app_ini'), /^config-app-ini-[0-9a-f]{6}$/);
  assert.ok(isDnsSubdomain('a.b-c.example.com'));
  assert.ok(!isDnsSubdomain('a_b'));
  assert.equal(dataKey('nginx.conf'), 'nginx.conf');
  assert.match(dataKey('a b'), /^a_b-[0-9a-f]{6}$/);
});
