// The simulator's configuration. The knob-backed fields (retry limit and backoff, speculation,
// straggler threshold, dispatch batch) take the catalog's defaults; the rest describe the world
// being simulated. The plain defaults replay the work as given: no stragglers, no failures and
// an instant dispatcher; the knob objective switches those on (see objective.ts).
export interface SimConfig {
  seed: number;
  /** Share of attempts that straggle, each slowed by a Pareto(1, alpha) factor. */
  stragglerProb: number;
  stragglerAlpha: number;
  /** Cap on one attempt's slowdown (bounds every run). */
  stragglerMaxSlowdown: number;
  /** Share of attempts that fail partway through. */
  failureProb: number;
  /** A failure is a fault that lasts this long on average (exponential); retries inside it ... */
  failureTransientMs: number;
  /** ... fail again with this probability. It is why backing off pays. */
  refailProb: number;
  /** Attempts after the first before the task, and so its job, is given up. */
  retryLimit: number;
  /** Base of the exponential backoff between attempts. */
  retryBackoffMs: number;
  speculative: boolean;
  /** A running attempt is a straggler after this many times its stage's median run time. */
  stragglerThreshold: number;
  /** Share of a stage's tasks that must finish before its median is trusted. */
  speculationQuorum: number;
  /** Most tasks started per dispatch round trip. */
  dispatchBatch: number;
  /** Fixed cost of one dispatch round trip, ms. */
  dispatchRttMs: number;
  /** Added cost per task claimed in a round trip, ms. */
  dispatchPerTaskMs: number;
  /**
   * Time a worker spends moving to another job before it runs that job's task (Decima's
   * simulator's `moving_delay`, 2,000 ms there): a worker that last ran a task of job J runs
   * J's next task at once, any other job's after this delay. 0 (the default): no cost.
   */
  moveDelayMs: number;
  /** Bound on events processed; a run that hits it is cut short and says so. */
  maxEvents: number;
}

export const DEFAULT_SIM_CONFIG: Readonly<SimConfig> = {
  seed: 1,
  stragglerProb: 0,
  stragglerAlpha: 1.5,
  stragglerMaxSlowdown: 50,
  failureProb: 0,
  failureTransientMs: 2_000,
  refailProb: 0.8,
  retryLimit: 3,
  retryBackoffMs: 1_000,
  speculative: false,
  stragglerThreshold: 3,
  speculationQuorum: 0.5,
  dispatchBatch: 16,
  dispatchRttMs: 0,
  dispatchPerTaskMs: 0,
  moveDelayMs: 0,
  maxEvents: 200_000_000,
};

/** The longest backoff, whatever the attempt count: 1 h, as the live scheduler's (shard.lua). */
export const MAX_BACKOFF_MS = 3_600_000;

type Rule = [keyof SimConfig, (v: number) => boolean, string];
const RULES: Rule[] = [
  ['stragglerProb', (v) => v >= 0 && v <= 1, 'in [0, 1]'],
  ['stragglerAlpha', (v) => v > 0, '> 0'],
  ['stragglerMaxSlowdown', (v) => v >= 1, '>= 1'],
  ['failureProb', (v) => v >= 0 && v < 1, 'in [0, 1)'],
  ['failureTransientMs', (v) => v >= 0, '>= 0'],
  ['refailProb', (v) => v >= 0 && v < 1, 'in [0, 1)'],
  ['retryLimit', (v) => Number.isInteger(v) && v >= 0, 'an integer >= 0'],
  ['retryBackoffMs', (v) => v >= 0, '>= 0'],
  ['stragglerThreshold', (v) => v > 1, '> 1'],
  ['speculationQuorum', (v) => v > 0 && v <= 1, 'in (0, 1]'],
  ['dispatchBatch', (v) => Number.isInteger(v) && v >= 1, 'an integer >= 1'],
  ['dispatchRttMs', (v) => v >= 0, '>= 0'],
  ['dispatchPerTaskMs', (v) => v >= 0, '>= 0'],
  ['moveDelayMs', (v) => v >= 0, '>= 0'],
  ['maxEvents', (v) => Number.isInteger(v) && v >= 1, 'an integer >= 1'],
];

/** The defaults overlaid with `partial`; throws a RangeError naming the field and the rule. */
export function simConfig(partial: Partial<SimConfig> = {}): SimConfig {
  const c: SimConfig = { ...DEFAULT_SIM_CONFIG, ...partial };
  if (!Number.isInteger(c.seed))
    throw new RangeError(`sim config: seed must be an integer, got ${c.seed}`);
  for (const [field, ok, rule] of RULES) {
    const v = c[field] as number;
    if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) {
      throw new RangeError(`sim config: ${field} must be ${rule}, got ${String(v)}`);
    }
  }
  return c;
}
