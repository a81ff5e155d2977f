// A toy tuning target for loop tests: messaging.batch_size, whose simulator and shadow always
// favour 256, with a short SLO guard window on messaging's p99 latency. `over` replaces fields.
import type { TuningTarget } from '../../controlplane/loop/target.ts';
import type { KnobValues } from '../../knobs/index.ts';

export function batchingTarget(over: Partial<TuningTarget> = {}): TuningTarget {
  return {
    name: 'messaging.batching',
    knobs: ['messaging.batch_size'],
    gate: { direction: 'min', minEffect: 0.01, minSamples: 4, maxSamples: 8, slices: 2 },
    slo: {
      service: 'messaging',
      metric: 'latency_ms_p99',
      direction: 'min',
      maxRegression: 0.2,
      baselineMs: 1000,
      watchMs: 1000,
      settleMs: 0,
      minPoints: 3,
      stepMs: 100,
    },
    shadowMs: 5_000,
    calibrate: async () => ({
      data: null,
      fit: { metric: 'latency_ms_p99', predicted: 10, observed: 10, relativeError: 0 },
      records: 1000,
    }),
    propose: async (_c, current: KnobValues) =>
      (current['messaging.batch_size'] as number) >= 256
        ? null
        : { values: { 'messaging.batch_size': 256 }, evidence: {} },
    evaluate: async (_c, v: KnobValues, seed, slice) =>
      Math.abs((v['messaging.batch_size'] as number) - 256) + 10 + ((seed + slice) % 3) * 0.01,
    startShadow: async () => ({
      report: async () => ({ verdict: 'better', details: {} }),
      stop: async () => {},
    }),
    ...over,
  };
}
