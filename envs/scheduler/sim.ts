// The discrete-event cluster simulator. Jobs arrive, their stages become runnable when their
// parents finish, a policy assigns runnable tasks to free workers in dispatch rounds, attempts
// straggle, fail and are retried with backoff, and stragglers may get a speculative copy (the
// first copy to finish wins, the other is killed). Time is ms on a simulated clock; every random
// draw is a hash of the seed and the attempt's address (draws.ts), so a run replays exactly.
import type { Assignment, TaskView, WorkerView } from '../../policies/scheduling/index.ts';
import { MAX_BACKOFF_MS, type SimConfig } from './config.ts';
import { SimCore, type SimOptions } from './core.ts';
import * as D from './draws.ts';
import { EventQueue } from './heap.ts';
import { medianOf } from './metrics.ts';
import { badDevices, firstDevices, fitsWorker } from './resources.ts';
import { SimAttempt, SimJob, SimStage, SimTask, SimWorker } from './state.ts';
import type { Workload, WorkerSpec } from './types.ts';

const EV_RETRY = 1;
const EV_SPEC = 2;
const EV_DISPATCH = 3;
/** An attempt stands for its own end (the commonest event, so it costs no extra object). */
type Event =
  | SimAttempt
  | { kind: typeof EV_SPEC; a: SimAttempt }
  | { kind: typeof EV_RETRY; task: SimTask }
  | { kind: typeof EV_DISPATCH; batch: SimAttempt[] };

/** Worker names in a policy's answer -> the workers meant (`to`), and back (`from`). */
interface Renaming {
  to: Map<string, string>;
  from: Map<string, string>;
}

function newRenaming(): Renaming {
  return { to: new Map(), from: new Map() };
}

/** Same free capacity, devices and model: either can take what the other was given. */
function sameState(a: SimWorker, b: SimWorker): boolean {
  if (a.cpuFreeMilli !== b.cpuFreeMilli || a.memFreeKib !== b.memFreeKib) return false;
  if (a.spec.gpuModel !== b.spec.gpuModel || a.gpuFree.length !== b.gpuFree.length) return false;
  return a.gpuFree.every((g, i) => g === b.gpuFree[i]);
}

export type PickFn = (
  runnable: readonly TaskView[],
  free: readonly WorkerView[],
  now: number,
) => Assignment[];

export class ClusterSim extends SimCore {
  private readonly queue = new EventQueue<Event>();
  private nextArrival = 0;
  /** Arrival times in job order, then Infinity: the step loop reads numbers, not job specs. */
  private readonly arrivals: Float64Array;
  private specQueue: SimTask[] = [];
  /** The round being built (reused; a round trip in flight keeps its own copy). */
  private readonly batch: SimAttempt[] = [];
  private dispatcherBusy = false;
  /** A round at this time assigned nothing: wait for the next event. */
  private blocked = false;
  /** The run hit `maxEvents` and stopped early. */
  truncated = false;
  retries = 0;
  copies = 0;
  copyWins = 0;

  constructor(
    workload: Workload,
    workers: readonly WorkerSpec[],
    cfg: Partial<SimConfig> = {},
    opts: SimOptions = {},
  ) {
    super(workload, workers, cfg, opts);
    this.arrivals = new Float64Array(this.jobs.length + 1);
    for (let i = 0; i < this.jobs.length; i++) {
      this.arrivals[i] = (this.jobs[i] as SimJob).spec.arrivalMs;
    }
    this.arrivals[this.jobs.length] = Infinity;
  }

  /** Every job has finished or been given up, and no live event is pending. */
  get finished(): boolean {
    this.dropDead();
    return this.nextArrival >= this.jobs.length && this.queue.size === 0;
  }

  /** Whether the dispatcher should run a round now. */
  needsDecision(): boolean {
    return (
      !this.dispatcherBusy &&
      !this.blocked &&
      (this.runnable.length > 0 || this.specQueue.length > 0) &&
      this.freeWorkers().length > 0
    );
  }

  /**
   * One dispatch round: speculative copies first, then the tasks `pick` chooses, at most
   * `dispatchBatch` in all (a prefix of `pick`'s answers). Returns the attempts claimed.
   *
   * A stage shows policies one view, its next task. When a policy takes it and the stage has more
   * tasks, the rest of that answer was chosen without seeing the stage's next task, so it is
   * dropped and `pick` is asked again, within the same round: the round gets exactly the tasks a
   * policy would choose if it saw every task of every stage.
   */
  decide(pick: PickFn): number {
    const batch = this.batch;
    this.claimCopies(batch);
    let again = true;
    while (again && batch.length < this.cfg.dispatchBatch && this.runnable.length > 0) {
      const free = this.freeWorkers();
      if (free.length === 0) break;
      const picks = pick(this.runnable, free, this.now);
      const n = Math.min(this.cfg.dispatchBatch - batch.length, picks.length);
      const names = this.cfg.moveDelayMs > 0 ? newRenaming() : null;
      again = false;
      for (let i = 0; i < n && !again; i++)
        again = this.claim(picks[i] as Assignment, batch, names);
    }
    this.dispatch(batch);
    return batch.length;
  }

