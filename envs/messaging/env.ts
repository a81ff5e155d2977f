// messaging-v1: each step the agent picks batch size and linger for the next window of
// simulated time; partitions are fixed per episode (a heavy knob: repartitioning is not a
// per-window decision).
//   action (multi-discrete [13, 12]): index into BATCH_SIZE_LEVELS and LINGER_MS_LEVELS.
//   observation (box in [0,1], 7): arrivals in the last window / (2 x the source's mean per
//     window); open (unsealed) messages / 4096; consumer backlog / (window x partitions);
//     log1p(p99 of the window) / log1p(10 s); batch level and linger level / (levels - 1);
//     progress through the arrivals. Each is clipped to [0,1].
//   reward: -(p99 of the messages sealed in the window x their count / the source's mean per
//     window + buffer cost of the chosen batch size) / rewardScaleMs: over an episode the
//     latency terms add up to about the p99 the objective charges once per window of arrivals.
//     (Unweighted, a window that sealed nothing scored 0: a long linger hid latency in a few
//     windows and the return preferred it, against the objective.)
//   terminated once every message is delivered; truncated at maxSteps.
import { createRng, nextSeed } from '../core/rng.ts';
import { box, multiDiscrete } from '../core/spaces.ts';
import type { Env, ResetResult, StepResult } from '../core/env.ts';
import { DEFAULT_COST_MODEL, type CostModel, type Messages } from './model.ts';
import { percentile } from './metrics.ts';
import {
  BATCH_SIZE_KNOB,
  DEFAULT_PRICES,
  LINGER_MS_KNOB,
  PARTITIONS_KNOB,
  type Prices,
} from './objective.ts';
import { BatchingSim } from './sim.ts';
import type { MessageSource } from './source.ts';

/** Powers of two over the batch_size knob's domain (1..4096). */
export const BATCH_SIZE_LEVELS: readonly number[] = Array.from(
  { length: 13 },
  (_, i) => 2 ** i,
).filter((b) => b >= BATCH_SIZE_KNOB.min && b <= BATCH_SIZE_KNOB.max);
/** Roughly log-spaced linger values over the linger_ms knob's domain (0..1000 ms). */
export const LINGER_MS_LEVELS: readonly number[] = [
  0, 1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000,
].filter((l) => l >= LINGER_MS_KNOB.min && l <= LINGER_MS_KNOB.max);

export interface MessagingEnvConfig {
  source: MessageSource;
  partitions?: number;
  windowMs?: number;
  cost?: CostModel;
  prices?: Prices;
  rewardScaleMs?: number;
  /** Bound on windows per episode (default: the arrivals' span in windows, plus 1000 to drain). */
  maxSteps?: number;
}

const P99_CAP_MS = 10_000;

export class MessagingEnv implements Env<number[], number[]> {
  readonly id = 'messaging-v1';
  readonly observationSpace = box([7], 0, 1);
  readonly actionSpace = multiDiscrete([BATCH_SIZE_LEVELS.length, LINGER_MS_LEVELS.length]);
  private sim: BatchingSim | undefined;
  private messages: Messages | undefined;
  private nowMs = 0;
  private steps = 0;
  /** The last episode's workload seed: a reset without a seed draws the next from it. */
  private episodeSeed: number | undefined;
  private lastArrivals = 0;
  private lastP99Ms = 0;
  private action = [0, 0];
  private readonly windowMs: number;
  private readonly partitions: number;

  constructor(readonly cfg: MessagingEnvConfig) {
    this.windowMs = cfg.windowMs ?? 20;
    this.partitions = cfg.partitions ?? PARTITIONS_KNOB.default;
    if (!(this.windowMs > 0)) throw new RangeError(`${this.id}: windowMs must be > 0`);
  }

  reset(opts: { seed?: number } = {}): ResetResult<number[]> {
    const seed = opts.seed ?? (this.episodeSeed === undefined ? 0 : nextSeed(this.episodeSeed));
    this.episodeSeed = seed;
    const rng = createRng(seed);
    const messages = this.cfg.source.messages(rng.int(2 ** 31));
    if (messages.tMs.length === 0)
      throw new Error(`${this.id}: source ${this.cfg.source.id} has no messages`);
    // Start at the catalog defaults, snapped to the nearest levels.
    this.action = [
      nearest(BATCH_SIZE_LEVELS, BATCH_SIZE_KNOB.default),
      nearest(LINGER_MS_LEVELS, LINGER_MS_KNOB.default),
    ];
    this.sim = new BatchingSim(
      messages,
      this.cfg.cost ?? DEFAULT_COST_MODEL,
      this.partitions,
      this.knobs(),
      rng.fork(),
    );
    this.messages = messages;
    this.nowMs = messages.tMs[0] as number;
    this.steps = 0;
    this.lastArrivals = 0;
    this.lastP99Ms = 0;
    return { obs: this.observe(), info: {} };
  }

