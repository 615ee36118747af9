import crypto, { type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import type { Keyring } from '../../crypto/envelope.js';
import type { Clock } from '../../clock.js';
import type { SettingsRepository } from '../../storage/settings.js';
import { addMonths } from './policy.js';
import { createCaRoot, issueByCa, type IssuanceRequest } from './x509.js';

/**
 * Coffer's integrated CA issuer (`CofferCA` in a policy's issuer name): a per-deployment root whose private key is
 * sealed with a system key and kept in the settings table, so every node issues under the same root. The first node
 * to need it creates it; `putIfAbsent` makes a concurrent second node adopt the first one's root.
 */
export const INTEGRATED_CA = 'CofferCA';
const generateKeyPair = promisify(crypto.generateKeyPair);
const SETTING = 'certificates.integrated-ca';

export function createIntegratedCa(deps: { settings: SettingsRepository; keyring: Keyring; clock: Clock }) {
  const { settings, keyring, clock } = deps;
  let cached: { cert: Buffer; key: KeyObject } | undefined;

  async function root() {
    if (cached) return cached;
    let stored = await settings.get(SETTING);
    if (!stored) {
      // RSA: the root rides in every chain, and every client verifies RSA signatures.
      const { privateKey } = await generateKeyPair('rsa', { modulusLength: 3072 });
      const notBefore = new Date(clock.now());
      const cert = await createCaRoot(privateKey, `CN=Coffer Integrated CA ${crypto.randomBytes(4).toString('hex')}, O=Coffer`, notBefore, addMonths(notBefore, 240));
      const sealedKey = keyring.sealSystem('certificate-ca', 'root', privateKey.export({ format: 'der', type: 'pkcs8' }));
      stored = await settings.putIfAbsent(SETTING, JSON.stringify({ cert: cert.toString('base64'), key: sealedKey.toString('base64') }));
    }
    const parsed = JSON.parse(stored) as { cert: string; key: string };
    const der = keyring.openSystem('certificate-ca', 'root', Buffer.from(parsed.key, 'base64'));
    cached = { cert: Buffer.from(parsed.cert, 'base64'), key: crypto.createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }) };
    return cached;
  }

  return {
    /** The root certificate as PEM, for clients to trust. */
    async rootPem() {
      return new crypto.X509Certificate((await root()).cert).toString();
    },
    /** Issues a certificate for `key`; returns the chain, leaf first. */
    async issue(key: KeyObject, req: IssuanceRequest): Promise<Buffer[]> {
      const ca = await root();
      return [await issueByCa(key, req, ca.cert, ca.key), ca.cert];
    },
  };
}

export type IntegratedCa = ReturnType<typeof createIntegratedCa>;
