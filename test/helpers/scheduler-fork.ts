// Forks a scheduler worker child (scheduler-worker-child.ts) and follows its messages.
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { RedisTarget } from '../../controlplane/redis/connect.ts';

export interface ChildMessage {
  type: 'ready' | 'started' | 'settled';
  id?: string;
  token?: string;
  status?: string;
}

export interface ForkedWorker {
  proc: ChildProcess;
  messages: ChildMessage[];
  /** Resolves with the first message (seen or to come) that matches. */
  next(
    match: (m: ChildMessage) => boolean,
    what: string,
    timeoutMs?: number,
  ): Promise<ChildMessage>;
  /** SIGKILL, resolved once the process is gone. */
  kill(): Promise<void>;
}

export function forkWorker(config: {
  target: RedisTarget;
  prefix: string;
  id: string;
  concurrency: number;
  mode: 'hang' | 'finish';
  delayMs?: number;
}): ForkedWorker {
  const proc = fork(
    join(import.meta.dirname, 'scheduler-worker-child.ts'),
    [JSON.stringify(config)],
    {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    },
  );
  const messages: ChildMessage[] = [];
  const waiters: (() => void)[] = [];
  proc.on('message', (m: ChildMessage) => {
    messages.push(m);
    waiters.splice(0).forEach((w) => w());
  });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  return {
    proc,
    messages,
    async next(match, what, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = messages.find(match);
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`worker ${config.id}: no message ${what}`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 100);
        });
      }
    },
    async kill() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
}
