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
  // A rate's step adds each instance's rate over the intervals of its entries in the step
  // (each entry's whole interval counts in the step of its end), weighed by the part of the
  // step the instance ran (its intervals, all of them, within the step) against the part any
  // instance reported: an instance that ran part of the step (started, stopped, restarted under
  // a new id) adds its share, not its rate as if it ran the whole step; an entry covering two
  // seconds (a skipped or failed flush) or a step holding two entries, then three (a step that
  // is no multiple of the flush interval) read a steady 10/s as 20/s, or 10, 12, 10, 12; and two
  // instances flushing out of phase add up to their sum.
  const rate = metric.endsWith('_per_s');
  const buckets = new Map<
    number,
    {
      perInstance: Map<string, number[]>;
      rates: Map<string, { events: number; spans: [number, number][] }>;
      timed: number;
    }
  >();
  /** Every instance's entries read (interval start, end, rate): what it ran; and their hull. */
  const ran = new Map<string, [number, number, number][]>();
  let hullLo = Infinity;
  let hullHi = -Infinity;
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
      if (!bucket)
        buckets.set(b, (bucket = { perInstance: new Map(), rates: new Map(), timed: 0 }));
      const inst = e.fields['instance'] ?? '';
      const list = bucket.perInstance.get(inst) ?? [];
      list.push(Number(raw));
      bucket.perInstance.set(inst, list);
      const intervalS = Number(e.fields['interval_s']);
      if (rate && intervalS > 0) {
        const span: [number, number] = [at - intervalS * 1000, at];
        const r = bucket.rates.get(inst) ?? { events: 0, spans: [] };
        r.events += Number(raw) * intervalS;
        r.spans.push(span);
        bucket.rates.set(inst, r);
        bucket.timed++;
        const mine = ran.get(inst) ?? [];
        mine.push([span[0], span[1], Number(raw)]);
        ran.set(inst, mine);
        if (span[0] < hullLo) hullLo = span[0];
        if (at > hullHi) hullHi = at;
      }
    }
  }
  // An instance's last entry leaves its run open to the newest report when its next flush was
  // not due by then (the newest step: one flushing early in its phase is still running); once
  // another instance reported past that, it had stopped.
  const runs = new Map(
    [...ran].map(([inst, entries]) => {
      entries.sort((x, y) => x[1] - y[1]);
      const last = entries[entries.length - 1] as [number, number, number];
      const spans = entries.map(([s, e]): [number, number] => [s, e]);
      const open = hullHi < last[1] + (last[1] - last[0]);
      return [inst, mergeSpans(open ? [...spans, [last[1], hullHi]] : spans)];
    }),
  );
  const points = [...buckets.entries()]
    .filter(([at]) => !state.truncated || at > oldestStep)
    .sort((a, b) => a[0] - b[0])
    .map(([at, { perInstance, rates, timed }]) => {
      const means = [...perInstance.values()].map((l) => l.reduce((x, y) => x + y, 0) / l.length);
      const n = [...perInstance.values()].reduce((x, l) => x + l.length, 0);
      // Only when every entry says its interval: else each instance's mean, as before.
      const step: [number, number] = [at, at + opts.stepMs];
      const reported = overlapMs([[hullLo, hullHi]], step);
      let total = 0;
      if (timed === n && reported > 0) {
        // Every instance that ran in the step counts, also one whose entry ends in another
        // step (it flushes less often: left out, a 1 s and a 2 s instance at 10/s each read
        // 10, 20, 10, 20): at the rate of its entries ending here, else of the entry that
        // covers most of the step.
        for (const [inst, run] of runs) {
          const active = overlapMs(run, step);
          if (active <= 0) continue;
          const r = rates.get(inst);
          const own = r
            ? r.events / (unionMs(r.spans) / 1000)
            : coveringRate(ran.get(inst) ?? [], step);
          total += own * Math.min(1, active / reported);
        }
      } else total = means.reduce((x, y) => x + y, 0);
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

/** The union of [start, end] spans, as disjoint spans in order. */
function mergeSpans(spans: [number, number][]): [number, number][] {
  const out: [number, number][] = [];
  for (const [s, e] of [...spans].sort((a, b) => a[0] - b[0])) {
    const last = out[out.length - 1];
    if (last && s <= last[1]) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out;
}

/** How long the union of [start, end] spans covers (ms). */
function unionMs(spans: [number, number][]): number {
  return mergeSpans(spans).reduce((t, [s, e]) => t + (e - s), 0);
}

/**
 * The rate of the entry (start, end, rate; sorted by end) that covers most of [lo, hi), or
 * the last entry's when none does (an instance's run left open past its last flush).
 */
function coveringRate(entries: readonly [number, number, number][], [lo, hi]: [number, number]) {
  let a = 0;
  let b = entries.length;
  while (a < b) {
    const m = (a + b) >> 1;
    if ((entries[m] as [number, number, number])[1] <= lo) a = m + 1;
    else b = m;
  }
  let best: [number, number, number] | undefined;
  let most = 0;
  for (let i = a; i < entries.length; i++) {
    const e = entries[i] as [number, number, number];
    if (e[0] >= hi) break;
    const o = Math.min(e[1], hi) - Math.max(e[0], lo);
    if (o > most) [best, most] = [e, o];
  }
  return (best ?? entries[entries.length - 1] ?? [0, 0, 0])[2];
}

/** How long disjoint spans cover of [lo, hi) (ms). */
function overlapMs(spans: [number, number][], [lo, hi]: [number, number]): number {
  let t = 0;
  for (const [s, e] of spans) t += Math.max(0, Math.min(e, hi) - Math.max(s, lo));
  return t;
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
