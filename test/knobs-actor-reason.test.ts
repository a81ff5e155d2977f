// Every write names an actor and a reason (audit): a blank actor is refused everywhere and a
// blank reason on a promotion (pin and freeze already refused a blank reason). A freeze by a
// blank actor had been written and was then invisible to frozen() and the dry run, while the
// promote script refused automation: check() said yes, promote() said frozen.
import { describe, expect, it } from 'vitest';
import { knobsSuite } from './helpers/knobs-fixture.ts';

const KNOB = 'scheduler.retry_limit';

describe('actor and reason', () => {
  const suite = knobsSuite('single');

  it('a freeze by a blank actor is refused, and any freeze is seen by frozen() and check()', async () => {
    const { table } = await suite.seeded();
    await expect(table.freeze('', 'incident')).rejects.toMatchObject({
      field: 'actor',
      rule: 'required',
    });
    expect(await table.frozen()).toBeNull();
    // A freeze hash with no actor (written by an older version, or by hand) still freezes,
    // and frozen() and the dry run say so, as the promote script does.
    await table.redis.hset(table.keys.knobFreeze(), 'reason', 'incident', 'at', '1');
    expect(await table.frozen()).not.toBeNull();
    const change = {
      name: KNOB,
      value: 4,
      baseVersion: 1,
      actor: 'loop',
      actorKind: 'automation' as const,
      reason: 'tune',
    };
    await expect(table.check(change)).rejects.toThrow(/frozen/);
  });

  it('a promotion with a blank reason or actor is refused, naming the field', async () => {
    const { table } = await suite.seeded();
    await expect(
      table.promote({ name: KNOB, value: 4, baseVersion: 1, actor: 'op', reason: '  ' }),
    ).rejects.toMatchObject({ field: 'reason', rule: 'required' });
    await expect(
      table.promote({ name: KNOB, value: 4, baseVersion: 1, actor: '', reason: 'tune' }),
    ).rejects.toMatchObject({ field: 'actor', rule: 'required' });
    // Nothing was written: the audit holds only the seeds.
    expect((await table.audit({ limit: 1000 })).filter((a) => a.action !== 'knob.seed')).toEqual(
      [],
    );
  });

  it('a pin by a blank actor is refused', async () => {
    const { table } = await suite.seeded();
    await expect(table.pin(KNOB, '', 'hold')).rejects.toMatchObject({
      field: 'actor',
      rule: 'required',
    });
  });
});
