// A promotion no tuning target made (a policy version promoted through the registry, whose
// proposal names the operator as its learner) is judged by the SLO guard of the target on its
// service and rolled back on a regression, like the loop's own (it went unjudged: the daemon
// guarded only its targets' proposals).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../controlplane/log.ts';
import { LoopDaemon } from '../controlplane/loop/daemon.ts';
import type { TuningTarget } from '../controlplane/loop/target.ts';
import { livePromotion } from './helpers/live-promotion.ts';
import { startTestRedis, type TestRedis } from './helpers/redis.ts';

/** The scheduler's target, guarded on its latency; it proposes nothing itself. */
function schedulerTarget(name: string): TuningTarget {
  return {
    name,
    knobs: [name],
    gate: { direction: 'min', minEffect: 0.01, minSamples: 4, maxSamples: 8, slices: 1 },
    slo: {
      service: 'scheduler',
      metric: 'jct_ms_p99',
      direction: 'min',
      maxRegression: 0.2,
      baselineMs: 1_000,
      watchMs: 1_000,
      settleMs: 0,
      minPoints: 3,
      stepMs: 100,
    },
    shadowMs: 1_000,
    calibrate: async () => null,
    propose: async () => null,
    evaluate: async () => 0,
    startShadow: async () => ({
      report: async () => ({ verdict: 'pending', details: {} }),
      stop: async () => {},
    }),
  };
}

describe('the SLO guard over promotions no target made', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it("rolls back an operator's policy version promotion that regressed, once", async () => {
    const clock = { offsetMs: 0, now: () => Date.now() + clock.offsetMs };
    // What the registry's promotion writes: learner = the operator, policy_version to 1.
    const live = await livePromotion({
      redis: redis.client(),
      clock,
      service: 'scheduler',
      metric: 'jct_ms',
      before: 10,
      learner: 'alice',
      change: { name: 'scheduler.policy_version', value: 1 },
    });
    const daemon = new LoopDaemon({
      knobs: live.knobs,
      proposals: live.proposals,
      // Two targets on the scheduler: the first judges it, the second leaves it.
      targets: [schedulerTarget('scheduler.policy'), schedulerTarget('scheduler.dispatch_batch')],
      log: createLogger('test', 'silent'),
      minChangeIntervalMs: 3_600_000,
    });
    await live.emit(30, 1_300); // 3x the latency through the whole watch window
    const events = await daemon.tick();
    const guarded = events.filter((e) => e.kind === 'guard');
    expect(guarded).toEqual([
      { kind: 'guard', target: 'scheduler.policy', id: live.proposal.id, verdict: 'regressed' },
    ]);
    const p = (await live.proposals.get(live.proposal.id)).proposal;
    expect(p.status).toBe('rolled_back');
    expect(p.guardReport).toMatchObject({ verdict: 'regressed' });
    expect((await live.knobs.get('scheduler.policy_version')).value).toBe(0);
    await daemon.stop();
  }, 30_000);
});
