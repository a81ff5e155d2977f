// A table of typed rows: each row a hash under one key, its secondary indexes sorted sets
// written in the same atomic step (scripts/writeRows.lua), every row carrying an optimistic
// version `_v`. All rows of a table share one hash-tag family by default, or each row names
// its family (a shard, a tenant) so the same code runs on Redis Cluster.
import { randomUUID } from 'node:crypto';
import type { RedisClient } from '../redis/connect.ts';
import { errorFromCode, NotFoundError, ValidationError } from './errors.ts';
import type { Keys } from './keys.ts';
import { RESEND_TTL_MS } from './request-id.ts';
import { decodeRow, encodeRow, type Fields, type RowOf } from './schema.ts';
import { storeScripts } from './scripts.ts';

export interface TableSpec<F extends Fields> {
  name: string;
  fields: F;
  /** The row's id. */
  id: (row: RowOf<F>) => string;
  /** The hash-tag family a row lives in; rows written together must share it. */
  family: (row: RowOf<F>) => string;
  /** Secondary indexes: name -> score of a row (undefined = not in that index). */
  indexes?: Record<string, (row: RowOf<F>) => number | undefined>;
}

export interface Versioned<R> {
  row: R;
  version: number;
}

/** One row write in an atomic batch. */
export interface RowWrite<R> {
  row: R;
  /** Expected current version: a number, 0 = must not exist, 'any' = no check. */
  expect: number | 'any';
}

/** One row of a writeRows.lua plan; `k` numbers refer to the script's KEYS. */
interface PlanRow {
  k: number;
  expect: number;
  set?: Record<string, string>;
  del?: string[];
  remove?: boolean;
  idx: { k: number; member: string; score: number }[];
  unidx: { k: number; member: string }[];
}

export interface LogWrite {
  key: string;
  maxLen: number;
  fields: Record<string, string>;
}

