import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KompoxError } from '../../src/domain/errors.js';
import { checkWildcardCertificate, describeCertificate } from '../../src/ingress/certificate.js';
import { OPENSSL_MISSING, makeCert } from './helpers.js';

const src = { certLabel: 'cluster.settings.INGRESS_TLS_CERT_FILE (tls.crt)', keyLabel: 'cluster.settings.INGRESS_TLS_KEY_FILE (tls.key)' };
const skip = OPENSSL_MISSING ? { skip: OPENSSL_MISSING } : {};

test('a wildcard certificate for the cluster domain passes with no warnings', skip, () => {
  const c = makeCert(['*.c1.example.com', 'c1.example.com'], 90);
  try {
    const r = checkWildcardCertificate(c.cert, c.key, 'c1.example.com', src);
    assert.deepEqual(r.warnings, []);
    assert.deepEqual(r.info.dnsNames, ['*.c1.example.com', 'c1.example.com']);
    assert.ok(r.info.expiresInDays >= 88 && r.info.expiresInDays <= 90, String(r.info.expiresInDays));
    assert.match(r.info.notAfter, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  } finally {
    c.cleanup();
  }
});

test('a certificate for another domain is rejected naming the wildcard it must cover', skip, () => {
  const c = makeCert(['*.other.example.com']);
  try {
    assert.throws(
      () => checkWildcardCertificate(c.cert, c.key, 'c1.example.com', src),
      (e: unknown) =>
        e instanceof KompoxError &&
        e.kind === 'config' &&
        /does not cover \*\.c1\.example\.com/.test(e.message) &&
        /\*\.other\.example\.com/.test(e.message) &&
        e.message.includes('INGRESS_TLS_CERT_FILE'),
    );
  } finally {
    c.cleanup();
  }
});

test('a key that does not belong to the certificate is rejected', skip, () => {
  const a = makeCert(['*.c1.example.com']);
  const b = makeCert(['*.c1.example.com']);
  try {
    assert.throws(
      () => checkWildcardCertificate(a.cert, b.key, 'c1.example.com', src),
      (e: unknown) => e instanceof KompoxError && /does not belong to the certificate/.test(e.message) && e.message.includes('INGRESS_TLS_KEY_FILE'),
    );
  } finally {
    a.cleanup();
    b.cleanup();
  }
});

test('a certificate expiring within 30 days gives a warning, not an error', skip, () => {
  const c = makeCert(['*.c1.example.com'], 10);
  try {
    const r = checkWildcardCertificate(c.cert, c.key, 'c1.example.com', src);
    assert.equal(r.warnings.length, 1);
    assert.match(r.warnings[0]!, /expires on .* \(in (9|10) days\)/);
  } finally {
    c.cleanup();
  }
});

test('an expired certificate is an error', skip, () => {
  const c = makeCert(['*.c1.example.com'], 10);
  try {
    const later = new Date(Date.now() + 20 * 24 * 3600 * 1000);
    assert.throws(() => checkWildcardCertificate(c.cert, c.key, 'c1.example.com', src, later), /expired on/);
  } finally {
    c.cleanup();
  }
});

test('garbage instead of PEM is named as such', skip, () => {
  const c = makeCert(['*.c1.example.com']);
  try {
    assert.throws(() => checkWildcardCertificate('hello', c.key, 'c1.example.com', src), /INGRESS_TLS_CERT_FILE \(tls.crt\) is not a PEM X.509 certificate/);
    assert.throws(() => checkWildcardCertificate(c.cert, 'hello', 'c1.example.com', src), /INGRESS_TLS_KEY_FILE \(tls.key\) is not a PEM private key/);
  } finally {
    c.cleanup();
  }
});

test('describeCertificate computes days to expiry from the given time', skip, () => {
  const c = makeCert(['*.c1.example.com'], 10);
  try {
    const now = describeCertificate(c.cert).expiresInDays;
    const inFive = describeCertificate(c.cert, new Date(Date.now() + 5 * 24 * 3600 * 1000)).expiresInDays;
    assert.equal(now - inFive, 5);
  } finally {
    c.cleanup();
  }
});
