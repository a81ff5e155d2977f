// The scheduler's dispatch policy as a tuning target (scheduler.policy):
// - calibration: the cluster simulator's workload from the scheduler's arrival and duration
//   traces of a window (none from sampled traces); the fit compares the simulated mean job
//   completion time of the live policy with the one observed, over the jobs seen to complete
//   in the window (those still running or failed are simulated but left out of both);
// - learner: grid search over the policies (a small enum: every value is tried) on the
//   calibrated simulator, over a few seeds;
// - gate: paired simulations of live and candidate on seeded windows of slices of the window's
//   jobs (sliceWindow: 80% of a slice, so repeated seeds sample the slice's variation);
// - shadow: the dispatcher runs the candidate beside the live policy on every live decision
//   (the scheduler.shadow_policy knob) and traces its picks and their divergence. Outcomes of
//   decisions never taken cannot be measured: the shadow confirms the candidate runs on live
//   decision points and decides differently, and the outcome stays the simulator's prediction;
//   the SLO guard is what catches a simulator that was wrong.
// While scheduler.policy_version names a registry policy version, the target stands down.
import { CATALOG, findKnob, type KnobSpec, type KnobValues } from '../../../knobs/index.ts';
import type { KnobObjective } from '../../../envs/core/index.ts';
import { simulate, type WorkerSpec, type Workload } from '../../../envs/scheduler/index.ts';
import { createSchedulingPolicy } from '../../../policies/scheduling/index.ts';
import { tune } from '../../../learners/core/index.ts';
import { GridSearch } from '../../../learners/tuners/index.ts';
import type { KnobTable } from '../../knobs/table.ts';
import { traceRecords } from '../../telemetry/read.ts';
import type {
  Calibration,
  Candidate,
  NoCalibration,
  ShadowReport,
  ShadowRun,
  TuningTarget,
} from '../target.ts';
import { TargetSettings, calibrationFit, sampledWhy, sliceWindow } from './common.ts';
import type { CalibrationOf, TargetLoopOptions } from './common.ts';
import { workloadFromTraces, type DurationSource } from './scheduler-calibration.ts';

const POLICY = 'scheduler.policy';
const SHADOW = 'scheduler.shadow_policy';
const VERSION = 'scheduler.policy_version';

export interface SchedulerTargetOptions extends TargetLoopOptions {
  knobs: KnobTable;
  /** The cluster the simulator runs: the live workers' capacity. */
  workers: readonly WorkerSpec[];
  windowMs: number;
  minJobs: number;
  maxRecords: number;
  durationSource?: DurationSource;
  /** Simulations per policy in the learner's search. */
  seedsPerPolicy?: number;
  shadowMinRounds: number;
}

export class SchedulerPolicyTarget extends TargetSettings implements TuningTarget {
  readonly name = 'scheduler.policy';
  readonly knobs = [POLICY];

  constructor(private readonly o: SchedulerTargetOptions) {
    super(o, 3, {
      service: 'scheduler',
      metric: 'job_completion_ms_mean',
      direction: 'min',
      maxRegression: 0.25,
    });
  }

  private meanJctMs(workload: Workload, policy: string, seed: number): number {
    const m = simulate(workload, createSchedulingPolicy(policy), {
      workers: this.o.workers,
      config: { seed },
    });
    return (m['mean_jct_s'] as number) * 1000;
  }

  /** A registry policy version, when live, is what dispatches: scheduler.policy is not. */
  async standDown(): Promise<string | null> {
    if (!findKnob(this.o.knobs.catalog, VERSION)) return null;
    const version = (await this.o.knobs.get(VERSION)).value as number;
    return version > 0
      ? `${VERSION} is ${version}: the registry's policy version ${version} dispatches, not ${POLICY}`
      : null;
  }

  async calibrate(): Promise<CalibrationOf<Workload> | NoCalibration | null> {
    const now = this.o.knobs.clock.now();
    const w = await workloadFromTraces(this.o.knobs, {
      fromMs: now - this.o.windowMs,
      toMs: now,
      maxRecords: this.o.maxRecords,
      durationSource: this.o.durationSource ?? 'measured',
    });
    if (w.jobs < this.o.minJobs) return sampledWhy(w.sampled, this.o.windowMs);
    const live = (await this.o.knobs.get(POLICY)).value as string;
    // Like with like: the jobs not seen to complete still take capacity in the simulation but
    // are censored, left out of its mean as they are out of the observed one.
    const done = w.completedMs;
    const fitted: Workload = {
      ...w.workload,
      jobs: w.workload.jobs.map((j) => (done.has(j.id) ? j : { ...j, censored: true })),
    };
    const predicted = this.meanJctMs(fitted, live, 1);
    const observed = done.size ? [...done.values()].reduce((a, b) => a + b, 0) / done.size : null;
    return {
      data: w.workload,
      records: w.jobs,
      fit: calibrationFit('mean_jct_ms', predicted, observed, {
        compared: done.size,
        stillRunning: w.jobs - done.size - w.failed - w.partial,
        failed: w.failed,
        partial: w.partial,
      }),
    };
  }

