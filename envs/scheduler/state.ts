// The simulator's internal state: jobs, stages, tasks, attempts and workers as mutable objects,
// built once from a workload. Policies never see these; they see the TaskView and WorkerView
// objects each holds (the task views read the moving fields live, see SimTaskView).
import type { Demand, TaskView, WorkerView } from '../../policies/scheduling/index.ts';
import type { JobSpec, StageSpec, WorkerSpec } from './types.ts';

export class WorkloadError extends Error {
  constructor(
    readonly where: string,
    readonly field: string,
    readonly rule: string,
  ) {
    super(`${where}: ${field} ${rule}`);
    this.name = 'WorkloadError';
  }
}

export class SimWorker {
  readonly cpuCapMilli: number;
  /**
   * Memory in KiB, integers, as cores are in millicores: in float MB, taking 0.3 and 0.1 and
   * giving them back left an idle 1 MB worker with 0.9999999999999999, and a 1 MB task a
   * policy placed there (its fit allows float slack) failed the exact check.
   */
  readonly memCapKib: number;
  cpuFreeMilli: number;
  memFreeKib: number;
  /** Free thousandths per device. */
  readonly gpuFree: number[];
  readonly view: WorkerView;
  /** Whether the worker is in the free list (has free cores or GPU). */
  listed = false;
  fragMilli = 0;
  /** The job of the last task claimed on this worker (a move elsewhere costs `moveDelayMs`). */
  lastJob: SimJob | null = null;

  constructor(
    readonly index: number,
    readonly spec: WorkerSpec,
  ) {
    const c = spec.capacity;
    if (!(c.cpu >= 0 && c.memMb >= 0 && Number.isInteger(c.gpu) && c.gpu >= 0)) {
      throw new WorkloadError(
        `worker ${spec.id}`,
        'capacity',
        'must have cpu, memMb >= 0 and an integer gpu >= 0',
      );
    }
    this.cpuCapMilli = Math.round(c.cpu * 1000);
    this.memCapKib = Math.round(c.memMb * 1024);
    this.cpuFreeMilli = this.cpuCapMilli;
    this.memFreeKib = this.memCapKib;
    this.gpuFree = new Array<number>(c.gpu).fill(1000);
    this.view = {
      id: spec.id,
      free: { cpu: c.cpu, memMb: c.memMb, gpu: c.gpu },
      capacity: { cpu: c.cpu, memMb: c.memMb, gpu: c.gpu },
    };
    if (c.gpu > 0) this.view.gpuFreeMilli = this.gpuFree;
    if (spec.gpuModel !== undefined) this.view.gpuModel = spec.gpuModel;
    this.listed = this.hasFree();
  }

  hasFree(): boolean {
    if (this.cpuFreeMilli > 0) return true;
    const gpus = this.gpuFree;
    for (let i = 0; i < gpus.length; i++) if ((gpus[i] as number) > 0) return true;
    return false;
  }

  /** Mirrors the integer state into the view policies read. */
  syncView(): void {
    const f = this.view.free;
    f.cpu = this.cpuFreeMilli / 1000;
    f.memMb = this.memFreeKib / 1024;
    const gpus = this.gpuFree;
    if (gpus.length === 0) return; // no devices: f.gpu stays 0
    let g = 0;
    for (let i = 0; i < gpus.length; i++) g += gpus[i] as number;
    f.gpu = g / 1000;
  }
}

export class SimJob {
  readonly stages: SimStage[] = [];
  stagesLeft: number;
  /** Estimated task-ms left (the `jobRemainingWorkMs` policies see). */
  remainingEstMs = 0;
  /** Free workers whose last task was this job's (the `jobFreeWorkers` policies see). */
  freeHere = 0;
  /** Time the job finished or was given up; -1 while it runs. */
  endMs = -1;
  failed = false;
  /** Completion time with unlimited workers and no slowdown (for slowdown). */
  idealMs = 0;

