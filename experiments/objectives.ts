// Objectives built from an env's KnobObjective for an experiment: a derived metric (the cache's
// miss ratio plus a price on memory) becomes the metric tuners optimise, and a knob's domain can
// be narrowed to the range an operator would search.
import type { KnobObjective, Metrics } from '../envs/core/index.ts';
import type { KnobSpec, KnobValues, NumericKnob } from '../knobs/index.ts';
import type { Direction } from './spec.ts';

/** `inner` with one more metric, computed from its metrics and the knob values, as the objective. */
export function withDerivedMetric(
  inner: KnobObjective,
  metric: string,
  direction: Direction,
  derive: (m: Metrics, values: KnobValues) => Metrics,
): KnobObjective {
  return {
    id: `${inner.id}/${metric}`,
    knobs: inner.knobs,
    objective: { metric, direction },
    async evaluate(values, seed) {
      const m = await inner.evaluate(values, seed);
      return { ...m, ...derive(m, values) };
    },
  };
}

/**
 * `inner` optimised on the log of its metric (metric `log_<metric>`, same direction). For a
 * positive metric spanning orders of magnitude (a p99 that explodes in bad regions), a
 * Gaussian process fitted on the raw values is dominated by the worst points and models the
 * good region poorly; on the log scale it does not. Rank-based tuners (random, grid, CEM's
 * elites) choose exactly as on the raw metric.
 */
export function logMetricObjective(inner: KnobObjective): KnobObjective {
  const { metric, direction } = inner.objective;
  return withDerivedMetric(inner, `log_${metric}`, direction, (m) => {
    const v = m[metric];
    if (typeof v !== 'number' || !(v > 0)) {
      throw new RangeError(`log scale: ${metric} must be > 0, got ${String(v)}`);
    }
    return { [`log_${metric}`]: Math.log(v) };
  });
}

/**
 * The knobs with `name`'s numeric domain narrowed to [min, max] (inside its catalog domain)
 * and/or searched on a log scale: how an experiment states the space an operator would search.
 * Every value of the reshaped knob is still valid for the catalog's knob.
 */
export function reshapeKnob(
  knobs: readonly KnobSpec[],
  name: string,
  shape: { min?: number; max?: number; log?: boolean },
): KnobSpec[] {
  if (!knobs.some((k) => k.name === name)) throw new RangeError(`reshapeKnob: no knob ${name}`);
  return knobs.map((k) => {
    if (k.name !== name) return k;
    if (k.type !== 'int' && k.type !== 'float' && k.type !== 'duration') {
      throw new RangeError(`reshapeKnob: ${name} is not numeric`);
    }
    const min = shape.min ?? k.min;
    const max = shape.max ?? k.max;
    if (!(min >= k.min && max <= k.max && min < max)) {
      throw new RangeError(
        `reshapeKnob: [${min}, ${max}] is not inside ${name}'s [${k.min}, ${k.max}]`,
      );
    }
    const reshaped: NumericKnob = { ...k, min, max, log: shape.log ?? k.log };
    return reshaped;
  });
}
