// The file service's read cache as a tuning target (files.cache_bytes, files.cache_policy):
// - calibration: the live access trace (the newest records of a window; none from a sampled
//   trace: a 1% key stream has other reuse distances than the live one) becomes
//   the cache simulator's trace, reads as requests and writes as invalidations (a write drops
//   the writer's cached chunk: reader.ts wrote()); the fit compares the replayed hit ratio of
//   the live configuration with the live hit ratio over the same window;
// - learner: Bayesian optimisation over policy x size, the size bounded by the knob's step
//   limit around the live value, minimising miss ratio + a memory price per GiB;
// - gate: paired replays of live and candidate on seeded windows of trace slices;
// - shadow: ghost caches of both configurations, warmed on the access stream of the
//   calibration window before shadow began (its newest records, as calibration reads: those
//   make the live cache's contents) and then fed the live stream: hit ratios of what each
//   would have done, counted from the moment shadow began; no verdict on sampled records.
import { findKnob, isNumericKnob, type KnobSpec, type KnobValues } from '../../../knobs/index.ts';
import type { KnobObjective } from '../../../envs/core/index.ts';
import { simulateCache } from '../../../envs/cache/index.ts';
import { CacheTraceBuilder, type CacheTrace } from '../../../envs/loaders/cache-trace.ts';
import { BayesOpt } from '../../../learners/tuners/index.ts';
import { tune } from '../../../learners/core/index.ts';
import { ACCESS_TRACE_KIND, accessRecordOf, usableAccess } from '../../files/traces.ts';
import type { KnobTable } from '../../knobs/table.ts';
import type { RedisClient } from '../../redis/connect.ts';
import { telemetryEntries } from '../../telemetry/read.ts';
import { GhostCaches, type CacheConfig } from '../ghost-caches.ts';
import type {
  Calibration,
  Candidate,
  NoCalibration,
  ShadowReport,
  ShadowRun,
  TuningTarget,
} from '../target.ts';
import {
  TargetSettings,
  calibrationFit,
  costVerdict,
  sampledWhy,
  sliceWindow,
  traceWindow,
} from './common.ts';
import type { CalibrationOf, TargetLoopOptions } from './common.ts';

const GIB = 2 ** 30;
const BYTES = 'files.cache_bytes';
const POLICY = 'files.cache_policy';

export interface FilesCacheTargetOptions extends TargetLoopOptions {
  knobs: KnobTable;
  /** Cost of cache memory, in miss-ratio units per GiB: what a GiB must save to be worth it. */
  memoryPricePerGiB: number;
  /** Calibration reads the access records of this window. */
  windowMs: number;
  /** Least reads in the window for a calibration (writes are replayed but are not reads). */
  minRecords: number;
  maxRecords: number;
  /** Learner evaluations per proposal. */
  budget: number;
  /** Requests the ghosts must see before shadow gives a verdict. */
  shadowMinRequests: number;
}

export function cacheCost(missRatio: number, cacheBytes: number, pricePerGiB: number): number {
  return missRatio + (pricePerGiB * cacheBytes) / GIB;
}

export class FilesCacheTarget extends TargetSettings implements TuningTarget {
  readonly name = 'files.cache';
  readonly knobs = [BYTES, POLICY];
  private readonly redis: RedisClient;

  constructor(private readonly o: FilesCacheTargetOptions) {
    super(o, 4, {
      service: 'files',
      metric: 'cache_interval_hit_ratio',
      direction: 'max',
      maxRegression: 0.1,
    });
    this.redis = o.knobs.redis;
  }

  /**
   * Cost of a configuration on requests [start, end) of the trace, the cache warmed by every
   * entry before `start` (a live cache is warm: judging a bigger cache on a cold slice would
   * charge its memory without its hits). Replay is deterministic, so the window's hits (and
   * reads: writes are not requests) are those up to `end` minus those up to `start`.
   */
  private cost(
    trace: CacheTrace,
    values: KnobValues,
    start = 0,
    end = trace.keys.length,
  ): { cost: number; missRatio: number } {
    const bytes = values[BYTES] as number;
    const upTo = (to: number) =>
      to === 0
        ? { hits: 0, requests: 0 }
        : simulateCache(trace, values[POLICY] as string, bytes, {
            unit: 'bytes',
            start: 0,
            end: to,
          });
    const [a, b] = [upTo(start), upTo(end)];
    const missRatio = 1 - (b.hits - a.hits) / Math.max(1, b.requests - a.requests);
    return { cost: cacheCost(missRatio, bytes, this.o.memoryPricePerGiB), missRatio };
  }

