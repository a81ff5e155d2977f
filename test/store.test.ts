// The table store against real Redis: typed rows, indexes written with the row, optimistic
// versions across several rows in one atomic step, bounded logs, feature detection.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CorruptRowError,
  StaleVersionError,
  ValidationError,
} from '../controlplane/store/errors.ts';
import { detectFeatures } from '../controlplane/store/features.ts';
import { Log } from '../controlplane/store/log.ts';
import { storeScripts } from '../controlplane/store/scripts.ts';
import { Table } from '../controlplane/store/table.ts';
import { startTestRedis, uniqueKeys, type Backend, type TestRedis } from './helpers/redis.ts';

const fields = {
  id: { type: 'string' },
  tenant: { type: 'string' },
  state: { type: 'string' },
  sizeBytes: { type: 'number' },
  urgent: { type: 'boolean' },
  meta: { type: 'json', optional: true },
} as const;

describe.each<Backend>(['single', 'cluster'])('table store on %s redis', (backend) => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis(backend);
  });
  afterAll(async () => {
    await redis?.stop();
  });

  function jobs() {
    const keys = uniqueKeys();
    const table = new Table(redis.client(), keys, {
      name: 'jobs',
      fields,
      id: (r) => r.id,
      family: (r) => `jobs:${r.tenant}`,
      indexes: {
        size: (r) => r.sizeBytes,
        // Only queued rows are in the queue index; a row leaving that state leaves the index.
        queued: (r) => (r.state === 'queued' ? r.sizeBytes : undefined),
      },
    });
    return { keys, table };
  }

  const row = (
    id: string,
    over: Partial<{ state: string; sizeBytes: number; tenant: string }> = {},
  ) => ({
    id,
    tenant: 'acme',
    state: 'queued',
    sizeBytes: 10,
    urgent: false,
    ...over,
  });

  it('round-trips typed rows with their version', async () => {
    const { table } = jobs();
    expect(await table.insert({ ...row('a'), meta: { tags: ['x'] } })).toBe(1);
    const got = await table.mustGet('jobs:acme', 'a');
    expect(got).toEqual({ version: 1, row: { ...row('a'), meta: { tags: ['x'] } } });
    expect(await table.get('jobs:acme', 'missing')).toBeNull();
  });

  it('refuses a row that breaks its schema, naming the field and the rule', async () => {
    const { table } = jobs();
    const err = await table.insert({ ...row('a'), sizeBytes: Number.NaN }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).field).toBe('sizeBytes');
    expect((err as ValidationError).rule).toBe('type');
    expect(await table.get('jobs:acme', 'a')).toBeNull();
  });

  it('refuses a stored row that does not decode, naming the table, row, field and rule', async () => {
    const { table } = jobs();
    const r = redis.client();
    // Written by something other than the table: before, these came back as NaN, a boolean
    // read from anything, a missing required field left out, and a bare SyntaxError.
    for (const [field, raw, rule] of [
      ['sizeBytes', 'ten', 'number'],
      ['sizeBytes', '', 'number'],
      ['urgent', 'yes', 'boolean'],
      ['meta', '{oops', 'json'],
      ['state', undefined, 'required'],
    ] as const) {
      const id = `${field}-${rule}-${String(raw?.length)}`;
      await table.insert({ ...row(id), meta: { k: 1 } });
      expect((await table.mustGet('jobs:acme', id)).row.sizeBytes).toBe(10);
      const key = table.rowKey('jobs:acme', id);
      if (raw === undefined) await r.hdel(key, field);
      else await r.hset(key, field, raw);
      for (const read of [
        () => table.get('jobs:acme', id),
        async () => (await table.getMany('jobs:acme', [id]))[0],
      ]) {
        const err = await read().catch((e: unknown) => e);
        expect(err, `${field} ${rule}`).toBeInstanceOf(CorruptRowError);
        expect((err as CorruptRowError).details).toEqual({ table: 'jobs', id, field, rule });
        expect((err as CorruptRowError).status).toBe(500);
      }
    }
  });

  it('keeps indexes in step with rows', async () => {
    const { table } = jobs();
    for (const [i, size] of [30, 10, 20].entries())
      await table.insert(row(`r${i}`, { sizeBytes: size }));
    expect(await table.range('jobs:acme', 'size')).toEqual(['r1', 'r2', 'r0']);
    expect(await table.range('jobs:acme', 'queued', { min: 15 })).toEqual(['r2', 'r0']);
    const prev = (await table.mustGet('jobs:acme', 'r2')).row;
    await table.write([{ row: { ...prev, state: 'running' }, expect: 1 }]);
    expect(await table.range('jobs:acme', 'queued')).toEqual(['r1', 'r0']);
    expect(await table.count('jobs:acme', 'size')).toBe(3);
    await table.remove(prev, 2);
    expect(await table.range('jobs:acme', 'size')).toEqual(['r1', 'r0']);
    expect(await table.get('jobs:acme', 'r2')).toBeNull();
  });

  it('writes several rows atomically or none when one version is stale', async () => {
    const { table, keys } = jobs();
    await table.insert(row('a'));
    await table.insert(row('b'));
    const log = keys.log('jobs:acme', 'events');
    const versions = await table.write(
      [
        { row: row('a', { state: 'done' }), expect: 1 },
        { row: row('b', { state: 'done' }), expect: 1 },
      ],
      [{ key: log, maxLen: 100, fields: { event: 'both done' } }],
    );
    expect(versions).toEqual([2, 2]);
    const err = await table
      .write([
        { row: row('a', { state: 'queued' }), expect: 2 },
        { row: row('b', { state: 'queued' }), expect: 1 },
      ])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StaleVersionError);
    expect((err as Error).message).toBe(
      'jobs row b: stale version: based on version 1, current is 2',
    );
    expect((await table.mustGet('jobs:acme', 'a')).row.state).toBe('done');
    expect(await new Log(redis.client(), log, 100).length()).toBe(1);
  });

  it('leaves an index when a row stops scoring in it', async () => {
    const { table } = jobs();
    await table.insert(row('d'));
    await table.insert(row('e'));
    expect(await table.range('jobs:acme', 'queued')).toEqual(['d', 'e']);
    expect(await table.write([{ row: row('d', { state: 'running' }), expect: 1 }])).toEqual([2]);
    expect(await table.range('jobs:acme', 'queued')).toEqual(['e']);
    expect(await table.range('jobs:acme', 'size')).toEqual(['d', 'e']);
    // And back in when it scores again.
    await table.write([{ row: row('d'), expect: 2 }]);
    expect(await table.range('jobs:acme', 'queued')).toEqual(['d', 'e']);
  });

  it('refuses a batch naming one row twice and leaves the row as it was', async () => {
    const { table } = jobs();
    await table.insert(row('a'));
    const err = await table
      .write([
        { row: row('a', { sizeBytes: 10 }), expect: 1 },
        { row: row('a', { sizeBytes: 20 }), expect: 1 },
      ])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).rule).toBe('unique');
    expect((err as ValidationError).details['id']).toBe('a');
    // A write and a remove of the same row are refused alike.
    await expect(
      table.write(
        [{ row: row('a', { sizeBytes: 30 }), expect: 1 }],
        [],
        [{ row: row('a'), expect: 1 }],
      ),
    ).rejects.toBeInstanceOf(ValidationError);
    expect(await table.mustGet('jobs:acme', 'a')).toEqual({ version: 1, row: row('a') });
  });

  describe('a refused write changes nothing', () => {
    const events = () => {
      const keys = uniqueKeys();
      const table = new Table(redis.client(), keys, {
        name: 'events',
        fields: { id: { type: 'string' }, at: { type: 'string', optional: true } },
        id: (r) => r.id,
        family: () => 'ev',
        indexes: { byAt: (r) => (r.at === undefined ? undefined : Date.parse(r.at)) },
      });
      const log = keys.log('ev', 'audit');
      const state = async () => ({
        a: await table.get('ev', 'a'),
        b: await table.get('ev', 'b'),
        index: await table.range('ev', 'byAt'),
        log: await new Log(redis.client(), log, 100).length(),
      });
      const empty = { a: null, b: null, index: [], log: 0 };
      return { table, log, state, empty, client: redis.client(), keys };
    };

    it('refuses a non-finite index score before writing any row, then takes the corrected batch', async () => {
      const { table, log, state, empty } = events();
      const entry = [{ key: log, maxLen: 100, fields: { event: 'two' } }];
      const err = await table
        .write(
          [
            { row: { id: 'a', at: '2024-01-01' }, expect: 0 },
            { row: { id: 'b', at: 'garbage' }, expect: 0 },
          ],
          entry,
        )
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).field).toBe('index.byAt');
      expect((err as ValidationError).rule).toBe('finite_score');
      expect((err as ValidationError).details['id']).toBe('b');
      expect(await state()).toEqual(empty);
      const versions = await table.write(
        [
          { row: { id: 'a', at: '2024-01-01' }, expect: 0 },
          { row: { id: 'b', at: '2024-01-02' }, expect: 0 },
        ],
        entry,
      );
      expect(versions).toEqual([1, 1]);
      expect(await state()).toMatchObject({ index: ['a', 'b'], log: 1 });
    });

    it('refuses a log entry the script could not append, before writing any row', async () => {
      const { table, log, state, empty } = events();
      const rows = [
        { row: { id: 'a', at: '2024-01-01' }, expect: 0 as const },
        { row: { id: 'b' }, expect: 0 as const },
      ];
      for (const [bad, rule] of [
        [{ key: log, maxLen: 100, fields: {} }, 'non_empty'],
        [{ key: log, maxLen: -1, fields: { event: 'x' } }, 'non_negative_integer'],
        [{ key: log, maxLen: 1.5, fields: { event: 'x' } }, 'non_negative_integer'],
      ] as const) {
        const err = await table.write(rows, [bad]).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(ValidationError);
        expect((err as ValidationError).rule).toBe(rule);
        expect(await state()).toEqual(empty);
      }
      await table.write(rows, [{ key: log, maxLen: 100, fields: { event: 'x' } }]);
      expect(await state()).toMatchObject({ index: ['a'], log: 1 });
      expect((await table.mustGet('ev', 'b')).version).toBe(1);
    });

    it('checks the keys it writes before the first write', async () => {
      const { table, state, empty, client, keys } = events();
      // An index key holding the wrong type: ZADD would fail after the row was written.
      const index = keys.index('ev', 'events', 'byAt');
      await client.set(index, 'not a sorted set');
      await expect(
        table.write([
          { row: { id: 'a' }, expect: 0 },
          { row: { id: 'b', at: '2024-01-01' }, expect: 0 },
        ]),
      ).rejects.toThrow(/holds a string/);
      await client.del(index);
      expect(await state()).toEqual(empty);
    });
  });

  it('refuses one atomic write across two families (two cluster slots)', async () => {
    const { table } = jobs();
    await expect(
      table.write([
        { row: row('a'), expect: 0 },
        { row: row('b', { tenant: 'other' }), expect: 0 },
      ]),
    ).rejects.toThrow(/one family/);
  });

  it('reads many rows in one pipeline', async () => {
    const { table } = jobs();
    await table.insert(row('a', { sizeBytes: 1 }));
    await table.insert(row('c', { sizeBytes: 3 }));
    const got = await table.getMany('jobs:acme', ['a', 'b', 'c']);
    expect(got.map((g) => g?.row.sizeBytes ?? null)).toEqual([1, null, 3]);
  });

  it('bounds logs and reads them both ways', async () => {
    const keys = uniqueKeys();
    const log = new Log(redis.client(), keys.log('x', 'telemetry'), 50);
    for (let i = 0; i < 500; i++) await log.append({ i });
    const len = await log.length();
    // MAXLEN ~ trims whole macro-nodes: about the bound, never the full 500.
    expect(len).toBeGreaterThanOrEqual(50);
    expect(len).toBeLessThan(500);
    const newest = await log.latest({ count: 3 });
    expect(newest.map((e) => e.fields['i'])).toEqual(['499', '498', '497']);
    const older = await log.latest({ count: 2, before: newest[2]?.id as string });
    expect(older.map((e) => e.fields['i'])).toEqual(['496', '495']);
    const first = await log.range({ count: 1 });
    expect(Number(first[0]?.fields['i'])).toBe(500 - len);
  });

  it('detects what the server offers without depending on RediSearch', async () => {
    const f = await detectFeatures(redis.client());
    expect(f.version).toMatch(/^7\./);
    expect(f.cluster).toBe(backend === 'cluster');
    expect(f.search).toBe(f.modules.includes('search'));
  });
});

describe('lua scripts', () => {
  it('inline their shared fragments and carry a header', () => {
    const src = storeScripts.source('promoteKnobs');
    expect(src).toContain('local function appendAudit');
    expect(src).toContain('local ERR_STALE = -2');
    expect(src).not.toContain('--@include');
    expect(src).toMatch(/KEYS\[1\] 'audit'/);
  });
});