  constructor(
    readonly index: number,
    readonly spec: JobSpec,
    readonly tenant: number,
    readonly tenantState: SimTenant,
  ) {
    this.stagesLeft = spec.stages.length;
  }
}

/** A tenant's attempts claimed and not yet over, and the task-ms it has been served. */
export class SimTenant {
  running = 0;
  servedMs = 0;
}

/**
 * A task as policies see it. The fields that move as the run goes (the job's remaining work, its
 * tenant's running count and service) are getters onto the simulator's state rather than copies,
 * so a view is always current and nothing is refreshed before a decision.
 */
export class SimTaskView implements TaskView {
  id = '';
  readonly jobId: string;
  readonly tenant: string;
  readonly priority: number;
  readonly demand: Demand;
  readonly estimateMs: number;
  criticalPathMs = 0;
  readonly submittedAt: number;
  readyAt = 0;
  attempts = 0;
  stageDepth = 0;
  // Not enumerable, so the view's listed properties stay plain data (no cycle through the job);
  // a property rather than a #private field, so a forked simulator (cloneGraph) copies it.
  declare private readonly job: SimJob;

  constructor(job: SimJob, demand: Demand, estimateMs: number) {
    Object.defineProperty(this, 'job', { value: job });
    this.jobId = job.spec.id;
    this.tenant = job.spec.tenant;
    this.priority = job.spec.priority;
    this.demand = demand;
    this.estimateMs = estimateMs;
    this.submittedAt = job.spec.arrivalMs;
  }

  get jobRemainingWorkMs(): number {
    return this.job.remainingEstMs;
  }

  get tenantRunning(): number {
    return this.job.tenantState.running;
  }

  get jobFreeWorkers(): number {
    return this.job.freeHere;
  }

  get tenantServedMs(): number {
    return this.job.tenantState.servedMs;
  }

  /** The view of a task of the same stage: this one's fields with the task's own id and times. */
  copyFor(id: string, readyAt: number, attempts: number): SimTaskView {
    const v = new SimTaskView(this.job, this.demand, this.estimateMs);
    v.id = id;
    v.criticalPathMs = this.criticalPathMs;
    v.readyAt = readyAt;
    v.attempts = attempts;
    v.stageDepth = this.stageDepth;
    return v;
  }
}

export class SimStage {
  readonly children: SimStage[] = [];
  parentsLeft: number;
  readonly total: number;
  /** Fresh tasks launched so far; the head view stands for task `next`. */
  next = 0;
  done = 0;
  readonly estimateMs: number;
  readonly cpuMilli: number;
  /** Memory in KiB, an integer (MB * 1024, rounded): taken and given back exactly. */
  readonly memKib: number;
  readonly gpuMilli: number;
  criticalPathMs = 0;
  depth = 0;
  /** Median observed run time once the quorum finished; -1 before. */
  medianMs = -1;
  /** Observed run times until the quorum is reached. */
  observed: number[] | null = [];
  readonly quorum: number;
  /** The view of the next fresh task; in the runnable list while `runPos >= 0`. */
  readonly view: SimTaskView;
  runPos = -1;

  constructor(
    readonly job: SimJob,
    readonly index: number,
    readonly spec: StageSpec,
    quorumShare: number,
  ) {
    this.total = spec.numTasks;
    this.parentsLeft = spec.parents.length;
    this.estimateMs = spec.estimateMs ?? mean(spec.durationsMs);
    this.cpuMilli = Math.round(spec.demand.cpu * 1000);
    this.memKib = Math.round(spec.demand.memMb * 1024);
    this.gpuMilli = spec.demand.gpu > 0 ? (spec.demand.gpuMilli ?? 1000) : 0;
    this.quorum = Math.max(1, Math.ceil(quorumShare * this.total));
    this.idPrefix = `${job.spec.id}/${index}/`;
    this.view = new SimTaskView(job, spec.demand, this.estimateMs);
  }

