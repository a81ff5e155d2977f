// Runs simulation jobs off the server's event loop: one worker thread (started on first use,
// kept for the TPC-H DAGs and the memo of heuristic runs), one job at a time, a bounded queue
// behind it (a full queue is a typed 429, not an unbounded backlog), and a time limit per job
// (past it the thread is terminated and a new one starts with the next job). 'inline' runs
// jobs on the caller's thread, for scripts and tests that want no thread.
import { Worker } from 'node:worker_threads';
import { EvaluationFailedError, RegistryBusyError } from './errors.ts';
import { fromWire, runJob, type SimJob, type SimResult, type WireError } from './jobs.ts';
import { SchedulingSims, type TraceFiles } from './sim.ts';

export interface EvaluatorOptions {
  trace?: TraceFiles;
  mode?: 'thread' | 'inline';
  /** Jobs waiting behind the running one at most (default 4). */
  queueMax?: number;
  /** Longest a job may run (default 5 min). */
  timeoutMs?: number;
}

type Reply =
  { id: number; ok: true; result: SimResult } | { id: number; ok: false; error: WireError };

interface Pending {
  resolve: (r: SimResult) => void;
  reject: (e: Error) => void;
  /** The thread running it: a thread that dies fails its own jobs only. */
  worker: Worker;
}

/** The worker runs TypeScript: register tsx's loader in the thread, then load the module. */
function bootCode(): string {
  const tsx = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./eval-worker.ts', import.meta.url).href;
  return `import { register } from ${JSON.stringify(tsx)}; register(); await import(${JSON.stringify(entry)});`;
}

/** A job asked of, or queued at, an evaluator that was closed (the server is stopping). */
function closedError(): EvaluationFailedError {
  return new EvaluationFailedError('the evaluator is closed (the server is stopping)', {
    field: 'evaluation',
    rule: 'closed',
  });
}

export class Evaluator {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private inline: SchedulingSims | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private waiting = 0;
  private seq = 0;
  private closed = false;

  constructor(private readonly opts: EvaluatorOptions = {}) {}

  get mode(): 'thread' | 'inline' {
    return this.opts.mode ?? 'thread';
  }

  /** Queues a job; refused with RegistryBusyError when the queue is full. */
  run(job: SimJob): Promise<SimResult> {
    const max = this.opts.queueMax ?? 4;
    if (this.closed) return Promise.reject(closedError());
    if (this.waiting > max)
      return Promise.reject(
        new RegistryBusyError(
          `the simulator is busy: ${this.waiting} evaluations queued or running (bound ${max + 1}); retry later`,
          { field: 'queue', rule: 'max', queued: this.waiting },
        ),
      );
    this.waiting++;
    const p = this.chain
      .then(() => this.exec(job))
      .finally(() => {
        this.waiting--;
      });
    this.chain = p.catch(() => undefined);
    return p;
  }

  private exec(job: SimJob): Promise<SimResult> {
    // A job queued before close() does not start a new thread after it (one did, and ran on).
    if (this.closed) return Promise.reject(closedError());
    if (this.mode === 'inline') {
      this.inline ??= new SchedulingSims(this.opts.trace);
      return Promise.resolve(runJob(this.inline, job));
    }
    const worker = this.thread();
    const id = ++this.seq;
    return new Promise<SimResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(
          new EvaluationFailedError(
            `simulation job ${job.type} exceeded its time limit of ${this.timeoutMs} ms; retry later or with a smaller job`,
            { field: 'evaluation', rule: 'time_limit', limitMs: this.timeoutMs },
          ),
        );
        void this.drop(worker);
      }, this.timeoutMs);
      this.pending.set(id, {
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
        worker,
      });
      worker.postMessage({ id, job });
    });
  }

  private get timeoutMs(): number {
    return this.opts.timeoutMs ?? 300_000;
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const t = this.opts.trace ?? {};
    const trace: TraceFiles = {
      ...(t.stagesFile ? { stagesFile: t.stagesFile } : {}),
      ...(t.durationsFile ? { durationsFile: t.durationsFile } : {}),
    };
    const w = new Worker(bootCode(), { eval: true, workerData: { trace } });
    w.unref(); // an idle evaluator never keeps a process alive
    w.on('message', (m: Reply) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (m.ok) p.resolve(m.result);
      else p.reject(fromWire(m.error));
    });
    // A timed-out thread is dropped at once and exits later, while the next job already runs
    // on its successor: its exit must not fail that job.
    const fail = (err: Error) => {
      for (const [id, p] of this.pending)
        if (p.worker === w) {
          this.pending.delete(id);
          p.reject(err);
        }
      if (this.worker === w) this.worker = undefined;
    };
    w.on('error', (err) => fail(err));
    w.on('exit', (code) =>
      fail(
        new EvaluationFailedError(`simulation thread exited with code ${code}; retry later`, {
          field: 'evaluation',
          rule: 'thread_exit',
          exitCode: code,
        }),
      ),
    );
    this.worker = w;
    return w;
  }

  private async drop(w: Worker): Promise<void> {
    if (this.worker === w) this.worker = undefined;
    await w.terminate();
  }

  async close(): Promise<void> {
    this.closed = true;
    const w = this.worker;
    this.worker = undefined;
    if (w) await w.terminate();
  }
}
