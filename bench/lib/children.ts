// Benchmark client processes: forks a TypeScript module through tsx with an IPC channel,
// waits for it to say it is ready, and collects its final report.
import { fork, type ChildProcess } from 'node:child_process';

export interface Child<R> {
  proc: ChildProcess;
  ready: Promise<void>;
  /** Asks the child to finish and resolves with its report. */
  finish(): Promise<R>;
}

export function forkChild<R>(modulePath: string, args: string[]): Child<R> {
  const proc = fork(modulePath, args, {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let report: (r: R) => void = () => {};
  const done = new Promise<R>((resolve) => (report = resolve));
  const ready = new Promise<void>((resolve, reject) => {
    proc.on('message', (m: { type: string; report?: R }) => {
      if (m.type === 'ready') resolve();
      if (m.type === 'report') report(m.report as R);
    });
    proc.once('exit', (code) => reject(new Error(`bench child ${modulePath} exited with ${code}`)));
  });
  return {
    proc,
    ready,
    finish: async () => {
      proc.send({ type: 'finish' });
      return done;
    },
  };
}

/**
 * Sends `msg` to a child and resolves with its first message of type `reply`. Rejects when the
 * child reports an error (servePhases), exits, or stays silent past `timeoutMs`, so a child
 * that failed cannot leave the benchmark waiting forever.
 */
export function request<T>(
  child: Child<unknown>,
  msg: object,
  reply: string,
  timeoutMs = 120_000,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      child.proc.off('message', on);
      child.proc.off('exit', exited);
    };
    const on = (m: { type: string; message?: string }) => {
      if (m.type === reply) {
        done();
        resolve(m as T);
      } else if (m.type === 'error') {
        done();
        reject(new Error(`bench child: ${m.message ?? 'failed'}`));
      }
    };
    const exited = (code: number | null) => {
      done();
      reject(new Error(`bench child exited with ${code} before '${reply}'`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`bench child: no '${reply}' within ${timeoutMs} ms`));
    }, timeoutMs);
    child.proc.on('message', on);
    child.proc.once('exit', exited);
    child.proc.send(msg);
  });
}

/**
 * The child side of a bench process that runs phases (forkChild's protocol):
 *   { type: 'start', ... }  runs `start`, then replies { type: 'started' };
 *   { type: 'mark' }        replies { type: 'marked', cpuUs }: the CPU used since `start`
 *                           finished or the last mark, whichever came later (a phase's window);
 *   { type: 'stop' }        takes the CPU used since `start` finished, runs `stop`, and replies
 *                           { type: 'stopped', cpuUs, ...what `stop` returned };
 *   { type: 'finish' }      sends an empty report and exits.
 * A start or stop that fails replies { type: 'error', message } (request() rejects on it).
 */
export function servePhases<S>(
  start: (command: S) => Promise<void>,
  stop: () => Promise<Record<string, unknown>>,
): void {
  let cpu0 = process.cpuUsage();
  let mark0 = cpu0;
  const used = (from: NodeJS.CpuUsage) => {
    const cpu = process.cpuUsage(from);
    return cpu.user + cpu.system;
  };
  const failed = (err: unknown) =>
    process.send?.({ type: 'error', message: (err as Error).stack ?? String(err) });
  process.on('message', (m: { type: string }) => {
    if (m.type === 'start') {
      start(m as S).then(() => {
        cpu0 = mark0 = process.cpuUsage();
        process.send?.({ type: 'started' });
      }, failed);
    } else if (m.type === 'mark') {
      const cpuUs = used(mark0);
      mark0 = process.cpuUsage();
      process.send?.({ type: 'marked', cpuUs });
    } else if (m.type === 'stop') {
      const cpuUs = used(cpu0);
      stop().then((fields) => process.send?.({ type: 'stopped', ...fields, cpuUs }), failed);
    } else if (m.type === 'finish') {
      process.send?.({ type: 'report', report: {} }, () => process.exit(0));
    }
  });
  process.send?.({ type: 'ready' });
}