  step(action: number[]): StepResult<number[]> {
    const sim = this.sim;
    if (!sim) throw new Error(`${this.id}: step before reset`);
    const [b, l] = action;
    if (
      b === undefined ||
      l === undefined ||
      BATCH_SIZE_LEVELS[b] === undefined ||
      LINGER_MS_LEVELS[l] === undefined
    ) {
      throw new RangeError(`${this.id}: action ${JSON.stringify(action)} outside the action space`);
    }
    this.action = [b, l];
    sim.setKnobs(this.knobs(), this.nowMs);
    const arrivedBefore = sim.arrived;
    this.nowMs += this.windowMs;
    const stats = sim.advance(this.nowMs);
    // Once every message has arrived, flush what lingers so the episode ends with all delivered.
    if (sim.arrived === (this.messages as Messages).tMs.length) {
      const rest = sim.advance(Infinity);
      stats.latenciesMs.push(...rest.latenciesMs);
      stats.batches += rest.batches;
    }
    this.steps++;
    this.lastArrivals = sim.arrived - arrivedBefore;
    this.lastP99Ms = percentile(stats.latenciesMs, 99);
    const prices = this.cfg.prices ?? DEFAULT_PRICES;
    const bufferCostMs = this.partitions * this.knobs().batchSize * prices.bufferSlotCostMs;
    const latencyMs = (this.lastP99Ms * stats.latenciesMs.length) / this.meanPerWindow();
    return {
      obs: this.observe(),
      reward: -(latencyMs + bufferCostMs) / (this.cfg.rewardScaleMs ?? 10),
      terminated: sim.done,
      truncated: !sim.done && this.steps >= this.maxSteps(),
      info: {
        p99LatencyMs: this.lastP99Ms,
        delivered: stats.latenciesMs.length,
        batches: stats.batches,
        ...this.knobs(),
      },
    };
  }

  private knobs(): { batchSize: number; lingerMs: number } {
    return {
      batchSize: BATCH_SIZE_LEVELS[this.action[0] as number] as number,
      lingerMs: LINGER_MS_LEVELS[this.action[1] as number] as number,
    };
  }

  private maxSteps(): number {
    const t = (this.messages as Messages).tMs;
    return (
      this.cfg.maxSteps ??
      Math.ceil(((t[t.length - 1] as number) - (t[0] as number)) / this.windowMs) + 1000
    );
  }

  /** The source's mean arrivals per window. */
  private meanPerWindow(): number {
    const t = (this.messages as Messages).tMs;
    const spanMs = Math.max(this.windowMs, (t[t.length - 1] as number) - (t[0] as number));
    return (t.length * this.windowMs) / spanMs;
  }

  private observe(): number[] {
    const sim = this.sim as BatchingSim;
    const t = (this.messages as Messages).tMs;
    const meanPerWindow = this.meanPerWindow();
    const clip = (x: number): number => Math.min(1, Math.max(0, x));
    return [
      clip(this.lastArrivals / (2 * meanPerWindow)),
      clip(sim.openMessages / BATCH_SIZE_KNOB.max),
      clip(sim.backlogMs(this.nowMs) / (this.windowMs * this.partitions)),
      clip(Math.log1p(this.lastP99Ms) / Math.log1p(P99_CAP_MS)),
      (this.action[0] as number) / Math.max(1, BATCH_SIZE_LEVELS.length - 1),
      (this.action[1] as number) / Math.max(1, LINGER_MS_LEVELS.length - 1),
      clip(sim.arrived / t.length),
    ];
  }
}

function nearest(levels: readonly number[], x: number): number {
  let best = 0;
  levels.forEach((v, i) => {
    if (Math.abs(v - x) < Math.abs((levels[best] as number) - x)) best = i;
  });
  return best;
}
