// The SLO guard's baseline starts after the last other change on the service (plus its
// settle): a promotion made right after another's rollback read the regressed period as its
// baseline, and its own 40% regression passed as ok. Without enough clean points it says
// no_baseline (the daemon holds promotions until there are: loop-review-daemon.test.ts). A
// rollback finds the value to restore in the promotion's own history entry when the base
// version's entry is gone (it threw on every pass, and the regression stayed live). A
// worsening from a baseline of 0 is measured against the SLO's noise floor (any observation
// was an unbounded regression).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SloGuard, type SloSpec } from '../controlplane/loop/slo-guard.ts';
import { livePromotion } from './helpers/live-promotion.ts';
import { startTestRedis, type TestRedis } from './helpers/redis.ts';

const SLO: SloSpec = {
  service: 'scheduler',
  metric: 'jct_ms_p99',
  direction: 'min',
  maxRegression: 0.2,
  baselineMs: 1_000,
  watchMs: 1_200,
  settleMs: 0,
  minPoints: 3,
  stepMs: 100,
};

describe('the SLO guard after another change on the service', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterAll(async () => {
    await redis?.stop();
  });

  /** scheduler.policy fifo -> srpt, promoted live, its service's jct at `before` until then. */
  const policyPromotion = (before: number) => {
    const clock = { offsetMs: 0, now: () => Date.now() + clock.offsetMs };
    return livePromotion({
      redis: redis.client(),
      clock,
      service: 'scheduler',
      metric: 'jct_ms',
      before,
      learner: 'bo',
      change: { name: 'scheduler.policy', value: 'srpt' },
    });
  };

  it('measures a worsening from a baseline of 0 against the noise floor, not against 0', async () => {
    const at0 = () => policyPromotion(0);
    // An idle shard's p99 of 0 ms, then 1 ms: within a 20 ms floor; a rise to 30 ms is not.
    const slo = { ...SLO, noiseFloor: 20 };
    const small = await at0();
    await small.emit(1, 1_300);
    const ok = await new SloGuard(small.knobs, small.proposals).check(small.proposal, slo);
    expect(ok).toMatchObject({ verdict: 'ok' });
    expect(ok.worsening).toBeCloseTo(0.05, 6);
    const large = await at0();
    await large.emit(30, 1_300);
    const bad = await new SloGuard(large.knobs, large.proposals).check(large.proposal, slo);
    expect(bad).toMatchObject({ verdict: 'regressed' });
    expect(bad.worsening).toBeCloseTo(1.5, 6);
  }, 30_000);

  it("rolls back to the value before the promotion when the base version's entry is gone", async () => {
    const a = await policyPromotion(10);
    // The seed's entry (version 1) trimmed from the history, or lost.
    const seed = (await a.knobs.history('scheduler.policy')).find((h) => h.version === 1);
    await redis.client().xdel(a.knobs.keys.knobHistory('scheduler.policy'), seed!.id);
    await a.emit(40, 500);
    const r = await new SloGuard(a.knobs, a.proposals).check(a.proposal, SLO);
    expect(r.verdict).toBe('regressed');
    expect((await a.knobs.get('scheduler.policy')).value).toBe('fifo');
  }, 30_000);

  it('reads no baseline from before the rolled-back promotion that preceded it', async () => {
    // A: scheduler.policy fifo -> srpt at a level of 10; it regresses to 40 and is rolled back.
    const a = await policyPromotion(10);
    const guard = new SloGuard(a.knobs, a.proposals);
    await a.emit(40, 500);
    expect((await guard.check(a.proposal, SLO)).verdict).toBe('regressed');
    // B, on the same service, promoted right after A's rollback; the metric goes to 14.
    const retry = await a.knobs.get('scheduler.retry_limit');
    const b0 = await a.proposals.create({
      learner: 'other',
      reason: 'test',
      changes: [
        {
          name: 'scheduler.retry_limit',
          value: (retry.value as number) + 1,
          baseVersion: retry.version,
        },
      ],
    });
    await a.proposals.transition(b0.id, 'simulated', { actor: 'gate', reason: 'ok' });
    await a.knobs.promoteAll({
      actor: 'other',
      actorKind: 'automation',
      reason: 'promote',
      proposalId: b0.id,
      changes: b0.changes,
    });
    const b = (await a.proposals.get(b0.id)).proposal;
    await a.emit(14, 1_400);
    const rb = await guard.check(b, SLO, ['scheduler.policy']);
    // A's regressed period (40) is no baseline for B: B is not judged ok against it.
    expect(rb.verdict).toBe('no_baseline');
    expect(rb.reason).toMatch(/baseline points \(read after scheduler\.policy's change at \d+\)/);
  }, 30_000);
});
