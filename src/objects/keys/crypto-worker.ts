import { parentPort } from 'node:worker_threads';
import { KeyVaultError } from '../../http/errors.js';
import type { KeyObject } from 'node:crypto';
import { CryptoFailure, decrypt, encrypt, signDigest, verifyDigest } from './key-crypto.js';
import { createLru } from './lru.js';
import { KEY_NOT_HELD, WORKER_KEY_CACHE, type CryptoTask, type CryptoReply } from './crypto-pool.js';

/**
 * The keys this worker holds, by vault/name/version (key material of a version never changes). The pool sends a key
 * only with the first task for it, and keeping the same KeyObject lets key-crypto's per-KeyObject derivations (an EC
 * private scalar) be reused.
 */
const keys = createLru<string, KeyObject>(WORKER_KEY_CACHE);
class KeyNotHeld extends Error {}

/** A crypto pool thread: runs one private-key operation per message, so the event loop never waits on RSA or ECDSA. */
async function run(task: CryptoTask): Promise<Buffer | boolean> {
  let key = keys.get(task.cacheKey);
  if (!key) {
    if (!task.key) throw new KeyNotHeld(task.cacheKey);
    keys.set(task.cacheKey, (key = task.key));
  }
  const input = Buffer.from(task.input);
  switch (task.op) {
    case 'sign': return signDigest(task.alg, key, input);
    case 'verify': return verifyDigest(task.alg, key, input, Buffer.from(task.signature!));
    case 'encrypt': return encrypt(task.alg, key, input);
    case 'decrypt': return decrypt(task.alg, key, input);
  }
}

parentPort!.on('message', async (task: CryptoTask & { id: number }) => {
  let reply: CryptoReply;
  try {
    reply = { id: task.id, result: await run(task) };
  } catch (err) {
    reply = {
      id: task.id,
      error: err instanceof KeyVaultError ? { kind: 'KeyVaultError', status: err.status, code: err.code, message: err.message }
        : { kind: err instanceof KeyNotHeld ? KEY_NOT_HELD : err instanceof CryptoFailure ? 'CryptoFailure' : 'Error', message: (err as Error).message },
    };
  }
  parentPort!.postMessage(reply);
});
