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

/**
 * At most this many telemetry entries are read per call. All instances of a service share one
 * stream, so a range holds (instances x seconds) entries: 15 minutes of 12 instances reporting
 * each second are 10,800. Beyond the cap the oldest entries of the range are left out (the
 * newest are what the SLO guard judges) and the result says `truncated`.
 */
export const MAX_TELEMETRY_ENTRIES = 50_000;
/** How far an instance's clock may be from Redis's for a series to find its entries. */
const CLOCK_MARGIN_MS = 30_000;
/** Entries per XREVRANGE page. */
const PAGE = 5_000;

/** A result that may have been cut at the cap; `truncated` is not enumerable (nor serialized). */
export type Truncatable<T> = T[] & { readonly truncated: boolean };

function truncatable<T>(items: T[], truncated: boolean): Truncatable<T> {
  return Object.defineProperty(items, 'truncated', {
    value: truncated,
    enumerable: false,
  }) as Truncatable<T>;
}

/**
 * The entries of a stream with ids in [fromMs, toMs], newest first, page by page, at most
 * `maxEntries` of them; `state.truncated` is set when older entries of the range were left.
 */
async function* newestFirst(
  redis: RedisClient,
  key: string,
  fromMs: number,
  toMs: number,
  maxEntries: number,
  state: { truncated: boolean },
): AsyncGenerator<LogEntry[]> {
  if (!(maxEntries > 0)) throw new Error('maxEntries must be positive');
  const log = new Log(redis, key, 1);
  const since = String(Math.floor(fromMs));
  // Exclusive: every entry of the ms toMs is before it.
  let before = `${Math.ceil(toMs) + 1}-0`;
  let left = maxEntries;
  // A telemetry flush names itself (`fs`, metrics.ts): an XADD ioredis resent after a lost
  // reply wrote its interval twice, and only the first entry of a name counts.
  const named = new Set<string>();
  const once = (e: LogEntry): boolean => {
    const fs = e.fields['fs'];
    if (fs === undefined) return true;
    if (named.has(fs)) return false;
    named.add(fs);
    return true;
  };
  for (;;) {
    // One more than may be kept, to tell a range that ends at the cap from a cut one. When
    // the cap falls on a page boundary the page cannot hold that one more: the probe after
    // the loop asks for it.
    const want = Math.min(PAGE, left + 1);
    const page = await log.latest({ count: want, before, since });
    if (page.length > left) {
      state.truncated = true;
      page.length = left;
    }
    left -= page.length;
    if (page.length > 0) yield page.filter(once);
    if (state.truncated || page.length < want) return;
    // The next page starts just before the oldest entry read.
    before = (page[page.length - 1] as LogEntry).id;
    if (left === 0) break;
  }
  // The cap is reached with a full page: the range is cut if anything older is in it.
  if ((await log.latest({ count: 1, before, since })).length > 0) state.truncated = true;
}

/** The newest `maxEntries` entries of a stream with ids in [fromMs, toMs], oldest first. */
async function newestOf(
  redis: RedisClient,
  key: string,
  fromMs: number,
  toMs: number,
  maxEntries: number,
): Promise<Truncatable<LogEntry>> {
  const state = { truncated: false };
  const pages: LogEntry[][] = [];
  for await (const page of newestFirst(redis, key, fromMs, toMs, maxEntries, state))
    pages.push(page);
  return truncatable(pages.flat().reverse(), state.truncated);
}

/**
 * Raw telemetry entries of a service between two times (ms), oldest first. Reads the whole
 * range in pages, up to `maxEntries` (the newest of them); `truncated` says whether older
 * entries of the range were left out.
 */
export async function telemetryEntries(
  redis: RedisClient,
  keys: Keys,
  service: string,
  fromMs: number,
  toMs: number,
  maxEntries = MAX_TELEMETRY_ENTRIES,
): Promise<Truncatable<LogEntry>> {
  return newestOf(redis, keys.telemetry(service), fromMs, toMs, maxEntries);
}

/**
 * One metric as a series with one point per `stepMs`. Rates and counts from several instances
 * in the same step add up; summaries (mean, percentiles, max) and ratios average: two
 * instances at 80% hits are at 80%, not 160%. With `across`, those instead take the largest or
 * smallest instance (a percentile averaged over instances is no percentile of anything).
 *
 * Reads at most `maxEntries` entries (the newest of the range). When that cuts the range,
 * `truncated` is true and the series starts at the first step read whole: the step the cut
 * falls in is left out, since some of its entries were not read.
 */
