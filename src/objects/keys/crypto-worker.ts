import { parentPort } from 'node:worker_threads';
import { KeyVaultError } from '../../http/errors.js';
import { CryptoFailure, decrypt, encrypt, loadPrivate, signDigest, verifyDigest } from './key-crypto.js';
import type { CryptoTask, CryptoReply } from './crypto-pool.js';

/** A crypto pool thread: runs one private-key operation per message, so the event loop never waits on RSA or ECDSA. */
async function run(task: CryptoTask): Promise<Buffer | boolean> {
  const key = loadPrivate(Buffer.from(task.der));
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
