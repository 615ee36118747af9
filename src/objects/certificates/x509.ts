import crypto, { type KeyObject } from 'node:crypto';
import type * as X509 from '@peculiar/x509';
import { loadX509 } from '../../crypto/x509-library.js';
import type Forge from 'node-forge';
import { loadForge } from './forge.js';
import { writePfx } from './pkcs12.js';

/**
 * X.509 and container helpers of the certificates collection: self-signed issuance (@peculiar/x509 over WebCrypto),
 * the managed secret's value (PKCS#12 or PEM), and parsing of what users import (PFX read by node-forge).
 */

export const PKCS12 = 'application/x-pkcs12';
export const PEM = 'application/x-pem-file';

/** A policy input the issuer cannot satisfy, or input that does not parse; the service turns it into Azure's 400. */
export class CertificateInputError extends Error {}

export const KEY_USAGES: ReadonlySet<string> = new Set<KeyUsageName>([
  'digitalSignature', 'nonRepudiation', 'keyEncipherment', 'dataEncipherment', 'keyAgreement', 'keyCertSign', 'cRLSign',
  'encipherOnly', 'decipherOnly',
]);
type KeyUsageName = keyof typeof X509.KeyUsageFlags;

/** WebCrypto names of the curves a certificate may use (secp256k1 has no WebCrypto signer). */
const SIGNING: Record<string, { namedCurve?: string; hash: string }> = {
  RSA: { hash: 'SHA-256' },
  'P-256': { namedCurve: 'P-256', hash: 'SHA-256' },
  'P-384': { namedCurve: 'P-384', hash: 'SHA-384' },
  'P-521': { namedCurve: 'P-521', hash: 'SHA-512' },
};

export interface IssuanceRequest {
  subject: string;
  dnsNames?: string[];
  emails?: string[];
  upns?: string[];
  ekus?: string[];
  keyUsage?: string[];
  notBefore: Date;
  notAfter: Date;
}

async function webCryptoPair(key: KeyObject) {
  const isRsa = key.asymmetricKeyType === 'rsa';
  const curve = key.asymmetricKeyDetails?.namedCurve;
  const jwkCurve = curve === 'prime256v1' ? 'P-256' : curve === 'secp384r1' ? 'P-384' : curve === 'secp521r1' ? 'P-521' : undefined;
  const spec = SIGNING[isRsa ? 'RSA' : jwkCurve ?? ''];
  if (!spec) throw new CertificateInputError(`The key curve ${curve} cannot sign certificates.`);
  const algorithm = isRsa ? { name: 'RSASSA-PKCS1-v1_5', hash: spec.hash } : { name: 'ECDSA', namedCurve: spec.namedCurve!, hash: spec.hash };
  const subtle = crypto.webcrypto.subtle;
  const privateKey = await subtle.importKey('pkcs8', key.export({ format: 'der', type: 'pkcs8' }), algorithm, false, ['sign']);
  const publicKey = await subtle.importKey('spki', crypto.createPublicKey(key).export({ format: 'der', type: 'spki' }), algorithm, true, ['verify']);
  return { keys: { privateKey, publicKey } as CryptoKeyPair, signingAlgorithm: algorithm };
}

/** Parses an Azure policy subject ("CN=a, O=b"), refusing what is not a distinguished name. */
function subjectName(subject: string): X509.Name {
  const x509 = loadX509();
  try {
    const name = new x509.Name(subject);
    if (!name.toJSON().length) throw new Error('empty');
    return name;
  } catch {
    throw new CertificateInputError(`The subject name ${subject} is not a valid X500 distinguished name.`);
  }
}

/** The extensions a policy asks for (SANs, EKUs, key usage), shared by self-signed certificates and CSRs. */
async function policyExtensions(req: Omit<IssuanceRequest, 'notBefore' | 'notAfter'>, publicKey: CryptoKey) {
  const x509 = loadX509();
  const sans: X509.JsonGeneralName[] = [
    ...(req.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(req.emails ?? []).map((value) => ({ type: 'email' as const, value })),
    ...(req.upns ?? []).map((value) => ({ type: 'upn' as const, value })),
  ];
  let usage = 0;
  for (const u of req.keyUsage ?? []) {
    if (!KEY_USAGES.has(u)) throw new CertificateInputError(`Invalid key usage: ${u}.`);
    usage |= x509.KeyUsageFlags[u as KeyUsageName];
  }
  const extensions: X509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, false),
    await x509.SubjectKeyIdentifierExtension.create(publicKey),
  ];
  if (usage) extensions.push(new x509.KeyUsagesExtension(usage, true));
  if (req.ekus?.length) extensions.push(new x509.ExtendedKeyUsageExtension(req.ekus));
  if (sans.length) extensions.push(new x509.SubjectAlternativeNameExtension(sans));
  return extensions;
}

