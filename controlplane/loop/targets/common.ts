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

/**
 * The trace records one calibration reads, by kind: of each stream the newest `maxRecords` of
 * the window (the live service as it is now), all cut to the span every stream holds whole, so
 * arrivals, run times and completions describe the same stretch of time. A why instead when a
 * record kept was sampled (the writer's `sr`): a sample is a thinner workload than the live one,
 * and neither arrivals and run times sampled independently (jobs lose stages) nor a key stream
 * sampled per access (reuse distances stretch) can be scaled back to it.
 */
export async function traceWindow<K extends string>(
  redis: RedisClient,
  keys: Keys,
  service: string,
  kinds: readonly K[],
  opts: { fromMs: number; toMs: number; maxRecords: number },
): Promise<Record<K, LogEntry[]> | NoCalibration> {
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
  // stream read whole covers the window from its start.
  let start = -Infinity;
  for (const s of read) if (s.truncated && s[0]) start = Math.max(start, s[0].ms);
  const out = {} as Record<K, LogEntry[]>;
  for (const [i, kind] of kinds.entries()) {
    const records = (read[i] as LogEntry[]).filter((e) => e.ms >= start);
    const rates = new Set<string>();
    let sampled = 0;
    for (const e of records) {
      const sr = e.fields['sr'];
      if (sr === undefined) continue;
      rates.add(sr);
      sampled++;
    }
    if (sampled > 0)
      return {
        why:
          `trace ${keys.trace(service, kind)} holds ${sampled} of ${records.length} records ` +
          `of the window sampled at rate ${[...rates].join(', ')}: a sample calibrates a thinner ` +
          `workload than the live one; set the ${service} service's ${kind} trace sample rate to 1`,
      };
    out[kind] = records;
  }
  return out;
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
