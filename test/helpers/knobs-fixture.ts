// A knobs-table suite's scaffolding: a redis-server of one backend for the suite, and seeded
// tables on keys of their own with a manual clock an hour past the seeding (every cooldown).
import { afterAll, beforeAll } from 'vitest';
import { ManualClock } from '../../controlplane/knobs/clock.ts';
import { KnobTable } from '../../controlplane/knobs/table.ts';
import { startTestRedis, uniqueKeys, type Backend, type TestRedis } from './redis.ts';

export const HOUR = 3_600_000;

export function knobsSuite(backend: Backend) {
  let redis: TestRedis | undefined;
  beforeAll(async () => {
    redis = await startTestRedis(backend);
  });
  afterAll(async () => {
    await redis?.stop();
  });
  const server = (): TestRedis => {
    if (!redis) throw new Error('knobsSuite: used before the suite started');
    return redis;
  };
  return {
    server,
    /** A seeded table and its clock, an hour past the seed. */
    async seeded(): Promise<{ table: KnobTable; clock: ManualClock }> {
      const clock = new ManualClock();
      const table = new KnobTable(server().client(), { keys: uniqueKeys(), clock });
      await table.seed();
      clock.advance(HOUR); // past every cooldown
      return { table, clock };
    },
  };
}
