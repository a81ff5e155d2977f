// The read side of telemetry and traces: range queries, downsampled into fixed steps, for the
// API, the dashboards, the SLO guard and calibration.
import type { RedisClient } from '../redis/connect.ts';
import type { Keys } from '../store/keys.ts';
import { Log, type LogEntry } from '../store/log.ts';

export interface SeriesPoint {
  at: number;
  /** Mean of the metric over the step's entries (summed over instances for *_per_s and counts). */
  value: number;
  n: number;
}

/** Raw telemetry entries of a service between two times (ms), oldest first. */
export async function telemetryEntries(
  redis: RedisClient,
  keys: Keys,
  service: string,
  fromMs: number,
  toMs: number,
  count = 10_000,
): Promise<LogEntry[]> {
  return new Log(redis, keys.telemetry(service), 1).range({
    start: String(Math.floor(fromMs)),
    end: String(Math.ceil(toMs)),
    count,
  });
}

/**
 * One metric as a series with one point per `stepMs`. Rates and counts from several instances
 * in the same step add up; summaries (mean, percentiles, max) and ratios average: two
 * instances at 80% hits are at 80%, not 160%. With `across`, those instead take the largest or
 * smallest instance (a percentile averaged over instances is no percentile of anything).
 */
export async function telemetrySeries(
  redis: RedisClient,
  keys: Keys,
  service: string,
  metric: string,
  opts: { fromMs: number; toMs: number; stepMs: number; across?: 'mean' | 'max' | 'min' },
): Promise<SeriesPoint[]> {
  if (!(opts.stepMs > 0)) throw new Error('stepMs must be positive');
  const entries = await telemetryEntries(redis, keys, service, opts.fromMs, opts.toMs);
  const additive = metric.endsWith('_per_s') || !/_(mean|p50|p99|max|ratio)$/.test(metric);
  const buckets = new Map<number, { perInstance: Map<string, number[]> }>();
  for (const e of entries) {
    const raw = e.fields[metric];
    if (raw === undefined) continue;
    const at = Number(e.fields['at'] ?? e.ms);
    const b = Math.floor(at / opts.stepMs) * opts.stepMs;
    let bucket = buckets.get(b);
    if (!bucket) buckets.set(b, (bucket = { perInstance: new Map() }));
    const inst = e.fields['instance'] ?? '';
    const list = bucket.perInstance.get(inst) ?? [];
    list.push(Number(raw));
    bucket.perInstance.set(inst, list);
  }
  return [...buckets.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([at, { perInstance }]) => {
      const means = [...perInstance.values()].map((l) => l.reduce((x, y) => x + y, 0) / l.length);
      const total = means.reduce((x, y) => x + y, 0);
      const across = opts.across ?? 'mean';
      const value = additive
        ? total
        : across === 'max'
          ? Math.max(...means)
          : across === 'min'
            ? Math.min(...means)
            : total / means.length;
      return {
        at,
        value,
        n: [...perInstance.values()].reduce((x, l) => x + l.length, 0),
      };
    });
}

/** Sampled trace records of a service and kind between two times, oldest first. */
export async function traceRecords(
  redis: RedisClient,
  keys: Keys,
  service: string,
  kind: string,
  opts: { fromMs?: number; toMs?: number; count?: number } = {},
): Promise<LogEntry[]> {
  return new Log(redis, keys.trace(service, kind), 1).range({
    start: opts.fromMs === undefined ? '-' : String(Math.floor(opts.fromMs)),
    end: opts.toMs === undefined ? '+' : String(Math.ceil(opts.toMs)),
    count: opts.count ?? 10_000,
  });
}
