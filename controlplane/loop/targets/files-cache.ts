// The file service's read cache as a tuning target (files.cache_bytes, files.cache_policy):
// - calibration: the live access trace (the file service's sampled access records) becomes
//   the cache simulator's trace; the fit compares the replayed hit ratio of the live
//   configuration with the live hit ratio over the same window;
// - learner: Bayesian optimisation over policy x size, the size bounded by the knob's step
//   limit around the live value, minimising miss ratio + a memory price per GiB;
// - gate: paired replays of live and candidate on seeded windows of trace slices;
// - shadow: ghost caches of both configurations fed the live access stream from the moment
//   shadow began: exact hit ratios of what each would have done.
import { findKnob, isNumericKnob, type KnobSpec, type KnobValues } from '../../../knobs/index.ts';
import type { KnobObjective } from '../../../envs/core/index.ts';
import { simulateCache } from '../../../envs/cache/index.ts';
import { CacheTraceBuilder, type CacheTrace } from '../../../envs/loaders/cache-trace.ts';
import { BayesOpt } from '../../../learners/tuners/index.ts';
import { tune } from '../../../learners/core/index.ts';
import { accessRecords } from '../../files/traces.ts';
import type { KnobTable } from '../../knobs/table.ts';
import type { RedisClient } from '../../redis/connect.ts';
import { telemetryEntries } from '../../telemetry/read.ts';
import { GhostCaches, type CacheConfig } from '../ghost-caches.ts';
import type { Calibration, Candidate, ShadowReport, ShadowRun, TuningTarget } from '../target.ts';
import { TargetSettings, calibrationFit, costVerdict, sliceWindow } from './common.ts';
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
   * request before `start` (a live cache is warm: judging a bigger cache on a cold slice would
   * charge its memory without its hits). Replay is deterministic, so the window's hits are the
   * hits up to `end` minus the hits up to `start`.
   */
  private cost(
    trace: CacheTrace,
    values: KnobValues,
    start = 0,
    end = trace.keys.length,
  ): { cost: number; missRatio: number } {
    const bytes = values[BYTES] as number;
    const hitsUpTo = (to: number) =>
      to === 0
        ? 0
        : simulateCache(trace, values[POLICY] as string, bytes, {
            unit: 'bytes',
            start: 0,
            end: to,
          }).hits;
    const missRatio = 1 - (hitsUpTo(end) - hitsUpTo(start)) / Math.max(1, end - start);
    return { cost: cacheCost(missRatio, bytes, this.o.memoryPricePerGiB), missRatio };
  }

  async calibrate(): Promise<CalibrationOf<CacheTrace> | null> {
    const now = this.o.knobs.clock.now();
    const records = (
      await accessRecords(this.redis, this.o.knobs.keys, {
        fromMs: now - this.o.windowMs,
        count: this.o.maxRecords,
      })
    ).filter((r) => r.op === 'read');
    if (records.length < this.o.minRecords) return null;
    const b = new CacheTraceBuilder('live files access trace', true);
    for (const r of records) b.push(r.key, r.sizeBytes);
    const trace = b.build(records.length);
    const live = Object.fromEntries(
      (await this.o.knobs.list())
        .filter((r) => this.knobs.includes(r.name))
        .map((r) => [r.name, r.value]),
    );
    const predicted = 1 - this.cost(trace, live).missRatio;
    const observed = await this.liveHitRatio(now - this.o.windowMs, now);
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
      this.o.knobs.keys.trace('files', 'access'),
      [cfg(incumbent), cfg(candidate)],
      sinceMs,
      {
        price: this.o.memoryPricePerGiB,
        minRequests: this.o.shadowMinRequests,
        minEffect: this.gate.minEffect,
      },
    );
  }
}

/** Feeds ghost caches from the access stream with blocking reads, from a start time on. */
export class ShadowCacheRun implements ShadowRun {
  private stopped = false;
  private loop: Promise<void> = Promise.resolve();
  private constructor(
    private readonly reader: RedisClient,
    readonly ghosts: GhostCaches,
    private readonly opts: { price: number; minRequests: number; minEffect: number },
  ) {}

  static async start(
    redis: RedisClient,
    stream: string,
    configs: CacheConfig[],
    sinceMs: number,
    opts: { price: number; minRequests: number; minEffect: number },
  ): Promise<ShadowCacheRun> {
    const reader = redis.duplicate();
    reader.on('error', () => {});
    const run = new ShadowCacheRun(reader, new GhostCaches(configs), opts);
    run.loop = run.follow(stream, `${Math.max(0, Math.floor(sinceMs))}-0`);
    return run;
  }

  private async follow(stream: string, from: string): Promise<void> {
    let last = from;
    while (!this.stopped) {
      const res = (await this.reader
        .xread('COUNT', 1000, 'BLOCK', 500, 'STREAMS', stream, last)
        .catch(() => null)) as [string, [string, string[]][]][] | null;
      for (const [, entries] of res ?? []) {
        for (const [id, flat] of entries) {
          last = id;
          const f: Record<string, string> = {};
          for (let i = 0; i + 1 < flat.length; i += 2) f[flat[i] as string] = flat[i + 1] as string;
          if (f['op'] === 'read' && f['key']) this.ghosts.access(f['key'], Number(f['size'] ?? 0));
          else if (f['op'] === 'write' && f['key']) this.ghosts.invalidate(f['key']);
        }
      }
    }
  }

  async report(): Promise<ShadowReport> {
    const [inc, cand] = this.ghosts.stats() as [
      ReturnType<GhostCaches['stats']>[number],
      ReturnType<GhostCaches['stats']>[number],
    ];
    const details = { incumbent: inc, candidate: cand };
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
