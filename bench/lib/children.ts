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
