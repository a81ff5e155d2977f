// A change the SLO guard rolled back is not proposed again by its target for refutedHoldMs:
// its simulator still favoured it, and as soon as the rate limit allowed the loop proposed,
// promoted, regressed and rolled back the same change again, for ever.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { createLogger } from '../controlplane/log.ts';
import { LoopDaemon } from '../controlplane/loop/daemon.ts';
import { ProposalTable } from '../controlplane/loop/proposals.ts';
import type { TuningTarget } from '../controlplane/loop/target.ts';
import { Telemetry } from '../controlplane/telemetry/metrics.ts';
import type { KnobValues } from '../knobs/index.ts';
import { startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('after a rollback', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('does not propose and promote the rolled-back change again', async () => {
    const clock = { offsetMs: 0, now: () => Date.now() + clock.offsetMs };
    const knobs = new KnobTable(redis.client(), { keys: uniqueKeys(), clock });
    await knobs.seed();
    const proposals = new ProposalTable(knobs);
    const telemetry = new Telemetry({
      redis: knobs.redis,
      keys: knobs.keys,
      service: 'messaging',
      instance: 'i1',
    });
    const emit = async (value: number, forMs: number) => {
      const until = Date.now() + forMs;
      while (Date.now() < until) {
        telemetry.observe('latency_ms', value);
        await telemetry.flush();
        await sleep(50);
      }
    };
    const target: TuningTarget = {
      name: 'messaging.batching',
      knobs: ['messaging.batch_size'],
      gate: { direction: 'min', minEffect: 0.01, minSamples: 4, maxSamples: 8, slices: 2 },
      slo: {
        service: 'messaging',
        metric: 'latency_ms_p99',
        direction: 'min',
        maxRegression: 0.2,
        baselineMs: 1000,
        watchMs: 1500,
        settleMs: 0,
        minPoints: 3,
        stepMs: 100,
      },
      shadowMs: 0,
      calibrate: async () => ({
        data: null,
        fit: { metric: 'x', predicted: 10, observed: 10, relativeError: 0 },
        records: 1000,
      }),
      propose: async (_c, current: KnobValues) =>
        (current['messaging.batch_size'] as number) >= 256
          ? null
          : { values: { 'messaging.batch_size': 256 }, evidence: {} },
      evaluate: async (_c, v: KnobValues, seed, slice) =>
        Math.abs((v['messaging.batch_size'] as number) - 256) + 10 + ((seed + slice) % 3) * 0.01,
      startShadow: async () => ({
        report: async () => ({ verdict: 'better', details: {} }),
        stop: async () => {},
      }),
    };
    const daemon = new LoopDaemon({
      knobs,
      proposals,
      targets: [target],
      log: createLogger('test', 'silent'),
      minChangeIntervalMs: 30_000,
    });
    await emit(10, 1_000);
    await daemon.tick(); // propose
    await daemon.tick(); // gate
    await daemon.tick(); // shadow
    const promoted = await daemon.tick();
    expect(promoted).toContainEqual(expect.objectContaining({ kind: 'promoted' }));
    await emit(30, 500); // the change regresses live
    await daemon.tick(); // the guard rolls it back
    const [first] = await proposals.list();
    expect(first?.status).toBe('rolled_back');
    expect((await knobs.get('messaging.batch_size')).value).toBe(64);

    // Half a minute later (the rate limit, past the knob's cooldown) the loop goes again.
    clock.offsetMs += 31_000;
    const events = [];
    for (let i = 0; i < 4; i++) events.push(...(await daemon.tick()));
    const what = (p: { changes: { name: string; value: unknown }[] }) =>
      JSON.stringify(p.changes.map((c) => [c.name, c.value]));
    const again = (await proposals.list()).filter(
      (p) => p.id !== first?.id && what(p) === what(first as NonNullable<typeof first>),
    );
    expect(
      again.map((p) => p.status),
      JSON.stringify(events.map((e) => e.kind)),
    ).toEqual([]);
  });
});
