// Puts a benchmark's Redis back to the same state before each measured run: empty, and with no
// AOF rewrite running, scheduled or about to be triggered by what earlier runs appended.
import type { Redis } from 'ioredis';
import { infoValue } from './redis-cpu.ts';

/** Waits until no AOF rewrite or RDB save is in progress or scheduled. */
async function waitForPersistenceIdle(admin: Redis, deadline: number): Promise<string> {
  for (;;) {
    const info = (await admin.info('persistence')) as string;
    const busy = [
      'aof_rewrite_in_progress',
      'aof_rewrite_scheduled',
      'rdb_bgsave_in_progress',
    ].filter((f) => infoValue(info, f) === '1');
    if (busy.length === 0) return info;
    if (Date.now() > deadline) {
      throw new Error(`redis persistence still busy (${busy.join(', ')}) after the wait`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * FLUSHALL (synchronous), then waits until no AOF rewrite is in progress or scheduled. With the
 * AOF on it also rewrites the AOF of the now empty dataset (BGREWRITEAOF) and waits for that
 * rewrite: the file earlier runs grew is dropped, so its growth cannot trigger an automatic
 * rewrite (a fork and a file copy on the server) in the middle of the next run.
 */
export async function flushAndSettle(admin: Redis, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  await admin.flushall('SYNC');
  const info = await waitForPersistenceIdle(admin, deadline);
  if (infoValue(info, 'aof_enabled') !== '1') return;
  await admin.bgrewriteaof();
  const after = await waitForPersistenceIdle(admin, deadline);
  const status = infoValue(after, 'aof_last_bgrewrite_status');
  if (status !== 'ok') throw new Error(`AOF rewrite after FLUSHALL failed (status ${status})`);
}
