import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import crypto, { webcrypto } from 'node:crypto';
import { loadX509 } from './x509-library.js';

const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;
const DAY = 86_400_000;

export interface TlsMaterial {
  cert: string;
  key: string;
  caCertPath: string | undefined;
}

export interface TlsOptions {
  dataDir: string;
  dnsSuffix: string;
  /** The host name of the token service and management API, when clients reach it by a name other than localhost. */
  publicHost?: string;
  certFile?: string;
  keyFile?: string;
}

/**
 * The server's TLS identity: a provided certificate (`--tls-cert/--tls-key`), or a local CA created on first start
 * in the data dir and a server certificate it signs for localhost, the loopback addresses and `*.{dnsSuffix}`.
 * A CA already in the data dir (shared by a cluster, or seeded by tests) is reused.
 */
export async function loadOrCreateTls(opts: TlsOptions): Promise<TlsMaterial> {
  if (opts.certFile && opts.keyFile) {
    return { cert: fs.readFileSync(opts.certFile, 'utf8'), key: fs.readFileSync(opts.keyFile, 'utf8'), caCertPath: undefined };
  }
  const dir = path.join(opts.dataDir, 'tls');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const caCertPath = path.join(dir, 'ca.crt');
  const caKeyPath = path.join(dir, 'ca.key');
  if (!fs.existsSync(caCertPath) || !fs.existsSync(caKeyPath)) {
    const ca = await createCa('Coffer Local CA');
    writePrivate(caKeyPath, ca.key);
    fs.writeFileSync(caCertPath, ca.cert);
  }
  const certPath = path.join(dir, 'server.crt');
  const keyPath = path.join(dir, 'server.key');
  const sans = serverNames(opts.dnsSuffix, opts.publicHost);
  if (!fs.existsSync(certPath) || !certCovers(fs.readFileSync(certPath, 'utf8'), sans, fs.readFileSync(caCertPath, 'utf8'))) {
    const server = await issueServerCert(fs.readFileSync(caCertPath, 'utf8'), fs.readFileSync(caKeyPath, 'utf8'), sans);
    writePrivate(keyPath, server.key);
    fs.writeFileSync(certPath, server.cert + fs.readFileSync(caCertPath, 'utf8'));
  }
  return { cert: fs.readFileSync(certPath, 'utf8'), key: fs.readFileSync(keyPath, 'utf8'), caCertPath };
}

function writePrivate(file: string, content: string) {
  fs.writeFileSync(file, content, { mode: 0o600 });
}

function serverNames(dnsSuffix: string, publicHost?: string) {
  const isAddress = publicHost !== undefined && net.isIP(publicHost) !== 0;
  const dns = [...new Set(['localhost', ...(publicHost && !isAddress ? [publicHost] : []), dnsSuffix, `*.${dnsSuffix}`])];
  const ip = [...new Set(['127.0.0.1', '::1', ...(publicHost && isAddress ? [publicHost] : [])])];
  return { dns, ip };
}

/** True when the certificate is ours for these names, issued by this CA, and valid for at least 30 more days. */
function certCovers(pem: string, sans: { dns: string[]; ip: string[] }, caPem: string): boolean {
  const cert = new crypto.X509Certificate(pem);
  const ca = new crypto.X509Certificate(caPem);
  return cert.checkIssued(ca) && sans.dns.every((n) => cert.subjectAltName?.includes(`DNS:${n}`))
    && sans.ip.every((ip) => cert.checkIP(ip) !== undefined)
    && new Date(cert.validTo).getTime() > Date.now() + 30 * DAY;
}

async function pem(key: CryptoKey) {
  const x509 = loadX509();
  const der = await webcrypto.subtle.exportKey('pkcs8', key as webcrypto.CryptoKey);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

export async function createCa(commonName: string, years = 10): Promise<{ cert: string; key: string }> {
  const x509 = loadX509();
  const keys = await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: crypto.randomBytes(16).toString('hex').replace(/^[89a-f]/, '1'),
    name: `CN=${commonName}`,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + years * 365 * DAY),
    keys,
    signingAlgorithm: SIGN,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert: cert.toString('pem') + '\n', key: await pem(keys.privateKey) };
}

async function issueServerCert(caCertPem: string, caKeyPem: string, sans: { dns: string[]; ip: string[] }) {
  const x509 = loadX509();
  const caCert = new x509.X509Certificate(caCertPem);
  const caKey = await webcrypto.subtle.importKey('pkcs8', x509.PemConverter.decode(caKeyPem)[0], EC, false, ['sign']);
  const keys = await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify']) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: crypto.randomBytes(16).toString('hex').replace(/^[89a-f]/, '1'),
    subject: 'CN=localhost',
    issuer: caCert.subject,
    notBefore: new Date(Date.now() - DAY),
    notAfter: new Date(Date.now() + 397 * DAY),
    publicKey: keys.publicKey,
    signingKey: caKey as CryptoKey,
    signingAlgorithm: SIGN,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
      new x509.SubjectAlternativeNameExtension([
        ...sans.dns.map((value) => ({ type: 'dns' as const, value })),
        ...sans.ip.map((value) => ({ type: 'ip' as const, value })),
      ]),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
    ],
  });
  return { cert: cert.toString('pem') + '\n', key: await pem(keys.privateKey) };
}
