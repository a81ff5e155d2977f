// Group loads for the placement simulator: per step, the load of each tenant/key group and the
// bytes of state that move with it. Either generated (Zipf skew whose ranking drifts, plus
// tenant bursts) or binned from any event trace that names a group per event. None of the
// shared traces carries a tenant column, so the generated workload is the default.
import { createRng, type Rng } from '../core/rng.ts';
import {
  ZipfDrift,
  poissonCount,
  requirePositive,
  WorkloadConfigError,
} from '../workload/index.ts';

export interface GroupLoads {
  names: readonly string[];
  /** Bytes of state per group (moves with the group). */
  stateBytes: Float64Array;
  /** loads[t][g]: load of group g during step t, in requests per second. */
  loads: readonly Float64Array[];
}

export interface PlacementWorkload {
  readonly id: string;
  /** The group loads of one episode; the same seed gives the same loads. */
  generate(seed: number): GroupLoads;
}

/** Most steps and groups a workload may hold: the env keeps the whole matrix in memory. */
export const MAX_PLACEMENT_STEPS = 100_000;
export const MAX_PLACEMENT_GROUPS = 10_000;

export interface ZipfWorkloadConfig {
  groups: number;
  steps: number;
  /** Total offered load across all groups. */
  ratePerS: number;
  /** Length of a step: loads are Poisson counts over it, so shorter steps are noisier. */
  stepS: number;
  zipfExponent: number;
  swapsPerStep: number;
  rotateEverySteps?: number;
  /** Median state size of a group; sizes are log-normal around it (sigma 1). */
  medianStateBytes: number;
  /** Chance per step that some group starts a burst. */
  burstChancePerStep: number;
  burstMultiplier: number;
  burstSteps: number;
}

export const DEFAULT_ZIPF_WORKLOAD: ZipfWorkloadConfig = {
  groups: 24,
  steps: 200,
  ratePerS: 20_000,
  stepS: 10,
  zipfExponent: 1,
  swapsPerStep: 2,
  rotateEverySteps: 50,
  medianStateBytes: 1 << 30,
  burstChancePerStep: 0.05,
  burstMultiplier: 5,
  burstSteps: 10,
};

function checkSize(groups: number, steps: number): void {
  if (!Number.isInteger(groups) || groups < 1 || groups > MAX_PLACEMENT_GROUPS) {
    throw new WorkloadConfigError('groups', `must be an integer in 1..${MAX_PLACEMENT_GROUPS}`);
  }
  if (!Number.isInteger(steps) || steps < 2 || steps > MAX_PLACEMENT_STEPS) {
    throw new WorkloadConfigError('steps', `must be an integer in 2..${MAX_PLACEMENT_STEPS}`);
  }
}

export const groupName = (g: number, groups: number): string =>
  `tenant-${String(g).padStart(String(groups - 1).length, '0')}`;

function generateZipf(cfg: ZipfWorkloadConfig, rng: Rng): GroupLoads {
  const names = Array.from({ length: cfg.groups }, (_, g) => groupName(g, cfg.groups));
  const stateBytes = Float64Array.from(names, () =>
    Math.round(cfg.medianStateBytes * Math.exp(rng.normal())),
  );
  const zipf = new ZipfDrift(
    {
      items: cfg.groups,
      exponent: cfg.zipfExponent,
      swapsPerStep: cfg.swapsPerStep,
      ...(cfg.rotateEverySteps !== undefined && { rotateEverySteps: cfg.rotateEverySteps }),
    },
    rng.fork(),
  );
  const burstLeft = new Int32Array(cfg.groups);
  const loads: Float64Array[] = [];
  for (let t = 0; t < cfg.steps; t++) {
    if (rng.next() < cfg.burstChancePerStep) burstLeft[rng.int(cfg.groups)] = cfg.burstSteps;
    const w = zipf.weights();
    const row = new Float64Array(cfg.groups);
    for (let g = 0; g < cfg.groups; g++) {
      const boost = (burstLeft[g] as number) > 0 ? cfg.burstMultiplier : 1;
      if ((burstLeft[g] as number) > 0) burstLeft[g] = (burstLeft[g] as number) - 1;
      const mean = cfg.ratePerS * cfg.stepS * (w[g] as number) * boost;
      row[g] = poissonCount(rng, mean) / cfg.stepS;
    }
    loads.push(row);
    zipf.step();
  }
  return { names, stateBytes, loads };
}

