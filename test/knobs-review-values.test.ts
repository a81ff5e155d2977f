// Values the knobs layer holds must not change behind its back (a caller's object, a value
// handed out by the knob client), values it accepts must be what JSON keeps, a NaN must not
// pass a safety check or come out of the search space, and a small history bound must not
// hide the newest versions from valueAt and rollback.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CATALOG, findKnob, searchSpace, validateStep, validateValue } from '../knobs/index.ts';
import type { KnobSpec } from '../knobs/index.ts';
import { KnobClient } from '../controlplane/knobs/client.ts';
import { ManualClock } from '../controlplane/knobs/clock.ts';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { ValidationError } from '../controlplane/store/errors.ts';
import { eventually, startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

const HOUR = 3_600_000;
const MAP = 'placement.map'; // maxMoves 4
const knob = (name: string): KnobSpec => findKnob(CATALOG, name) as KnobSpec;
const many = (n: number) =>
  Object.fromEntries(Array.from({ length: n }, (_, i) => [`t${i}`, i % 3]));

describe('knob values (pure)', () => {
  it('a placement map is a plain object: a Map or a Date is refused', () => {
    const spec = knob(MAP);
    expect(validateValue(spec, new Map([['a', 1]]))?.rule).toBe('type');
    expect(validateValue(spec, new Date())?.rule).toBe('type');
    expect(validateValue(spec, { a: 1 })).toBeNull();
    expect(validateValue(spec, Object.assign(Object.create(null) as object, { a: 1 }))).toBeNull();
  });

  it('a NaN time since the last change fails the cooldown', () => {
    expect(validateStep(knob('scheduler.retry_limit'), 3, 4, NaN)?.rule).toBe('cooldown');
    expect(validateStep(knob('scheduler.retry_limit'), 3, 4, Infinity)).toBeNull();
  });

  it('the search space refuses a NaN coordinate', () => {
    const space = searchSpace(CATALOG.filter((k) => k.type !== 'placement'));
    const x = space.knobs.map(() => 0.5);
    x[2] = NaN;
    expect(() => space.decode(x)).toThrow(/coordinate 2 .* NaN/);
    expect(() => space.decode(space.knobs.map(() => 0.5))).not.toThrow();
  });
});

describe('knob values (single redis)', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterAll(async () => {
    await redis?.stop();
  });

  async function seeded(opts: { historyMaxLen?: number } = {}) {
    const clock = new ManualClock();
    const table = new KnobTable(redis.client(), { keys: uniqueKeys(), clock, ...opts });
    await table.seed();
    clock.advance(HOUR);
    return { table, clock };
  }

  it('a caller changing the value it promoted does not change what the next step is checked against', async () => {
    const { table, clock } = await seeded();
    const map: Record<string, number> = { a: 1 };
    const r = await table.promote({
      name: MAP,
      value: map,
      baseVersion: 1,
      actor: 'l',
      reason: 'r',
    });
    for (const [k, v] of Object.entries(many(50))) map[k] = v;
    clock.advance(HOUR);
    const next = { name: MAP, value: { ...map, b: 0 }, baseVersion: r.version };
    await expect(table.promote({ ...next, actor: 'l', reason: 'r' })).rejects.toMatchObject({
      rule: 'max_moves',
    });
    expect((await table.get(MAP)).value).toEqual({ a: 1 });
  });

  it('a caller changing a row it read does not change what the next step is checked against', async () => {
    const { table } = await seeded();
    const row = await table.get(MAP);
    Object.assign(row.value as object, many(50));
    const next = { name: MAP, value: { ...many(50), b: 0 }, baseVersion: row.version };
    const err = await table.promote({ ...next, actor: 'l', reason: 'r' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect(err).toMatchObject({ rule: 'max_moves' });
  });

  it('the knob client hands out frozen values: a reader cannot change them for the others', async () => {
    const { table, clock } = await seeded();
    await table.promote({ name: MAP, value: { a: 1 }, baseVersion: 1, actor: 'l', reason: 'r' });
    const knobs = await KnobClient.start({
      table: new KnobTable(redis.client(), { keys: table.keys }),
      names: [MAP],
      resyncIntervalMs: 0,
    });
    const got = knobs.get<Record<string, number>>(MAP);
    expect(() => {
      got['b'] = 2;
    }).toThrow(TypeError);
    const snap = knobs.snapshot()[MAP] as Record<string, number>;
    expect(() => {
      snap['a'] = 0;
    }).toThrow(TypeError);
    expect(knobs.get(MAP)).toEqual({ a: 1 });
    // Values that arrive by message are frozen too.
    clock.advance(HOUR);
    await table.promote({ name: MAP, value: { a: 2 }, baseVersion: 2, actor: 'l', reason: 'r' });
    await eventually(() => knobs.version(MAP) === 3, 'client sees version 3');
    expect(Object.isFrozen(knobs.get(MAP))).toBe(true);
    await knobs.close();
  });

  it('with a small history bound, valueAt and rollback still reach the newest versions', async () => {
    const { table, clock } = await seeded({ historyMaxLen: 5 });
    const name = 'scheduler.retry_limit';
    let v = 1;
    for (let i = 0; i < 30; i++) {
      clock.advance(HOUR);
      v = (
        await table.promote({ name, value: i % 2 ? 3 : 4, baseVersion: v, actor: 'o', reason: 'r' })
      ).version;
    }
    expect(await table.valueAt(name, v)).toBe(3);
    expect(await table.valueAt(name, v - 1)).toBe(4);
    // An undo of the last change, within the cooldown: only an undo may skip it.
    const r = await table.rollback({ name, toVersion: v - 1, actor: 'o', reason: 'undo' });
    expect(r).toMatchObject({ value: 4, version: v + 1 });
  });
});
