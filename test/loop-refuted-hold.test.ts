// A change the SLO guard rolled back is not proposed again by its target for refutedHoldMs:
// its simulator still favoured it, and as soon as the rate limit allowed the loop proposed,
// promoted, regressed and rolled back the same change again, for ever.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { createLogger } from '../controlplane/log.ts';
import { LoopDaemon } from '../controlplane/loop/daemon.ts';
import { ProposalTable } from '../controlplane/loop/proposals.ts';
import { Telemetry } from '../controlplane/telemetry/metrics.ts';
import { batchingTarget } from './helpers/batching-target.ts';
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
    const base = batchingTarget();
    const target = batchingTarget({ shadowMs: 0, slo: { ...base.slo, watchMs: 1500 } });
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
    expect(first?.guardReport).toMatchObject({ verdict: 'regressed' });
    expect(first?.status).toBe('rolled_back');
    expect((await knobs.get('messaging.batch_size')).value).toBe(64);

    // Other learners' proposals meanwhile, more than the 200 the daemon reads as recent.
    const retry = await knobs.get('scheduler.retry_limit');
    for (let i = 0; i < 201; i++) {
      const p = await proposals.create({
        learner: 'other.target',
        changes: [
          { name: 'scheduler.retry_limit', value: (retry.value as number) + 1, baseVersion: 1 },
        ],
        reason: `try ${i}`,
      });
      await proposals.transition(p.id, 'rejected', { actor: 'loop', reason: 'gate inconclusive' });
    }
    // Half a minute later (the rate limit, past the knob's cooldown) the loop goes again.
    clock.offsetMs += 31_000;
    const events = [];
    for (let i = 0; i < 4; i++) events.push(...(await daemon.tick()));
    const what = (p: { changes: { name: string; value: unknown }[] }) =>
      JSON.stringify(p.changes.map((c) => [c.name, c.value]));
    const again = (await proposals.list({ limit: 1_000 })).filter(
      (p) => p.id !== first?.id && what(p) === what(first as NonNullable<typeof first>),
    );
    expect(
      again.map((p) => p.status),
      JSON.stringify(events.map((e) => e.kind)),
    ).toEqual([]);
  });
});
