// The cache as a tuner sees it: a KnobObjective over the file service's cache knobs
// (files.cache_bytes, files.cache_policy) that replays a trace under those values and reports
// hit and miss ratios. Values are checked against the knob catalog before anything runs.
import {
  CATALOG,
  defaultValues,
  findKnob,
  validateValue,
  type KnobSpec,
  type KnobValues,
} from '../../knobs/index.ts';
import { createRng, type KnobObjective, type Metrics } from '../core/index.ts';
import type { CacheTrace } from '../loaders/cache-trace.ts';
import { simulateCache } from './replay.ts';

export const CACHE_KNOBS = ['files.cache_bytes', 'files.cache_policy'] as const;

export interface CacheObjectiveOptions {
  trace: CacheTrace;
  /**
   * Bytes per object for a trace without sizes: capacity in objects = cache bytes / this.
   * Ignored when the trace has sizes (the cache is then simulated in bytes). Default 4096.
   */
  objectBytes?: number;
  /**
   * Replay a seeded window of this many trace entries (invalidations included) instead of the
   * whole trace. Ratios are over the window's requests; writes in it are applied, not counted.
   */
  windowRequests?: number;
}

/** Bad knob values for an objective: carries the catalog's message (knob, field, rule). */
export class KnobValueError extends Error {
  constructor(
    readonly knob: string,
    message: string,
  ) {
    super(message);
    this.name = 'KnobValueError';
  }
}

function knobSpec(name: string): KnobSpec {
  const spec = findKnob(CATALOG, name);
  if (!spec) throw new Error(`knob catalog has no ${name}`);
  return spec;
}

export function cacheKnobObjective(opts: CacheObjectiveOptions): KnobObjective {
  const knobs = CACHE_KNOBS.map(knobSpec);
  const defaults = defaultValues(knobs);
  const objectBytes = opts.objectBytes ?? 4096;
  if (!(objectBytes > 0)) throw new RangeError(`objectBytes must be > 0, got ${objectBytes}`);
  const n = opts.trace.keys.length;
  const window = Math.min(opts.windowRequests ?? n, n);
  return {
    id: 'cache-replay-v1',
    knobs,
    objective: { metric: 'miss_ratio', direction: 'min' },
    async evaluate(values: KnobValues, seed: number): Promise<Metrics> {
      const v = { ...defaults, ...values };
      for (const spec of knobs) {
        const bad = validateValue(spec, v[spec.name]);
        if (bad) throw new KnobValueError(spec.name, bad.message);
      }
      const cacheBytes = v['files.cache_bytes'] as number;
      const policy = v['files.cache_policy'] as string;
      const bytesMode = opts.trace.sizes !== undefined;
      const capacity = bytesMode ? cacheBytes : Math.floor(cacheBytes / objectBytes);
      // The seed only matters when replaying a window: it picks where the window starts.
      const start = window < n ? createRng(seed).int(n - window + 1) : 0;
      const r = simulateCache(opts.trace, policy, capacity, {
        unit: bytesMode ? 'bytes' : 'objects',
        start,
        end: start + window,
      });
      return {
        hit_ratio: r.hit_ratio,
        miss_ratio: r.miss_ratio,
        byte_hit_ratio: r.byte_hit_ratio,
        requests: r.requests,
        hits: r.hits,
        capacity: r.capacity,
      };
    },
  };
}
