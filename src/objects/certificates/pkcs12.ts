import crypto, { type KeyObject } from 'node:crypto';
import { createRequire } from 'node:module';
import type * as Schema from '@peculiar/asn1-schema';
import type * as Cms from '@peculiar/asn1-cms';
import type * as X509Asn1 from '@peculiar/asn1-x509';
import type * as Rsa from '@peculiar/asn1-rsa';
import type * as Pfx from '@peculiar/asn1-pfx';
import { loadForge } from './forge.js';

/**
 * A password-less PKCS#12 (PFX) as Key Vault's managed secret holds it, for any key type (RSA or EC) and any chain:
 * the certificates and the (optional) PKCS#8 key in plain bags, with an HMAC-SHA256 integrity MAC keyed from no
 * password — what `openssl pkcs12 -export -keypbe NONE -certpbe NONE -passout pass:` writes, and what `openssl pkcs12
 * -passin pass:`, .NET and Python's `cryptography` open without a password. The structures come from
 * @peculiar/asn1-pfx; the PKCS#12 MAC key derivation (RFC 7292 B.2) from node-forge.
 */

const id_sha256 = '2.16.840.1.101.3.4.2.1';
const MAC_ITERATIONS = 2048;
const MAC_KEY_ID = 3;

/** The ASN.1 schemas, loaded on first use (only writing a PFX needs them; they are part of ~120 ms of a start). */
let asn1: { schema: typeof Schema; cms: typeof Cms; x509: typeof X509Asn1; rsa: typeof Rsa; pfx: typeof Pfx } | undefined;
function loadAsn1() {
  const require = createRequire(import.meta.url);
  return (asn1 ??= {
    schema: require('@peculiar/asn1-schema'), cms: require('@peculiar/asn1-cms'), x509: require('@peculiar/asn1-x509'),
    rsa: require('@peculiar/asn1-rsa'), pfx: require('@peculiar/asn1-pfx'),
  });
}

/** Builds the DER bytes of a PFX holding `chain` (leaf first) and, when given, the leaf's private key. */
export function writePfx(chain: Buffer[], key: KeyObject | undefined): Buffer {
  const {
    schema: { AsnConvert, OctetString }, cms: { ContentInfo, id_data }, x509: { AlgorithmIdentifier }, rsa: { DigestInfo },
    pfx: { AuthenticatedSafe, CertBag, MacData, PFX, PKCS12Attribute, SafeBag, SafeContents, id_certBag, id_keyBag, id_pkcs_9, id_x509Certificate },
  } = loadAsn1();
  const der = (value: unknown) => Buffer.from(AsnConvert.serialize(value));
  const octets = (bytes: Buffer) => AsnConvert.serialize(new OctetString(bytes));
  /** The localKeyId attribute that pairs the key with its certificate (Windows and .NET look for it). */
  const localKeyId = (id: Buffer) => {
    const attribute = new PKCS12Attribute();
    attribute.attrId = `${id_pkcs_9}.21`;
    attribute.attrValues = [octets(id)];
    return attribute;
  };
  /** A ContentInfo of type data (unencrypted) around a SafeContents. */
  const dataContent = (bags: InstanceType<typeof SafeBag>[]) => new ContentInfo({ contentType: id_data, content: octets(der(new SafeContents(bags))) });

  const keyId = crypto.createHash('sha1').update(chain[0]).digest();
  const certBags = chain.map((cert, i) => new SafeBag({
    bagId: id_certBag,
    bagValue: AsnConvert.serialize(new CertBag({ certId: id_x509Certificate, certValue: octets(cert) })),
    ...(i === 0 && key ? { bagAttributes: [localKeyId(keyId)] } : {}),
  }));
  const contents = [dataContent(certBags)];
  if (key) {
    contents.push(dataContent([new SafeBag({
      bagId: id_keyBag, bagValue: new Uint8Array(key.export({ format: 'der', type: 'pkcs8' })).buffer, bagAttributes: [localKeyId(keyId)],
    })]));
  }
  const authenticatedSafe = der(new AuthenticatedSafe(contents));
  const salt = crypto.randomBytes(16);
  const forge = loadForge();
  const macKey = forge.pkcs12.generateKey(null, forge.util.createBuffer(salt.toString('binary')), MAC_KEY_ID, MAC_ITERATIONS, 32, forge.md.sha256.create());
  const mac = crypto.createHmac('sha256', Buffer.from(macKey.getBytes(), 'binary')).update(authenticatedSafe).digest();
  return der(new PFX({
    version: 3,
    authSafe: new ContentInfo({ contentType: id_data, content: octets(authenticatedSafe) }),
    macData: new MacData({
      mac: new DigestInfo({ digestAlgorithm: new AlgorithmIdentifier({ algorithm: id_sha256, parameters: null }), digest: new OctetString(mac) }),
      macSalt: new OctetString(salt),
      iterations: MAC_ITERATIONS,
    }),
  }));
}
