import { createRequire } from 'node:module';
import { webcrypto } from 'node:crypto';
import type * as X509 from '@peculiar/x509';

const require = createRequire(import.meta.url);
let x509: typeof X509 | undefined;

/**
 * @peculiar/x509, loaded on first use: it and its ASN.1 stack are ~180 modules (~120 ms of every start and their share
 * of memory), and only issuing certificates (and the local CA's first start) needs them.
 */
export function loadX509(): typeof X509 {
  if (!x509) {
    require('reflect-metadata'); // tsyringe, under @peculiar/x509, needs the polyfill first
    x509 = require('@peculiar/x509') as typeof X509;
    x509.cryptoProvider.set(webcrypto as unknown as Crypto);
  }
  return x509;
}
