// The simulator's state and bookkeeping, without the event logic (sim.ts): the clock and its
// time integrals, the runnable list policies see, the free-worker list, and claiming and
// releasing capacity. Kept apart so each file reads on its own.
import { nodeFragMilli, type WorkloadClass } from '../../policies/gpu/index.ts';
import type { WorkerView } from '../../policies/scheduling/index.ts';
import { simConfig, type SimConfig } from './config.ts';
import type { JobOutcome } from './metrics.ts';
import { adjust, fitsCapacity } from './resources.ts';
import {
  SimAttempt,
  SimJob,
  SimStage,
  SimTask,
  SimTaskView,
  SimTenant,
  SimWorker,
  WorkloadError,
  buildJob,
} from './state.ts';
import type { Workload, WorkerSpec } from './types.ts';

const NO_GPUS: readonly number[] = Object.freeze([]);

export interface SimOptions {
  /** Task classes to measure GPU fragmentation against (see policies/gpu workloadClasses). */
  gpuClasses?: readonly WorkloadClass[];
}

export class SimCore {
  readonly cfg: SimConfig;
  readonly workers: SimWorker[];
  readonly jobs: SimJob[];
  readonly tenants: string[] = [];
  readonly name: string;
  now = 0;
  /** The runnable tasks as policies see them (stage heads and tasks awaiting a retry). */
  readonly runnable: SimTaskView[] = [];
  protected readonly owners: (SimStage | SimTask)[] = [];
  /** The length of each runnable view's id, so a lookup touches only views that could match. */
  private readonly idLengths: number[] = [];
  /** No two tasks share an id, so a lookup may stop at any match (see `ownerOf`). */
  private readonly uniqueIds: boolean;
  /** The entry the last lookup found. */
  private lastOwner: SimStage | SimTask | null = null;
  private readonly workerById = new Map<string, SimWorker>();
  /** Views of the workers with free cores or GPU, kept in worker order as capacity moves. */
  private readonly freeList: WorkerView[] = [];
  private readonly freeIndex: number[] = [];
  /** Attempts claimed and not yet over (running, or in a dispatch round trip). */
  protected readonly live: SimAttempt[] = [];
  /** Ended attempts nothing refers to any more, reused by `reserve` (one object per attempt
   * made the young-generation collector a visible share of a run). */
  protected readonly spareAttempts: SimAttempt[] = [];
  /** Finished tasks nothing refers to any more, reused for fresh tasks (as attempts are). */
  protected readonly spareTasks: SimTask[] = [];
  protected readonly tenantStates: SimTenant[] = [];
  protected readonly classes: readonly WorkloadClass[] | null;

  // Counters, and time integrals of the values below them.
  events = 0;
  decisions = 0;
  attempts = 0;
  /** Jobs arrived and neither finished nor given up. */
  jobsInSystem = 0;
  /** Job-ms: the integral of `jobsInSystem` plus the jobs given up, which stay charged until the
   * end of the run as the summary charges them (a lost job is not a fast one). At the end of a
   * run it is the sum of the completion times `summarise` counts, plus censored jobs' time. */
  jobTimeMs = 0;
  cpuBusyMilliMs = 0;
  gpuBusyMilliMs = 0;
  fragMilliMs = 0;
  protected usedCpuMilli = 0;
  protected usedGpuMilli = 0;
  fragMilli = 0;
  firstArrivalMs = Infinity;
  lastEndMs = 0;
  readonly outcomes: JobOutcome[] = [];
  readonly failedJobs: SimJob[] = [];

