// The scheduler as a Gymnasium-style env for learned policies (after Decima). At each decision
// point the agent sees a bounded window of runnable tasks that fit a free worker (oldest first),
// each described by the same features a learned scorer reads live (policies/scheduling
// taskFeatures), plus a few cluster-wide ones; it picks one, which starts on the first free
// worker that fits (unless a speculative copy took the room first: `info.idle` then says the
// step started nothing). The reward is minus the job-time integral over the step (job-seconds),
// so the return of an episode is minus the sum of job completion times, jobs given up charged
// until the end of the run as the summary charges them (censored jobs count their time in the
// system too, though the summary leaves them out).
import { firstFit, fits } from '../../policies/gpu/index.ts';
import {
  TASK_FEATURES,
  TASK_FEATURE_LOW,
  fifoBefore,
  taskFeatures,
  type TaskView,
  type WorkerView,
} from '../../policies/scheduling/index.ts';
import {
  box,
  cloneGraph,
  maskedDiscrete,
  type Env,
  type Info,
  type StepResult,
} from '../core/index.ts';
import { nextSeed } from '../core/rng.ts';
import type { SimConfig } from './config.ts';
import { syntheticWorkload } from './generator.ts';
import { createSim } from './run.ts';
import type { ClusterSim } from './sim.ts';
import { uniformWorkers, type Workload, type WorkerSpec } from './types.ts';

export const GLOBAL_FEATURE_NAMES = [
  'free_cpu_share',
  'free_gpu_share',
  'jobs_in_system_log',
  'runnable_log',
  'beyond_window_log',
] as const;

export interface SchedulerEnvOptions {
  /** Runnable tasks offered per decision (default 16). */
  window?: number;
  /** The episode's workload and cluster for a seed (default: a small synthetic one). */
  scenario?: (seed: number) => { workload: Workload; workers: readonly WorkerSpec[] };
  config?: Partial<SimConfig>;
  /** Step budget per episode (default 100 000): the episode is truncated there. */
  maxSteps?: number;
}

export function defaultScenario(seed: number): { workload: Workload; workers: WorkerSpec[] } {
  const workers = uniformWorkers(4, { cpu: 4, memMb: 16_384, gpu: 0 });
  return { workload: syntheticWorkload({ jobs: 20, workers, seed, load: 0.9 }), workers };
}

export class SchedulerEnv implements Env<Float64Array, number> {
  readonly id = 'scheduler-v1';
  readonly observationSpace;
  readonly actionSpace;
  private readonly window: number;
  private readonly maxSteps: number;
  private sim: ClusterSim | null = null;
  private candidates: TaskView[] = [];
  private steps = 0;
  /** The last episode's workload seed: a reset without a seed draws the next from it. */
  private episodeSeed: number | undefined;

  constructor(private readonly opts: SchedulerEnvOptions = {}) {
    this.window = opts.window ?? 16;
    this.maxSteps = opts.maxSteps ?? 100_000;
    if (!Number.isInteger(this.window) || this.window < 1)
      throw new RangeError(`window must be an integer >= 1, got ${this.window}`);
    this.observationSpace = box(
      [this.window * TASK_FEATURES + GLOBAL_FEATURE_NAMES.length],
      TASK_FEATURE_LOW,
      Infinity,
    );
    this.actionSpace = maskedDiscrete(this.window);
  }

  reset(opts: { seed?: number } = {}): { obs: Float64Array; info: Info } {
    const seed = opts.seed ?? (this.episodeSeed === undefined ? 0 : nextSeed(this.episodeSeed));
    this.episodeSeed = seed;
    const { workload, workers } = (this.opts.scenario ?? defaultScenario)(seed);
    this.sim = createSim(workload, { workers, config: { ...this.opts.config, seed } });
    this.steps = 0;
    this.advance();
    return { obs: this.observe(), info: this.info() };
  }

  /**
   * An independent copy at this decision point, with the same pending events and the same
   * future: stepping either leaves the other as it was (counterfactual rollouts). The scenario
   * function is shared.
   */
  fork(): SchedulerEnv {
    return cloneGraph(this);
  }