/** A self-signed certificate for `key` as the policy describes it; returns the DER bytes. */
export async function issueSelfSigned(key: KeyObject, req: IssuanceRequest): Promise<Buffer> {
  const x509 = loadX509();
  const name = subjectName(req.subject);
  const { keys, signingAlgorithm } = await webCryptoPair(key);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: crypto.randomBytes(16).toString('hex').replace(/^[89a-f]/, '1'),
    name, notBefore: req.notBefore, notAfter: req.notAfter, keys, signingAlgorithm,
    extensions: await policyExtensions(req, keys.publicKey),
  });
  return Buffer.from(cert.rawData);
}

/** A CA root certificate (self-signed, CA:true, keyCertSign + cRLSign); DER bytes. */
export async function createCaRoot(key: KeyObject, subject: string, notBefore: Date, notAfter: Date): Promise<Buffer> {
  const x509 = loadX509();
  const { keys, signingAlgorithm } = await webCryptoPair(key);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: crypto.randomBytes(16).toString('hex').replace(/^[89a-f]/, '1'),
    name: subjectName(subject), notBefore, notAfter, keys, signingAlgorithm,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return Buffer.from(cert.rawData);
}

/** A certificate for `key` as the policy describes it, signed by the CA (`caCert` DER, `caKey`); DER bytes. */
export async function issueByCa(key: KeyObject, req: IssuanceRequest, caCert: Buffer, caKey: KeyObject): Promise<Buffer> {
  const x509 = loadX509();
  const subject = subjectName(req.subject);
  const { keys } = await webCryptoPair(key);
  const ca = await webCryptoPair(caKey);
  const issuer = new x509.X509Certificate(new Uint8Array(caCert));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: crypto.randomBytes(16).toString('hex').replace(/^[89a-f]/, '1'),
    subject, issuer: issuer.subjectName, notBefore: req.notBefore, notAfter: req.notAfter,
    publicKey: keys.publicKey, signingKey: ca.keys.privateKey, signingAlgorithm: ca.signingAlgorithm,
    extensions: [...await policyExtensions(req, keys.publicKey), await x509.AuthorityKeyIdentifierExtension.create(issuer)],
  });
  return Buffer.from(cert.rawData);
}

/** A PKCS#10 request for `key` carrying the policy's subject and extensions, for an external CA to sign; DER bytes. */
export async function createCsr(key: KeyObject, req: Omit<IssuanceRequest, 'notBefore' | 'notAfter'>): Promise<Buffer> {
  const x509 = loadX509();
  const name = subjectName(req.subject);
  const { keys, signingAlgorithm } = await webCryptoPair(key);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name, keys, signingAlgorithm, extensions: await policyExtensions(req, keys.publicKey),
  });
  return Buffer.from(csr.rawData);
}

export interface CertificateFacts {
  x5t: string;
  nbf: number;
  exp: number;
  subject: string;
  dnsNames: string[];
  emails: string[];
  upns: string[];
  ekus: string[];
  keyUsage: string[];
  publicKeyDer: Buffer;
}

/** What Key Vault reports about a certificate: thumbprint, validity and the x509 properties of its policy. */
export function certificateFacts(der: Buffer): CertificateFacts {
  const x509 = loadX509();
  const cert = new x509.X509Certificate(new Uint8Array(der));
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const names = san?.names.toJSON() ?? [];
  const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
  const ku = cert.getExtension(x509.KeyUsagesExtension);
  return {
    x5t: crypto.createHash('sha1').update(der).digest('base64url'),
    nbf: Math.floor(cert.notBefore.getTime() / 1000),
    exp: Math.floor(cert.notAfter.getTime() / 1000),
    subject: cert.subject,
    dnsNames: names.filter((n) => n.type === 'dns').map((n) => n.value),
    emails: names.filter((n) => n.type === 'email').map((n) => n.value),
    upns: names.filter((n) => n.type === 'upn').map((n) => n.value),
    ekus: Array.from(eku?.usages ?? [], String),
    keyUsage: ku ? [...KEY_USAGES].filter((n) => (ku.usages & x509.KeyUsageFlags[n as KeyUsageName]) !== 0) : [],
    publicKeyDer: Buffer.from(cert.publicKey.rawData),
  };
}

/** True when `key` is the private half of the certificate's public key. */
export const keyMatches = (key: KeyObject, facts: CertificateFacts) =>
  crypto.createPublicKey(key).export({ format: 'der', type: 'spki' }).equals(facts.publicKeyDer);

const pemBlock = (label: string, der: Buffer) =>
  `-----BEGIN ${label}-----\n${der.toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END ${label}-----\n`;

