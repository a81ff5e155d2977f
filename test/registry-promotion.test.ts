// Promotion and rollback of registry versions through the knobs table, on one node and on a
// 3-node cluster: a proposal carries the version's reports, the knob change marks it live in
// the same step, history and audit name the token identity, the knob's guards apply, and the
// registry rows follow the knob (reconcile repairs them when they did not).
import { describe, expect, it } from 'vitest';
import {
  PolicyRegistry,
  RegistryUnsupportedError,
  type PolicyRow,
} from '../controlplane/registry/index.ts';
import { PinnedError, StateError, ValidationError } from '../controlplane/store/errors.ts';
import { HOUR_MS } from './helpers/api-server.ts';
import { registrySuite } from './helpers/registry-fixtures.ts';
import type { Backend } from './helpers/redis.ts';

const KNOB = 'scheduler.policy_version';
const SPEC = { seeds: [1, 2], jobs: 20, workers: 4 };
const ALICE = { actor: 'alice#t1', reason: 'faster in sim and shadow' };

describe.each<Backend>(['single', 'cluster'])('registry promotion on %s redis', (backend) => {
  const { setup } = registrySuite(backend);

  /** Registers an srpt version and takes it to candidate (srpt is never worse than itself). */
  async function candidate(registry: PolicyRegistry, parent?: number): Promise<PolicyRow> {
    const row = await registry.register(
      {
        name: 'scheduler',
        kind: 'scheduling',
        artifact: { heuristic: 'srpt' },
        lineage: { learner: 'ppo', ...(parent ? { parent } : {}) },
      },
      'ppo#learner',
    );
    const evaluated = await registry.evaluate('scheduler', row.version, { ...ALICE, spec: SPEC });
    expect(evaluated.status).toBe('candidate');
    return evaluated;
  }

  const statuses = async (registry: PolicyRegistry) =>
    Object.fromEntries(
      (await registry.table.list({ name: 'scheduler' })).policies.map((r) => [r.version, r.status]),
    );

  it('promotes through a proposal and the knobs table, then rolls back version by version', async () => {
    const { knobs, registry, clock } = await setup();
    await candidate(registry);
    const shadowed = await registry.shadow('scheduler', 1, { ...ALICE, spec: SPEC });
    expect(shadowed.status).toBe('shadow');

    const live = await registry.promote('scheduler', 1, ALICE);
    expect(live.status).toBe('live');
    expect(live.promotion).toMatchObject({
      knob: KNOB,
      knobVersion: 2,
      replaced: 0,
      by: 'alice#t1',
    });
    const knob = await knobs.get(KNOB);
    expect(knob).toMatchObject({ value: 1, version: 2, updatedBy: 'alice#t1' });
    const [entry] = await knobs.history(KNOB, { limit: 1 });
    expect(entry).toMatchObject({ kind: 'promote', new: 1, old: 0, actor: 'alice#t1' });
    expect(entry?.proposalId).toBe(live.promotion?.proposalId);
    const { proposal } = await registry.proposals.get(live.promotion?.proposalId as string);
    expect(proposal.status).toBe('live');
    expect(proposal.changes).toEqual([{ name: KNOB, value: 1, baseVersion: 1 }]);
    expect(proposal.simReport).toMatchObject({
      kind: 'scheduling-sim',
      verdict: expect.any(String),
    });
    expect(proposal.shadowReport).toMatchObject({ kind: 'scheduling-shadow' });
    const knobAudit = await knobs.audit({ limit: 20 });
    for (const action of [
      'proposal.create',
      'proposal.simulated',
      'proposal.shadow',
      'knob.promote',
    ])
      expect(
        knobAudit.find((a) => a.action === action),
        action,
      ).toMatchObject({ actor: 'alice#t1' });
    const [regAudit] = await registry.table.audit({ limit: 1 });
    expect(regAudit).toMatchObject({
      actor: 'alice#t1',
      action: 'policy.promote',
      target: 'scheduler@1',
    });

    // A second version within the knob's cooldown is refused by the knobs table, and its
    // proposal is rejected; nothing else moves.
    await candidate(registry, 1);
    const early = await registry.promote('scheduler', 2, ALICE).catch((e: unknown) => e);
    expect(early).toBeInstanceOf(ValidationError);
    expect((early as ValidationError).details).toMatchObject({ rule: 'cooldown' });
    const refused = await registry.proposals.list({ limit: 10 });
    expect(refused.find((p) => p.id.startsWith('reg-scheduler-2-'))?.status).toBe('rejected');
    expect(await statuses(registry)).toEqual({ 1: 'live', 2: 'candidate' });
    expect((await knobs.get(KNOB)).value).toBe(1);

    clock.advance(61_000);
    const second = await registry.promote('scheduler', 2, ALICE);
    expect(second.promotion).toMatchObject({ replaced: 1 });
    expect(await statuses(registry)).toEqual({ 1: 'retired', 2: 'live' });

    // Rollback: the knob back to the version the live one replaced, its proposal rolled back.
    const back = await registry.rollback('scheduler', { actor: 'bob#t2', reason: 'p99 up' });
    expect(back).toMatchObject({ value: 1, rolledBack: { version: 2 }, live: { version: 1 } });
    expect(await knobs.get(KNOB)).toMatchObject({ value: 1, updatedBy: 'bob#t2' });
    expect((await knobs.history(KNOB, { limit: 1 }))[0]).toMatchObject({ kind: 'rollback' });
    const p2 = await registry.proposals.get(second.promotion?.proposalId as string);
    expect(p2.proposal.status).toBe('rolled_back');
    expect(await statuses(registry)).toEqual({ 1: 'live', 2: 'retired' });

    const heuristic = await registry.rollback('scheduler', {
      actor: 'bob#t2',
      reason: 'back to fifo',
    });
    expect(heuristic).toMatchObject({ value: 0, live: null, rolledBack: { version: 1 } });
    const p1 = await registry.proposals.get(live.promotion?.proposalId as string);
    expect(p1.proposal.status).toBe('rolled_back');
    expect(await statuses(registry)).toEqual({ 1: 'retired', 2: 'retired' });
    const none = await registry.rollback('scheduler', ALICE).catch((e: unknown) => e);
    expect(none).toBeInstanceOf(StateError);
    expect((none as StateError).details).toMatchObject({ rule: 'live_version' });
    const rollbacks = (await registry.table.audit({ limit: 50 })).filter(
      (a) => a.action === 'policy.rollback',
    );
    expect(rollbacks.map((a) => a.target).sort()).toEqual([
      'scheduler@1',
      'scheduler@1',
      'scheduler@2',
    ]);
    expect(rollbacks.every((a) => a.actor === 'bob#t2')).toBe(true);
  });

  it('reconciles rows with the knob after a direct knob change or a lost second step', async () => {
    const { knobs, registry, clock } = await setup();
    await candidate(registry);
    await candidate(registry);
    await registry.promote('scheduler', 1, ALICE);
    // The knob moves without the registry (as a crash between the two steps would leave it).
    clock.advance(61_000);
    await knobs.promote({ name: KNOB, value: 2, baseVersion: 2, actor: 'op', reason: 'direct' });
    expect(await statuses(registry)).toEqual({ 1: 'live', 2: 'candidate' });
    const changed = await registry.promotion.reconcile('scheduler', 'repair#1');
    expect(changed.map((r) => `${r.version}:${r.status}`).sort()).toEqual(['1:retired', '2:live']);
    expect(await statuses(registry)).toEqual({ 1: 'retired', 2: 'live' });
    expect(await registry.promotion.reconcile('scheduler', 'repair#1')).toEqual([]);
    // Registry writes reconcile first: retiring the now-live version is refused.
    const err = await registry
      .retire('scheduler', 2, { actor: 'op', reason: 'x' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StateError);
    expect((err as StateError).details).toMatchObject({ rule: 'not_live' });
  });

  it("refuses promotions the knob's guards or the rows' statuses do not allow", async () => {
    const { knobs, registry } = await setup();
    const draft = await registry.register(
      { name: 'scheduler', kind: 'scheduling', artifact: { heuristic: 'fifo' } },
      'op',
    );
    const notYet = await registry
      .promote('scheduler', draft.version, ALICE)
      .catch((e: unknown) => e);
    expect(notYet).toBeInstanceOf(StateError);
    expect((notYet as StateError).details).toMatchObject({ rule: 'promotable' });

    await candidate(registry);
    await knobs.pin(KNOB, 'op#1', 'freeze the scheduler for the launch');
    const pinned = await registry.promote('scheduler', 2, ALICE).catch((e: unknown) => e);
    expect(pinned).toBeInstanceOf(PinnedError);
    expect((await knobs.get(KNOB)).value).toBe(0);
    expect((await registry.table.get('scheduler', 2)).row.status).toBe('candidate');
    // The proposals table refuses a proposal on a pinned knob: nothing was written.
    expect(await registry.proposals.list({ limit: 10 })).toEqual([]);

    await registry.register({ name: 'cache', kind: 'cache', artifact: { heuristic: 'arc' } }, 'op');
    const cacheEval = await registry
      .evaluate('cache', 1, { ...ALICE, spec: SPEC })
      .catch((e: unknown) => e);
    expect(cacheEval).toBeInstanceOf(RegistryUnsupportedError);
    const cachePromote = await registry.promote('cache', 1, ALICE).catch((e: unknown) => e);
    expect(cachePromote).toBeInstanceOf(RegistryUnsupportedError);
    expect((cachePromote as RegistryUnsupportedError).details).toMatchObject({
      rule: 'promotable',
    });
  });

  it('keeps a candidate that a later evaluation found worse than live from going live', async () => {
    const { knobs, registry } = await setup();
    expect((await knobs.get('scheduler.policy')).value).toBe('fifo'); // the catalog's default
    const row = await registry.register(
      { name: 'scheduler', kind: 'scheduling', artifact: { heuristic: 'fifo' } },
      'op',
    );
    // The same policy as live: not worse, a candidate.
    expect((await registry.evaluate('scheduler', 1, { ...ALICE, spec: SPEC })).status).toBe(
      'candidate',
    );
    // Live moves to a better heuristic; evaluated again, the version is worse than live now.
    await knobs.promote({
      name: 'scheduler.policy',
      value: 'srpt',
      baseVersion: 1,
      actor: 'op',
      reason: 'a better heuristic',
    });
    const again = await registry.evaluate('scheduler', row.version, { ...ALICE, spec: SPEC });
    expect(again.status).toBe('candidate');
    expect(again.simReport).toMatchObject({ verdict: 'worse' });
    const refused = await registry.promote('scheduler', 1, ALICE).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(StateError);
    expect((refused as StateError).details).toMatchObject({
      field: 'simReport',
      rule: 'not_worse',
    });
    expect((await knobs.get(KNOB)).value).toBe(0);
    expect(await registry.proposals.list({ limit: 10 })).toEqual([]);
  });

  it('writes no report on a version retired while its evaluation ran', async () => {
    const { registry } = await setup();
    await registry.register(
      { name: 'scheduler', kind: 'scheduling', artifact: { heuristic: 'srpt' } },
      'op',
    );
    const run = registry.evaluator.run.bind(registry.evaluator);
    registry.evaluator.run = async (job) => {
      const report = await run(job);
      await registry.retire('scheduler', 1, { actor: 'bob', reason: 'pulled' });
      return report;
    };
    const err = await registry
      .evaluate('scheduler', 1, { ...ALICE, spec: SPEC })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StateError);
    expect((err as StateError).details).toMatchObject({ field: 'status', rule: 'not_retired' });
    const row = (await registry.table.get('scheduler', 1)).row;
    expect(row.status).toBe('retired');
    expect(row.simReport).toBeUndefined();
    const actions = (await registry.table.audit({ limit: 10 })).map((a) => a.action);
    expect(actions).not.toContain('policy.evaluate');
  });

  it("leaves a promotion's record off another version the knob moved to meanwhile", async () => {
    const { knobs, registry, clock } = await setup();
    await candidate(registry);
    await candidate(registry); // version 2, which an operator selects mid-promotion
    const knobStep = knobs.promoteAll.bind(knobs);
    const get = knobs.get.bind(knobs);
    let armed = false;
    knobs.promoteAll = async (...args) => {
      knobs.promoteAll = knobStep; // once: the direct change below takes the real step
      const res = await knobStep(...args);
      armed = true;
      return res;
    };
    // The first read of the knob after its step still says 1; right after it, the knob moves
    // to 2 (a direct change, an hour later).
    knobs.get = async (name) => {
      const row = await get(name);
      if (armed && name === KNOB) {
        armed = false;
        clock.advance(HOUR_MS);
        await knobs.promote({
          name: KNOB,
          value: 2,
          baseVersion: row.version,
          actor: 'op',
          reason: 'x',
        });
      }
      return row;
    };
    await registry.promote('scheduler', 1, ALICE);
    const v2 = (await registry.table.get('scheduler', 2)).row;
    // Before, the record of version 1's promotion was written onto version 2's row.
    expect(v2.promotion).toBeUndefined();
    knobs.get = get;
    await registry.promotion.reconcile('scheduler', 'repair#1');
    expect(await statuses(registry)).toEqual({ 1: 'retired', 2: 'live' });
    expect((await registry.table.get('scheduler', 2)).row.promotion).toBeUndefined();
  });
});

describe('registry promotion past 2,000 versions', () => {
  const { setup } = registrySuite('single');

  it('retires a live version older than the newest 2,000 when another goes live', async () => {
    const { registry, clock } = await setup();
    const register = () =>
      registry.register(
        { name: 'scheduler', kind: 'scheduling', artifact: { heuristic: 'srpt' } },
        'op',
      );
    await register();
    await registry.evaluate('scheduler', 1, { ...ALICE, spec: SPEC });
    await registry.promote('scheduler', 1, ALICE);
    for (let i = 0; i < 2_001; i += 100) await Promise.all(Array.from({ length: 100 }, register));
    const newest = await registry.table.latest('scheduler');
    await registry.evaluate('scheduler', newest, { ...ALICE, spec: SPEC });
    clock.advance(HOUR_MS); // past the knob's cooldown
    await registry.promote('scheduler', newest, ALICE);
    // Before, the rows were scanned newest first up to 2,000: version 1 stayed live beside it.
    expect((await registry.table.get('scheduler', 1)).row.status).toBe('retired');
    expect((await registry.table.get('scheduler', newest)).row.status).toBe('live');
  }, 120_000);
});
