// The experiments by name, in the order `all` runs them.
import type { ExperimentSpec } from '../spec.ts';
import { cacheExperiment } from './cache.ts';
import { messagingExperiment } from './messaging.ts';
import { placementExperiment } from './placement.ts';
import { schedulerExperiment } from './scheduler.ts';

export const EXPERIMENTS: Readonly<Record<string, ExperimentSpec<never>>> = {
  scheduler: schedulerExperiment as ExperimentSpec<never>,
  cache: cacheExperiment as ExperimentSpec<never>,
  placement: placementExperiment as ExperimentSpec<never>,
  messaging: messagingExperiment as ExperimentSpec<never>,
};

export const EXPERIMENT_NAMES = Object.keys(EXPERIMENTS);

/** The experiment called `name`, or undefined (never an Object.prototype member). */
export function experimentByName(name: string): ExperimentSpec<never> | undefined {
  return Object.hasOwn(EXPERIMENTS, name) ? EXPERIMENTS[name] : undefined;
}
