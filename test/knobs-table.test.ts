// The knobs table against real redis-server processes, on one node and on a 3-node cluster.
import { describe, expect, it } from 'vitest';
import { readAudit } from '../controlplane/api/audit-read.ts';
import { ManualClock } from '../controlplane/knobs/clock.ts';
import { KnobTable, type KnobChange } from '../controlplane/knobs/table.ts';
import { ProposalTable } from '../controlplane/loop/proposals.ts';
import {
  FrozenError,
  NotFoundError,
  PinnedError,
  StaleVersionError,
  ValidationError,
} from '../controlplane/store/errors.ts';
import { HOUR, knobsSuite } from './helpers/knobs-fixture.ts';
import { uniqueKeys, type Backend } from './helpers/redis.ts';

/** The knobs audit entries on one target, newest first, through the API's filtered reader. */
async function auditOn(table: KnobTable, target: string) {
  const source = { name: 'knobs', key: table.keys.knobAudit() };
  return (await readAudit(table.redis, [source], { limit: 100, target, visible: () => true }))
    .entries;
}

describe.each<Backend>(['single', 'cluster'])('knobs table on %s redis', (backend) => {
  const { server, seeded } = knobsSuite(backend);

  /** Everything a rejected change must leave untouched. */
  async function snapshot(table: KnobTable, name: string) {
    return {
      row: await table.get(name),
      history: await table.history(name, { limit: 1000 }),
      audit: await table.audit({ limit: 1000 }),
      epoch: await table.epoch(),
    };
  }

  it('seeds every catalog knob at its default, idempotently', async () => {
    const { table } = await seeded();
    const rows = await table.list();
    expect(rows.map((r) => r.name)).toEqual(table.catalog.map((k) => k.name));
    for (const r of rows) {
      expect(r.version).toBe(1);
      expect(r.value).toEqual(r.spec.default);
    }
    const again = await table.seed();
    expect(again.created).toEqual([]);
    expect((await table.history('scheduler.policy')).length).toBe(1);
    expect((await table.audit({ limit: 1000 })).length).toBe(table.catalog.length);
  });

  it('lets exactly one of 20 concurrent promotions on the same base version win', async () => {
    const { table } = await seeded();
    const clients = Array.from(
      { length: 5 },
      () =>
        new KnobTable(server().client(), {
          keys: table.keys,
          clock: new ManualClock(Date.now() + HOUR * 1000),
        }),
    );
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        (clients[i % clients.length] as KnobTable).promote({
          name: 'scheduler.straggler_threshold',
          value: 3.5 + i / 100,
          baseVersion: 1,
          actor: `racer-${i}`,
          reason: 'race',
        }),
      ),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(19);
    for (const l of lost) {
      expect(l.reason).toBeInstanceOf(StaleVersionError);
      expect((l.reason as StaleVersionError).message).toMatch(
        /scheduler\.straggler_threshold: stale version: based on version 1, current is 2/,
      );
    }
    const row = await table.get('scheduler.straggler_threshold');
    expect(row.version).toBe(2);
    const winner = won[0] as PromiseFulfilledResult<{ value: number }>;
    expect(row.value).toBe(winner.value.value);
    expect(await table.history('scheduler.straggler_threshold')).toHaveLength(2);
    expect((await auditOn(table, 'scheduler.straggler_threshold')).map((a) => a.action)).toEqual([
      'knob.promote',
      'knob.seed',
    ]);
  });

  const base = (over: Partial<KnobChange>): KnobChange => ({
    name: 'scheduler.retry_limit',
    value: 4,
    baseVersion: 1,
    actor: 'tester',
    reason: 'test',
    ...over,
  });

  it.each<[string, Partial<KnobChange>, new (...a: never[]) => Error, string | undefined]>([
    ['out of domain', { value: 21 }, ValidationError, 'max'],
    ['wrong type', { value: 'four' }, ValidationError, 'type'],
    ['not an integer', { value: 4.5 }, ValidationError, 'integer'],
    ['over the step limit', { value: 9 }, ValidationError, 'max_step'],
    [
      'over the step ratio',
      { name: 'scheduler.dispatch_batch', value: 1024 },
      ValidationError,
      'max_step_ratio',
    ],
    ['not in the enum', { name: 'scheduler.policy', value: 'lottery' }, ValidationError, 'enum'],
    [
      'a placement on a missing shard',
      { name: 'placement.map', value: { tenantA: 7 } },
      ValidationError,
      'shard_range',
    ],
    ['stale', { baseVersion: 7 }, StaleVersionError, 'base_version'],
    ['unchanged', { value: 3 }, ValidationError, 'unchanged'],
  ])(
    'rejects a change that is %s, naming the rule, and changes nothing',
    async (_what, over, cls, rule) => {
      const { table } = await seeded();
      const change = base(over);
      const before = await snapshot(table, change.name);
      const err = await table.promote(change).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(cls);
      expect((err as Error).message).toContain(change.name);
      expect((err as ValidationError).details['rule']).toBe(rule);
      expect(await snapshot(table, change.name)).toEqual(before);
    },
  );

  it('takes a proposal live only with its own changes, once it passed its gates', async () => {
    const { table, clock } = await seeded();
    clock.advance(HOUR);
    const proposals = new ProposalTable(table);
    const p = await proposals.create({
      learner: 'bo',
      reason: 'try srpt',
      changes: [{ name: 'scheduler.policy', value: 'srpt', baseVersion: 1 }],
    });
    const other = { name: 'scheduler.retry_limit', value: 4, baseVersion: 1 };
    const before = await snapshot(table, 'scheduler.retry_limit');
    // Another knob in its name: refused, naming the field and the rule; nothing changes.
    await expect(
      table.promote({ ...other, actor: 'op', reason: 'x', proposalId: p.id }),
    ).rejects.toMatchObject({ field: 'proposalId', rule: 'matches_changes' });
    expect(await snapshot(table, 'scheduler.retry_limit')).toEqual(before);
    // Its own change, but not yet through the gate: refused by its status.
    const own = { name: 'scheduler.policy', value: 'srpt', baseVersion: 1 };
    await expect(
      table.promote({ ...own, actor: 'op', reason: 'x', proposalId: p.id }),
    ).rejects.toThrow(/proposal/);
    expect((await proposals.get(p.id)).proposal.status).toBe('proposed');
    await proposals.transition(p.id, 'simulated', { actor: 'gate', reason: 'ok' });
    await table.promote({ ...own, actor: 'loop', reason: 'gated', proposalId: p.id });
    expect((await proposals.get(p.id)).proposal.status).toBe('live');
    expect((await table.get('scheduler.policy')).value).toBe('srpt');
  });

  it('rejects an unknown knob', async () => {
    const { table } = await seeded();
    await expect(table.promote(base({ name: 'scheduler.nope' }))).rejects.toBeInstanceOf(
      NotFoundError,
    );
  });

  it('refuses evidence JSON cannot encode, and writes nothing', async () => {
    const { table } = await seeded();
    const name = 'scheduler.dispatch_batch';
    const before = {
      row: await table.get(name),
      history: await table.history(name, { limit: 100 }),
      audit: (await table.audit({ limit: 1000 })).length,
      epoch: await table.epoch(),
    };
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    for (const evidence of [{ toJSON: () => undefined }, cyclic, { n: 1n }]) {
      await expect(
        table.promote({ name, value: 32, baseVersion: 1, actor: 'op', reason: 'r', evidence }),
      ).rejects.toMatchObject({ details: { field: 'evidence', rule: 'json' } });
    }
    expect({
      row: await table.get(name),
      history: await table.history(name, { limit: 100 }),
      audit: (await table.audit({ limit: 1000 })).length,
      epoch: await table.epoch(),
    }).toEqual(before);
  });

  it('rejects a change inside the cooldown, and accepts it after', async () => {
    const { table, clock } = await seeded();
    await table.promote(base({ value: 4 }));
    const before = await snapshot(table, 'scheduler.retry_limit');
    clock.advance(9_999);
    const err = await table.promote(base({ value: 5, baseVersion: 2 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).rule).toBe('cooldown');
    expect((err as Error).message).toMatch(
      /scheduler\.retry_limit: updated_at changed 9999 ms ago; cooldown is 10000 ms/,
    );
    expect(await snapshot(table, 'scheduler.retry_limit')).toEqual(before);
    clock.advance(1);
    expect((await table.promote(base({ value: 5, baseVersion: 2 }))).version).toBe(3);
  });

  it('refuses every change to a pinned knob until it is unpinned', async () => {
    const { table } = await seeded();
    await table.pin('scheduler.retry_limit', 'alice', 'incident 42');
    const before = await snapshot(table, 'scheduler.retry_limit');
    for (const actorKind of ['operator', 'automation'] as const) {
      const err = await table.promote(base({ actorKind })).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PinnedError);
      expect((err as Error).message).toBe(
        'knob scheduler.retry_limit is pinned by alice; unpin it first',
      );
    }
    expect(await snapshot(table, 'scheduler.retry_limit')).toEqual(before);
    expect(before.row.pinned).toBe(true);
    expect(before.row.pinReason).toBe('incident 42');
    await table.unpin('scheduler.retry_limit', 'alice', 'resolved');
    expect((await table.promote(base({}))).version).toBe(2);
    expect((await auditOn(table, 'scheduler.retry_limit')).map((a) => a.action)).toEqual([
      'knob.promote',
      'knob.unpin',
      'knob.pin',
      'knob.seed',
    ]);
  });

  it('a row remembered from its own promotion never hides another writer’s pin or change', async () => {
    const { table, clock } = await seeded();
    const other = new KnobTable(table.redis, { keys: table.keys, clock });
    await table.promote(base({ value: 4 })); // `table` now remembers version 2
    await other.pin('scheduler.retry_limit', 'alice', 'incident 43');
    clock.advance(HOUR);
    const pinned = await table.promote(base({ value: 5, baseVersion: 2 })).catch((e: unknown) => e);
    expect(pinned).toBeInstanceOf(PinnedError);
    await other.unpin('scheduler.retry_limit', 'alice', 'resolved');
    await other.promote(base({ value: 6, baseVersion: 2 }));
    clock.advance(HOUR);
    const stale = await table.promote(base({ value: 5, baseVersion: 2 })).catch((e: unknown) => e);
    expect(stale).toBeInstanceOf(StaleVersionError);
    expect((await table.get('scheduler.retry_limit')).value).toBe(6);
    // Within the cooldown of its own last change, the remembered row still enforces it.
    await table.promote(base({ value: 5, baseVersion: 3 }));
    clock.advance(10);
    const cool = await table.promote(base({ value: 7, baseVersion: 4 })).catch((e: unknown) => e);
    expect((cool as ValidationError).rule).toBe('cooldown');
  });

  it('the kill switch freezes automation but not operators', async () => {
    const { table, clock } = await seeded();
    expect(await table.freeze('bob', 'bad night')).toBe(true);
    expect(await table.freeze('bob', 'again')).toBe(false);
    const before = await snapshot(table, 'scheduler.retry_limit');
    const err = await table
      .promote(base({ actorKind: 'automation', actor: 'learner-bo' }))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FrozenError);
    expect((err as Error).message).toMatch(/automation is frozen \(by bob\)/);
    expect(await snapshot(table, 'scheduler.retry_limit')).toEqual(before);
    expect((await table.promote(base({ actorKind: 'operator' }))).version).toBe(2);
    await table.unfreeze('bob', 'morning');
    expect(await table.frozen()).toBeNull();
    clock.advance(HOUR);
    const after = await table.promote(base({ actorKind: 'automation', value: 5, baseVersion: 2 }));
    expect(after.version).toBe(3);
    expect((await table.audit({ limit: 4 })).map((a) => a.action)).toEqual([
      'knob.promote',
      'knobs.unfreeze',
      'knob.promote',
      'knobs.freeze',
    ]);
  });

  it('keeps exactly one history and one audit entry per accepted change', async () => {
    const { table, clock } = await seeded();
    const values = [4, 6, 2, 0];
    for (const [i, v] of values.entries()) {
      await table.promote(base({ value: v, baseVersion: i + 1, reason: `step ${i}` }));
      clock.advance(HOUR);
    }
    await table.promote(base({ value: 1, baseVersion: 5 })).catch(() => undefined);
    await table.promote(base({ value: 99, baseVersion: 5 })).catch(() => undefined); // rejected
    const history = await table.history('scheduler.retry_limit');
    expect(history.map((h) => h.version)).toEqual([6, 5, 4, 3, 2, 1]);
    expect(history.map((h) => h.new)).toEqual([1, 0, 2, 6, 4, 3]);
    expect(history.slice(0, 5).map((h) => h.old)).toEqual([0, 2, 6, 4, 3]);
    const audit = await auditOn(table, 'scheduler.retry_limit');
    expect(audit.map((a) => a.action)).toEqual([
      'knob.promote',
      'knob.promote',
      'knob.promote',
      'knob.promote',
      'knob.promote',
      'knob.seed',
    ]);
    expect(audit.map((a) => a.detail['version'])).toEqual([6, 5, 4, 3, 2, 1]);
  });

  it('changes several knobs in one atomic step, or none when one is stale', async () => {
    const { table } = await seeded();
    await table.promote(base({ value: 4 }));
    const before = await snapshot(table, 'scheduler.policy');
    const err = await table
      .promoteAll({
        actor: 'bo',
        reason: 'tuned',
        changes: [
          { name: 'scheduler.policy', value: 'srpt', baseVersion: 1 },
          { name: 'scheduler.retry_limit', value: 5, baseVersion: 1 },
        ],
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StaleVersionError);
    expect((err as Error).message).toMatch(/^knob scheduler\.retry_limit: stale version/);
    expect(await snapshot(table, 'scheduler.policy')).toEqual(before);
    // The proposal it names must exist (and propose exactly these changes).
    const changes = [
      { name: 'scheduler.policy', value: 'srpt', baseVersion: 1 },
      { name: 'scheduler.dispatch_batch', value: 32, baseVersion: 1 },
    ];
    const proposals = new ProposalTable(table);
    await proposals.create({ id: 'p-1', learner: 'bo', reason: 'tuned', changes });
    await proposals.transition('p-1', 'simulated', { actor: 'gate', reason: 'ok' });
    const done = await table.promoteAll({
      actor: 'bo',
      reason: 'tuned',
      proposalId: 'p-1',
      changes,
    });
    expect(done.map((d) => d.version)).toEqual([2, 2]);
    expect((await table.get('scheduler.policy')).value).toBe('srpt');
    expect((await table.get('scheduler.dispatch_batch')).proposalId).toBe('p-1');
    expect(await table.epoch()).toBe(before.epoch + 2);
    await expect(
      table.promoteAll({
        actor: 'x',
        reason: 'y',
        changes: [
          { name: 'scheduler.policy', value: 'fifo', baseVersion: 2 },
          { name: 'scheduler.policy', value: 'sjf', baseVersion: 2 },
        ],
      }),
    ).rejects.toThrow(/appears twice/);
  });

  it('rolls back to an earlier version exactly, as a new version', async () => {
    const { table, clock } = await seeded();
    const mapA = { tenantA: 1, tenantB: 2, 'part-7': 0 };
    await table.promote({
      name: 'placement.map',
      value: mapA,
      baseVersion: 1,
      actor: 'op',
      reason: 'spread',
    });
    clock.advance(HOUR);
    await table.promote({
      name: 'placement.map',
      value: { tenantA: 0 },
      baseVersion: 2,
      actor: 'learner',
      reason: 'consolidate',
    });
    const rolled = await table.rollback({
      name: 'placement.map',
      toVersion: 2,
      actor: 'slo-guard',
      reason: 'p99 regression',
    });
    expect(rolled.version).toBe(4);
    const row = await table.get('placement.map');
    expect(row.value).toEqual(mapA);
    expect(row.version).toBe(4);
    const [last] = await table.history('placement.map', { limit: 1 });
    expect(last?.kind).toBe('rollback');
    expect(last?.old).toEqual({ tenantA: 0 });
    expect(last?.evidence).toEqual({ rolled_back_to: 2 });
    await expect(
      table.rollback({ name: 'placement.map', toVersion: 99, actor: 'x', reason: 'y' }),
    ).rejects.toThrow(/no version 99/);
    await expect(
      table.rollback({
        name: 'placement.map',
        toVersion: 1,
        actor: 'x',
        reason: 'y',
        baseVersion: 3,
      }),
    ).rejects.toBeInstanceOf(StaleVersionError);
  });
});

describe('seeding and the cooldown', () => {
  const { server } = knobsSuite('single');

  it('the seed is not a tuning change: the first promotion is not held by the cooldown', async () => {
    const clock = new ManualClock();
    const table = new KnobTable(server().client(), { keys: uniqueKeys(), clock });
    await table.seed();
    const r = await table.promote({
      name: 'scheduler.policy',
      value: 'sjf',
      baseVersion: 1,
      actor: 'op',
      reason: 'first',
    });
    expect(r.version).toBe(2);
    const err = await table
      .promote({
        name: 'scheduler.policy',
        value: 'fifo',
        baseVersion: 2,
        actor: 'op',
        reason: 'second',
      })
      .catch((e: unknown) => e);
    expect((err as ValidationError).rule).toBe('cooldown');
  });
});
