// What the tuning targets share: the gate, SLO and shadow settings each target takes, the
// trace window a calibration reads, the calibration fit, the gate's slices and their seeded
// windows and shadow's verdict on two costs. Each target keeps what is its own: the simulator,
// the learner, what shadow watches.
import { createRng } from '../../../envs/core/index.ts';
import type { RedisClient } from '../../redis/connect.ts';
import type { Keys } from '../../store/keys.ts';
import type { LogEntry } from '../../store/log.ts';
import { traceRecords } from '../../telemetry/read.ts';
import { DEFAULT_GATE, validateGate, type GateOptions } from '../gate.ts';
import { sloSpec, type SloSpec } from '../slo-guard.ts';
import type { Calibration, NoCalibration, ShadowReport } from '../target.ts';

export type TargetGate = GateOptions & { slices: number };

/** A target's calibration with its simulator inputs typed. */
export type CalibrationOf<T> = Calibration & { data: T };

/** The options every target takes beside its own. */
export interface TargetLoopOptions {
  /** How long shadow runs before its verdict counts. */
  shadowMs: number;
  gate?: Partial<TargetGate>;
  slo?: Partial<SloSpec>;
}

/** A target's gate, SLO and shadow time: its own defaults under the options' overrides. */
export abstract class TargetSettings {
  readonly gate: TargetGate;
  readonly slo: SloSpec;
  readonly shadowMs: number;

  protected constructor(o: TargetLoopOptions, slices: number, slo: Parameters<typeof sloSpec>[0]) {
    // Every target's gate objective is a cost: lower is better.
    this.gate = { ...DEFAULT_GATE, direction: 'min', slices, ...o.gate };
    // Checked here, where a target's options are read, not at its first gate minutes later.
    validateGate(this.gate);
    this.slo = sloSpec(slo, o.slo);
    this.shadowMs = o.shadowMs;
  }
}

/**
 * Calibration's fit: the simulator's prediction of the live configuration against live, with
 * what a target says of how the two were compared (`more`, kept beside them in the report).
 */
export function calibrationFit<T extends object = object>(
  metric: string,
  predicted: number,
  observed: number | null,
  more?: T,
): Calibration['fit'] & T {
  return {
    metric,
    predicted,
    observed,
    relativeError:
      observed === null ? null : Math.abs(predicted - observed) / Math.max(observed, 1e-9),
    ...(more as T),
  };
}

/** The trace records one calibration reads (traceWindow). */
export interface TraceWindow<K extends string> {
  records: Record<K, LogEntry[]>;
  /** Sampled records of the window, left out with everything older than the newest of them. */
  sampled: { streams: string[]; count: number; rates: string[]; untilMs: number } | null;
}

/**
 * The trace records one calibration reads, by kind: of each stream the newest `maxRecords` of
 * the window (the live service as it is now), all cut to the span every stream holds whole, so
 * arrivals, run times and completions describe the same stretch of time. The span starts after
 * the newest sampled record (the writer's `sr`) of any stream: a sample is a thinner workload
 * than the live one, and neither arrivals and run times sampled independently (jobs lose
 * stages) nor a key stream sampled per access (reuse distances stretch) can be scaled back to
 * it; what follows it, written at rate 1, can calibrate (the operator set the rate to 1 and the
 * window still holds the older records).
 */
