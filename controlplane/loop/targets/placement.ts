// Tenant placement over the scheduler's shards as a tuning target (placement.map):
// - calibration: each tenant's completed core-ms per usage bucket over a window, read from
//   every shard's usage table; the fit compares the shard-load imbalance the live map predicts
//   from the tenants' loads with the imbalance of what each shard actually completed;
// - learner: the trained placement move scorer (learners/placement, the committed artifact)
//   decides on the live view (tenant loads, the live map, the knob's move limit) as it does in
//   the placement simulator; its moves make the candidate map;
// - gate: paired imbalances of the live and candidate maps on seeded windows of bucket slices,
//   the candidate paying its migration (moved state at the simulator's price) over the window;
// - shadow: the same imbalance on the usage completed since shadow began (live load, both
//   maps): a placement cannot run beside the live one, but its load split can be computed.
// A promotion goes through KnobTable.promote on `placement.map`, which the placement migrator
// (controlplane/scheduler/migration.ts) turns into live migrations.
import { findKnob, type KnobValues, type PlacementMap } from '../../../knobs/index.ts';
import { DEFAULT_PLACEMENT_SIM } from '../../../envs/placement/evaluate.ts';
import { trainedPlacementPolicy } from '../../../learners/placement/policy.ts';
import {
  imbalance,
  shardLoads,
  shardOf,
  withMoves,
  type GroupView,
  type PlacementPolicy,
} from '../../../policies/placement/index.ts';
import type { KnobTable } from '../../knobs/table.ts';
import { PLACEMENT_KNOB } from '../../scheduler/placement.ts';
import { SchedulerQueries } from '../../scheduler/queries.ts';
import { SchedShard } from '../../scheduler/shard.ts';
import type { Calibration, Candidate, ShadowReport, ShadowRun, TuningTarget } from '../target.ts';
import { TargetSettings, calibrationFit, costVerdict, sliceWindow } from './common.ts';
import type { CalibrationOf, TargetLoopOptions } from './common.ts';

const GIB = 1024 ** 3;

export interface PlacementTargetOptions extends TargetLoopOptions {
  knobs: KnobTable;
  /** Scheduler shard names by placement index (as the routers have them). */
  shards: readonly string[];
  windowMs: number;
  /** Width of the scheduler's usage buckets (the settle's usageBucketMs). */
  bucketMs: number;
  /** Least total core-ms in the window before calibrating. */
  minLoadMs: number;
  /** State a tenant moves with it, in bytes (the migration's price); per tenant or one for all. */
  stateBytes: number | ((tenant: string) => number);
  /** The deciding policy; the committed trained scorer by default. */
  policy?: PlacementPolicy;
  /** Buckets of live usage shadow needs before a verdict. */
  shadowMinBuckets: number;
}

/** Core-ms per tenant in each bucket of the window, oldest first. */
interface LoadSeries {
  tenants: string[];
  /** buckets[b][i]: load of tenants[i] in bucket b. */
  buckets: number[][];
}

/** What the gate scores on: the window's loads and the map live when they were read. */
interface PlacementCalibration extends LoadSeries {
  live: PlacementMap;
}

export class PlacementTarget extends TargetSettings implements TuningTarget {
  readonly name = 'placement';
  readonly knobs = [PLACEMENT_KNOB];
  private readonly queries: SchedulerQueries[];
  private readonly policy: PlacementPolicy;

  constructor(private readonly o: PlacementTargetOptions) {
    super(o, 4, {
      service: 'scheduler',
      metric: 'dispatch_latency_ms_p99',
      direction: 'min',
      maxRegression: 0.25,
      // Judged from 15 s after the promotion, past a migration's usual length: moved tasks
      // keep their ready time, so the destination's dispatch latency spikes while the moved
      // backlog runs (in a probe of `npm start`'s per-shard telemetry, not kept as a script,
      // the spike outlasted the guard's default 5 s). A migration held up longer still falls
      // in the judged window. Per-second p99s of a
      // lightly loaded shard swing by orders of magnitude, so the verdict waits for more points.
      settleMs: 15_000,
      minPoints: 10,
      // Whole milliseconds: an idle shard's p99 of 0 or 1 ms is no level to measure 25% of.
      noiseFloor: 20,
    });
    this.queries = o.shards.map(
      (s) => new SchedulerQueries(new SchedShard(o.knobs.redis, o.knobs.keys, s)),
    );
    this.policy = o.policy ?? trainedPlacementPolicy();
  }

  /** Tenant loads per bucket in [fromMs, toMs), summed over the shards. */
  private async series(fromMs: number, toMs: number): Promise<LoadSeries & { perShard: number[] }> {
    // One pipeline per shard for the whole window.
    const perShardBuckets = await Promise.all(
      this.queries.map((q) => q.tenantUsageByBucket(fromMs, toMs, this.o.bucketMs)),
    );
    const perShard = this.o.shards.map(() => 0);
    const byBucket = (perShardBuckets[0] ?? []).map((_, b) => {
      const m = new Map<string, number>();
      perShardBuckets.forEach((buckets, s) => {
        for (const [t, v] of buckets[b] ?? []) {
          m.set(t, (m.get(t) ?? 0) + v);
          perShard[s] = (perShard[s] as number) + v;
        }
      });
      return m;
    });
    const tenants = [...new Set(byBucket.flatMap((m) => [...m.keys()]))].sort();
    return {
      tenants,
      buckets: byBucket.map((m) => tenants.map((t) => m.get(t) ?? 0)),
      perShard,
    };
  }

