// The SLO guard on real Redis with real telemetry streams: a promotion that worsens the live
// metric beyond the bound is rolled back by itself; one that holds stands.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SloGuard, type SloSpec } from '../controlplane/loop/slo-guard.ts';
import { livePromotion as promoted } from './helpers/live-promotion.ts';
import { startTestRedis, type TestRedis } from './helpers/redis.ts';

const SLO: SloSpec = {
  service: 'scheduler',
  metric: 'jct_ms_p99',
  direction: 'min',
  maxRegression: 0.2,
  baselineMs: 1_000,
  watchMs: 1_500,
  settleMs: 0,
  minPoints: 3,
  stepMs: 100,
};

describe('SLO guard', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterAll(async () => {
    await redis?.stop();
  });

  /** Real time, plus an offset a test can move forward (past a cooldown). */
  const clock = { offsetMs: 0, now: () => Date.now() + clock.offsetMs };

  async function livePromotion() {
    clock.offsetMs = 0;
    const live = await promoted({
      redis: redis.client(),
      clock,
      service: 'scheduler',
      metric: 'jct_ms',
      before: 10,
      learner: 'bo',
      change: { name: 'scheduler.policy', value: 'srpt' },
    });
    return { ...live, guard: new SloGuard(live.knobs, live.proposals) };
  }

  it('rolls back a promotion that worsens the metric beyond the bound', async () => {
    const { knobs, proposals, emit, proposal, guard } = await livePromotion();
    await emit(20, 400);
    const report = await guard.check(proposal, SLO);
    expect(report.verdict).toBe('regressed');
    expect(report.worsening).toBeCloseTo(1, 1);
    expect(report.reason).toMatch(
      /scheduler\.jct_ms_p99 worsened 100\.0% \(from 10\.00 to 20\.00\)/,
    );
    const row = await knobs.get('scheduler.policy');
    expect(row.value).toBe('fifo');
    expect(row.version).toBe(3);
    expect((await proposals.get(proposal.id)).proposal.status).toBe('rolled_back');
    const [last] = await knobs.history('scheduler.policy', { limit: 1 });
    expect(last?.kind).toBe('rollback');
    expect(last?.actor).toBe('slo-guard');
    const audit = await knobs.audit({ limit: 2 });
    expect(audit.map((a) => a.action)).toEqual(['proposal.rolled_back', 'knob.rollback']);
    expect(audit[0]).toMatchObject({ target: proposal.id, actor: 'slo-guard' });
    expect(audit[0]?.detail).toMatchObject({ from: 'live' });
  });

  it('lets a promotion stand when the metric holds through the watch window', async () => {
    const { knobs, proposals, emit, proposal, guard } = await livePromotion();
    await emit(10.5, 400);
    expect((await guard.check(proposal, SLO)).verdict).toBe('watching');
    await emit(10.5, 1_200);
    const report = await guard.check(proposal, SLO);
    expect(report.verdict).toBe('ok');
    expect((await knobs.get('scheduler.policy')).value).toBe('srpt');
    expect((await proposals.get(proposal.id)).proposal.status).toBe('live');
  });

  it("ignores the metric while the change settles in, as a migration's spike", async () => {
    const { knobs, proposals, emit, proposal, guard } = await livePromotion();
    const settling = { ...SLO, settleMs: 600 };
    await emit(40, 300); // the spike of applying the change, well inside the settle time
    await emit(10.5, 700);
    const report = await guard.check(proposal, settling);
    expect(['watching', 'ok']).toContain(report.verdict); // 'ok' if the watch window ran out
    expect(report.observed).toBeLessThan(12);
    expect((await proposals.get(proposal.id)).proposal.status).toBe('live');
    // The control: the same telemetry judged from the promotion on is a regression.
    expect((await guard.check(proposal, SLO)).verdict).toBe('regressed');
    expect((await knobs.get('scheduler.policy')).value).toBe('fifo');
  });

  it('does not overwrite a newer change made after the promotion', async () => {
    const { knobs, proposals, emit, proposal, guard } = await livePromotion();
    clock.offsetMs = 120_000; // past the knob's cooldown
    await knobs.promote({
      name: 'scheduler.policy',
      value: 'fair',
      baseVersion: 2,
      actor: 'op',
      reason: 'operator choice',
    });
    await emit(30, 400);
    const report = await guard.check(proposal, SLO);
    expect(report.verdict).toBe('regressed');
    expect(report.rolledBack).toEqual([]);
    expect((await knobs.get('scheduler.policy')).value).toBe('fair');
    expect((await proposals.get(proposal.id)).proposal.status).toBe('live');
  });
});