  constructor(
    workload: Workload,
    workers: readonly WorkerSpec[],
    cfg: Partial<SimConfig>,
    opts: SimOptions,
  ) {
    this.cfg = simConfig(cfg);
    this.name = workload.name;
    if (workers.length === 0)
      throw new WorkloadError(workload.name, 'workers', 'must not be empty');
    this.workers = workers.map((w, i) => new SimWorker(i, w));
    for (const w of this.workers) {
      if (!w.listed) continue;
      this.freeList.push(w.view);
      this.freeIndex.push(w.index);
    }
    for (const w of this.workers) {
      if (this.workerById.has(w.spec.id)) {
        throw new WorkloadError(workload.name, 'workers', `has id ${w.spec.id} twice`);
      }
      this.workerById.set(w.spec.id, w);
    }
    const tenantIndex = new Map<string, number>();
    // A stable sort: jobs arriving together keep the workload's order.
    const specs = [...workload.jobs].sort((a, b) => a.arrivalMs - b.arrivalMs);
    this.jobs = specs.map((spec, i) => {
      if (!Number.isFinite(spec.arrivalMs) || spec.arrivalMs < 0) {
        throw new WorkloadError(
          `job ${spec.id}`,
          'arrivalMs',
          `must be >= 0, got ${spec.arrivalMs}`,
        );
      }
      let t = tenantIndex.get(spec.tenant);
      if (t === undefined) {
        t = this.tenants.length;
        tenantIndex.set(spec.tenant, t);
        this.tenants.push(spec.tenant);
        this.tenantStates.push(new SimTenant());
      }
      const job = new SimJob(i, spec, t, this.tenantStates[t] as SimTenant);
      buildJob(job, this.cfg.speculationQuorum);
      for (const st of job.stages) {
        if (!this.workers.some((w) => fitsCapacity(st, w))) {
          const d = st.spec.demand;
          const gpu = d.gpu > 0 ? `${d.gpu} GPU x ${d.gpuMilli ?? 1000}/1000` : 'no GPU';
          throw new WorkloadError(
            `job ${spec.id} stage ${st.index}`,
            'demand',
            `(${d.cpu} cores, ${d.memMb} MB, ${gpu}${d.gpuModels?.length ? ` of ${d.gpuModels.join('|')}` : ''}) fits no worker even when idle`,
          );
        }
      }
      return job;
    });
    // Task ids are `job/stage/task` with integer stage and task, so they are unique exactly
    // when job ids are.
    this.uniqueIds = new Set(this.jobs.map((j) => j.spec.id)).size === this.jobs.length;
    this.classes = opts.gpuClasses && opts.gpuClasses.length > 0 ? opts.gpuClasses : null;
    if (this.classes) {
      for (const w of this.workers) {
        w.fragMilli = nodeFragMilli(w.view, this.classes);
        this.fragMilli += w.fragMilli;
      }
    }
  }

  get cpuCapacityMilli(): number {
    return this.workers.reduce((s, w) => s + w.cpuCapMilli, 0);
  }

  get gpuCapacityMilli(): number {
    return this.workers.reduce((s, w) => s + w.gpuFree.length * 1000, 0);
  }

  get tracksFragmentation(): boolean {
    return this.classes !== null;
  }

  /** Free workers (some cores or GPU free), in worker order. Callers must not mutate it. */
  freeWorkers(): readonly WorkerView[] {
    return this.freeList;
  }

  /** The worker with this id. Policies assign to free workers, so the short free list first. */
  protected workerNamed(id: string): SimWorker | undefined {
    const views = this.freeList;
    for (let i = 0; i < views.length; i++) {
      if ((views[i] as WorkerView).id === id) return this.workers[this.freeIndex[i] as number];
    }
    return this.workerById.get(id);
  }

  protected advanceClock(t: number): void {
    const dt = t - this.now;
    if (dt > 0) {
      this.jobTimeMs += (this.jobsInSystem + this.failedJobs.length) * dt;
      this.cpuBusyMilliMs += this.usedCpuMilli * dt;
      this.gpuBusyMilliMs += this.usedGpuMilli * dt;
      // From the first arrival on, the span gpu_stranded_frac divides by: an idle cluster is
      // fragmented too, and counting the time before it gave 33.75 for 0.42 (a shifted load).
      if (this.firstArrivalMs !== Infinity) this.fragMilliMs += this.fragMilli * dt;
    }
    this.now = t;
  }

  protected addRunnable(view: SimTaskView, owner: SimStage | SimTask): void {
    owner.runPos = this.runnable.length;
    this.runnable.push(view);
    this.owners.push(owner);
    this.idLengths.push(view.id.length);
  }

  /**
   * The runnable entry whose view has this id (the first in list order), or undefined. A scan
   * rather than a map: the list is short next to the work a map would do (hash a fresh id string
   * per task launched; measured, the map costs more).
   */
  protected ownerOf(taskId: string): SimStage | SimTask | undefined {
    // Policies mostly take the same stage's next task again, whose id is then the very string
    // held by the last entry found: a pointer check. With duplicate ids only the scan gives the
    // first match.
    const last = this.lastOwner;
    if (
      last !== null &&
      last.runPos >= 0 &&
      this.uniqueIds &&
      (this.runnable[last.runPos] as SimTaskView).id === taskId
    ) {
      return last;
    }
    const found = this.scanFor(taskId);
    if (found !== undefined) this.lastOwner = found;
    return found;
  }

