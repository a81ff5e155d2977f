import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../controlplane/knobs/clock.ts';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { ProposalTable } from '../controlplane/loop/proposals.ts';
import {
  FrozenError,
  StaleVersionError,
  StateError,
  ValidationError,
} from '../controlplane/store/errors.ts';
import { startTestRedis, uniqueKeys, type Backend, type TestRedis } from './helpers/redis.ts';

describe.each<Backend>(['single', 'cluster'])('proposals table on %s redis', (backend) => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis(backend);
  });
  afterAll(async () => {
    await redis?.stop();
  });

  async function setup() {
    const clock = new ManualClock();
    const knobs = new KnobTable(redis.client(), { keys: uniqueKeys(), clock });
    await knobs.seed();
    clock.advance(3_600_000);
    return { knobs, proposals: new ProposalTable(knobs), clock };
  }

  it('writes a proposal on current base versions, and refuses one on stale versions', async () => {
    const { knobs, proposals } = await setup();
    const p = await proposals.create({
      learner: 'bo',
      reason: 'lower jct',
      changes: [{ name: 'scheduler.policy', value: 'srpt', baseVersion: 1 }],
    });
    expect(p.status).toBe('proposed');
    expect((await proposals.get(p.id)).proposal.changes).toEqual([
      { name: 'scheduler.policy', value: 'srpt', baseVersion: 1 },
    ]);
    await knobs.promote({
      name: 'scheduler.policy',
      value: 'sjf',
      baseVersion: 1,
      actor: 'op',
      reason: 'manual',
    });
    const auditBefore = await knobs.audit({ limit: 1000 });
    const err = await proposals
      .create({
        learner: 'bo',
        reason: 'x',
        changes: [{ name: 'scheduler.policy', value: 'srpt', baseVersion: 1 }],
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StaleVersionError);
    expect(await proposals.list()).toHaveLength(1);
    expect(await knobs.audit({ limit: 1000 })).toEqual(auditBefore);
  });

  it('refuses out-of-domain values and frozen automation, writing nothing', async () => {
    const { knobs, proposals } = await setup();
    await expect(
      proposals.create({
        learner: 'bo',
        reason: 'x',
        changes: [{ name: 'scheduler.retry_limit', value: 99, baseVersion: 1 }],
      }),
    ).rejects.toBeInstanceOf(ValidationError);
    await knobs.freeze('op', 'incident');
    await expect(
      proposals.create({
        learner: 'bo',
        reason: 'x',
        changes: [{ name: 'scheduler.retry_limit', value: 4, baseVersion: 1 }],
      }),
    ).rejects.toBeInstanceOf(FrozenError);
    expect(await proposals.list()).toEqual([]);
  });

  it('refuses a knob twice, a base that is not a version, and a change to the current value', async () => {
    const { knobs, proposals } = await setup();
    const auditBefore = await knobs.audit({ limit: 1000 });
    const refused = async (changes: { name: string; value: unknown; baseVersion: unknown }[]) => {
      const err = await proposals
        .create({ learner: 'bo', reason: 'x', changes } as Parameters<typeof proposals.create>[0])
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ValidationError);
      return { field: (err as ValidationError).field, rule: (err as ValidationError).rule };
    };
    expect(
      await refused([
        { name: 'scheduler.retry_limit', value: 4, baseVersion: 1 },
        { name: 'scheduler.retry_limit', value: 5, baseVersion: 1 },
      ]),
    ).toEqual({ field: 'changes[1].name', rule: 'unique' });
    expect(
      await refused([{ name: 'scheduler.retry_limit', value: 4, baseVersion: undefined }]),
    ).toEqual({ field: 'changes[0].baseVersion', rule: 'integer' });
    expect(await refused([{ name: 'scheduler.retry_limit', value: 4, baseVersion: 0 }])).toEqual({
      field: 'changes[0].baseVersion',
      rule: 'integer',
    });
    // The catalog default of scheduler.retry_limit is 3.
    expect(
      await refused([
        { name: 'scheduler.policy', value: 'srpt', baseVersion: 1 },
        { name: 'scheduler.retry_limit', value: 3, baseVersion: 1 },
      ]),
    ).toEqual({ field: 'changes[1].value', rule: 'unchanged' });
    expect(await proposals.list()).toEqual([]);
    expect(await knobs.audit({ limit: 1000 })).toEqual(auditBefore);
  });

  it('moves through the pipeline with audit entries, refusing moves backwards', async () => {
    const { knobs, proposals } = await setup();
    const p = await proposals.create({
      learner: 'bo',
      reason: 'r',
      changes: [{ name: 'scheduler.retry_limit', value: 5, baseVersion: 1 }],
    });
    await proposals.transition(p.id, 'simulated', {
      actor: 'gate',
      reason: 'sim ok',
      simReport: { outcome: 'successful' },
    });
    await proposals.transition(p.id, 'shadow', { actor: 'loop', reason: 'shadow started' });
    await expect(
      proposals.transition(p.id, 'proposed', { actor: 'x', reason: 'y' }),
    ).rejects.toThrow(/cannot move from shadow to proposed/);
    expect((await proposals.list({ open: true })).map((x) => x.id)).toEqual([p.id]);
    // Promotion marks the proposal live in the same atomic step as the knob change.
    await knobs.promoteAll({
      actor: 'loop',
      actorKind: 'automation',
      reason: 'promote',
      proposalId: p.id,
      changes: p.changes,
    });
    const { proposal } = await proposals.get(p.id);
    expect(proposal.status).toBe('live');
    expect(proposal.simReport).toEqual({ outcome: 'successful' });
    expect(await proposals.list({ open: true })).toEqual([]);
    expect((await knobs.get('scheduler.retry_limit')).proposalId).toBe(p.id);
    const actions = (await knobs.audit({ limit: 10 })).map((a) => a.action);
    // The knob step audits the proposal's move to live too, in the same step.
    expect(actions.slice(0, 5)).toEqual([
      'proposal.live',
      'knob.promote',
      'proposal.shadow',
      'proposal.simulated',
      'proposal.create',
    ]);
  });

  it('lets only one of two learners promote on the same base', async () => {
    const { knobs, proposals } = await setup();
    const a = await proposals.create({
      learner: 'bo',
      reason: 'a',
      changes: [{ name: 'messaging.batch_size', value: 128, baseVersion: 1 }],
    });
    const b = await proposals.create({
      learner: 'cem',
      reason: 'b',
      changes: [{ name: 'messaging.batch_size', value: 32, baseVersion: 1 }],
    });
    // Both passed their gate (a proposal is taken live only from there).
    for (const p of [a, b])
      await proposals.transition(p.id, 'simulated', { actor: 'gate', reason: 'ok' });
    const results = await Promise.allSettled(
      [a, b].map((p) =>
        knobs.promoteAll({
          actor: p.learner,
          actorKind: 'automation',
          reason: 'race',
          proposalId: p.id,
          changes: p.changes,
        }),
      ),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(
      (results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason,
    ).toBeInstanceOf(StaleVersionError);
    const statuses = await Promise.all(
      [a, b].map(async (p) => (await proposals.get(p.id)).proposal.status),
    );
    expect(statuses.sort()).toEqual(['live', 'simulated']);
  });

  it('will not promote a rejected proposal, nor roll back one that is not live', async () => {
    const { knobs, proposals } = await setup();
    const p = await proposals.create({
      learner: 'bo',
      reason: 'r',
      changes: [{ name: 'scheduler.retry_limit', value: 5, baseVersion: 1 }],
    });
    await proposals.transition(p.id, 'rejected', { actor: 'gate', reason: 'sim failed' });
    const err = await knobs
      .promoteAll({
        actor: 'loop',
        actorKind: 'automation',
        reason: 'promote',
        proposalId: p.id,
        changes: p.changes,
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StateError);
    expect((err as Error).message).toBe(
      `proposal ${p.id}: is rejected, which this step does not accept`,
    );
    expect((await knobs.get('scheduler.retry_limit')).version).toBe(1);
  });
});