  async calibrate(): Promise<CalibrationOf<CacheTrace> | NoCalibration | null> {
    const now = this.o.knobs.clock.now();
    const w = await traceWindow(this.redis, this.o.knobs.keys, 'files', [ACCESS_TRACE_KIND], {
      fromMs: now - this.o.windowMs,
      toMs: now,
      maxRecords: this.o.maxRecords,
    });
    const records = w.records[ACCESS_TRACE_KIND].map(accessRecordOf).filter(
      (r) => (r.op === 'read' || r.op === 'write') && usableAccess(r),
    );
    const b = new CacheTraceBuilder('live files access trace', true);
    // A write is no request, but the live reader drops the chunk it wrote: replay must too, or
    // read/write/read of a chunk predicts a hit the live cache never had.
    for (const r of records) {
      if (r.op === 'write') b.invalidate(r.key, r.sizeBytes);
      else b.push(r.key, r.sizeBytes);
    }
    if (b.requests < Math.max(1, this.o.minRecords)) return sampledWhy(w.sampled, this.o.windowMs);
    const trace = b.build(records.length);
    const live = Object.fromEntries(
      (await this.o.knobs.list())
        .filter((r) => this.knobs.includes(r.name))
        .map((r) => [r.name, r.value]),
    );
    const predicted = 1 - this.cost(trace, live).missRatio;
    // Observed over the span the replay covers: the window cut to its newest records (or to
    // what follows the newest sampled one) is shorter than the window, and the cache may have
    // run with another configuration before it. From the first replayed access's own time: a
    // record is written after its access, later than the interval's counts may be.
    let spanFrom = now;
    for (const r of records) spanFrom = Math.min(spanFrom, r.timeMs);
    const observed = await this.liveHitRatio(spanFrom, now);
    return {
      data: trace,
      records: records.length,
      fit: calibrationFit('cache_hit_ratio', predicted, observed),
    };
  }

  /** The live hit ratio over a window, from the service's per-interval hit and miss counts. */
  private async liveHitRatio(fromMs: number, toMs: number): Promise<number | null> {
    const entries = await telemetryEntries(this.redis, this.o.knobs.keys, 'files', fromMs, toMs);
    let hits = 0;
    let misses = 0;
    for (const e of entries) {
      hits += Number(e.fields['cache_hits'] ?? 0);
      misses += Number(e.fields['cache_misses'] ?? 0);
    }
    return hits + misses > 0 ? hits / (hits + misses) : null;
  }

  /** The size knob narrowed to what one step may reach from the live value. */
  private reachable(current: number): KnobSpec {
    const spec = findKnob(this.o.knobs.catalog, BYTES);
    if (!spec || !isNumericKnob(spec)) throw new Error(`${BYTES} must be a numeric knob`);
    const ratio = spec.safety.maxStepRatio ?? Infinity;
    const lo = Math.max(spec.min, Math.ceil(current / ratio), 1);
    const hi = Math.min(spec.max, Math.floor(current * ratio));
    return { ...spec, min: lo, max: Math.max(lo, hi), log: true };
  }

  async propose(cal: Calibration, current: KnobValues, seed: number): Promise<Candidate | null> {
    const trace = cal.data as CacheTrace;
    const policySpec = findKnob(this.o.knobs.catalog, POLICY) as KnobSpec;
    const knobs = [this.reachable(current[BYTES] as number), policySpec];
    const objective: KnobObjective = {
      id: 'files-cache-calibrated',
      knobs,
      objective: { metric: 'cost', direction: 'min' },
      evaluate: async (values) => {
        const { cost, missRatio } = this.cost(trace, values);
        return { cost, miss_ratio: missRatio };
      },
    };
    const bo = new BayesOpt({ knobs, objective: objective.objective, seed });
    const run = await tune(bo, objective, this.o.budget, seed);
    const best = run.best;
    if (!best) return null;
    const now = this.cost(trace, current).cost;
    if (best.value >= now * (1 - this.gate.minEffect)) return null;
    return {
      values: best.values,
      evidence: {
        predicted: { cost: best.value, liveCost: now, gain: (now - best.value) / now },
        evaluations: run.evaluations.length,
        learner: 'bayesopt',
      },
    };
  }

