// The training loop of a candidate scorer, whatever the decisions are about (tasks to run,
// shard moves), top to bottom:
//   1. behaviour cloning with DAgger: follow the teacher, then the learner, always labelling
//      with the teacher's choice, and fit the scorer to the labels;
//   2. search, when the domain asks for it (search.ts): the cross-entropy method over the
//      linear path's weights, each candidate scored as a whole policy on training workloads;
//      the net becomes the answer (its MLP output zeroed), which PPO then starts from;
//   3. PPO: each iteration replays one training workload several times with the sampled
//      policy, takes advantages from the input-driven baseline (advantage.ts) and runs the
//      clipped update on a sample of the decisions;
//   4. model selection: the net is scored on validation workloads after cloning, after the
//      search and every few PPO iterations, and the best one is kept (PPO on a budget of
//      minutes is noisy: a worse net is not kept just because it came last); so is the
//      teacher's own criterion as a linear net, so nothing worse than the teacher is kept.
// A domain (the scheduler, placement) supplies a ScorerTask: how to run an episode and how to
// validate a net.
import { createRng, type Rng } from '../../envs/core/index.ts';
import { loadTfBackend, tf } from '../tf/backend.ts';
import { inputDrivenAdvantages, type EpisodeTrace } from './advantage.ts';
import { packDecisions, type Decision } from './decisions.ts';
import type { ScorerLoopConfig } from './loop-config.ts';
import { ScorerModel, columnStats } from './model.ts';
import type { ScoreNet } from './net.ts';
import {
  linearNet,
  searchLinear,
  type LinearSearchOptions,
  type SearchGeneration,
} from './search.ts';
import { behaviourCloning, ppoUpdate } from './update.ts';

/** Who acts in an episode: the teacher, or a net (sampling with `rng`, or greedy if null). */
export type ActorSpec = { kind: 'teacher' } | { kind: 'net'; net: ScoreNet; rng: Rng | null };

export interface EpisodeResult {
  trace: EpisodeTrace;
  /** The kept decisions (a uniform sample of at most `keep`), labelled by the teacher if asked. */
  kept: Decision[];
  /** The episode's cost in the domain's unit (mean JCT, objective), for logs. */
  cost: number;
}

export interface ScorerTask {
  rowSize: number;
  /** What the costs are called in logs ('mean JCT (s)'). */
  costName: string;
  episode(
    seed: number,
    actor: ActorSpec,
    opts: { keep: number; label: boolean; rng: Rng },
  ): EpisodeResult;
  /** The net's cost on the validation workloads (lower is better). */
  validate(net: ScoreNet): number;
  /** The teacher's cost on the same workloads, for reference (null: no teacher). */
  teacherValidation(): number | null;
  /** The linear path's starting weights (the teacher's criterion), or null for zeros. */
  prior: number[] | null;
  /**
   * The teacher's criterion as weights on the row (absent: none). A linear net with them ranks
   * as the teacher does (ties aside) and is a candidate of model selection, so the net kept is
   * never worse than the teacher on validation: a learner that finds nothing better falls
   * back to it, as a promotion gate would.
   */
  criterion?: number[];
  /** A search over the linear path after cloning (absent: none). */
  search?: Omit<LinearSearchOptions, 'seed'> & {
    /** Mean cost of `net` on the training workloads `seeds`. */
    cost(net: ScoreNet, seeds: number[]): number;
  };
}

export interface ValidationPoint {
  /** 'bc' after cloning ('init' without), 'criterion', 'search', or 'ppo <iteration>'. */
  after: string;
  cost: number;
}

export interface ScorerTrainResult {
  /** The selected net (best validation cost). */
  net: ScoreNet;
  best: ValidationPoint;
  validation: ValidationPoint[];
  teacherValidation: number | null;
  bc: { round: number; decisions: number; loss: number; agreement: number }[];
  search: SearchGeneration[];
  ppo: {
    iteration: number;
    rolloutCost: number;
    approxKl: number;
    entropy: number;
    clipFraction: number;
  }[];
  episodes: number;
  seconds: { bc: number; search: number; ppo: number; total: number };
}

