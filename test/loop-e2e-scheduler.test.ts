// A deliberately bad policy that passes a mis-calibrated simulator is rolled back by the SLO
// guard. The live scheduler runs FIFO over two slots; jobs carry estimates that lie (long jobs
// claim 5 ms, short ones 500 ms). A simulator calibrated on those estimates instead of the
// measured run times believes SJF cuts the mean completion time by a tenth or more; the gate
// passes it, shadow sees it decide differently, and it is promoted. Live, SJF on lying
// estimates runs the long jobs first and the mean completion time rises severalfold (six- to
// sevenfold in two runs; the test asks for more than 15%): the guard rolls it back within its
// watch window, and the SLO cost is bounded by that window.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRng } from '../envs/core/index.ts';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { createLogger } from '../controlplane/log.ts';
import { LoopDaemon, type LoopEvent } from '../controlplane/loop/daemon.ts';
import { ProposalTable } from '../controlplane/loop/proposals.ts';
import { SchedulerPolicyTarget } from '../controlplane/loop/targets/scheduler-policy.ts';
import { uniformWorkers } from '../envs/scheduler/index.ts';
import { startTestRedis, type TestRedis } from './helpers/redis.ts';
import { startScheduler } from './helpers/scheduler-harness.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** The guard must roll back within this long after the promotion. */
const ROLLBACK_WITHIN_MS = 8_000;

describe('control loop fault: a bad policy through a mis-calibrated simulator', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('is rolled back by the SLO guard within the watch window', async () => {
    const h = await startScheduler(redis, {
      service: {
        telemetryIntervalMs: 250,
        traceSampleRate: { arrivals: 1, durations: 1, decisions: 1, jobs: 1, shadow: 1 },
      },
    });
    await h.worker({
      concurrency: 2,
      capacity: { cpu: 2, memMb: 1000, gpu: 0 },
      telemetryIntervalMs: 250,
      traceSampleRate: { durations: 1, jobs: 1 },
      handlers: { work: async (t) => sleep((t.payload as { ms: number }).ms) },
    });
    // The loop's own view of the knobs table: real time, as the telemetry it reads is.
    const knobs = new KnobTable(h.redis, { keys: h.keys, catalog: h.table.catalog });
    const rng = createRng(5);
    let stopped = false;
    const submitted = (async () => {
      let i = 0;
      while (!stopped) {
        await sleep(rng.exponential(16 / 1000));
        const long = rng.next() < 0.2;
        await h.service.client.submit({
          type: 'work',
          id: `t${i++}`,
          estimateMs: long ? 5 : 500,
          payload: { ms: long ? 400 : 20 },
        });
      }
    })();
    const target = new SchedulerPolicyTarget({
      knobs,
      workers: uniformWorkers(2, { cpu: 1, memMb: 1000, gpu: 0 }),
      windowMs: 6_000,
      minJobs: 40,
      maxRecords: 20_000,
      durationSource: 'estimates', // the mis-calibration: trust the submitters
      shadowMs: 1_000,
      shadowMinRounds: 5,
      gate: { slices: 3, minSamples: 3, maxSamples: 9 },
      slo: {
        baselineMs: 5_000,
        watchMs: ROLLBACK_WITHIN_MS,
        settleMs: 1_000,
        stepMs: 500,
        minPoints: 3,
        maxRegression: 0.15,
      },
    });
    const daemon = new LoopDaemon({
      knobs,
      proposals: new ProposalTable(knobs),
      targets: [target],
      log: createLogger('loop-fault', 'silent'),
      minChangeIntervalMs: 0,
      seed: 2,
    });
    try {
      await sleep(7_000);
      const events: LoopEvent[] = [];
      let promotedAt = 0;
      let rolledBackAt = 0;
      const deadline = Date.now() + 90_000;
      while (!rolledBackAt && Date.now() < deadline) {
        const got = await daemon.tick();
        events.push(...got);
        if (!promotedAt && got.some((e) => e.kind === 'promoted')) promotedAt = Date.now();
        if (got.some((e) => e.kind === 'rejected') && !promotedAt) break;
        if (promotedAt && (await knobs.get('scheduler.policy')).value === 'fifo')
          rolledBackAt = Date.now();
        await sleep(250);
      }
      const summary = events.filter((e) => e.kind !== 'shadow_pending' && e.kind !== 'guard');
      expect(promotedAt, JSON.stringify(summary)).toBeGreaterThan(0);
      expect(rolledBackAt, JSON.stringify(summary)).toBeGreaterThan(0);
      const promoted = events.find((e) => e.kind === 'promoted') as { id: string };
      const { proposal } = await new ProposalTable(knobs).get(promoted.id);
      expect(proposal.changes).toEqual([
        { name: 'scheduler.policy', value: 'sjf', baseVersion: 1 },
      ]);
      expect(proposal.status).toBe('rolled_back');
      // Within the stated time: the SLO cost is at most this window of worse service.
      expect(rolledBackAt - promotedAt).toBeLessThanOrEqual(ROLLBACK_WITHIN_MS + 1_000);
      const [last] = await knobs.history('scheduler.policy', { limit: 1 });
      expect(last).toMatchObject({ kind: 'rollback', actor: 'slo-guard', new: 'fifo' });
      const evidence = last?.evidence as { worsening: number; baseline: number; observed: number };
      process.stderr.write(
        `loop-e2e-scheduler: ${JSON.stringify({ rollbackAfterMs: rolledBackAt - promotedAt, ...evidence, sim: (proposal.simReport as { improvement: number }).improvement, shadow: proposal.shadowReport })}\n`,
      );
      expect(evidence.worsening).toBeGreaterThan(0.15);
      const actions = (await knobs.audit({ limit: 100 }))
        .filter((a) => a.target === proposal.id || a.detail['proposal_id'] === proposal.id)
        .map((a) => a.action);
      expect(actions).toEqual(
        expect.arrayContaining([
          'proposal.create',
          'proposal.simulated',
          'proposal.shadow',
          'knob.promote',
          'knob.rollback',
        ]),
      );
    } finally {
      stopped = true;
      await submitted;
      await daemon.stop();
      await h.stop();
    }
  }, 180_000);
});