  private scanFor(taskId: string): SimStage | SimTask | undefined {
    const lengths = this.idLengths;
    const len = taskId.length;
    // Lengths first, from a dense array: many ids differ in length, and the check touches no
    // view or string, while a string compare must first flatten both (ids are concatenations).
    // The match itself is the very string the policy read, so its compare is a pointer check.
    for (let i = 0; i < lengths.length; i++) {
      if (lengths[i] === len && (this.runnable[i] as SimTaskView).id === taskId) {
        return this.owners[i];
      }
    }
    return undefined;
  }

  protected removeRunnable(owner: SimStage | SimTask): void {
    const i = owner.runPos;
    const last = this.runnable.length - 1;
    if (i !== last) {
      const moved = this.owners[last] as SimStage | SimTask;
      this.runnable[i] = this.runnable[last] as SimTaskView;
      this.owners[i] = moved;
      this.idLengths[i] = this.idLengths[last] as number;
      moved.runPos = i;
    }
    this.runnable.pop();
    this.owners.pop();
    this.idLengths.pop();
    owner.runPos = -1;
  }

  /** Moves a stage head on to its next fresh task (or out of the list when none is left). */
  protected advanceHead(st: SimStage): SimTask {
    const baseMs = st.spec.durationsMs[st.next] as number;
    const spare = this.spareTasks.pop();
    const task =
      spare === undefined ? new SimTask(st, st.next, baseMs) : spare.reuse(st, st.next, baseMs);
    st.next++;
    if (st.next === st.total) this.removeRunnable(st);
    else {
      st.view.id = st.taskId(st.next);
      this.idLengths[st.runPos] = st.view.id.length;
    }
    return task;
  }

  protected reserve(
    task: SimTask,
    w: SimWorker,
    gpus: readonly number[],
    copy: boolean,
  ): SimAttempt {
    const devices = gpus.length === 0 ? NO_GPUS : gpus.slice();
    const spare = this.spareAttempts.pop();
    const a =
      spare === undefined
        ? new SimAttempt(task, w, devices, copy, task.launched++)
        : spare.reuse(task, w, devices, copy, task.launched++);
    const job = task.stage.job;
    a.moveMs = w.lastJob === job ? 0 : this.cfg.moveDelayMs;
    if (w.lastJob !== job) {
      if (w.listed) {
        if (w.lastJob !== null) w.lastJob.freeHere--;
        job.freeHere++;
      }
      w.lastJob = job;
    }
    this.fragMilli += adjust(task.stage, w, a.gpus, 1, this.classes);
    this.relist(w);
    a.pos = this.live.length;
    this.live.push(a);
    task.addLive(a);
    this.attempts++;
    // Claimed counts as running for fair share: the task is on its way to the worker.
    task.job.tenantState.running++;
    return a;
  }

  /** Ends an attempt's claim: gives back its capacity and, if it ran, its running counts. */
  protected retire(a: SimAttempt): void {
    a.alive = false;
    const last = this.live.pop() as SimAttempt;
    if (last !== a) {
      this.live[a.pos] = last;
      last.pos = a.pos;
    }
    a.task.removeLive(a);
    const st = a.task.stage;
    this.fragMilli += adjust(st, a.worker, a.gpus, -1, this.classes);
    this.relist(a.worker);
    const tenant = st.job.tenantState;
    tenant.running--;
    if (a.started) {
      this.usedCpuMilli -= st.cpuMilli;
      this.usedGpuMilli -= st.gpuMilli * a.gpus.length;
      tenant.servedMs += Math.max(0, this.now - a.startMs); // 0 if ended while moving
    }
  }

  /** Keeps the free list in step with the worker's capacity. */
  private relist(w: SimWorker): void {
    const has = w.hasFree();
    if (w.listed === has) return;
    w.listed = has;
    if (w.lastJob !== null) w.lastJob.freeHere += has ? 1 : -1;
    const idx = this.freeIndex;
    let lo = 0;
    let hi = idx.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((idx[mid] as number) < w.index) lo = mid + 1;
      else hi = mid;
    }
    // Shifting by hand: Array.prototype.splice is several times slower on these short lists.
    const views = this.freeList;
    if (has) {
      idx.push(0);
      views.push(w.view);
      for (let i = idx.length - 1; i > lo; i--) {
        idx[i] = idx[i - 1] as number;
        views[i] = views[i - 1] as WorkerView;
      }
      idx[lo] = w.index;
      views[lo] = w.view;
    } else {
      for (let i = lo; i < idx.length - 1; i++) {
        idx[i] = idx[i + 1] as number;
        views[i] = views[i + 1] as WorkerView;
      }
      idx.pop();
      views.pop();
    }
  }
}
