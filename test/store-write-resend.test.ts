// A table write is once-only per call: when a dropped connection loses its reply and ioredis
// resends the very same script, the resend answers the first run's versions and changes
// nothing more. (The resend found the versions the first run wrote and answered stale for a
// write that was applied; with expect 'any' it wrote again, its log entry twice.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Table } from '../controlplane/store/table.ts';
import { throughDropper } from './helpers/reply-dropper.ts';
import { startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

const fields = { id: { type: 'string' }, state: { type: 'string' } } as const;

describe('a table write resent after a lost reply', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterAll(async () => {
    await redis?.stop();
  });

  for (const expect_ of [1, 'any'] as const) {
    it(`answers its first run (expect ${expect_}), and writes once`, async () => {
      const { proxy, client, close } = await throughDropper(redis);
      try {
        const keys = uniqueKeys();
        const spec = {
          name: 'things',
          fields,
          id: (r: { id: string }) => r.id,
          family: () => 'things',
        };
        const table = new Table(client, keys, spec);
        const direct = new Table(redis.client(), keys, spec);
        expect(await table.insert({ id: 'a', state: 'open' })).toBe(1);
        const log = keys.key('things', 'log', 'audit');
        proxy.armed = true;
        const versions = await table.write(
          [{ row: { id: 'a', state: 'closed' }, expect: expect_ }],
          [{ key: log, maxLen: 100, fields: { action: 'close' } }],
        );
        expect(proxy.dropped).toBe(1);
        expect(versions).toEqual([2]);
        expect(await direct.get('things', 'a')).toMatchObject({
          row: { state: 'closed' },
          version: 2,
        });
        expect(await redis.client().xlen(log)).toBe(1);
        // The next call is a call of its own: refused as stale at the old base.
        await expect(
          table.write([{ row: { id: 'a', state: 'open' }, expect: 1 }]),
        ).rejects.toMatchObject({ name: 'StaleVersionError' });
      } finally {
        await close();
      }
    });
  }
});