export async function trainScorer(
  task: ScorerTask,
  c: ScorerLoopConfig,
  /** Discount of returns in the trace's time unit (null: none). */
  horizon: number | null,
  log: (line: string) => void = () => {},
): Promise<ScorerTrainResult> {
  const t0 = Date.now();
  await loadTfBackend();
  const run = new Training(task, c, log);
  try {
    run.clone();
    run.out.seconds.bc = (Date.now() - t0) / 1000;
    const t1 = Date.now();
    await run.search();
    run.out.seconds.search = (Date.now() - t1) / 1000;
    const t2 = Date.now();
    run.improve(horizon);
    run.out.seconds.ppo = (Date.now() - t2) / 1000;
  } finally {
    run.model.dispose();
  }
  run.out.seconds.total = (Date.now() - t0) / 1000;
  return run.out;
}

/** One training run's state: the model, its random streams, the results so far. */
class Training {
  readonly model: ScorerModel;
  readonly out: ScorerTrainResult;
  private readonly actRng: Rng;
  private readonly keepRng: Rng;
  private readonly shuffleRng: Rng;
  private seedsUsed = 0;
  /** The input columns that never varied in the decisions the normaliser was fitted on. */
  private constantColumns: boolean[] = [];

  constructor(
    private readonly task: ScorerTask,
    private readonly c: ScorerLoopConfig,
    private readonly log: (line: string) => void,
  ) {
    // One root stream, used in a fixed order: network init, then forks for acting, reservoir
    // sampling and minibatch shuffling. The same seed replays the same run.
    const rng = createRng(c.seed);
    this.model = new ScorerModel(
      { inputSize: task.rowSize, hiddenSizes: c.hiddenSizes, activation: c.activation },
      rng.int(2 ** 31),
    );
    this.actRng = rng.fork();
    this.keepRng = rng.fork();
    this.shuffleRng = rng.fork();
    this.out = {
      net: this.model.toNet(),
      best: { after: 'none', cost: Infinity },
      validation: [],
      teacherValidation: task.teacherValidation(),
      bc: [],
      search: [],
      ppo: [],
      episodes: 0,
      seconds: { bc: 0, search: 0, ppo: 0, total: 0 },
    };
    if (this.out.teacherValidation !== null) {
      log(`teacher on validation: ${task.costName} ${this.out.teacherValidation.toFixed(4)}`);
    }
  }

  /** 1. Behaviour cloning (DAgger), then the first validation. */
  clone(): void {
    const { c, task } = this;
    const data: Decision[] = [];
    const opt = tf.train.adam(c.bcLearningRate);
    for (let r = 0; r < c.bcRounds; r++) {
      const actor: ActorSpec =
        r === 0 ? { kind: 'teacher' } : { kind: 'net', net: this.model.toNet(), rng: null };
      for (let e = 0; e < c.bcEpisodesPerRound; e++) {
        data.push(...this.episode(this.nextSeed(), actor, true).kept);
      }
      if (r === 0) this.constantColumns = startFrom(this.model, data, task);
      const stats = behaviourCloning(this.model, opt, packDecisions(data, task.rowSize), {
        ...this.steps(),
        epochs: c.bcEpochs,
      });
      this.out.bc.push({ round: r, decisions: data.length, ...stats });
      this.log(
        `bc round ${r + 1}/${c.bcRounds}: ${data.length} decisions, ` +
          `loss ${stats.loss.toFixed(4)}, agreement with the teacher ` +
          `${(100 * stats.agreement).toFixed(1)}%`,
      );
    }
    opt.dispose();
    if (c.bcRounds === 0) {
      const first = this.episode(this.nextSeed(), { kind: 'teacher' }, false).kept;
      this.constantColumns = startFrom(this.model, first, task);
    }
    this.consider(c.bcRounds > 0 ? 'bc' : 'init');
    if (task.criterion) this.consider('criterion', linearNet(this.model.toNet(), task.criterion));
  }

