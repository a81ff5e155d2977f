// A tuning target: what the loop needs to tune a group of knobs of one live service. The loop
// itself (daemon.ts) is the same for every target: calibrate, propose, gate, shadow, promote,
// guard. Targets are where the service-specific parts live: how a simulator is calibrated from
// that service's trace tables, which learner proposes, what shadow mode watches.
import type { KnobValues } from '../../knobs/index.ts';
import type { GateOptions } from './gate.ts';
import type { SloSpec } from './slo-guard.ts';

export interface ShadowReport {
  /** pending: still collecting; better/worse/inconclusive: the candidate against the live one. */
  verdict: 'pending' | 'better' | 'worse' | 'inconclusive';
  /**
   * Pending because the run has not yet read up to the present (a run rebuilt after a restart
   * replays its backlog): the loop's patience does not run out on it.
   */
  catchingUp?: boolean;
  /** What the shadow measured; kept in the proposal row and shown by the API. */
  details: Record<string, unknown>;
}

/** A shadow run: the candidate beside the live configuration, never acting. */
export interface ShadowRun {
  report(): Promise<ShadowReport>;
  stop(): Promise<void>;
}

/** What a target's calibration found: the simulator inputs and how well they predict live. */
export interface Calibration {
  /** Target-specific simulator inputs (a cache trace, a job workload). */
  data: unknown;
  /** Predicted against observed for the current configuration (DESIGN: calibration report). */
  fit: { metric: string; predicted: number; observed: number | null; relativeError: number | null };
  /** Records the calibration used. */
  records: number;
}

export interface Candidate {
  values: KnobValues;
  /** The learner's evidence: predicted gain, evaluations run. */
  evidence: Record<string, unknown>;
}

export interface NoCalibration {
  why: string;
}

export interface TuningTarget {
  /** Also the learner name on its proposals. */
  readonly name: string;
  readonly knobs: readonly string[];
  readonly gate: GateOptions & { slices: number };
  readonly slo: SloSpec;
  /** How long shadow runs before its verdict counts. */
  readonly shadowMs: number;
  /**
   * A simulator calibrated from the live tables; null while there is too little live data, or
   * why the data cannot calibrate one (said in the loop's events, not taken for a lack of data).
   */
  calibrate(): Promise<Calibration | NoCalibration | null>;
  /**
   * Why this target does not tune now (its knobs are not what drives the live service), or
   * null. It then proposes nothing and its open proposals are rejected.
   */
  standDown?(): Promise<string | null>;
  /** A better configuration than `current` on the calibrated simulator, or null. */
  propose(cal: Calibration, current: KnobValues, seed: number): Promise<Candidate | null>;
  /** One gate evaluation: the objective for `values` on a seed and workload slice. */
  evaluate(cal: Calibration, values: KnobValues, seed: number, slice: number): Promise<number>;
  startShadow(incumbent: KnobValues, candidate: KnobValues, sinceMs: number): Promise<ShadowRun>;
  /**
   * Ends a shadow of `candidate` (its proposal's changes) that left state outside this process
   * (a knob) and whose run this process does not hold: one started before a restart.
   */
  endShadow?(candidate: KnobValues): Promise<void>;
  /**
   * The candidate of a shadow this target's loop started whose state outside the process (a
   * knob) is still on, or null: the daemon ends it (endShadow) when no open proposal of the
   * target holds it, as when its proposal went live or was decided while no daemon held its
   * run. A shadow an operator set is never returned.
   */
  shadowLeft?(): Promise<KnobValues | null>;
}