  private groups(s: LoadSeries, from = 0, to = s.buckets.length): GroupView[] {
    const load = s.tenants.map(() => 0);
    for (let b = from; b < to; b++)
      (s.buckets[b] as number[]).forEach((v, i) => (load[i] = (load[i] as number) + v));
    const bytes = this.o.stateBytes;
    return s.tenants.map((name, i) => ({
      name,
      load: load[i] as number,
      stateBytes: typeof bytes === 'number' ? bytes : bytes(name),
    }));
  }

  private imbalanceOf(groups: readonly GroupView[], map: PlacementMap): number {
    return imbalance(shardLoads(groups, map, this.o.shards.length));
  }

  /** Bytes a change of map moves (tenants whose shard changes), at the simulator's price. */
  private migrationCost(groups: readonly GroupView[], from: PlacementMap, to: PlacementMap) {
    const n = this.o.shards.length;
    let bytes = 0;
    for (const g of groups)
      if (shardOf(from, g.name, n) !== shardOf(to, g.name, n)) bytes += g.stateBytes;
    return (bytes / GIB) * DEFAULT_PLACEMENT_SIM.moveCostPerGiB;
  }

  async calibrate(): Promise<CalibrationOf<PlacementCalibration> | null> {
    const now = this.o.knobs.clock.now();
    const s = await this.series(now - this.o.windowMs, now);
    const total = s.perShard.reduce((a, b) => a + b, 0);
    if (total < this.o.minLoadMs) return null;
    const live = (await this.o.knobs.get(PLACEMENT_KNOB)).value as PlacementMap;
    const predicted = this.imbalanceOf(this.groups(s), live);
    const observed = imbalance(s.perShard);
    return {
      // Idle buckets say nothing about a placement (every map splits nothing equally).
      data: { tenants: s.tenants, buckets: s.buckets.filter((b) => b.some((v) => v > 0)), live },
      records: s.tenants.length,
      fit: calibrationFit('shard_imbalance', predicted, observed),
    };
  }

  async propose(cal: Calibration, current: KnobValues): Promise<Candidate | null> {
    const s = cal.data as LoadSeries;
    const map = (current[PLACEMENT_KNOB] ?? {}) as PlacementMap;
    const spec = findKnob(this.o.knobs.catalog, PLACEMENT_KNOB);
    const groups = this.groups(s);
    const moves = this.policy.decide({
      shards: this.o.shards.length,
      groups,
      map,
      maxMoves: spec?.safety.maxMoves ?? DEFAULT_PLACEMENT_SIM.maxMovesPerStep,
      moveCostPerByte: DEFAULT_PLACEMENT_SIM.moveCostPerGiB / GIB,
    });
    if (moves.length === 0) return null;
    const next = withMoves(map, moves);
    const before = this.imbalanceOf(groups, map);
    const after = this.imbalanceOf(groups, next);
    if (after + this.migrationCost(groups, map, next) >= before * (1 - this.gate.minEffect))
      return null;
    return {
      values: { [PLACEMENT_KNOB]: next },
      evidence: {
        predicted: { imbalance: after, liveImbalance: before },
        moves,
        learner: this.policy.name,
      },
    };
  }

  async evaluate(
    cal: Calibration,
    values: KnobValues,
    seed: number,
    slice: number,
  ): Promise<number> {
    const s = cal.data as PlacementCalibration;
    const { start, end } = sliceWindow(s.buckets.length, this.gate.slices, slice, seed);
    const groups = this.groups(s, start, end);
    const live = s.live;
    const map = values[PLACEMENT_KNOB] as PlacementMap;
    // The imbalance of the window's total loads, not the simulator's mean of per-step
    // imbalances: a live bucket is short, and one in which a stalled shard completed nothing
    // swings a per-bucket imbalance far more than the placement does. The migration is paid
    // once over the window's buckets, as the simulator's objective does.
    return this.imbalanceOf(groups, map) + this.migrationCost(groups, live, map) / (end - start);
  }

  async startShadow(
    incumbent: KnobValues,
    candidate: KnobValues,
    sinceMs: number,
  ): Promise<ShadowRun> {
    return {
      report: async (): Promise<ShadowReport> => {
        const now = this.o.knobs.clock.now();
        // Whole buckets since the shadow began (the bucket it began in holds usage from before),
        // and only those with usage count: idle time alone says nothing of the two maps.
        const from = Math.ceil(sinceMs / this.o.bucketMs) * this.o.bucketMs;
        const s = await this.series(from, now);
        const busy = s.buckets.filter((b) => b.some((v) => v > 0)).length;
        const groups = this.groups(s);
        const inc = this.imbalanceOf(groups, incumbent[PLACEMENT_KNOB] as PlacementMap);
        const cand = this.imbalanceOf(groups, candidate[PLACEMENT_KNOB] as PlacementMap);
        const details = {
          buckets: busy,
          incumbentImbalance: inc,
          candidateImbalance: cand,
        };
        if (busy < this.o.shadowMinBuckets) return { verdict: 'pending', details };
        return { verdict: costVerdict(inc, cand, this.gate.minEffect), details };
      },
      stop: async () => {},
    };
  }
}
