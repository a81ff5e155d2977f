// A study tuned on the log scale optimises the log of its metric's mean over the training
// seeds: the tuners rank configurations as the study scores them. (It took the mean of the
// logs, a geometric mean, which can rank two configurations the other way round: per-seed
// 1 and 100 average 50.5, but their logs average less than those of 40 and 40.)
import { describe, expect, it } from 'vitest';
import type { KnobObjective } from '../envs/core/index.ts';
import { CATALOG, findKnob } from '../knobs/catalog.ts';
import { fixedObjective, onLogScale } from '../experiments/tuning.ts';

const batch = findKnob(CATALOG, 'scheduler.dispatch_batch')!;

/** A wait in seconds per workload seed: batch 1 is erratic, batch 2 steady. */
const waits: KnobObjective = {
  id: 'waits',
  knobs: [batch],
  objective: { metric: 'wait_s', direction: 'min' },
  evaluate: async (values, seed) => ({
    wait_s: values['scheduler.dispatch_batch'] === 1 ? (seed === 1 ? 1 : 100) : 40,
  }),
};

describe('tuning on the log scale over several training seeds', () => {
  it('ranks configurations by the log of the mean, as the study scores them', async () => {
    const train = onLogScale(fixedObjective(waits, [1, 2]));
    expect(train.objective).toEqual({ metric: 'log_wait_s', direction: 'min' });
    const erratic = await train.evaluate({ 'scheduler.dispatch_batch': 1 });
    const steady = await train.evaluate({ 'scheduler.dispatch_batch': 2 });
    expect(erratic['wait_s']).toBe(50.5);
    expect(erratic['log_wait_s']).toBeCloseTo(Math.log(50.5), 12);
    expect(steady['log_wait_s']).toBeCloseTo(Math.log(40), 12);
    expect(steady['log_wait_s']!).toBeLessThan(erratic['log_wait_s']!);
    // The tuners' view (a seed per evaluation, ignored) is the same function.
    const k = await train.asKnobObjective().evaluate({ 'scheduler.dispatch_batch': 1 }, 7);
    expect(k['log_wait_s']).toBe(erratic['log_wait_s']);
  });
});
