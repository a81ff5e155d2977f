// The refuted hold knows a change by its canonical JSON: the proposals table stores values with
// their keys sorted, while a placement learner's map (withMoves over the live map) appends a
// newly placed tenant; compared as JSON.stringify, the same map in another key order was not
// recognised and the refuted migration was proposed again.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { createLogger } from '../controlplane/log.ts';
import { LoopDaemon } from '../controlplane/loop/daemon.ts';
import { ProposalTable } from '../controlplane/loop/proposals.ts';
import { withMoves } from '../policies/placement/hash.ts';
import type { KnobValues } from '../knobs/index.ts';
import { batchingTarget } from './helpers/batching-target.ts';
import { startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

const MAP = 'placement.map';

describe('refuted hold, object values', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('holds the same placement map whatever its key order', async () => {
    const clock = { offsetMs: 0, now: () => Date.now() + clock.offsetMs };
    const knobs = new KnobTable(redis.client(), { keys: uniqueKeys(), clock });
    await knobs.seed();
    const proposals = new ProposalTable(knobs);
    // Live map {b: 0} (an operator's placement).
    await knobs.promote({
      name: MAP,
      value: { b: 0 },
      baseVersion: 1,
      actor: 'op',
      reason: 'place b',
    });
    clock.offsetMs += 6 * 60_000;
    const base = batchingTarget();
    const target = batchingTarget({
      name: 'placement.test',
      knobs: [MAP],
      slo: { ...base.slo, service: 'placement', metric: 'imbalance' },
      shadowMs: 0,
      // The learner moves tenant a to shard 1: {b: 0, a: 1} (a appended after b).
      propose: async (_c, current: KnobValues) => ({
        values: {
          [MAP]: withMoves(current[MAP] as Record<string, number>, [{ group: 'a', to: 1 }]),
        },
        evidence: {},
      }),
      evaluate: async () => 1,
    });
    // That change was proposed, promoted and rolled back by the guard.
    const p1 = await proposals.create({
      learner: target.name,
      changes: [{ name: MAP, value: { b: 0, a: 1 }, baseVersion: 2 }],
      reason: 'first',
    });
    await proposals.transition(p1.id, 'simulated', { actor: 'loop', reason: 'gate' });
    await knobs.promoteAll({
      actor: `loop:${target.name}`,
      actorKind: 'automation',
      reason: 'passed',
      proposalId: p1.id,
      changes: p1.changes,
    });
    await knobs.promoteAll(
      {
        actor: 'slo-guard',
        actorKind: 'system',
        reason: 'rollback: regressed',
        proposalId: p1.id,
        changes: [{ name: MAP, value: { b: 0 }, baseVersion: 3 }],
      },
      'rollback',
    );
    expect((await proposals.get(p1.id)).proposal.status).toBe('rolled_back');
    clock.offsetMs += 6 * 60_000; // past the cooldown and the rate limit, well inside 24 h

    const daemon = new LoopDaemon({
      knobs,
      proposals,
      targets: [target],
      log: createLogger('test', 'silent'),
      minChangeIntervalMs: 1_000,
    });
    const events = await daemon.tick();
    expect(
      events.filter((e) => e.kind === 'proposed'),
      JSON.stringify(events),
    ).toEqual([]);
    await daemon.stop();
  });
});
