import { parentPort } from 'node:worker_threads';
import { KeyVaultError } from '../../http/errors.js';
import type { KeyObject } from 'node:crypto';
import { CryptoFailure, decrypt, encrypt, signDigest, verifyDigest } from './key-crypto.js';
import { createLru } from './lru.js';
import type { CryptoTask, CryptoReply } from './crypto-pool.js';

/**
 * Each message brings a fresh clone of the KeyObject; keeping the first one per key version lets key-crypto's
 * per-KeyObject derivations (an EC private scalar) be reused. Key material of a version never changes.
 */
const keys = createLru<string, KeyObject>(1000);

/** A crypto pool thread: runs one private-key operation per message, so the event loop never waits on RSA or ECDSA. */
async function run(task: CryptoTask): Promise<Buffer | boolean> {
  let key = keys.get(task.cacheKey);
  if (!key) keys.set(task.cacheKey, (key = task.key));
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
        : { kind: err instanceof CryptoFailure ? 'CryptoFailure' : 'Error', message: (err as Error).message },
    };
  }
  parentPort!.postMessage(reply);
});