/** Zipf-skewed tenants whose ranking drifts, with occasional bursts of one tenant. */
export function zipfDriftWorkload(overrides: Partial<ZipfWorkloadConfig> = {}): PlacementWorkload {
  const cfg = { ...DEFAULT_ZIPF_WORKLOAD, ...overrides };
  checkSize(cfg.groups, cfg.steps);
  requirePositive('ratePerS', cfg.ratePerS);
  requirePositive('stepS', cfg.stepS);
  requirePositive('medianStateBytes', cfg.medianStateBytes);
  return {
    id: `zipf-drift(g=${cfg.groups},s=${cfg.zipfExponent},steps=${cfg.steps})`,
    generate: (seed) => generateZipf(cfg, createRng(seed)),
  };
}

/** A fixed load matrix (a replayed trace): every seed gives the same loads. */
export function fixedWorkload(id: string, loads: GroupLoads): PlacementWorkload {
  checkSize(loads.names.length, loads.loads.length);
  if (loads.stateBytes.length !== loads.names.length) {
    throw new WorkloadConfigError('stateBytes', 'must have one entry per group');
  }
  loads.loads.forEach((row, t) => {
    if (row.length !== loads.names.length) {
      throw new WorkloadConfigError(`loads[${t}]`, 'must have one entry per group');
    }
  });
  return { id, generate: () => loads };
}

export interface GroupEvent {
  tMs: number;
  group: string;
  /** Load the event adds (1 for a request; bytes or tokens for a weighted trace). */
  weight?: number;
}

/**
 * Bins an event trace grouped by tenant into per-step loads (weight per second). Groups are
 * ordered by first appearance; the steps span from the first event to the last. Events must come
 * in time order; a trace spanning more than MAX_PLACEMENT_STEPS steps is an error, never cut
 * silently (bin it with a larger step, or pass fewer events).
 */
export function binGroupEvents(
  events: Iterable<GroupEvent>,
  stepMs: number,
  stateBytesOf: (group: string) => number,
): GroupLoads {
  requirePositive('stepMs', stepMs);
  const index = new Map<string, number>();
  // rows[step][group] grows as steps and groups appear; sparse rows are filled with 0 below.
  const rows: number[][] = [];
  let t0: number | undefined;
  let prev = -Infinity;
  let k = 0;
  for (const e of events) {
    const at = `events[${k}]`;
    if (!Number.isFinite(e.tMs))
      throw new WorkloadConfigError(`${at}.tMs`, `must be a finite number, got ${e.tMs}`);
    if (e.tMs < prev) {
      throw new WorkloadConfigError(
        `${at}.tMs`,
        `must not be before the event before it (events in time order), got ${e.tMs} after ${prev}`,
      );
    }
    const w = e.weight ?? 1;
    if (!Number.isFinite(w) || w < 0)
      throw new WorkloadConfigError(`${at}.weight`, `must be a finite number >= 0, got ${w}`);
    prev = e.tMs;
    t0 ??= e.tMs;
    const step = Math.floor((e.tMs - t0) / stepMs);
    if (step >= MAX_PLACEMENT_STEPS) {
      throw new WorkloadConfigError(
        `${at}.tMs`,
        `is ${e.tMs - t0} ms after the first event: more than ${MAX_PLACEMENT_STEPS} steps of ` +
          `${stepMs} ms (bin it with a step of at least ` +
          `${Math.floor((e.tMs - t0) / MAX_PLACEMENT_STEPS) + 1} ms, or pass fewer events)`,
      );
    }
    let g = index.get(e.group);
    if (g === undefined) {
      if (index.size >= MAX_PLACEMENT_GROUPS) {
        throw new WorkloadConfigError(
          `${at}.group`,
          `makes more than ${MAX_PLACEMENT_GROUPS} groups`,
        );
      }
      index.set(e.group, (g = index.size));
    }
    while (rows.length <= step) rows.push([]);
    const row = rows[step] as number[];
    row[g] = (row[g] ?? 0) + (w * 1000) / stepMs;
    k++;
  }
  const names = [...index.keys()];
  while (rows.length < 2) rows.push([]);
  const loads = rows.map((row) => Float64Array.from(names, (_, g) => row[g] ?? 0));
  return { names, stateBytes: Float64Array.from(names, stateBytesOf), loads };
}
