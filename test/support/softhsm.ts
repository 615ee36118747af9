import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import type * as Pkcs11Types from 'pkcs11js';

/** SoftHSM2 from Debian (`softhsm2`): the PKCS#11 token of the HSM tests, which skip without it. */
export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';
export const softHsmAvailable = fs.existsSync(SOFTHSM_MODULE) && fs.existsSync('/usr/bin/softhsm2-util');

/**
 * A SoftHSM2 token of the calling test process's own, in a fresh directory. SoftHSM2 reads SOFTHSM2_CONF when the
 * module initializes, so this process (and any `coffer server start` it spawns with its environment) uses it.
 */
export function createSoftHsmToken(label: string, pin: string) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-softhsm-'));
  fs.mkdirSync(path.join(dir, 'tokens'));
  fs.writeFileSync(path.join(dir, 'softhsm2.conf'), `directories.tokendir = ${dir}/tokens\nobjectstore.backend = file\n`);
  process.env.SOFTHSM2_CONF = path.join(dir, 'softhsm2.conf');
  execFileSync('softhsm2-util', ['--init-token', '--free', '--label', label, '--so-pin', '135791', '--pin', pin], { stdio: 'ignore' });
  return { options: { module: SOFTHSM_MODULE, tokenLabel: label, pin }, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** One token object's protection as the token reports it. */
export interface TokenObject { id: string; label: string; sensitive: boolean; extractable: boolean; neverExtractable: boolean }

/**
 * The test's own view of the token: what objects it holds and how the token protects them. Works beside a Coffer in
 * the same process (which initialized and logged in to the module already) or in another one.
 */
export function inspectToken(label: string, pin: string) {
  const pkcs11js = createRequire(import.meta.url)('pkcs11js') as typeof Pkcs11Types;
  const p11 = new pkcs11js.PKCS11();
  p11.load(SOFTHSM_MODULE);
  try {
    p11.C_Initialize();
  } catch { /* initialized already by a Coffer in this process */ }
  const slot = p11.C_GetSlotList(true).find((s) => p11.C_GetTokenInfo(s).label.trim() === label)!;
  const session = p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION);
  try {
    p11.C_Login(session, pkcs11js.CKU_USER, pin);
  } catch { /* logged in already: the login belongs to the application, not the session */ }
  const flag = (value: unknown) => (value as Buffer)[0] === 1;
  return {
    objects(kind: 'private' | 'secret'): TokenObject[] {
      p11.C_FindObjectsInit(session, [{ type: pkcs11js.CKA_CLASS, value: kind === 'private' ? pkcs11js.CKO_PRIVATE_KEY : pkcs11js.CKO_SECRET_KEY }]);
      const handles = p11.C_FindObjects(session, 1000);
      p11.C_FindObjectsFinal(session);
      return handles.map((h) => {
        const [id, objectLabel, sensitive, extractable, neverExtractable] = p11.C_GetAttributeValue(session, h, [
          { type: pkcs11js.CKA_ID }, { type: pkcs11js.CKA_LABEL }, { type: pkcs11js.CKA_SENSITIVE },
          { type: pkcs11js.CKA_EXTRACTABLE }, { type: pkcs11js.CKA_NEVER_EXTRACTABLE },
        ]).map((a) => a.value);
        return {
          id: (id as Buffer).toString('hex'), label: (objectLabel as Buffer).toString('utf8'),
          sensitive: flag(sensitive), extractable: flag(extractable), neverExtractable: flag(neverExtractable),
        };
      });
    },
    close: () => p11.C_CloseSession(session),
  };
}
