// The table store against real Redis: typed rows, indexes written with the row, optimistic
// versions across several rows in one atomic step, bounded logs, feature detection.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StaleVersionError, ValidationError } from '../controlplane/store/errors.ts';
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

  it('keeps indexes in step with rows', async () => {
    const { table } = jobs();
    for (const [i, size] of [30, 10, 20].entries())
      await table.insert(row(`r${i}`, { sizeBytes: size }));
    expect(await table.range('jobs:acme', 'size')).toEqual(['r1', 'r2', 'r0']);
    expect(await table.range('jobs:acme', 'queued', { min: 15 })).toEqual(['r2', 'r0']);
    const prev = (await table.mustGet('jobs:acme', 'r2')).row;
    await table.write([{ row: { ...prev, state: 'running' }, expect: 1, previous: prev }]);
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