  /**
   * Processes every event at the next live event time; false when nothing is left. Dead events
   * (see `isDead`) at the head of the queue are dropped first, so they never move the clock:
   * `now` is always the time of a live event, and at the end of a run the time of the last one.
   */
  step(): boolean {
    this.dropDead();
    const t = Math.min(this.queue.peekTime(), this.arrivals[this.nextArrival] as number);
    if (t === Infinity) return false;
    if (this.events >= this.cfg.maxEvents) {
      this.truncated = true;
      return false;
    }
    this.advanceClock(t);
    while (this.queue.peekTime() === t) this.handle(this.queue.pop() as Event);
    while ((this.arrivals[this.nextArrival] as number) === t) {
      this.arrive(this.jobs[this.nextArrival++] as SimJob);
    }
    this.blocked = false;
    return true;
  }

  /** Runs to the end with `pick` deciding every round. */
  run(pick: PickFn): void {
    while (true) {
      if (this.needsDecision()) this.decide(pick);
      else if (!this.step()) break;
    }
  }

  /**
   * An event that no longer does anything: the end of an attempt retired before it (the losing
   * copy, an attempt of a job given up), a straggler check of such an attempt, a retry of a task
   * of a job given up. A dispatch is never dead: it frees the dispatcher even if every attempt it
   * carries was retired on the way.
   */
  private isDead(ev: Event): boolean {
    if (ev instanceof SimAttempt) return !ev.alive;
    if (ev.kind === EV_RETRY) return ev.task.stage.job.failed || ev.task.done;
    if (ev.kind === EV_DISPATCH) return false;
    return !ev.a.alive;
  }

  /** Drops the dead events at the head of the queue. */
  private dropDead(): void {
    while (this.queue.size > 0 && this.isDead(this.queue.peek() as Event)) this.queue.pop();
  }

  private handle(ev: Event): void {
    // Events at the same time as a live one may have died while it was handled.
    if (this.isDead(ev)) return;
    this.events++;
    if (ev instanceof SimAttempt) {
      if (ev.fails) this.onFail(ev);
      else this.onComplete(ev);
      // Its end was its last reference (retired, out of the queue), and a completed task's
      // (no retry pending, out of the runnable list), unless speculation may still hold them
      // (straggler checks, the copy queue): then they are left to the collector.
      if (!this.cfg.speculative) {
        this.spareAttempts.push(ev);
        if (!ev.fails) this.spareTasks.push(ev.task);
      }
    } else if (ev.kind === EV_RETRY) this.makeRetryRunnable(ev.task);
    else if (ev.kind === EV_DISPATCH) {
      this.dispatcherBusy = false;
      for (const a of ev.batch) if (a.alive) this.start(a);
    } else this.checkStraggler(ev.a);
  }

  // ---- arrivals and runnable tasks ----

  private arrive(job: SimJob): void {
    this.events++;
    this.jobsInSystem++;
    if (this.firstArrivalMs === Infinity) this.firstArrivalMs = this.now;
    for (const st of job.stages) if (st.parentsLeft === 0) this.makeStageRunnable(st);
  }

  private makeStageRunnable(st: SimStage): void {
    st.view.readyAt = this.now;
    st.view.id = st.taskId(st.next);
    this.addRunnable(st.view, st);
  }

  private makeRetryRunnable(task: SimTask): void {
    const st = task.stage;
    const view = st.view.copyFor(st.taskId(task.index), this.now, task.launched);
    task.view = view;
    this.addRunnable(view, task);
  }

  // ---- claiming and starting attempts ----