export class Table<F extends Fields> {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
    readonly spec: TableSpec<F>,
  ) {}

  rowKey(family: string, id: string): string {
    return this.keys.row(family, this.spec.name, id);
  }

  indexKey(family: string, index: string): string {
    if (!this.spec.indexes?.[index])
      throw new Error(`table ${this.spec.name} has no index ${index}`);
    return this.keys.index(family, this.spec.name, index);
  }

  async get(family: string, id: string): Promise<Versioned<RowOf<F>> | null> {
    const hash = await this.redis.hgetall(this.rowKey(family, id));
    if (!hash['_v']) return null;
    return {
      row: decodeRow(this.spec.name, id, this.spec.fields, hash) as RowOf<F>,
      version: Number(hash['_v']),
    };
  }

  async mustGet(family: string, id: string): Promise<Versioned<RowOf<F>>> {
    const got = await this.get(family, id);
    if (!got)
      throw new NotFoundError(`${this.spec.name} row ${id} does not exist`, {
        table: this.spec.name,
        id,
      });
    return got;
  }

  /** Reads many rows of one family in one round trip (a pipeline). */
  async getMany(family: string, ids: readonly string[]): Promise<(Versioned<RowOf<F>> | null)[]> {
    if (ids.length === 0) return [];
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.hgetall(this.rowKey(family, id));
    const res = (await pipe.exec()) ?? [];
    return res.map(([err, hash], i) => {
      if (err) throw err;
      const h = hash as Record<string, string>;
      return h['_v']
        ? {
            row: decodeRow(this.spec.name, ids[i] as string, this.spec.fields, h) as RowOf<F>,
            version: Number(h['_v']),
          }
        : null;
    });
  }

  /** Ids in an index with scores in [min, max], ascending (or descending with rev). */
  async range(
    family: string,
    index: string,
    opts: { min?: number; max?: number; limit?: number; offset?: number; rev?: boolean } = {},
  ): Promise<string[]> {
    const key = this.indexKey(family, index);
    const min = opts.min === undefined ? '-inf' : String(opts.min);
    const max = opts.max === undefined ? '+inf' : String(opts.max);
    const limit = opts.limit ?? 1000;
    return opts.rev
      ? this.redis.zrevrangebyscore(key, max, min, 'LIMIT', opts.offset ?? 0, limit)
      : this.redis.zrangebyscore(key, min, max, 'LIMIT', opts.offset ?? 0, limit);
  }

  async count(family: string, index: string, min = -Infinity, max = Infinity): Promise<number> {
    return this.redis.zcount(
      this.indexKey(family, index),
      String(min === -Infinity ? '-inf' : min),
      String(max === Infinity ? '+inf' : max),
    );
  }

  /** Inserts a row that must not exist yet. */
  async insert(row: RowOf<F>): Promise<number> {
    const [v] = await this.write([{ row, expect: 0 }]);
    return v as number;
  }

  /**
   * Writes and removes rows of one family in one atomic step, with log entries beside them;
   * every expected version is checked before anything is written. Returns the new versions.
   * A refused write changes nothing: the input is validated here first (a row named twice,
   * index scores, log entries), and the script checks everything else that could fail before
   * its first write. Each row leaves every index whose score for it is undefined.
   */
  async write(
    writes: readonly RowWrite<RowOf<F>>[],
    logs: readonly LogWrite[] = [],
    removes: readonly { row: RowOf<F>; expect: number | 'any' }[] = [],
  ): Promise<number[]> {
    const table = this.spec.name;
    const keys: string[] = [];
    const keyNo = (k: string): number => {
      const i = keys.indexOf(k);
      if (i >= 0) return i + 1;
      keys.push(k);
      return keys.length;
    };
    const families = new Set<string>();
    const indexes = Object.entries(this.spec.indexes ?? {});
    const ids: string[] = [];
    const rows: PlanRow[] = [];
    const plan = (row: RowOf<F>, expect: number | 'any', remove: boolean) => {
      const family = this.spec.family(row);
      families.add(family);
      const id = this.spec.id(row);
      if (ids.includes(id))
        throw new ValidationError(
          `${table}: row ${id} appears twice in one atomic write`,
          'rows',
          'unique',
          { table, id },
        );
      ids.push(id);
      if (expect !== 'any' && !(Number.isSafeInteger(expect) && expect >= 0))
        throw new ValidationError(
          `${table} row ${id}: expected version must be 'any' or a non-negative integer, got ${String(expect)}`,
          'expect',
          'version',
          { table, id },
        );
      const p: PlanRow = {
        k: keyNo(this.rowKey(family, id)),
        expect: expect === 'any' ? -1 : expect,
        idx: [],
        unidx: [],
      };
      if (remove) {
        p.remove = true;
        p.unidx = indexes.map(([name]) => ({ k: keyNo(this.indexKey(family, name)), member: id }));
      } else {
        const { set, del } = encodeRow(table, this.spec.fields, row as Record<string, unknown>);
        p.set = set;
        p.del = del;
        for (const [name, score] of indexes) {
          const s: unknown = score(row);
          const k = keyNo(this.indexKey(family, name));
          if (s === undefined) {
            // Not in this index (any more): a ZREM of a non-member is harmless.
            p.unidx.push({ k, member: id });
          } else if (typeof s === 'number' && Number.isFinite(s)) {
            p.idx.push({ k, member: id, score: s });
          } else {
            throw new ValidationError(
              `${table} row ${id}: index ${name} score must be a finite number or undefined, got ${String(s)}`,
              `index.${name}`,
              'finite_score',
              { table, index: name, id },
            );
          }
        }
      }
      rows.push(p);
    };
    for (const w of writes) plan(w.row, w.expect, false);
    for (const r of removes) plan(r.row, r.expect, true);
    if (families.size > 1) {
      throw new ValidationError(
        `table ${table}: one atomic write must stay in one family, got ${[...families].join(', ')}`,
        'rows',
        'one_family',
        { table, families: [...families] },
      );
    }
    const family: string | undefined = [...families][0];
    const body = {
      // The removed-version mark (writeRows.lua): a created row starts above it. The call's
      // record: a resend of this very call answers its first run's versions, not stale.
      ...(family === undefined
        ? {}
        : {
            meta: keyNo(this.keys.tableRemovedVersion(family, table)),
            call: {
              k: keyNo(this.keys.key(family, 'write_call', randomUUID())),
              ttl: RESEND_TTL_MS,
            },
          }),
      rows,
      logs: logs.map((l, i) => {
        const bad = (field: string, rule: string, msg: string) =>
          new ValidationError(`${table}: log ${l.key}: ${msg}`, `logs[${i}].${field}`, rule, {
            table,
            key: l.key,
          });
        if (!Number.isSafeInteger(l.maxLen) || l.maxLen < 0)
          throw bad(
            'maxLen',
            'non_negative_integer',
            `maxLen must be a non-negative integer, got ${String(l.maxLen)}`,
          );
        const fields = Object.entries(l.fields);
        if (fields.length === 0)
          throw bad('fields', 'non_empty', 'an entry needs at least one field');
        for (const [name, value] of fields)
          if (typeof value !== 'string')
            throw bad('fields', 'type', `field ${name} must be a string, got ${typeof value}`);
        return { k: keyNo(l.key), maxLen: l.maxLen, fields: fields.flat() };
      }),
    };
    const reply = await storeScripts.run(this.redis, 'writeRows', keys, [JSON.stringify(body)]);
    const failed = Number(reply[1]) - 1;
    const err = errorFromCode(reply, {
      target: `${table} row ${ids[failed] ?? '?'}`,
      ...((rows[failed]?.expect ?? -1) >= 0 ? { baseVersion: rows[failed]?.expect } : {}),
    });
    if (err) throw err;
    return reply.slice(1).map(Number);
  }

  /**
   * Removes a row and its index entries, checking its version. The table remembers the
   * highest version a removed row had, and a row created afterwards starts above it, so a
   * writer still holding a version of the removed row is refused as stale.
   */
  async remove(row: RowOf<F>, expect: number | 'any'): Promise<void> {
    await this.write([], [], [{ row, expect }]);
  }
}
