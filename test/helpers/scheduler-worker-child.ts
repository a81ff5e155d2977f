// A scheduler worker in a child process, for fault tests (SIGKILL, SIGSTOP). Started with
// fork(); argv: a JSON config { target, prefix, id, concurrency, mode }. It tells the parent
// { type: 'ready' } once registered and { type: 'started', id, token } when a task starts;
// mode 'hang' never finishes a task, 'finish' completes each after `delayMs`, reporting
// { type: 'settled', id, status } once its settle is acknowledged.
import { connect, type RedisTarget } from '../../controlplane/redis/connect.ts';
import { createLogger } from '../../controlplane/log.ts';
import { WorkerRuntime } from '../../controlplane/scheduler/worker.ts';
import { Keys } from '../../controlplane/store/keys.ts';

interface ChildConfig {
  target: RedisTarget;
  prefix: string;
  id: string;
  concurrency: number;
  mode: 'hang' | 'finish';
  delayMs?: number;
  heartbeatMs?: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as ChildConfig;
const redis = connect(config.target);
redis.on('error', () => {});
const send = (m: object) => process.send?.(m);

await WorkerRuntime.start({
  redis,
  keys: new Keys(config.prefix),
  id: config.id,
  concurrency: config.concurrency,
  heartbeatMs: config.heartbeatMs ?? 100,
  idleWaitMs: 100,
  log: createLogger('worker-child', 'silent'),
  handlers: {
    job: async (t) => {
      send({ type: 'started', id: t.id, token: t.token });
      if (config.mode === 'hang') await new Promise(() => {});
      await new Promise((r) => setTimeout(r, config.delayMs ?? 0));
      return { by: config.id };
    },
  },
  onSettled: (item, r) => send({ type: 'settled', id: item.taskId, status: r.status }),
});
send({ type: 'ready' });
