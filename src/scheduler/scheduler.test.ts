import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openStorage, type Storage } from '../storage/engine.js';
import { createSettingsRepository } from '../storage/settings.js';
import { createClock } from '../clock.js';
import { createScheduler, CLOCK_OFFSET_SETTING } from './scheduler.js';
import { enginesUnderTest, freshDatabase } from '../../test/support/postgres.js';

const LEASE_MS = 300;

/** A node of a cluster, reduced to its scheduler: it counts its job runs. */
function node(storage: Storage, nodeId: string) {
  const clock = createClock();
  const runs: number[] = [];
  const errors: string[] = [];
  const scheduler = createScheduler({ storage, clock, nodeId, leaseMs: LEASE_MS, onError: (job) => errors.push(job) });
  scheduler.add({ name: 'count', run: async (now) => { runs.push(now); } });
  return { clock, runs, errors, scheduler };
}

for (const { engine, skip } of enginesUnderTest()) {
  const open = async () => openStorage({
    dataDir: fs.mkdtempSync(path.join(os.tmpdir(), 'coffer-scheduler-test-')),
    url: engine === 'postgres' ? await freshDatabase() : undefined,
  });

  test(`${engine}: every node's heartbeat counts it live until it stops or its heartbeat expires`, { skip }, async () => {
    const storage = await open();
    try {
      const [a, b, c] = ['node-a', 'node-b', 'node-c'].map((id) => node(storage, id));
      assert.equal(a.scheduler.liveNodes(), 1, 'before its first tick a node counts itself only');
      for (const n of [a, b, c]) await n.scheduler.runNow();
      await a.scheduler.runNow();
      assert.equal(a.scheduler.liveNodes(), 3);
      await b.scheduler.stop();
      await a.scheduler.runNow();
      assert.equal(a.scheduler.liveNodes(), 2, 'a stopped node withdraws its heartbeat at once');
      await new Promise((resolve) => setTimeout(resolve, LEASE_MS + 100));
      await a.scheduler.runNow();
      assert.equal(a.scheduler.liveNodes(), 1, 'a silent node (c) stops counting once its heartbeat expires');
    } finally {
      await storage.close();
    }
  });

  test(`${engine}: one lease holder runs the jobs; another node takes over when it dies, or at once when it stops`, { skip }, async () => {
    const storage = await open();
    try {
      const a = node(storage, 'node-a');
      const b = node(storage, 'node-b');
      await a.scheduler.runNow();
      await b.scheduler.runNow();
      await a.scheduler.runNow();
      assert.equal(a.runs.length, 2);
      assert.equal(b.runs.length, 0, 'the non-holder ran nothing');

      // node-a dies: it stops renewing, and node-b takes over only once the lease has expired.
      await b.scheduler.runNow();
      assert.equal(b.runs.length, 0);
      await new Promise((r) => setTimeout(r, LEASE_MS + 100));
      await b.scheduler.runNow();
      assert.equal(b.runs.length, 1, 'node-b took over');
      await a.scheduler.runNow();
      assert.equal(a.runs.length, 2, 'the old holder does not run again while node-b holds the lease');

      // A graceful stop hands the lease back at once.
      await b.scheduler.stop();
      await a.scheduler.runNow();
      assert.equal(a.runs.length, 3);
    } finally {
      await storage.close();
    }
  });

  test(`${engine}: every node picks up the shared clock offset at its next tick`, { skip }, async () => {
    const storage = await open();
    try {
      const holder = node(storage, 'node-a');
      const other = node(storage, 'node-b');
      await holder.scheduler.runNow();
      await createSettingsRepository(storage.db).put(CLOCK_OFFSET_SETTING, String(91 * 86_400_000));
      await holder.scheduler.runNow();
      await other.scheduler.runNow();
      assert.equal(holder.clock.offsetMs(), 91 * 86_400_000);
      assert.equal(other.clock.offsetMs(), 91 * 86_400_000, 'a node without the lease follows the clock too');
      assert.ok(holder.runs[1] - Date.now() > 90 * 86_400_000, 'jobs run at the advanced time');
    } finally {
      await storage.close();
    }
  });

  test(`${engine}: a failing job is reported and does not stop the next`, { skip }, async () => {
    const storage = await open();
    try {
      const n = node(storage, 'node-a');
      const done: unknown[] = [];
      const scheduler = createScheduler({
        storage, clock: n.clock, nodeId: 'node-a', leaseMs: LEASE_MS,
        onError: (job) => n.errors.push(job), onJobDone: (job, result) => done.push([job, result]),
      });
      scheduler.add({ name: 'broken', run: async () => { throw new Error('boom'); } });
      scheduler.add({ name: 'purge', run: async () => 2 });
      scheduler.add({ name: 'idle', run: async () => 0 });
      await scheduler.runNow();
      assert.deepEqual(n.errors, ['broken']);
      assert.deepEqual(done, [['purge', 2]], 'only jobs that did something are reported');
    } finally {
      await storage.close();
    }
  });
}
