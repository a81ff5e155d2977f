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
  return entries.map(accessRecordOf);
}

/** One entry of the access trace stream as a record. */
export function accessRecordOf(e: LogEntry): AccessRecord {
  return {
    timeMs: Number(e.fields['time'] ?? e.ms),
    key: e.fields['key'] ?? '',
    sizeBytes: Number(e.fields['size'] ?? 0),
    op: e.fields['op'] ?? 'read',
  };
}

/** CSV text of records, header first; keys hold no commas (volume names are key parts). */
export function accessTraceCsv(records: readonly AccessRecord[]): string {
  const lines = records.map((r) => `${r.timeMs},${r.key},${r.sizeBytes},${r.op}`);
  return ['time,key,size,op', ...lines].join('\n') + '\n';
}
