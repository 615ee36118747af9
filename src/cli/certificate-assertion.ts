import crypto from 'node:crypto';
import fs from 'node:fs';
import { SignJWT } from 'jose';
import { CliError } from './errors.js';

const ASSERTION_LIFETIME_SECONDS = 600;

/** The private key and certificate of a PEM file holding both (what `az login --service-principal --certificate` takes). */
export function readCertificatePem(file: string) {
  let pem: string;
  try {
    pem = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(`Cannot read the certificate file '${file}': ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 2);
  }
  const certificate = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem)?.[0];
  if (!certificate || !/-----BEGIN (RSA |EC )?PRIVATE KEY-----/.test(pem)) {
    throw new CliError(`The certificate file '${file}' must hold a PEM private key and its PEM certificate.`, 2);
  }
  try {
    return { privateKey: crypto.createPrivateKey(pem), certificate: new crypto.X509Certificate(certificate) };
  } catch {
    throw new CliError(`The certificate file '${file}' holds no readable (unencrypted) private key and certificate.`, 2);
  }
}

/**
 * An RFC 7523 client assertion as MSAL signs it: RS256 by the certificate's key, naming the certificate by its SHA-1
 * (`x5t`) and SHA-256 (`x5t#S256`) thumbprints; `iss` = `sub` = the app id, `aud` the token endpoint, a fresh `jti`.
 */
export async function certificateAssertion(file: string, clientId: string, audience: string): Promise<string> {
  const { privateKey, certificate } = readCertificatePem(file);
  const thumbprint = (algorithm: string) => crypto.createHash(algorithm).update(certificate.raw).digest('base64url');
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ jti: crypto.randomUUID() })
    .setProtectedHeader({ alg: 'RS256', typ: 'JWT', x5t: thumbprint('sha1'), 'x5t#S256': thumbprint('sha256') })
    .setIssuer(clientId)
    .setSubject(clientId)
    .setAudience(audience)
    .setIssuedAt(now)
    .setNotBefore(now)
    .setExpirationTime(now + ASSERTION_LIFETIME_SECONDS)
    .sign(privateKey);
}