  async evaluate(
    cal: Calibration,
    values: KnobValues,
    seed: number,
    slice: number,
  ): Promise<number> {
    const trace = cal.data as CacheTrace;
    const { start, end } = sliceWindow(trace.keys.length, this.gate.slices, slice, seed);
    return this.cost(trace, values, start, end).cost;
  }

  async startShadow(
    incumbent: KnobValues,
    candidate: KnobValues,
    sinceMs: number,
  ): Promise<ShadowRun> {
    const cfg = (v: KnobValues): CacheConfig => ({
      policy: v[POLICY] as string,
      cacheBytes: v[BYTES] as number,
    });
    return ShadowCacheRun.start(
      this.redis,
      this.o.knobs.keys.trace('files', ACCESS_TRACE_KIND),
      [cfg(incumbent), cfg(candidate)],
      sinceMs,
      {
        price: this.o.memoryPricePerGiB,
        minRequests: this.o.shadowMinRequests,
        minEffect: this.gate.minEffect,
        // Warmed as calibration reads: the newest access records of its window, at most its
        // count. The newest are what the live cache holds when shadow begins.
        warmupMs: this.o.windowMs,
        warmupMaxEntries: this.o.maxRecords,
      },
    );
  }
}

export interface ShadowCacheOptions {
  /** Memory price per GiB, least requests and least effect for a verdict (the gate's). */
  price: number;
  minRequests: number;
  minEffect: number;
  /**
   * The ghosts are warmed on the stream of this window before `sinceMs` (offered, not counted),
   * as the live cache was warmed by the traffic before shadow began. Default 0: cold ghosts.
   */
  warmupMs?: number;
  /** At most this many warm-up entries, the newest before `sinceMs`. Default: no bound. */
  warmupMaxEntries?: number;
  /** How long report() waits for the reader to reach the stream's newest entry. Default 1 s. */
  catchUpWaitMs?: number;
}

/** A stream entry id as [ms, seq]. */
type StreamId = readonly [number, bigint];

function parseId(id: string): StreamId {
  const [ms, seq] = id.split('-');
  return [Number(ms), BigInt(seq ?? 0)];
}

function compareIds(a: StreamId, b: StreamId): number {
  if (a[0] !== b[0]) return a[0] < b[0] ? -1 : 1;
  return a[1] === b[1] ? 0 : a[1] < b[1] ? -1 : 1;
}

/** The id just before [ms, seq]: XREAD returns the entries after the id it is given. */
function idBefore([ms, seq]: StreamId): string {
  if (seq > 0n) return `${ms}-${seq - 1n}`;
  return ms > 0 ? `${ms - 1}-18446744073709551615` : '0-0';
}

type XreadReply = [string, [string, string[]][]][] | null;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Feeds ghost caches from the access stream with blocking reads: the entries of a warm-up
 * window before `sinceMs` warm them, the entries from `sinceMs` on are counted. A run rebuilt
 * after a restart starts behind the stream: report() gives no verdict on a partial prefix, it
 * is `pending` (with `catchingUp`) until the reader has reached the stream's newest entry as it
 * was when report() was called.
 */
export class ShadowCacheRun implements ShadowRun {
  private stopped = false;
  private loop: Promise<void> = Promise.resolve();
  /** The id of the last entry read (the next read starts after it). */
  private last: StreamId;
  /** The last read failed: the run is not catching up, it is stuck. */
  private failing = false;
  /** Sampled records read: ghosts fed a sample do not count what the live cache does. */
  private sampled = 0;
  private readonly waiters = new Set<() => void>();

  private constructor(
    private readonly redis: RedisClient,
    private readonly reader: RedisClient,
    private readonly stream: string,
    readonly ghosts: GhostCaches,
    private readonly sinceMs: number,
    from: string,
    private readonly opts: ShadowCacheOptions,
  ) {
    this.last = parseId(from);
  }