  /** 2. The search over the linear path; the net becomes its answer. */
  async search(): Promise<void> {
    const s = this.task.search;
    if (!s || s.generations === 0) return;
    const base = this.model.toNet();
    const r = await searchLinear(
      { ...s, seed: this.c.seed, pinned: this.constantColumns },
      (skip, seeds) => s.cost(linearNet(base, skip), seeds),
      (n) => Array.from({ length: n }, () => this.nextSeed()),
      this.log,
    );
    this.out.search = r.generations;
    this.out.episodes += s.generations * s.population * s.seedsPerGeneration;
    this.model.setLinear(r.skip);
    this.consider('search');
  }

  /** 3. PPO with the input-driven baseline, validating every few iterations. */
  improve(horizon: number | null): void {
    const { c, task } = this;
    const opt = tf.train.adam(c.ppoLearningRate);
    for (let it = 1; it <= c.ppoIterations; it++) {
      const seed = this.nextSeed();
      const actor: ActorSpec = { kind: 'net', net: this.model.toNet(), rng: this.actRng };
      const runs = Array.from({ length: c.rolloutsPerIteration }, () =>
        this.episode(seed, actor, false),
      );
      const adv = inputDrivenAdvantages(
        runs.map((x) => x.trace),
        runs.map((x) => x.kept.map((d) => d.step)),
        horizon,
      );
      const all = runs.flatMap((x) => x.kept);
      const advantages = new Float32Array(all.length);
      adv.reduce((at, a) => (advantages.set(a, at), at + a.length), 0);
      const stats = ppoUpdate(this.model, opt, packDecisions(all, task.rowSize), advantages, {
        ...this.steps(),
        epochs: c.ppoEpochs,
        clipCoef: c.clipCoef,
        entCoef: c.entCoef,
        targetKl: c.targetKl,
      });
      const rolloutCost = runs.reduce((a, x) => a + x.cost, 0) / runs.length;
      this.out.ppo.push({ iteration: it, rolloutCost, ...stats });
      this.log(
        `ppo ${it}/${c.ppoIterations}: rollout ${task.costName} ${rolloutCost.toFixed(4)}, ` +
          `kl ${stats.approxKl.toFixed(4)}, entropy ${stats.entropy.toFixed(3)}, ` +
          `clip ${stats.clipFraction.toFixed(3)}, epochs ${stats.epochs}`,
      );
      if (it % c.validateEvery === 0 || it === c.ppoIterations) this.consider(`ppo ${it}`);
    }
    opt.dispose();
  }

  private nextSeed(): number {
    return this.c.trainSeedBase + this.seedsUsed++;
  }

  private steps() {
    const c = this.c;
    return { minibatchSize: c.minibatchSize, maxGradNorm: c.maxGradNorm, rng: this.shuffleRng };
  }

  private episode(seed: number, actor: ActorSpec, label: boolean): EpisodeResult {
    this.out.episodes++;
    const opts = { keep: this.c.decisionsPerEpisode, label, rng: this.keepRng };
    return this.task.episode(seed, actor, opts);
  }

  /** Validates `net` (the current one by default) and keeps it if it is the best so far. */
  private consider(after: string, net: ScoreNet = this.model.toNet()): void {
    const cost = this.task.validate(net);
    this.out.validation.push({ after, cost });
    const better = cost < this.out.best.cost;
    if (better) [this.out.best, this.out.net] = [{ after, cost }, net];
    this.log(
      `validate after ${after}: ${this.task.costName} ${cost.toFixed(4)}${better ? ' (best)' : ''}`,
    );
  }
}

/**
 * Input standardisation from the first decisions seen; the linear path from the prior. Returns
 * which columns never varied there.
 */
function startFrom(model: ScorerModel, ds: readonly Decision[], task: ScorerTask): boolean[] {
  const d = task.rowSize;
  const count = ds.reduce((a, x) => a + x.count, 0);
  const rows = new Float32Array(count * d);
  let at = 0;
  for (const x of ds) {
    rows.set(x.rows.subarray(0, x.count * d), at);
    at += x.count * d;
  }
  const { mean, std, constant } = columnStats(rows, d, count);
  model.setNormaliser(mean, std);
  if (task.prior) model.setSkip(task.prior);
  return constant;
}
