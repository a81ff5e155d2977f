// Append-only logs as Redis streams with bounded retention (XADD MAXLEN ~): history, audit,
// telemetry and traces. Entries come back oldest first unless asked otherwise.
import type { RedisClient } from '../redis/connect.ts';

export interface LogEntry {
  id: string;
  /** Milliseconds since the epoch, from the stream id. */
  ms: number;
  fields: Record<string, string>;
}

function toEntries(raw: [string, string[]][]): LogEntry[] {
  return raw.map(([id, flat]) => {
    const fields: Record<string, string> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i] as string] = flat[i + 1] as string;
    return { id, ms: Number(id.split('-')[0]), fields };
  });
}

export class Log {
  constructor(
    private readonly redis: RedisClient,
    readonly key: string,
    /** Retention bound: about this many newest entries are kept. */
    readonly maxLen: number,
  ) {
    if (!(maxLen > 0)) throw new Error(`log ${key}: maxLen must be positive`);
  }

  async append(fields: Record<string, string | number>): Promise<string> {
    const flat = Object.entries(fields).flatMap(([k, v]) => [k, String(v)]);
    return (await this.redis.xadd(this.key, 'MAXLEN', '~', this.maxLen, '*', ...flat)) as string;
  }

  /** Entries with ids in [start, end], oldest first, at most `count`. */
  async range(opts: { start?: string; end?: string; count?: number } = {}): Promise<LogEntry[]> {
    const raw = await this.redis.xrange(
      this.key,
      opts.start ?? '-',
      opts.end ?? '+',
      'COUNT',
      opts.count ?? 1000,
    );
    return toEntries(raw);
  }

  /**
   * The newest entries first, at most `count`, optionally before an id (exclusive) and from an
   * id or a time in ms (`since`, inclusive).
   */
  async latest(
    opts: { count?: number; before?: string; since?: string } = {},
  ): Promise<LogEntry[]> {
    // Nothing is before 0-0 (and XREVRANGE refuses the exclusive bound `(0-0`).
    if (opts.before !== undefined && /^0+-0+$/.test(opts.before)) return [];
    const end = opts.before ? `(${opts.before}` : '+';
    const raw = await this.redis.xrevrange(
      this.key,
      end,
      opts.since ?? '-',
      'COUNT',
      opts.count ?? 100,
    );
    return toEntries(raw);
  }

  async length(): Promise<number> {
    return this.redis.xlen(this.key);
  }
}
