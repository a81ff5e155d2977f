// The knob client reads the epoch on its command connection while changes arrive on its
// subscriber connection, and Redis orders nothing between the two: a change published after
// the epoch GET ran can be applied before the GET's reply is read. The client took that for
// lost writes ("regressed") and let the rows it read replace a newer value applied meanwhile:
// it went back a version, with change events in reverse order, and reported a loss that never
// happened (review). Spies delay the two replies to make the ordering deterministic.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { KnobClient } from '../controlplane/knobs/client.ts';
import { ManualClock } from '../controlplane/knobs/clock.ts';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { eventually, startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

const HOUR = 3_600_000;
const NAME = 'scheduler.policy';

describe('knob client resync ordering', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('does not take its own progress for lost writes, nor go back a version', async () => {
    const keys = uniqueKeys();
    const clock = new ManualClock(Date.now() + HOUR);
    const admin = new KnobTable(redis.client(), { keys, clock });
    await admin.seed();
    clock.advance(HOUR);
    const table = new KnobTable(redis.client(), { keys });
    const knobs = await KnobClient.start({ table, names: [NAME], resyncIntervalMs: 0 });
    try {
      const events: string[] = [];
      knobs.on('change', (e) => events.push(`${String(e.value)}@${e.version}`));
      const resyncs: { lost: boolean }[] = [];
      knobs.on('resync', (r) => resyncs.push(r));
      // The epoch GET runs at E; sjf (v2) is promoted and its message applied before the GET's
      // reply is read.
      const realEpoch = table.epoch.bind(table);
      vi.spyOn(table, 'epoch').mockImplementationOnce(async () => {
        const e = await realEpoch();
        await admin.promote({ name: NAME, value: 'sjf', baseVersion: 1, actor: 'op', reason: 'a' });
        await eventually(() => knobs.version(NAME) === 2, 'client sees v2');
        return e;
      });
      // The rows read runs (v2); srpt (v3) is promoted and its message applied before the
      // read's reply is read.
      const realPipeline = table.redis.pipeline.bind(table.redis);
      vi.spyOn(table.redis, 'pipeline').mockImplementationOnce(() => {
        const pipe = realPipeline();
        const exec = pipe.exec.bind(pipe);
        pipe.exec = (async () => {
          const res = await exec();
          clock.advance(HOUR);
          await admin.promote({
            name: NAME,
            value: 'srpt',
            baseVersion: 2,
            actor: 'op',
            reason: 'b',
          });
          await eventually(() => knobs.version(NAME) === 3, 'client sees v3');
          return res;
        }) as typeof pipe.exec;
        return pipe;
      });
      // A reload reads the rows whatever the epoch says (as after a reconnect).
      await (knobs as unknown as { reload(): Promise<void> }).reload();
      vi.restoreAllMocks();
      expect((await table.get(NAME)).version).toBe(3);
      expect({ value: knobs.get(NAME), version: knobs.version(NAME) }).toEqual({
        value: 'srpt',
        version: 3,
      });
      expect(events).toEqual(['sjf@2', 'srpt@3']);
      expect(resyncs.every((r) => !r.lost)).toBe(true);
    } finally {
      vi.restoreAllMocks();
      await knobs.close();
    }
  });
});
