// Test fixture for the sharded scheduler: a seeded knobs table on a manual clock, a knob client
// following the scheduler's knobs and `placement.map`, and a way to promote a new map (past the
// cooldown) that returns once the client sees it.
import { KnobClient } from '../../controlplane/knobs/client.ts';
import { ManualClock } from '../../controlplane/knobs/clock.ts';
import { KnobTable } from '../../controlplane/knobs/table.ts';
import type { RedisClient } from '../../controlplane/redis/connect.ts';
import { PLACEMENT_KNOB } from '../../controlplane/scheduler/placement.ts';
import { SCHEDULER_KNOBS } from '../../controlplane/scheduler/service.ts';
import type { Keys } from '../../controlplane/store/keys.ts';
import { catalogWith } from './scheduler-harness.ts';
import { eventually } from './redis.ts';

const HOUR = 3_600_000;

export async function placementKnobs(client: RedisClient, keys: Keys, leaseMs: number) {
  const clock = new ManualClock(Date.now());
  const table = new KnobTable(client, {
    keys,
    clock,
    catalog: catalogWith({ 'scheduler.lease_ms': leaseMs }),
  });
  await table.seed();
  const knobs = await KnobClient.start({
    table,
    names: [...SCHEDULER_KNOBS, PLACEMENT_KNOB],
    resyncIntervalMs: 200,
  });
  /** Promotes `value` as the placement map; resolves to its version once `knobs` has it. */
  const setMap = async (value: Record<string, number>): Promise<number> => {
    clock.advance(HOUR);
    const row = await table.get(PLACEMENT_KNOB);
    const { version } = await table.promote({
      name: PLACEMENT_KNOB,
      value,
      baseVersion: row.version,
      actor: 'test',
      reason: 'test',
    });
    await eventually(
      () => knobs.version(PLACEMENT_KNOB) >= version,
      'the knob client sees the map',
    );
    return version;
  };
  return { table, clock, knobs, setMap };
}
