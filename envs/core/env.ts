// The Gymnasium contract: reset({seed}) -> {obs, info}; step(action) -> {obs, reward,
// terminated, truncated, info}. Envs carry a versioned id (`cache-v1`).
import type { KnobSpec, KnobValues } from '../../knobs/index.ts';
import type { Space } from './spaces.ts';

export type Info = Record<string, unknown>;

export interface ResetResult<O> {
  obs: O;
  info: Info;
}

export interface StepResult<O> {
  obs: O;
  reward: number;
  /** The episode reached a terminal state of the task (all jobs done, trace ended). */
  terminated: boolean;
  /** The episode was cut short by a limit outside the task (a step budget). */
  truncated: boolean;
  info: Info;
}

export interface Env<O = unknown, A = unknown> {
  readonly id: string;
  readonly observationSpace: Space;
  readonly actionSpace: Space;
  reset(opts?: { seed?: number }): ResetResult<O>;
  step(action: A): StepResult<O>;
  close?(): void;
}

/** Numeric metrics of a whole run, named with their units last (`mean_jct_s`). */
export type Metrics = Record<string, number>;

/**
 * A whole-configuration view of an env, for tuners: run a workload under these knob values
 * (names from the knob catalog) and report metrics. `objective` names the metric a tuner
 * optimises and its direction.
 */
export interface KnobObjective {
  readonly id: string;
  readonly knobs: readonly KnobSpec[];
  readonly objective: { metric: string; direction: 'min' | 'max' };
  evaluate(values: KnobValues, seed: number): Promise<Metrics>;
}
