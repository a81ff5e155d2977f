// The output API a handler writes through. Writes are collected, not sent: the consumer
// applies them in the same atomic step as the message's dedup record and its XACK (see
// scripts/commit.lua), so they happen exactly once per message. Every key a handler names
// lives in the message's partition family (one cluster slot), which is what makes that
// single step possible; state spread over partitions is summed by its reader.
import { assertKeyPart } from '../store/keys.ts';
import { MessagingOptionError } from './errors.ts';

export interface Write {
  /** A Redis command from the commit script's allow-list. */
  command: string;
  /** Output key name (a key part inside the partition family). */
  name: string;
  args: string[];
}

/** Writes one handler call may make: a bound, so one message cannot bloat a commit. */
export const MAX_WRITES_PER_MESSAGE = 100;
/**
 * Fields one append may carry: the commit script passes a write's arguments to Redis with
 * Lua's unpack, which fails past ~8,000 values, part way through a batch it cannot roll back.
 */
export const MAX_APPEND_FIELDS = 1_000;
/** Streams a handler appends to keep about this many entries unless told otherwise. */
export const DEFAULT_APPEND_MAX_LEN = 10_000;

// Numeric arguments are checked here, at the call: a value Redis refuses (NaN, 1.5 for a TTL)
// would otherwise fail only at commit, after the message is acknowledged, losing the write;
// and PEXPIRE with a TTL <= 0 deletes the key. Failing the handler instead retries the
// message and dead-letters it in the end.
function checkFinite(field: string, by: number): number {
  if (typeof by !== 'number' || !Number.isFinite(by))
    throw new MessagingOptionError(field, `must be a finite number, got ${by}`);
  return by;
}

/** A whole increment goes out as INCRBY: beyond 2^53 the number sent is not the one meant. */
function checkBy(field: string, by: number): number {
  checkFinite(field, by);
  if (Number.isInteger(by) && !Number.isSafeInteger(by))
    throw new MessagingOptionError(field, `must be a safe integer when whole, got ${by}`);
  return by;
}

function checkPositiveInt(field: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 1)
    throw new MessagingOptionError(field, `must be an integer >= 1, got ${v}`);
  return v;
}

export class Output {
  readonly writes: Write[] = [];

  private add(command: string, name: string, args: (string | number)[]): this {
    if (this.writes.length >= MAX_WRITES_PER_MESSAGE) {
      throw new MessagingOptionError(
        'output',
        `at most ${MAX_WRITES_PER_MESSAGE} writes per message`,
      );
    }
    try {
      assertKeyPart('output name', name);
    } catch (err) {
      throw new MessagingOptionError('output.name', (err as Error).message);
    }
    this.writes.push({ command, name, args: args.map(String) });
    return this;
  }

  set(name: string, value: string | number): this {
    return this.add('SET', name, [value]);
  }
  incr(name: string, by = 1): this {
    checkBy('incr.by', by);
    return this.add(Number.isInteger(by) ? 'INCRBY' : 'INCRBYFLOAT', name, [by]);
  }
  hset(name: string, field: string, value: string | number): this {
    return this.add('HSET', name, [field, value]);
  }
  hincr(name: string, field: string, by = 1): this {
    checkBy('hincr.by', by);
    return this.add(Number.isInteger(by) ? 'HINCRBY' : 'HINCRBYFLOAT', name, [field, by]);
  }
  sadd(name: string, member: string): this {
    return this.add('SADD', name, [member]);
  }
  zincr(name: string, member: string, by = 1): this {
    checkFinite('zincr.by', by);
    return this.add('ZINCRBY', name, [by, member]);
  }
  /** Appends an entry to a stream of the partition family, trimmed to about maxLen entries. */
  append(
    name: string,
    fields: Record<string, string | number>,
    maxLen = DEFAULT_APPEND_MAX_LEN,
  ): this {
    const flat = Object.entries(fields).flat();
    if (flat.length === 0) throw new MessagingOptionError('append.fields', 'must not be empty');
    if (flat.length / 2 > MAX_APPEND_FIELDS)
      throw new MessagingOptionError(
        'append.fields',
        `at most ${MAX_APPEND_FIELDS} fields per entry, got ${flat.length / 2}`,
      );
    checkPositiveInt('append.maxLen', maxLen);
    return this.add('XADD', name, ['MAXLEN', '~', maxLen, '*', ...flat]);
  }
  /** Sets a time to live (ms) on an output key, e.g. per-message state that may expire. */
  expire(name: string, ttlMs: number): this {
    checkPositiveInt('expire.ttlMs', ttlMs);
    return this.add('PEXPIRE', name, [ttlMs]);
  }
}
