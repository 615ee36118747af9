import { badParameter } from '../http/errors.js';

/** Key Vault's rule for secret, key, certificate and issuer names. */
export const OBJECT_NAME = /^[0-9a-zA-Z-]{1,127}$/;

export function checkObjectName(name: string) {
  if (!OBJECT_NAME.test(name)) throw badParameter(`The request URI contains an invalid name: ${name}`);
}