  step(action: number): StepResult<Float64Array> {
    const sim = this.sim;
    if (sim === null) throw new Error(`${this.id}: step before reset`);
    const task = this.candidates[action];
    if (!Number.isInteger(action) || task === undefined) {
      throw new RangeError(
        `${this.id}: action ${action} is not allowed by the mask (${this.candidates.length} candidates)`,
      );
    }
    const before = sim.jobTimeMs;
    let asked = false;
    let started = false;
    // One task per step: the sim asks again after a stage's view moves on; answer nothing then.
    // Speculative copies are claimed before the round's picks, so the chosen task may no longer
    // fit (or, with dispatchBatch 1, not be asked for): then nothing starts this step, `idle`
    // says so, and the task is offered again.
    sim.decide((_r, free) => {
      if (asked) return [];
      asked = true;
      const spot = firstFit.place(task.demand, free);
      if (spot === null) return [];
      const w = free[spot.worker] as WorkerView;
      started = true;
      return [{ taskId: task.id, workerId: w.id, gpus: spot.gpus }];
    });
    this.steps++;
    const done = this.advance();
    // The simulator stopping at its event bound (jobs still open) is a cut, not the episode's
    // end: a learner must not take it for a terminal state.
    const cut = done && sim.truncated;
    return {
      obs: this.observe(),
      reward: -(sim.jobTimeMs - before) / 1000,
      terminated: done && !cut,
      truncated: cut || (!done && this.steps >= this.maxSteps),
      info: { ...this.info(), idle: !started },
    };
  }

  /** Runs the simulation to the next decision point with a legal action; true at the end. */
  private advance(): boolean {
    const sim = this.sim as ClusterSim;
    while (true) {
      if (sim.needsDecision()) {
        this.candidates = this.windowOf(sim);
        if (this.candidates.length > 0) return false;
        sim.decide(() => []); // only speculative copies (if any) can go; then wait
      } else if (!sim.step()) {
        this.candidates = [];
        return true;
      }
    }
  }

  private windowOf(sim: ClusterSim): TaskView[] {
    const free = sim.freeWorkers();
    const fitting = sim.runnable.filter((t) => free.some((w) => fits(t.demand, w)));
    fitting.sort((a, b) => (fifoBefore(a, b) ? -1 : fifoBefore(b, a) ? 1 : 0));
    this.beyond = Math.max(0, fitting.length - this.window);
    return fitting.slice(0, this.window);
  }

  private beyond = 0;

  private observe(): Float64Array {
    const sim = this.sim as ClusterSim;
    const obs = new Float64Array(this.window * TASK_FEATURES + GLOBAL_FEATURE_NAMES.length);
    this.candidates.forEach((t, i) => taskFeatures(t, sim.now, obs, i * TASK_FEATURES));
    let freeCpu = 0;
    let freeGpu = 0;
    for (const w of sim.workers) {
      freeCpu += w.cpuFreeMilli;
      for (const g of w.gpuFree) freeGpu += g;
    }
    const g = this.window * TASK_FEATURES;
    const cpuCap = sim.cpuCapacityMilli;
    const gpuCap = sim.gpuCapacityMilli;
    obs[g] = cpuCap > 0 ? freeCpu / cpuCap : 0;
    obs[g + 1] = gpuCap > 0 ? freeGpu / gpuCap : 0;
    obs[g + 2] = Math.log1p(sim.jobsInSystem);
    obs[g + 3] = Math.log1p(sim.runnable.length);
    obs[g + 4] = Math.log1p(this.beyond);
    return obs;
  }

  private info(): Info {
    const sim = this.sim as ClusterSim;
    const mask = Array.from({ length: this.window }, (_, i) => i < this.candidates.length);
    return {
      actionMask: mask,
      nowMs: sim.now,
      jobsInSystem: sim.jobsInSystem,
      candidates: this.candidates.map((t) => t.id),
    };
  }
}