/**
 * The managed secret's value: PEM text, or base64 of a password-less PFX (any key type, any chain). The private key is
 * included only when the policy makes it exportable.
 */
export function secretValue(contentType: string, chain: Buffer[], key: KeyObject | undefined): string {
  if (contentType === PEM) {
    return (key ? pemBlock('PRIVATE KEY', key.export({ format: 'der', type: 'pkcs8' })) : '') + chain.map((c) => pemBlock('CERTIFICATE', c)).join('');
  }
  return writePfx(chain, key).toString('base64');
}

export interface ParsedImport {
  key: KeyObject;
  /** Leaf first. */
  chain: Buffer[];
}

/** Orders certificates leaf first: the one whose public key matches `key`, then the rest as given. */
function leafFirst(key: KeyObject, certs: Buffer[]): Buffer[] {
  const leaf = certs.find((c) => keyMatches(key, certificateFacts(c)));
  if (!leaf) throw new CertificateInputError('The private key does not match the public key of any certificate in the content.');
  return [leaf, ...certs.filter((c) => c !== leaf)];
}

/** Reads a PEM bundle: one private key (PKCS#8, PKCS#1 or SEC1) and its certificates. */
export function parsePem(text: string): ParsedImport {
  const blocks = [...text.matchAll(/-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g)];
  const certs = blocks.filter((b) => b[1] === 'CERTIFICATE').map((b) => Buffer.from(b[2].replace(/\s+/g, ''), 'base64'));
  const keys = blocks.filter((b) => /PRIVATE KEY$/.test(b[1]) && !/ENCRYPTED/.test(b[1]));
  if (!certs.length) throw new CertificateInputError('The PEM content contains no certificate.');
  if (keys.length !== 1) throw new CertificateInputError('The PEM content must contain exactly one unencrypted private key.');
  let key: KeyObject;
  try {
    key = crypto.createPrivateKey(keys[0][0]);
    certs.forEach((c) => certificateFacts(c));
  } catch (err) {
    if (err instanceof CertificateInputError) throw err;
    throw new CertificateInputError('The PEM content is malformed.');
  }
  return { key, chain: leafFirst(key, certs) };
}

/** Reads a PFX with its password (PKCS#12 legacy or PBES2 encryption, as OpenSSL writes them). */
export function parsePfx(pfx: Buffer, password: string | undefined): ParsedImport {
  const forge = loadForge();
  let p12: Forge.pkcs12.Pkcs12Pfx;
  try {
    const asn1 = forge.asn1.fromDer(pfx.toString('binary'));
    // A PFX without password has its MAC keyed either with no password (as node-forge writes) or an empty one (OpenSSL).
    try {
      p12 = forge.pkcs12.pkcs12FromAsn1(asn1, true, password || (null as unknown as string));
    } catch (err) {
      if (password) throw err;
      p12 = forge.pkcs12.pkcs12FromAsn1(asn1, true, '');
    }
  } catch (err) {
    const message = (err as Error).message ?? '';
    if (/password|mac|decrypt/i.test(message)) throw new CertificateInputError('The specified PKCS#12 X.509 certificate content can not be read: the password is not correct.');
    throw new CertificateInputError('The specified PKCS#12 X.509 certificate content can not be read. Please check if certificate is in valid PKCS#12 format.');
  }
  const bags = p12.safeContents.flatMap((sc) => sc.safeBags);
  const keyBags = bags.filter((b) => b.type === forge.pki.oids.pkcs8ShroudedKeyBag || b.type === forge.pki.oids.keyBag);
  const certBags = bags.filter((b) => b.type === forge.pki.oids.certBag);
  if (keyBags.length !== 1) throw new CertificateInputError('The PKCS#12 content must contain exactly one private key.');
  const keyBag = keyBags[0] as Forge.pkcs12.Bag & { asn1?: Forge.asn1.Asn1 };
  const keyAsn1 = keyBag.key ? forge.pki.wrapRsaPrivateKey(forge.pki.privateKeyToAsn1(keyBag.key)) : keyBag.asn1!;
  const key = crypto.createPrivateKey({ key: Buffer.from(forge.asn1.toDer(keyAsn1).getBytes(), 'binary'), format: 'der', type: 'pkcs8' });
  const certs = certBags.map((b) => {
    const asn1 = b.cert ? forge.pki.certificateToAsn1(b.cert) : (b as { asn1?: Forge.asn1.Asn1 }).asn1!;
    return Buffer.from(forge.asn1.toDer(asn1).getBytes(), 'binary');
  });
  if (!certs.length) throw new CertificateInputError('The PKCS#12 content contains no certificate.');
  return { key, chain: leafFirst(key, certs) };
}
