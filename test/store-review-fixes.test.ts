// Review fixes in the table store: a json field JSON cannot represent is refused (naming the
// field and the rule) before anything is written; a cross-family write is a ValidationError;
// a row removed and created again does not start over at version 1, so a writer holding a
// version of the removed row is refused as stale.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StaleVersionError, ValidationError } from '../controlplane/store/errors.ts';
import { Table } from '../controlplane/store/table.ts';
import { startTestRedis, uniqueKeys, type Backend, type TestRedis } from './helpers/redis.ts';

const fields = {
  id: { type: 'string' },
  tenant: { type: 'string' },
  meta: { type: 'json', optional: true },
} as const;

describe.each<Backend>(['single', 'cluster'])('table store review fixes on %s redis', (backend) => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis(backend);
  });
  afterAll(async () => {
    await redis?.stop();
  });

  function things() {
    const keys = uniqueKeys();
    const table = new Table(redis.client(), keys, {
      name: 'things',
      fields,
      id: (r) => r.id,
      family: (r) => `things:${r.tenant}`,
      indexes: { all: () => 1 },
    });
    return { keys, table };
  }

  it('refuses a json value JSON cannot represent, naming the field, before writing', async () => {
    const { table } = things();
    expect(await table.insert({ id: 'a', tenant: 't', meta: { keep: 1 } })).toBe(1);
    for (const bad of [() => 1, Symbol('s'), 10n, { toJSON: () => undefined }]) {
      const err = await table
        .write([{ row: { id: 'a', tenant: 't', meta: bad }, expect: 1 }])
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).field).toBe('meta');
      expect((err as ValidationError).rule).toBe('json');
      expect((err as Error).message).toMatch(/^things\.meta: must be JSON-serializable/);
    }
    // Nothing was written: the version and the old value stand.
    expect(await table.mustGet('things:t', 'a')).toEqual({
      version: 1,
      row: { id: 'a', tenant: 't', meta: { keep: 1 } },
    });
    // A cycle too.
    const cyclic: Record<string, unknown> = {};
    cyclic['self'] = cyclic;
    await expect(table.insert({ id: 'b', tenant: 't', meta: cyclic })).rejects.toMatchObject({
      field: 'meta',
      rule: 'json',
    });
    expect(await table.get('things:t', 'b')).toBeNull();
  });

  it('refuses a write across two families with a ValidationError', async () => {
    const { table } = things();
    const err = await table
      .write([
        { row: { id: 'a', tenant: 't' }, expect: 0 },
        { row: { id: 'b', tenant: 'u' }, expect: 0 },
      ])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).rule).toBe('one_family');
    expect((err as ValidationError).field).toBe('rows');
    expect(await table.get('things:t', 'a')).toBeNull();
  });

  it('refuses a writer holding a version of a removed row once the row is created again', async () => {
    const { table } = things();
    const row = { id: 'a', tenant: 't' };
    expect(await table.insert({ ...row, meta: 'old' })).toBe(1);
    const held = await table.mustGet('things:t', 'a'); // a slow writer reads version 1
    expect(await table.write([{ row: { ...row, meta: 'old2' }, expect: 1 }])).toEqual([2]);
    await table.remove(row, 2);
    expect(await table.get('things:t', 'a')).toBeNull();
    expect(await table.range('things:t', 'all')).toEqual([]);
    // Created again: it starts above every version the removed row had.
    const v = await table.insert({ ...row, meta: 'new' });
    expect(v).toBe(3);
    // The old row's versions are stale against the new row, 1 as well as 2.
    for (const expect_ of [held.version, 2]) {
      const err = await table
        .write([{ row: { ...held.row, meta: 'lost update' }, expect: expect_ }])
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StaleVersionError);
    }
    expect(await table.mustGet('things:t', 'a')).toEqual({
      version: 3,
      row: { ...row, meta: 'new' },
    });
    // Removed and created again in a later round, still above.
    await table.remove(row, 3);
    expect(await table.write([{ row, expect: 'any' }])).toEqual([4]);
    // A remove refused as stale records nothing; a removed row that never existed neither.
    await expect(table.remove(row, 1)).rejects.toBeInstanceOf(StaleVersionError);
    await table.remove({ id: 'never', tenant: 't' }, 'any');
    expect(await table.insert({ id: 'never', tenant: 't' })).toBe(4);
  });
});
