// What the tuning targets share: the gate, SLO and shadow settings each target takes, the
// calibration fit, the gate's seeded slice windows and shadow's verdict on two costs. Each
// target keeps what is its own: the simulator, the learner, what shadow watches.
import { createRng } from '../../../envs/core/index.ts';
import { DEFAULT_GATE, type GateOptions } from '../gate.ts';
import { sloSpec, type SloSpec } from '../slo-guard.ts';
import type { Calibration, ShadowReport } from '../target.ts';

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
    this.slo = sloSpec(slo, o.slo);
    this.shadowMs = o.shadowMs;
  }
}

/** Calibration's fit: the simulator's prediction of the live configuration against live. */
export function calibrationFit(
  metric: string,
  predicted: number,
  observed: number | null,
): Calibration['fit'] {
  return {
    metric,
    predicted,
    observed,
    relativeError:
      observed === null ? null : Math.abs(predicted - observed) / Math.max(observed, 1e-9),
  };
}

/**
 * The gate's window [start, end) on slice `slice` of `n` ordered items: a seeded 80% of the
 * slice, so repeated seeds sample the slice's variation. Fewer items than slices still give
 * each slice one item inside the data.
 */
export function sliceWindow(
  n: number,
  slices: number,
  slice: number,
  seed: number,
): { start: number; end: number } {
  if (n === 0) return { start: 0, end: 0 };
  const sliceLen = Math.max(1, Math.floor(n / slices));
  const window = Math.max(1, Math.floor(sliceLen * 0.8));
  const start =
    Math.min(n - 1, slice * sliceLen) + createRng(seed * 7919 + slice).int(sliceLen - window + 1);
  return { start, end: Math.min(n, start + window) };
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