  /** `job/stage/`, the prefix of this stage's task ids. */
  private readonly idPrefix: string;

  taskId(i: number): string {
    return this.idPrefix + i;
  }
}

export class SimTask {
  failures = 0;
  /** Attempts launched (original, retries and copies). */
  launched = 0;
  done = false;
  /** Live attempts: at most an original and one copy, so two fields rather than an array. */
  live0: SimAttempt | null = null;
  live1: SimAttempt | null = null;
  /** Retries started before this time fail again with `refailProb`. */
  faultUntilMs = -Infinity;
  specQueued = false;
  /** The view while waiting to be retried; in the runnable list while `runPos >= 0`. */
  view: SimTaskView | null = null;
  runPos = -1;
  job: SimJob;

  constructor(
    public stage: SimStage,
    public index: number,
    public baseMs: number,
  ) {
    this.job = stage.job;
  }

  /** Makes a finished task a new one, as if constructed with these arguments. */
  reuse(stage: SimStage, index: number, baseMs: number): SimTask {
    this.stage = stage;
    this.index = index;
    this.baseMs = baseMs;
    this.job = stage.job;
    this.failures = 0;
    this.launched = 0;
    this.done = false;
    this.live0 = null;
    this.live1 = null;
    this.faultUntilMs = -Infinity;
    this.specQueued = false;
    this.view = null;
    this.runPos = -1;
    return this;
  }

  get liveCount(): number {
    return (this.live0 === null ? 0 : 1) + (this.live1 === null ? 0 : 1);
  }

  addLive(a: SimAttempt): void {
    if (this.live0 === null) this.live0 = a;
    else if (this.live1 === null) this.live1 = a;
    else throw new Error(`task ${this.stage.taskId(this.index)}: a third live attempt`);
  }

  removeLive(a: SimAttempt): void {
    if (this.live0 === a) {
      this.live0 = this.live1;
      this.live1 = null;
    } else if (this.live1 === a) this.live1 = null;
  }
}

export class SimAttempt {
  alive = true;
  started = false;
  /** Decided at start: the attempt ends in a failure at `endMs`. */
  fails = false;
  startMs = 0;
  endMs = 0;
  /** Time the worker spends moving to this attempt's job before it runs (0: it was there). */
  moveMs = 0;
  /** Position in the simulator's live-attempt list. */
  pos = -1;

  constructor(
    public task: SimTask,
    public worker: SimWorker,
    public gpus: readonly number[],
    public copy: boolean,
    public number: number,
  ) {}

  /** Makes a spent attempt a new one, as if constructed with these arguments. */
  reuse(
    task: SimTask,
    worker: SimWorker,
    gpus: readonly number[],
    copy: boolean,
    number: number,
  ): SimAttempt {
    this.task = task;
    this.worker = worker;
    this.gpus = gpus;
    this.copy = copy;
    this.number = number;
    this.alive = true;
    this.started = false;
    this.fails = false;
    this.startMs = 0;
    this.endMs = 0;
    this.moveMs = 0;
    this.pos = -1;
    return this;
  }
}

function mean(xs: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i] as number;
  return xs.length > 0 ? s / xs.length : 0;
}

function checkDemand(where: string, d: Demand): void {
  const ok = (v: number) => Number.isFinite(v) && v >= 0;
  if (!ok(d.cpu))
    throw new WorkloadError(where, 'demand.cpu', `must be a finite number >= 0, got ${d.cpu}`);
  if (!ok(d.memMb))
    throw new WorkloadError(where, 'demand.memMb', `must be a finite number >= 0, got ${d.memMb}`);
  if (!Number.isInteger(d.gpu) || d.gpu < 0)
    throw new WorkloadError(where, 'demand.gpu', `must be an integer >= 0, got ${d.gpu}`);
  const m = d.gpuMilli ?? 1000;
  if (!Number.isInteger(m) || m < 1 || m > 1000)
    throw new WorkloadError(where, 'demand.gpuMilli', `must be an integer in 1..1000, got ${m}`);
  // Cores are counted in millicores (SimStage.cpuMilli): a demand that rounds to 0 takes no CPU,
  // so a CPU-only task with it would run with unlimited parallelism.
  if (Math.round(d.cpu * 1000) === 0 && d.gpu === 0) {
    if (d.cpu > 0) {
      throw new WorkloadError(
        where,
        'demand.cpu',
        `must be at least 0.001 (cores are counted in millicores) when gpu is 0, got ${d.cpu}`,
      );
    }
    throw new WorkloadError(where, 'demand', 'must ask for cores or a GPU');
  }
}