export async function traceWindow<K extends string>(
  redis: RedisClient,
  keys: Keys,
  service: string,
  kinds: readonly K[],
  opts: { fromMs: number; toMs: number; maxRecords: number },
): Promise<TraceWindow<K>> {
  const read = await Promise.all(
    kinds.map((kind) =>
      traceRecords(redis, keys, service, kind, {
        fromMs: opts.fromMs,
        toMs: opts.toMs,
        count: opts.maxRecords,
        newest: true,
      }),
    ),
  );
  // The span starts where the latest-starting cut stream does (its oldest record kept); a
  // stream read whole covers the window from its start. A cut inside a millisecond (its oldest
  // kept record is not that ms's first: a writer's batch shares one ms) starts at the next ms,
  // or the other streams would keep records of that ms whose partners were cut.
  let start = -Infinity;
  for (const s of read) {
    const first = s.truncated ? s[0] : undefined;
    if (first) start = Math.max(start, first.id.endsWith('-0') ? first.ms : first.ms + 1);
  }
  const streams = new Set<string>();
  const rates = new Set<string>();
  let [count, untilMs] = [0, -Infinity];
  for (const [i, kind] of kinds.entries())
    for (const e of read[i] as LogEntry[]) {
      const sr = e.fields['sr'];
      if (sr === undefined || e.ms < start) continue;
      streams.add(keys.trace(service, kind));
      rates.add(sr);
      count++;
      untilMs = Math.max(untilMs, e.ms);
    }
  const sampled = count ? { streams: [...streams], count, rates: [...rates], untilMs } : null;
  if (sampled) start = untilMs + 1;
  const records = {} as Record<K, LogEntry[]>;
  for (const [i, kind] of kinds.entries())
    records[kind] = (read[i] as LogEntry[]).filter((e) => e.ms >= start);
  return { records, sampled };
}

/**
 * Why a window too thin to calibrate is so, when sampled records were left out of it (else
 * null: there is simply too little live data yet).
 */
export function sampledWhy(
  s: TraceWindow<string>['sampled'],
  windowMs: number,
): NoCalibration | null {
  if (!s) return null;
  return {
    why:
      `trace ${s.streams.join(', ')} holds ${s.count} records sampled at rate ` +
      `${s.rates.join(', ')}, the newest at ${new Date(s.untilMs).toISOString()}: ` +
      `a sample calibrates a thinner workload ` +
      `than the live one, so only the records after it count, too few yet (that record leaves ` +
      `the window at ${new Date(s.untilMs + windowMs).toISOString()}); if a trace is still ` +
      `sampled, set its sample rate to 1`,
  };
}

/**
 * Slice `slice` of `n` ordered items cut into `slices` slices: [start, end), the boundaries at
 * the rounded multiples of n / slices, so every item is in exactly one slice and no slice is
 * more than one item longer than another. With fewer items than slices there are only `n`
 * slices of one item each, and a slice index wraps onto them (slice n is slice 0 again): the
 * gate cycles its `slices` slices, so a short trace gives repeated samples of its `n` slices,
 * never one item counted as several slices nor a slice outside the data. `n` = 0: empty.
 */
export function sliceBounds(
  n: number,
  slices: number,
  slice: number,
): { start: number; end: number } {
  if (n <= 0) return { start: 0, end: 0 };
  const k = Math.max(1, Math.min(Math.floor(slices), n));
  const s = ((Math.floor(slice) % k) + k) % k;
  return { start: Math.round((s * n) / k), end: Math.round(((s + 1) * n) / k) };
}

/**
 * The gate's window [start, end) on slice `slice` of `n` ordered items (sliceBounds): a seeded
 * 80% of the slice (at least one item), so repeated seeds sample the slice's variation.
 */
export function sliceWindow(
  n: number,
  slices: number,
  slice: number,
  seed: number,
): { start: number; end: number } {
  const b = sliceBounds(n, slices, slice);
  const len = b.end - b.start;
  if (len === 0) return b;
  const window = Math.max(1, Math.floor(len * 0.8));
  const start = b.start + createRng(seed * 7919 + slice).int(len - window + 1);
  return { start, end: start + window };
}

/** Shadow's verdict on two costs: better only by the gate's least effect, as the gate judges. */
export function costVerdict(
  incumbent: number,
  candidate: number,
  minEffect: number,
): Exclude<ShadowReport['verdict'], 'pending'> {
  if (candidate < incumbent * (1 - minEffect)) return 'better';
  if (candidate > incumbent) return 'worse';
  return 'inconclusive';
}
