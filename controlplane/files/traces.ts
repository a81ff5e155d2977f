// The access trace as the cache simulator replays it: libCacheSim-style CSV with a header
// `time,key,size,op` (time in ms, key = <volume>:<ino>:<chunk>, size in bytes), which
// envs/loaders reads as it reads the shipped traces (key column 'key', size column 'size').
import type { RedisClient } from '../redis/connect.ts';
import type { Keys } from '../store/keys.ts';
import type { LogEntry } from '../store/log.ts';
import { traceRecords } from '../telemetry/read.ts';

export const ACCESS_TRACE_KIND = 'access';

export interface AccessRecord {
  timeMs: number;
  key: string;
  sizeBytes: number;
  op: string;
}

/** Sampled access records of the file service, oldest first (at most `count`). */
export async function accessRecords(
  redis: RedisClient,
  keys: Keys,
  opts: { fromMs?: number; toMs?: number; count?: number } = {},
): Promise<AccessRecord[]> {
  const entries = await traceRecords(redis, keys, 'files', ACCESS_TRACE_KIND, opts);
  return entries.map(accessRecordOf).filter(usableAccess);
}

/** One entry of the access trace stream as a record (NaN where a number is missing). */
export function accessRecordOf(e: LogEntry): AccessRecord {
  return {
    timeMs: Number(e.fields['time'] ?? e.ms),
    key: e.fields['key'] ?? '',
    sizeBytes: e.fields['size'] ? Number(e.fields['size']) : Number.NaN,
    op: e.fields['op'] ?? 'read',
  };
}

/**
 * Whether a record can be replayed: a key, a time, and a size that is a number >= 0 (a NaN
 * size poisoned the byte-mode policies' accounting; a missing one read as 0, which always fits).
 */
export function usableAccess(r: AccessRecord): boolean {
  return (
    r.key !== '' && Number.isFinite(r.timeMs) && Number.isFinite(r.sizeBytes) && r.sizeBytes >= 0
  );
}

/** CSV text of records, header first; keys hold no commas (volume names are key parts). */
export function accessTraceCsv(records: readonly AccessRecord[]): string {
  const lines = records.map((r) => `${r.timeMs},${r.key},${r.sizeBytes},${r.op}`);
  return ['time,key,size,op', ...lines].join('\n') + '\n';
}