/** Builds a job's stages, checking the DAG, and fills critical paths, depths and the ideal time. */
export function buildJob(job: SimJob, quorumShare: number): void {
  const specs = job.spec.stages;
  const where = `job ${job.spec.id}`;
  if (specs.length === 0) throw new WorkloadError(where, 'stages', 'must not be empty');
  specs.forEach((s, i) => {
    const at = `${where} stage ${i}`;
    if (!Number.isInteger(s.numTasks) || s.numTasks < 1)
      throw new WorkloadError(at, 'numTasks', `must be an integer >= 1, got ${s.numTasks}`);
    if (s.durationsMs.length !== s.numTasks)
      throw new WorkloadError(
        at,
        'durationsMs',
        `must have numTasks (${s.numTasks}) entries, got ${s.durationsMs.length}`,
      );
    for (let k = 0; k < s.durationsMs.length; k++) {
      const d = s.durationsMs[k] as number;
      if (!Number.isFinite(d) || d < 0)
        throw new WorkloadError(at, `durationsMs[${k}]`, `must be a finite number >= 0, got ${d}`);
    }
    checkDemand(at, s.demand);
    job.stages.push(new SimStage(job, i, s, quorumShare));
  });
  for (const st of job.stages) {
    for (const p of st.spec.parents) {
      const parent = job.stages[p];
      if (!Number.isInteger(p) || parent === undefined || p === st.index) {
        throw new WorkloadError(
          `${where} stage ${st.index}`,
          'parents',
          `names no other stage of the job: ${p}`,
        );
      }
      parent.children.push(st);
    }
  }
  const order = topoOrder(job, where);
  const finish = new Map<SimStage, number>();
  for (const st of order) {
    let ready = 0;
    for (const p of st.spec.parents) {
      const parent = job.stages[p] as SimStage;
      st.depth = Math.max(st.depth, parent.depth + 1);
      ready = Math.max(ready, finish.get(parent) ?? 0);
    }
    let longest = 0;
    for (let k = 0; k < st.total; k++)
      longest = Math.max(longest, st.spec.durationsMs[k] as number);
    finish.set(st, ready + longest);
    job.idealMs = Math.max(job.idealMs, ready + longest);
    job.remainingEstMs += st.estimateMs * st.total;
  }
  for (let i = order.length - 1; i >= 0; i--) {
    const st = order[i] as SimStage;
    let below = 0;
    for (const c of st.children) below = Math.max(below, c.criticalPathMs);
    st.criticalPathMs = st.estimateMs * st.total + below;
    st.view.criticalPathMs = st.criticalPathMs;
    st.view.stageDepth = st.depth;
  }
}

function topoOrder(job: SimJob, where: string): SimStage[] {
  const indeg = job.stages.map((s) => s.spec.parents.length);
  const queue = job.stages.filter((s) => s.spec.parents.length === 0);
  const out: SimStage[] = [];
  for (let q = 0; q < queue.length; q++) {
    const st = queue[q] as SimStage;
    out.push(st);
    for (const c of st.children) {
      indeg[c.index] = (indeg[c.index] as number) - 1;
      if (indeg[c.index] === 0) queue.push(c);
    }
  }
  if (out.length !== job.stages.length)
    throw new WorkloadError(where, 'stages', 'parents form a cycle');
  return out;
}
