// A proposal of a multi-knob target is judged (gate, shadow) beside the other knobs' values:
// another knob of the target moving after it was made (an operator's change) makes it stale.
// It was checked only on the knobs it changes, stayed open, and its promotion landed a
// configuration (the new batch size on the operator's new linger) nothing had evaluated.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../controlplane/knobs/clock.ts';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { createLogger } from '../controlplane/log.ts';
import { LoopDaemon } from '../controlplane/loop/daemon.ts';
import { ProposalTable } from '../controlplane/loop/proposals.ts';
import type { KnobValues } from '../knobs/index.ts';
import { batchingTarget } from './helpers/batching-target.ts';
import { startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

describe('the configuration a proposal was judged on', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('does not promote after another knob of its target moved since the gate', async () => {
    const evaluated: KnobValues[] = [];
    const shadowed: { incumbent: KnobValues; candidate: KnobValues }[] = [];
    const target = batchingTarget({
      knobs: ['messaging.batch_size', 'messaging.linger_ms'],
      // The learner keeps the linger and changes the batch size only.
      propose: async (_c, current: KnobValues) =>
        (current['messaging.batch_size'] as number) >= 256
          ? null
          : { values: { ...current, 'messaging.batch_size': 256 }, evidence: {} },
      evaluate: async (_c, v: KnobValues, seed, slice) => {
        evaluated.push({ ...v });
        return (
          Math.abs((v['messaging.batch_size'] as number) - 256) + 10 + ((seed + slice) % 3) * 0.01
        );
      },
      startShadow: async (incumbent, candidate) => {
        shadowed.push({ incumbent: { ...incumbent }, candidate: { ...candidate } });
        return { report: async () => ({ verdict: 'better', details: {} }), stop: async () => {} };
      },
    });
    const clock = new ManualClock();
    const knobs = new KnobTable(redis.client(), { keys: uniqueKeys(), clock });
    await knobs.seed();
    clock.advance(3_600_000);
    const proposals = new ProposalTable(knobs);
    const daemon = new LoopDaemon({
      knobs,
      proposals,
      targets: [target],
      log: createLogger('test', 'silent'),
      minChangeIntervalMs: 60_000,
    });
    const linger0 = (await knobs.get('messaging.linger_ms')).value as number;
    await daemon.tick(); // propose
    await daemon.tick(); // gate, on linger0
    expect(evaluated.every((v) => v['messaging.linger_ms'] === linger0)).toBe(true);
    // An operator changes the other knob of the target.
    await knobs.promote({
      name: 'messaging.linger_ms',
      value: linger0 + 100,
      baseVersion: 1,
      actor: 'op',
      reason: 'by hand',
    });
    await daemon.tick(); // shadow
    clock.advance(5_001);
    await daemon.tick(); // held: clean baseline
    clock.advance(1_001);
    await daemon.tick();
    const [p] = await proposals.list();
    const batch = (await knobs.get('messaging.batch_size')).value;
    const linger = (await knobs.get('messaging.linger_ms')).value;
    // Live now: batch 256 on linger0 + 100, a configuration the gate never ran.
    const gated = evaluated.some(
      (v) => v['messaging.batch_size'] === 256 && v['messaging.linger_ms'] === linger,
    );
    expect(
      { status: p?.status, batch, linger, gated },
      `shadow ran on ${JSON.stringify(shadowed)}`,
    ).toMatchObject({ status: 'rejected' });
  });
});