  /**
   * Checks a policy's assignment against the true state, claims the capacity and adds the
   * attempt to `batch`. True when the task was a stage's view and the view moved on to the
   * stage's next task.
   */
  private claim(a: Assignment, batch: SimAttempt[], names: Renaming | null): boolean {
    const owner = this.ownerOf(a.taskId);
    if (owner === undefined) {
      throw new Error(`policy assigned task ${a.taskId}, which is not runnable (or twice)`);
    }
    const named = this.workerNamed(names?.to.get(a.workerId) ?? a.workerId);
    if (named === undefined)
      throw new Error(`policy assigned ${a.taskId} to unknown worker ${a.workerId}`);
    let w = named;
    const head = owner instanceof SimStage;
    const st = head ? owner : owner.stage;
    if (!fitsWorker(st, w)) {
      throw new Error(`policy assigned ${a.taskId} to worker ${a.workerId}, which lacks capacity`);
    }
    if (names !== null && w.lastJob !== st.job) w = this.warmSwap(st.job, w, names);
    const gpus = a.gpus ?? firstDevices(st, w);
    const bad = st.gpuMilli === 0 && gpus.length === 0 ? null : badDevices(st, w, gpus);
    if (bad !== null) throw new Error(`policy assigned ${a.taskId} to ${a.workerId}: ${bad}`);
    let task: SimTask;
    if (head) task = this.advanceHead(owner);
    else {
      task = owner;
      this.removeRunnable(owner);
      task.view = null;
    }
    batch.push(this.reserve(task, w, gpus, false));
    return head && owner.runPos >= 0;
  }

  /**
   * In a world with moves, a worker away from the task's job is swapped for a free worker in
   * the same state that is already on that job (Spark keeps an executor with its job): the
   * policy chose the task and a worker, the cluster runs it on the equivalent one that need not
   * move. The rest of the same answer sees the two names swapped, so it means what it meant.
   */
  private warmSwap(job: SimJob, w: SimWorker, names: Renaming): SimWorker {
    const x = this.workers.find((v) => v.listed && v !== w && v.lastJob === job && sameState(v, w));
    if (x === undefined) return w;
    const wName = names.from.get(w.spec.id) ?? w.spec.id;
    const xName = names.from.get(x.spec.id) ?? x.spec.id;
    names.to.set(wName, x.spec.id);
    names.from.set(x.spec.id, wName);
    names.to.set(xName, w.spec.id);
    names.from.set(w.spec.id, xName);
    return x;
  }

  /** Speculative copies, oldest request first, on the first free worker but the original's. */
  private claimCopies(batch: SimAttempt[]): void {
    if (this.specQueue.length === 0) return;
    const keep: SimTask[] = [];
    for (const task of this.specQueue) {
      const orig = task.live0;
      if (task.done || orig === null || task.job.failed || task.liveCount !== 1) continue;
      const w =
        batch.length < this.cfg.dispatchBatch
          ? this.workers.find((x) => x !== orig.worker && fitsWorker(task.stage, x))
          : undefined;
      if (w === undefined) keep.push(task);
      else {
        batch.push(this.reserve(task, w, firstDevices(task.stage, w), true));
        this.copies++;
      }
    }
    this.specQueue = keep;
  }

  private dispatch(batch: SimAttempt[]): void {
    if (batch.length === 0) {
      this.blocked = true;
      return;
    }
    this.decisions++;
    const latency = this.cfg.dispatchRttMs + this.cfg.dispatchPerTaskMs * batch.length;
    if (latency <= 0) for (const a of batch) this.start(a);
    else {
      this.dispatcherBusy = true;
      this.queue.push(this.now + latency, { kind: EV_DISPATCH, batch: batch.slice() });
    }
    while (batch.length > 0) batch.pop(); // cheaper than setting length on short arrays
  }

  /** Run time of the attempt if it does not fail: base time times its slowdown. */
  private runTime(a: SimAttempt): number {
    const c = this.cfg;
    const t = a.task;
    if (c.stragglerProb === 0) return t.baseMs;
    const j = t.stage.job.index;
    const s = t.stage.index;
    if (D.drawUniform(c.seed, j, s, t.index, a.number, D.STREAM_STRAGGLE) >= c.stragglerProb) {
      return t.baseMs;
    }
    const u = D.drawUniform(c.seed, j, s, t.index, a.number, D.STREAM_SLOWDOWN);
    const slowdown = Math.min(c.stragglerMaxSlowdown, Math.pow(1 - u, -1 / c.stragglerAlpha));
    return Math.round(t.baseMs * slowdown);
  }

  private start(a: SimAttempt): void {
    const c = this.cfg;
    const t = a.task;
    const st = t.stage;
    a.started = true;
    // A worker moving to another job runs the task once it has moved.
    const at = this.now + a.moveMs;
    a.startMs = at;
    const run = this.runTime(a);
    a.endMs = at + run;
    const failP = this.now < t.faultUntilMs ? c.refailProb : c.failureProb;
    const j = st.job.index;
    if (failP > 0 && D.drawUniform(c.seed, j, st.index, t.index, a.number, D.STREAM_FAIL) < failP) {
      const u = D.drawUniform(c.seed, j, st.index, t.index, a.number, D.STREAM_FAIL_POINT);
      a.fails = true;
      a.endMs = at + Math.floor(u * run);
    }
    this.queue.push(a.endMs, a);
    this.usedCpuMilli += st.cpuMilli;
    this.usedGpuMilli += st.gpuMilli * a.gpus.length;
    if (c.speculative && !a.copy) {
      const ref = st.medianMs >= 0 ? st.medianMs : st.estimateMs;
      if (ref > 0) this.queue.push(at + c.stragglerThreshold * ref, { kind: EV_SPEC, a });
    }
  }

