// From live arrival traces to the messaging simulator's input: the producers' sampled
// `arrivals` records (topic, partition, t_ms, bytes) become `Messages` (arrival times from
// zero, payload sizes in tokens) that envs/messaging replays. A sampled trace is thinned: each
// arrival carries the rate it was sampled at (`sampleRate`, the record's `sr`); pass it to
// scale time back to the live rate (ratePerS in messagesFromTrace).
import type { Messages } from '../../envs/messaging/model.ts';
import type { RedisClient } from '../redis/connect.ts';
import type { Keys } from '../store/keys.ts';
import type { LogEntry } from '../store/log.ts';
import { traceRecords } from '../telemetry/read.ts';
import { ARRIVALS_TRACE, MESSAGING_SERVICE } from './telemetry.ts';

/** Bytes per token when turning payload sizes into the simulator's token counts. */
export const BYTES_PER_TOKEN = 4;

export interface Arrival {
  topic: string;
  partition: number;
  tMs: number;
  bytes: number;
  /** The fraction of arrivals the producer recorded when it recorded this one (1: all). */
  sampleRate: number;
}

export function decodeArrival(e: LogEntry): Arrival {
  const f = e.fields;
  return {
    topic: f['topic'] ?? '',
    partition: Number(f['partition'] ?? 0),
    tMs: Number(f['t_ms'] ?? e.ms),
    bytes: Number(f['bytes'] ?? 0),
    sampleRate: Number(f['sr'] ?? 1),
  };
}

/** Sampled arrivals between two times, oldest first (bounded by count). */
export async function readArrivals(
  redis: RedisClient,
  keys: Keys,
  opts: { topic?: string; fromMs?: number; toMs?: number; count?: number } = {},
): Promise<Arrival[]> {
  const entries = await traceRecords(redis, keys, MESSAGING_SERVICE, ARRIVALS_TRACE, opts);
  const all = entries.map(decodeArrival);
  return opts.topic === undefined ? all : all.filter((a) => a.topic === opts.topic);
}

/** Arrivals as simulator messages: times sorted and shifted to start at 0, sizes in tokens. */
export function arrivalsToMessages(
  arrivals: readonly Arrival[],
  bytesPerToken = BYTES_PER_TOKEN,
): Messages {
  const sorted = [...arrivals].sort((a, b) => a.tMs - b.tMs);
  const t0 = sorted[0]?.tMs ?? 0;
  return {
    tMs: Float64Array.from(sorted, (a) => a.tMs - t0),
    tokens: Float64Array.from(sorted, (a) => Math.max(1, Math.ceil(a.bytes / bytesPerToken))),
  };
}
