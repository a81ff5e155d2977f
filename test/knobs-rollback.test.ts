// The knobs table's rollback limits, seeding over a narrowed catalog, pins seen by the dry
// run, and placement names, against real redis-server processes (one node and a cluster).
import { describe, expect, it } from 'vitest';
import { CATALOG, type KnobSpec } from '../knobs/index.ts';
import { KnobTable, type KnobChange } from '../controlplane/knobs/table.ts';
import { PinnedError, StaleVersionError, ValidationError } from '../controlplane/store/errors.ts';
import { HOUR, knobsSuite } from './helpers/knobs-fixture.ts';
import { uniqueKeys } from './helpers/redis.ts';
import { ManualClock } from '../controlplane/knobs/clock.ts';
import type { Backend } from './helpers/redis.ts';

const BATCH = 'scheduler.dispatch_batch'; // 1..1024, at most x4 per step, 10 s cooldown

describe.each<Backend>(['single', 'cluster'])('knobs table rollbacks on %s redis', (backend) => {
  const { seeded, server } = knobsSuite(backend);

  /** dispatch_batch 16 (v1) -> 64 (v2) -> 256 (v3) -> 1024 (v4), an hour apart. */
  async function climbed() {
    const s = await seeded();
    let version = 1;
    for (const value of [64, 256, 1024]) {
      s.clock.advance(HOUR);
      ({ version } = await s.table.promote({
        name: BATCH,
        value,
        baseVersion: version,
        actor: 'bot',
        actorKind: 'automation',
        reason: 'up',
      }));
    }
    return s;
  }

  const auto = { actor: 'bot', actorKind: 'automation' as const, reason: 'rb' };

  it('holds a rollback past the last change to the step limit; an undo is exempt', async () => {
    const { table, clock } = await climbed();
    clock.advance(HOUR); // past the cooldown: only the step limit is left to hold it
    const far = await table
      .rollback({ name: BATCH, toVersion: 1, ...auto })
      .catch((e: unknown) => e);
    expect(far).toBeInstanceOf(ValidationError);
    expect(far).toMatchObject({ details: { knob: BATCH, field: 'value', rule: 'max_step_ratio' } });
    expect(await table.get(BATCH)).toMatchObject({ value: 1024, version: 4 });
    // Undoing the last change skips the limits: at once, inside the cooldown of that change.
    await table.promote({ name: BATCH, value: 512, baseVersion: 4, ...auto });
    expect(await table.rollback({ name: BATCH, toVersion: 4, ...auto })).toMatchObject({
      value: 1024,
      version: 6,
    });
  });

  it('holds a redo (undoing an undo) to the cooldown, so a knob cannot flap at once', async () => {
    const { table, clock } = await climbed();
    await table.rollback({ name: BATCH, toVersion: 3, ...auto }); // undo: 1024 -> 256, v5
    const back = await table
      .rollback({ name: BATCH, toVersion: 4, ...auto }) // 256 -> 1024 again: no undo
      .catch((e: unknown) => e);
    expect(back).toBeInstanceOf(ValidationError);
    expect(back).toMatchObject({ details: { field: 'updated_at', rule: 'cooldown' } });
    expect(await table.get(BATCH)).toMatchObject({ value: 256, version: 5 });
    clock.advance(HOUR);
    expect(await table.rollback({ name: BATCH, toVersion: 4, ...auto })).toMatchObject({
      value: 1024,
      version: 6,
    });
  });

  it('holds a redo to the cooldown when the retained history no longer reaches the seed', async () => {
    // historyMaxLen 2: the replay reads the newest 4 entries. From a window that starts inside
    // a run of rollbacks the undo stack was seeded with values already undone, and the redo
    // below passed as an undo, at once. Without the seed the replay is not trusted.
    const clock = new ManualClock();
    const table = new KnobTable(server().client(), { keys: uniqueKeys(), clock, historyMaxLen: 2 });
    await table.seed();
    const step = async (f: () => Promise<unknown>) => {
      clock.advance(HOUR);
      await f();
    };
    await step(() => table.promote({ name: BATCH, value: 64, baseVersion: 1, ...auto })); // v2
    await step(() => table.promote({ name: BATCH, value: 256, baseVersion: 2, ...auto })); // v3
    await step(() => table.rollback({ name: BATCH, toVersion: 2, ...auto })); // v4: 64
    await step(() => table.rollback({ name: BATCH, toVersion: 1, ...auto })); // v5: 16
    await step(() => table.rollback({ name: BATCH, toVersion: 4, ...auto })); // v6: 64, a redo
    await step(() => table.rollback({ name: BATCH, toVersion: 5, ...auto })); // v7: 16, undo of v6
    // 16 -> 64 again undoes the undo v7: a redo (the whole history's stack is [16]).
    const redo = await table
      .rollback({ name: BATCH, toVersion: 6, ...auto })
      .catch((e: unknown) => e);
    expect(redo).toMatchObject({ details: { field: 'updated_at', rule: 'cooldown' } });
    expect(await table.get(BATCH)).toMatchObject({ value: 16, version: 7 });
    // The usual undo (of the last change, a promotion) needs no replay and stays exempt.
    await step(() => table.promote({ name: BATCH, value: 64, baseVersion: 7, ...auto })); // v8
    expect(await table.rollback({ name: BATCH, toVersion: 7, ...auto })).toMatchObject({
      value: 16,
      version: 9,
    });
  });

  it('undoes change after change at once, back down the chain, as the registry does', async () => {
    const { table } = await climbed();
    for (const [toVersion, value] of [
      [3, 256],
      [2, 64],
      [1, 16],
    ] as const)
      expect(await table.rollback({ name: BATCH, toVersion, ...auto })).toMatchObject({ value });
    const history = await table.history(BATCH, { limit: 3 });
    expect(history.map((h) => [h.kind, h.old, h.new])).toEqual([
      ['rollback', 64, 16],
      ['rollback', 256, 64],
      ['rollback', 1024, 256],
    ]);
  });

  it('refuses a rollback to a value the knob never had, naming the field and rule', async () => {
    const { table } = await climbed();
    const dry = await table
      .check({ name: BATCH, value: 1, baseVersion: 4, ...auto }, 'rollback')
      .catch((e: unknown) => e);
    expect(dry).toBeInstanceOf(ValidationError);
    expect(dry).toMatchObject({ details: { knob: BATCH, field: 'value', rule: 'in_history' } });
    const all = await table
      .promoteAll({ ...auto, changes: [{ name: BATCH, value: 1, baseVersion: 4 }] }, 'rollback')
      .catch((e: unknown) => e);
    expect(all).toBeInstanceOf(ValidationError);
    expect(all).toMatchObject({ details: { field: 'value', rule: 'in_history' } });
    expect(await table.get(BATCH)).toMatchObject({ value: 1024, version: 4 });
    expect(await table.history(BATCH, { limit: 100 })).toHaveLength(4);
  });

  it('reports a stored value a narrowed catalog leaves out of its domain, and keeps it', async () => {
    const { table, clock } = await seeded();
    await table.promote({
      name: 'scheduler.retry_limit',
      value: 8,
      baseVersion: 1,
      actor: 'op',
      reason: 'x',
    });
    clock.advance(HOUR);
    await table.promote({
      name: 'scheduler.retry_limit',
      value: 12,
      baseVersion: 2,
      actor: 'op',
      reason: 'x',
    });
    const narrowed = CATALOG.map((k) =>
      k.name === 'scheduler.retry_limit' ? { ...k, max: 10 } : k,
    ) as KnobSpec[];
    const next = new KnobTable(table.redis, { keys: table.keys, clock, catalog: narrowed });
    const seeded2 = await next.seed();
    expect(seeded2.created).toEqual([]);
    expect(seeded2.outOfDomain).toEqual([
      {
        name: 'scheduler.retry_limit',
        value: 12,
        field: 'value',
        rule: 'max',
        message: 'knob scheduler.retry_limit: value must be <= 10, got 12',
      },
    ]);
    // Nothing changed but the declaration.
    expect(await next.get('scheduler.retry_limit')).toMatchObject({
      value: 12,
      version: 3,
      spec: { max: 10 },
    });
    expect(await next.history('scheduler.retry_limit')).toHaveLength(3);
    expect((await table.seed()).outOfDomain).toEqual([]);
  });

  it('the dry run sees a pin made by another process or by this table', async () => {
    const { table, clock } = await seeded();
    const change: KnobChange = {
      name: 'scheduler.lease_ms',
      value: 60_000,
      baseVersion: 1,
      actor: 'a',
      reason: 'x',
    };
    await table.check(change); // remembers the unpinned row at version 1
    const other = new KnobTable(table.redis, { keys: table.keys, clock });
    await other.pin('scheduler.lease_ms', 'alice', 'incident 7');
    expect(await table.check(change).catch((e: unknown) => e)).toBeInstanceOf(PinnedError);
    await other.unpin('scheduler.lease_ms', 'alice', 'over');
    await table.check(change); // remembered again, unpinned
    await table.pin('scheduler.lease_ms', 'bob', 'incident 8');
    expect(await table.check(change).catch((e: unknown) => e)).toBeInstanceOf(PinnedError);
    await table.unpin('scheduler.lease_ms', 'bob', 'over');
    // A change another process made since is stale in the dry run too.
    await table.check(change);
    await other.promote(change);
    expect(await table.check(change).catch((e: unknown) => e)).toBeInstanceOf(StaleVersionError);
  });

  it('refuses a placement map with an empty name, or one no tenant can have', async () => {
    const { table } = await seeded();
    for (const [value, rule] of [
      [{ '': 0 }, 'non_empty_key'],
      [{ 'tenant a': 1 }, 'name_format'],
    ] as const) {
      const err = await table
        .promote({ name: 'placement.map', value, baseVersion: 1, actor: 'a', reason: 'x' })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ValidationError);
      expect(err).toMatchObject({ details: { knob: 'placement.map', field: 'value', rule } });
    }
    expect(await table.get('placement.map')).toMatchObject({ value: {}, version: 1 });
  });
});
