/**
 * The c2s certificate: the configured PEM files, or else a self-signed one created on first start in the
 * data directory (tls/DOMAIN.crt + .key) and reused afterwards.
 *
 * Node's crypto can make key pairs but not X.509 certificates, so the certificate is made with the
 * `openssl` binary (present on Debian; a clear error names it when missing).
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSecureContext, type SecureContext } from 'node:tls';

export interface CertificateFiles {
  certPath: string;
  keyPath: string;
  /** True when this call created them. */
  created: boolean;
}

export function ensureSelfSignedCertificate(dataDir: string, domain: string): CertificateFiles {
  const dir = join(dataDir, 'tls');
  const safe = domain.replace(/[^a-z0-9.-]/gi, '_');
  const certPath = join(dir, `${safe}.crt`);
  const keyPath = join(dir, `${safe}.key`);
  if (existsSync(certPath) && existsSync(keyPath)) return { certPath, keyPath, created: false };
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        keyPath,
        '-out',
        certPath,
        '-days',
        '3650',
        '-subj',
        `/CN=${safe}`,
        '-addext',
        `subjectAltName=DNS:${safe},DNS:*.${safe}`,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 },
    );
  } catch (e) {
    const detail = (e as { stderr?: Buffer }).stderr?.toString().trim() ?? String(e);
    throw new Error(
      `cannot create a self-signed certificate with openssl (install openssl or set [xmpp] tls_cert and tls_key): ${detail}`,
    );
  }
  chmodSync(keyPath, 0o600);
  return { certPath, keyPath, created: true };
}

export function loadSecureContext(certPath: string, keyPath: string): SecureContext {
  const cert = readFileSync(certPath);
  const key = readFileSync(keyPath);
  // Parse once so a broken file fails at start with its name, not at the first STARTTLS.
  try {
    new X509Certificate(cert);
  } catch (e) {
    throw new Error(`${certPath}: not a PEM certificate (${(e as Error).message})`);
  }
  return createSecureContext({ cert, key, minVersion: 'TLSv1.2' });
}