  static async start(
    redis: RedisClient,
    stream: string,
    configs: CacheConfig[],
    sinceMs: number,
    opts: ShadowCacheOptions,
  ): Promise<ShadowCacheRun> {
    const since = Math.max(0, Math.floor(sinceMs));
    const warmupMs = Math.max(0, Math.floor(opts.warmupMs ?? 0));
    let from = idBefore([Math.max(0, since - warmupMs), 0n]);
    const max = opts.warmupMaxEntries;
    if (warmupMs > 0 && since > 0 && max !== undefined) {
      // The newest `max` entries of the window: a busy stream's warm-up stays bounded.
      const newest = (await redis.xrevrange(
        stream,
        String(since - 1),
        String(Math.max(0, since - warmupMs)),
        'COUNT',
        Math.max(1, Math.floor(max)),
      )) as [string, string[]][];
      const oldest = newest.at(-1)?.[0];
      if (oldest !== undefined && newest.length >= max) from = idBefore(parseId(oldest));
    }
    const reader = redis.duplicate();
    reader.on('error', () => {});
    const run = new ShadowCacheRun(
      redis,
      reader,
      stream,
      new GhostCaches(configs),
      since,
      from,
      opts,
    );
    run.loop = run.follow();
    return run;
  }

  private async follow(): Promise<void> {
    while (!this.stopped) {
      let res: XreadReply = null;
      try {
        res = (await this.reader.xread(
          'COUNT',
          1000,
          'BLOCK',
          500,
          'STREAMS',
          this.stream,
          `${this.last[0]}-${this.last[1]}`,
        )) as XreadReply;
        this.failing = false;
      } catch {
        this.failing = true;
      }
      for (const [, entries] of res ?? []) {
        for (const [id, flat] of entries) {
          const at = parseId(id);
          this.last = at;
          const f: Record<string, string> = {};
          for (let i = 0; i + 1 < flat.length; i += 2) f[flat[i] as string] = flat[i + 1] as string;
          const counted = at[0] >= this.sinceMs;
          // The warm-up may reach back before the rate was set to 1; what is counted may not.
          if (counted && f['sr'] !== undefined) this.sampled++;
          // As calibration reads it (accessRecordOf): a record that is no usable access is
          // left out, not replayed with a NaN size.
          const r = accessRecordOf({ id, ms: at[0], fields: f });
          if (!usableAccess(r)) continue;
          if (r.op === 'read') {
            if (counted) this.ghosts.access(r.key, r.sizeBytes);
            else this.ghosts.warm(r.key, r.sizeBytes);
          } else if (r.op === 'write') this.ghosts.invalidate(r.key);
        }
      }
      for (const w of [...this.waiters]) w();
      if (this.failing && !this.stopped) await sleep(100);
    }
    for (const w of [...this.waiters]) w();
  }

  /** Waits until the reader has read up to `target`, at most catchUpWaitMs; true if it did. */
  private async catchUp(target: StreamId | undefined): Promise<boolean> {
    if (!target) return true;
    const deadline = Date.now() + (this.opts.catchUpWaitMs ?? 1_000);
    while (compareIds(this.last, target) < 0) {
      const left = deadline - Date.now();
      if (this.stopped || left <= 0) return false;
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, left);
        this.waiters.add(done);
      });
    }
    return true;
  }

  async report(): Promise<ShadowReport> {
    // The present: the stream's newest entry now. Ghost counts on less are a partial prefix.
    const newest = (await this.redis.xrevrange(this.stream, '+', '-', 'COUNT', 1)) as [
      string,
      string[],
    ][];
    const target = newest[0] ? parseId(newest[0][0]) : undefined;
    const caughtUp = await this.catchUp(target);
    const [inc, cand] = this.ghosts.stats() as [
      ReturnType<GhostCaches['stats']>[number],
      ReturnType<GhostCaches['stats']>[number],
    ];
    const details = { incumbent: inc, candidate: cand };
    if (!caughtUp) {
      const readUpTo = `${this.last[0]}-${this.last[1]}`;
      const behind = { ...details, readUpTo, streamNewest: newest[0]?.[0] };
      // A reader whose reads fail is stuck, not catching up: the daemon's patience applies.
      return { verdict: 'pending', catchingUp: !this.failing, details: behind };
    }
    if (this.sampled > 0)
      return {
        verdict: 'inconclusive',
        details: { ...details, sampled: this.sampled, why: 'the access stream is sampled' },
      };
    if (cand.requests < this.opts.minRequests) return { verdict: 'pending', details };
    const cost = (s: typeof inc) => cacheCost(1 - s.hitRatio, s.config.cacheBytes, this.opts.price);
    const [ci, cc] = [cost(inc), cost(cand)];
    return {
      verdict: costVerdict(ci, cc, this.opts.minEffect),
      details: { ...details, incumbentCost: ci, candidateCost: cc },
    };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    this.reader.disconnect();
  }
}