  // ---- endings ----

  private onComplete(a: SimAttempt): void {
    const task = a.task;
    const st = task.stage;
    const job = st.job;
    this.retire(a);
    if (a.copy) this.copyWins++;
    task.done = true;
    if (task.live0 !== null) this.retire(task.live0); // the other copy loses
    st.done++;
    job.remainingEstMs -= st.estimateMs;
    this.observe(st, this.now - a.startMs);
    if (st.done < st.total) return;
    job.stagesLeft--;
    for (const c of st.children) if (--c.parentsLeft === 0) this.makeStageRunnable(c);
    if (job.stagesLeft === 0) this.endJob(job, false);
  }

  private onFail(a: SimAttempt): void {
    const task = a.task;
    this.retire(a);
    // Its other copy carries on: not a spent attempt (the live scheduler drops the copy and
    // leaves the attempt count; an attempt is a dispatch, its copies included).
    if (task.live0 !== null) return;
    task.failures++;
    // No attempt is left: its copy request (if still queued, claimCopies drops it) goes with
    // it, and the retry, a new attempt, may get a copy of its own.
    task.specQueued = false;
    const c = this.cfg;
    if (task.failures > c.retryLimit) {
      this.endJob(task.stage.job, true);
      return;
    }
    this.retries++;
    const st = task.stage;
    const u = D.drawUniform(
      c.seed,
      st.job.index,
      st.index,
      task.index,
      a.number,
      D.STREAM_FAULT_LENGTH,
    );
    task.faultUntilMs = this.now - c.failureTransientMs * Math.log(1 - u);
    const backoff = Math.min(c.retryBackoffMs * 2 ** (task.failures - 1), MAX_BACKOFF_MS);
    this.queue.push(this.now + backoff, { kind: EV_RETRY, task });
  }

  private endJob(job: SimJob, failed: boolean): void {
    job.endMs = this.now;
    this.jobsInSystem--;
    this.lastEndMs = this.now;
    if (failed) {
      // Given up: nothing of it runs any more. It is charged until the end of the run, in the
      // job-time integral (via `failedJobs`) and in the summary.
      job.failed = true;
      this.failedJobs.push(job);
      for (let i = this.runnable.length - 1; i >= 0; i--) {
        const o = this.owners[i] as SimStage | SimTask;
        if (o.job === job) this.removeRunnable(o);
      }
      for (let i = this.live.length - 1; i >= 0; i--) {
        const a = this.live[i];
        if (a !== undefined && a.task.stage.job === job) this.retire(a);
      }
    } else if (!job.spec.censored) {
      this.outcomes.push({
        tenant: job.tenant,
        jctMs: this.now - job.spec.arrivalMs,
        idealMs: job.idealMs,
      });
    }
  }

  // ---- stragglers and speculation ----

  /** Records a run time; once the quorum of the stage is in, fixes its median. */
  private observe(st: SimStage, runMs: number): void {
    const obs = st.observed;
    // The median only serves speculation: without it, sorting the quorum is wasted work.
    if (obs === null || !this.cfg.speculative) return;
    obs.push(runMs);
    if (obs.length < st.quorum) return;
    st.medianMs = medianOf(obs);
    st.observed = null;
    if (!this.cfg.speculative) return;
    // Attempts already running are judged against the median from now on.
    const limit = this.cfg.stragglerThreshold * st.medianMs;
    for (const a of this.live) {
      if (a.task.stage === st && a.started && !a.copy) {
        this.queue.push(Math.max(this.now, a.startMs + limit), { kind: EV_SPEC, a });
      }
    }
  }

  private checkStraggler(a: SimAttempt): void {
    const task = a.task;
    if (task.done || task.specQueued || task.liveCount !== 1) return;
    const st = task.stage;
    const ref = st.medianMs >= 0 ? st.medianMs : st.estimateMs;
    // The same sum the check's event time was: (start + x) - start can fall one ulp short of
    // x, and the check then returned without a copy and without re-arming (about half the
    // time at a fractional threshold).
    if (this.now < a.startMs + this.cfg.stragglerThreshold * ref) return;
    task.specQueued = true;
    this.specQueue.push(task);
  }
}
