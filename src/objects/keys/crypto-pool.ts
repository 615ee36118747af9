import os from 'node:os';
import type { KeyObject } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { KeyVaultError } from '../../http/errors.js';
import { CryptoFailure } from './key-crypto.js';
import { createLru } from './lru.js';

/**
 * A pool of worker threads for private-key operations. node:crypto's RSA private operations and the ECDSA used for
 * digest signing are synchronous, so running them on the event loop would stall every other request; the pool puts
 * them on all cores. A worker holds the process open only while it has work: an idle pool never keeps it alive.
 */
export interface CryptoTask {
  op: 'sign' | 'verify' | 'encrypt' | 'decrypt';
  alg: string;
  /**
   * The parsed private key. Cloning a KeyObject to a worker shares OpenSSL's key (nothing is re-parsed) but still
   * costs ~15 µs, so it is sent only to a worker that does not hold it yet.
   */
  key: KeyObject;
  /** vault/name/version: the worker keeps the key (and what it derives from it) under this name. */
  cacheKey: string;
  input: Buffer;
  signature?: Buffer;
}

export type CryptoReply = { id: number; result?: Buffer | boolean; error?: { kind: string; status?: number; code?: string; message: string } };

export interface CryptoPool {
  run(task: CryptoTask & { op: 'verify' }): Promise<boolean>;
  run(task: CryptoTask): Promise<Buffer>;
  close(): Promise<void>;
}

// Under tsx (tests, development) the worker is TypeScript and needs tsx's loader; built code runs the .js directly.
const FROM_SOURCE = import.meta.url.endsWith('.ts');
const ENTRY = new URL(FROM_SOURCE ? './crypto-worker.ts' : './crypto-worker.js', import.meta.url).href;
const BOOT = `const { workerData } = require('node:worker_threads');
(async () => { if (workerData.tsx) (await import('tsx/esm/api')).register(); await import(workerData.entry); })();`;

/**
 * The event loop keeps one core busy with the requests themselves, so the pool has one thread fewer than the
 * machine has cores (at least one). Threads start on first use; each is a V8 isolate of its own, so its heap is
 * kept small (a worker holds a few keys and short-lived buffers).
 */
const DEFAULT_SIZE = Math.max(1, os.availableParallelism() - 1);
const WORKER_LIMITS = { maxOldGenerationSizeMb: 32, maxYoungGenerationSizeMb: 4 };
/** Keys a worker keeps; the pool mirrors each worker's cache to know which keys it need not send. */
export const WORKER_KEY_CACHE = 1000;
/** A worker's answer when it no longer holds a key the pool thought it had: the task is sent again with the key. */
export const KEY_NOT_HELD = 'KeyNotHeld';

export function createCryptoPool(size = DEFAULT_SIZE): CryptoPool {
  type Pending = { resolve: (v: any) => void; reject: (e: Error) => void; task: CryptoTask };
  type Slot = { worker?: Worker; pending: Map<number, Pending>; held: ReturnType<typeof createLru<string, true>> };
  const slots: Slot[] = Array.from({ length: Math.max(1, size) }, () => ({ pending: new Map(), held: createLru<string, true>(WORKER_KEY_CACHE) }));
  let nextId = 0;

  const spawn = (slot: (typeof slots)[number]) => {
    const worker = new Worker(BOOT, { eval: true, workerData: { entry: ENTRY, tsx: FROM_SOURCE }, resourceLimits: WORKER_LIMITS });
    worker.on('message', (reply: CryptoReply) => {
      const p = slot.pending.get(reply.id);
      if (!p) return;
      const e = reply.error;
      if (e?.kind === KEY_NOT_HELD) return worker.postMessage({ id: reply.id, ...p.task });
      slot.pending.delete(reply.id);
      if (slot.pending.size === 0) worker.unref();
      if (!e) return p.resolve(typeof reply.result === 'boolean' ? reply.result : Buffer.from(reply.result as Uint8Array));
      if (e.kind === 'KeyVaultError') p.reject(new KeyVaultError(e.status!, e.code!, e.message));
      else if (e.kind === 'CryptoFailure') p.reject(new CryptoFailure(e.message));
      else p.reject(new Error(e.message));
    });
    const fail = (err: Error) => {
      for (const p of slot.pending.values()) p.reject(err);
      slot.pending.clear();
      slot.worker = undefined;
      slot.held = createLru<string, true>(WORKER_KEY_CACHE);
    };
    worker.on('error', fail);
    worker.on('exit', () => fail(new Error('crypto worker exited')));
    // After the listeners: attaching a 'message' listener would otherwise keep a reference.
    worker.unref();
    return worker;
  };

  return {
    run(task: CryptoTask): Promise<any> {
      const slot = slots.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
      slot.worker ??= spawn(slot);
      const id = nextId++;
      const held = slot.held.get(task.cacheKey);
      if (!held) slot.held.set(task.cacheKey, true);
      return new Promise((resolve, reject) => {
        if (slot.pending.size === 0) slot.worker!.ref();
        slot.pending.set(id, { resolve, reject, task });
        const { key, ...withoutKey } = task;
        slot.worker!.postMessage(held ? { id, ...withoutKey } : { id, key, ...withoutKey });
      });
    },
    async close() {
      await Promise.all(slots.map((s) => s.worker?.terminate()));
    },
  };
}