export async function telemetrySeries(
  redis: RedisClient,
  keys: Keys,
  service: string,
  metric: string,
  opts: {
    fromMs: number;
    toMs: number;
    stepMs: number;
    across?: 'mean' | 'max' | 'min';
    maxEntries?: number;
  },
): Promise<Truncatable<SeriesPoint>> {
  if (!(opts.stepMs > 0)) throw new Error('stepMs must be positive');
  // Counts and rates add up across instances; summaries, ratios and times (a gauge such as a
  // lag in ms) do not.
  const additive = metric.endsWith('_per_s') || !/_(mean|p50|p99|max|ratio|ms)$/.test(metric);
  // A rate's step is the events of its entries over the time they cover together (the union of
  // their intervals), at most the step: an instance that ran part of the step (started,
  // stopped, or restarted under a new id) adds its events, not its rate as if it ran the whole
  // step. At most the step, as each entry's whole interval counts in the step of its end: two
  // instances reporting out of phase (each flushes on its own timer) cover more than the step
  // together, and the union alone read their 20/s as 11/s.
  const rate = metric.endsWith('_per_s');
  const buckets = new Map<
    number,
    { perInstance: Map<string, number[]>; events: number; spans: [number, number][] }
  >();
  const state = { truncated: false };
  // The step of the oldest entry read (whatever its fields): a cut falls in it.
  let oldestStep = Infinity;
  // Pages are folded into the steps as they come: only one page of entries is held at a time.
  // Entries are stepped by their `at` (the reporting instance's clock) but stored under
  // Redis's: read with a margin either side, and keep those whose `at` is in the window (an
  // instance's clock off by seconds gave points outside the window asked for, and lost
  // entries inside it).
  for await (const page of newestFirst(
    redis,
    keys.telemetry(service),
    Math.max(0, opts.fromMs - CLOCK_MARGIN_MS),
    opts.toMs + CLOCK_MARGIN_MS,
    opts.maxEntries ?? MAX_TELEMETRY_ENTRIES,
    state,
  )) {
    for (const e of page) {
      const at = Number(e.fields['at'] ?? e.ms);
      const b = Math.floor(at / opts.stepMs) * opts.stepMs;
      if (b < oldestStep) oldestStep = b;
      if (!(at >= opts.fromMs && at <= opts.toMs)) continue;
      const raw = e.fields[metric];
      if (raw === undefined) continue;
      let bucket = buckets.get(b);
      if (!bucket) buckets.set(b, (bucket = { perInstance: new Map(), events: 0, spans: [] }));
      const inst = e.fields['instance'] ?? '';
      const list = bucket.perInstance.get(inst) ?? [];
      list.push(Number(raw));
      bucket.perInstance.set(inst, list);
      const intervalS = Number(e.fields['interval_s']);
      if (rate && intervalS > 0) {
        bucket.events += Number(raw) * intervalS;
        bucket.spans.push([at - intervalS * 1000, at]);
      }
    }
  }
  const points = [...buckets.entries()]
    .filter(([at]) => !state.truncated || at > oldestStep)
    .sort((a, b) => a[0] - b[0])
    .map(([at, { perInstance, events, spans }]) => {
      const means = [...perInstance.values()].map((l) => l.reduce((x, y) => x + y, 0) / l.length);
      const n = [...perInstance.values()].reduce((x, l) => x + l.length, 0);
      // Only when every entry says its interval: else each instance's mean, as before.
      const covered = spans.length === n ? Math.min(unionMs(spans), opts.stepMs) : 0;
      const total = covered > 0 ? events / (covered / 1000) : means.reduce((x, y) => x + y, 0);
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
        n,
      };
    });
  return truncatable(points, state.truncated);
}

/** How long the union of [start, end] spans covers (ms). */
function unionMs(spans: [number, number][]): number {
  const sorted = [...spans].sort((a, b) => a[0] - b[0]);
  let total = 0;
  let [lo, hi] = [-Infinity, -Infinity];
  for (const [s, e] of sorted) {
    if (s > hi) {
      if (hi > lo) total += hi - lo;
      [lo, hi] = [s, e];
    } else if (e > hi) hi = e;
  }
  if (hi > lo) total += hi - lo;
  return total;
}

/**
 * Trace records of a service and kind between two times, oldest first, at most `count`
 * (default 10,000) of them: the oldest of the range, or with `newest` the newest. `truncated`
 * says whether records of the range were left out (newer ones, or with `newest` older ones).
 */
export async function traceRecords(
  redis: RedisClient,
  keys: Keys,
  service: string,
  kind: string,
  opts: { fromMs?: number; toMs?: number; count?: number; newest?: boolean } = {},
): Promise<Truncatable<LogEntry>> {
  const count = opts.count ?? 10_000;
  if (!(Number.isSafeInteger(count) && count > 0))
    throw new Error('count must be a positive integer');
  const key = keys.trace(service, kind);
  if (opts.newest)
    return newestOf(redis, key, opts.fromMs ?? 0, opts.toMs ?? Number.MAX_SAFE_INTEGER - 1, count);
  // One more than may be kept, to tell a range that ends at `count` from a cut one.
  const got = await new Log(redis, key, 1).range({
    start: opts.fromMs === undefined ? '-' : String(Math.floor(opts.fromMs)),
    end: opts.toMs === undefined ? '+' : String(Math.ceil(opts.toMs)),
    count: count + 1,
  });
  const truncated = got.length > count;
  if (truncated) got.length = count;
  return truncatable(got, truncated);
}