  async propose(cal: Calibration, current: KnobValues, seed: number): Promise<Candidate | null> {
    const workload = cal.data as Workload;
    const seeds = this.o.seedsPerPolicy ?? 2;
    const knobs = [
      findKnob(this.o.knobs.catalog, POLICY) ?? (findKnob(CATALOG, POLICY) as KnobSpec),
    ];
    const objective: KnobObjective = {
      id: 'scheduler-calibrated',
      knobs,
      objective: { metric: 'mean_jct_ms', direction: 'min' },
      evaluate: async (values, s) => {
        let sum = 0;
        for (let k = 0; k < seeds; k++)
          sum += this.meanJctMs(workload, values[POLICY] as string, s + k);
        return { mean_jct_ms: sum / seeds };
      },
    };
    const grid = new GridSearch({ knobs, objective: objective.objective, seed });
    const run = await tune(grid, objective, 32, seed);
    const best = run.best;
    const live = run.evaluations.find((e) => e.values[POLICY] === current[POLICY])?.value;
    if (!best || live === undefined || best.values[POLICY] === current[POLICY]) return null;
    if (best.value >= live * (1 - this.gate.minEffect)) return null;
    return {
      values: { [POLICY]: best.values[POLICY] as string },
      evidence: {
        predicted: { meanJctMs: best.value, liveMeanJctMs: live, gain: (live - best.value) / live },
        learner: 'grid',
        evaluations: run.evaluations.map((e) => ({ policy: e.values[POLICY], meanJctMs: e.value })),
      },
    };
  }

  async evaluate(
    cal: Calibration,
    values: KnobValues,
    seed: number,
    slice: number,
  ): Promise<number> {
    const workload = cal.data as Workload;
    const { start, end } = sliceWindow(workload.jobs.length, this.gate.slices, slice, seed);
    const jobs = workload.jobs.slice(start, end);
    const t0 = jobs[0]?.arrivalMs ?? 0;
    const part: Workload = {
      name: `${workload.name} slice ${slice}`,
      jobs: jobs.map((j) => ({ ...j, arrivalMs: j.arrivalMs - t0 })),
    };
    return this.meanJctMs(part, values[POLICY] as string, seed);
  }

  async startShadow(
    _incumbent: KnobValues,
    candidate: KnobValues,
    sinceMs: number,
  ): Promise<ShadowRun> {
    const knobs = this.o.knobs;
    const policy = candidate[POLICY] as string;
    const row = await knobs.get(SHADOW);
    if (row.value !== policy) {
      await knobs.promote({
        name: SHADOW,
        value: policy,
        baseVersion: row.version,
        actor: `loop:${this.name}`,
        actorKind: 'automation',
        reason: `shadow ${policy} beside the live policy`,
      });
    }
    const minRounds = this.o.shadowMinRounds;
    return {
      report: async (): Promise<ShadowReport> => {
        const rounds = (
          await traceRecords(knobs.redis, knobs.keys, 'scheduler', 'shadow', {
            fromMs: sinceMs,
            count: 100_000,
          })
        ).filter((r) => r.fields['shadow'] === policy);
        const divergence = rounds.length
          ? rounds.reduce((a, r) => a + Number(r.fields['divergence'] ?? 0), 0) / rounds.length
          : 0;
        const details = {
          policy,
          rounds: rounds.length,
          meanDivergence: divergence,
          outcome: 'predicted by the calibrated simulator (the simulation gate)',
        };
        if (rounds.length < minRounds) return { verdict: 'pending', details };
        // Identical decisions change nothing: no reason to switch.
        return { verdict: divergence > 0 ? 'better' : 'inconclusive', details };
      },
      stop: () => this.endShadow(candidate),
    };
  }

  async shadowLeft(): Promise<KnobValues | null> {
    const row = await this.o.knobs.get(SHADOW);
    if (row.value === 'none' || row.updatedBy !== `loop:${this.name}`) return null;
    return { [POLICY]: row.value };
  }

  /**
   * Turns the shadow knob off, unless it names a policy other than `candidate`'s or someone
   * other than this loop set it (an operator already shadowing the same policy keeps it).
   */
  async endShadow(candidate: KnobValues): Promise<void> {
    const knobs = this.o.knobs;
    const cur = await knobs.get(SHADOW);
    if (cur.value !== candidate[POLICY] || cur.updatedBy !== `loop:${this.name}`) return;
    await knobs
      .promote({
        name: SHADOW,
        value: 'none',
        baseVersion: cur.version,
        actor: `loop:${this.name}`,
        actorKind: 'system',
        reason: 'shadow ended',
      })
      .catch(() => undefined);
  }
}
