// Checks of the wildcard certificate served for the automatic hosts
// `{app}.{cluster}.{domain}`: PEM parses, covers `*.{cluster}.{domain}`, the
// key belongs to it, and it is not expired. Pure (no file I/O) so the same
// checks run on files (deploy) and on Secret contents (status).
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { KompoxError, type Location } from '../domain/errors.js';

export interface CertificateInfo {
  subject: string;
  /** DNS names from subjectAltName (or the CN when there is no SAN). */
  dnsNames: string[];
  /** RFC 3339. */
  notAfter: string;
  /** Whole days until notAfter (negative when expired). */
  expiresInDays: number;
  fingerprint256: string;
}

export interface CertificateCheck {
  info: CertificateInfo;
  warnings: string[];
}

export interface CertificateSource {
  /** What to name in messages, e.g. `cluster.settings.INGRESS_TLS_CERT_FILE (certs/tls.crt)`. */
  certLabel: string;
  keyLabel: string;
  certLocation?: Location;
  keyLocation?: Location;
}

/** Days before expiry from which deploy warns. */
export const EXPIRY_WARNING_DAYS = 30;

const DAY_MS = 24 * 60 * 60 * 1000;

/** Parses a PEM certificate (the first one of a chain) and describes it. */
export function describeCertificate(certPem: string | Buffer, now: Date = new Date()): CertificateInfo {
  const x = new X509Certificate(certPem);
  const notAfter = new Date(x.validTo);
  return {
    subject: x.subject.replace(/\n/g, ', '),
    dnsNames: dnsNamesOf(x),
    notAfter: notAfter.toISOString().replace(/\.\d{3}Z$/, 'Z'),
    expiresInDays: Math.floor((notAfter.getTime() - now.getTime()) / DAY_MS),
    fingerprint256: x.fingerprint256,
  };
}

function dnsNamesOf(x: X509Certificate): string[] {
  const san = x.subjectAltName;
  if (san) {
    return san
      .split(/,\s*/)
      .filter((e) => e.startsWith('DNS:'))
      .map((e) => e.slice(4).toLowerCase());
  }
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(x.subject)?.[1];
  return cn ? [cn.toLowerCase()] : [];
}

/**
 * Validates the wildcard certificate for `domain` (`{cluster}.{domain}`).
 * Throws a KompoxError naming the setting when the cert or key cannot be used;
 * returns warnings for problems that do not stop a deploy (expiring soon).
 */
export function checkWildcardCertificate(
  certPem: string | Buffer,
  keyPem: string | Buffer,
  domain: string,
  src: CertificateSource,
  now: Date = new Date(),
): CertificateCheck {
  let x: X509Certificate;
  try {
    x = new X509Certificate(certPem);
  } catch (e) {
    throw new KompoxError('config', `${src.certLabel} is not a PEM X.509 certificate: ${(e as Error).message}`, {
      location: src.certLocation,
      hint: 'Point it at the certificate file (PEM, "-----BEGIN CERTIFICATE-----"), with intermediates after it.',
      cause: e,
    });
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (e) {
    throw new KompoxError('config', `${src.keyLabel} is not a PEM private key: ${(e as Error).message}`, {
      location: src.keyLocation,
      hint: 'Point it at the unencrypted private key file (PEM, "-----BEGIN ... PRIVATE KEY-----").',
      cause: e,
    });
  }
  if (!x.checkPrivateKey(key)) {
    throw new KompoxError('config', `the private key in ${src.keyLabel} does not belong to the certificate in ${src.certLabel}`, {
      location: src.keyLocation,
      hint: 'Use the key the certificate was issued for.',
    });
  }
  const info = describeCertificate(certPem, now);
  const wildcard = `*.${domain.toLowerCase()}`;
  if (!info.dnsNames.includes(wildcard)) {
    throw new KompoxError(
      'config',
      `the certificate in ${src.certLabel} does not cover ${wildcard} (it covers: ${info.dnsNames.join(', ') || 'no DNS names'})`,
      {
        location: src.certLocation,
        hint: `The automatic app hosts are {app}.${domain}; use a certificate with the subjectAltName DNS:${wildcard}.`,
      },
    );
  }
  if (info.expiresInDays < 0) {
    throw new KompoxError('config', `the certificate in ${src.certLabel} expired on ${info.notAfter}`, {
      location: src.certLocation,
      hint: 'Renew it and run cluster deploy again.',
    });
  }
  const warnings: string[] = [];
  if (info.expiresInDays < EXPIRY_WARNING_DAYS) {
    warnings.push(
      `the wildcard certificate ${wildcard} expires on ${info.notAfter} (in ${info.expiresInDays} days); renew it and run cluster deploy again`,
    );
  }
  return { info, warnings };
}
