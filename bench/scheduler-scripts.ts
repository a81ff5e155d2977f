// Redis CPU per task of each scheduler transition, measured alone (INFO cpu before and after):
// submit, claim (dispatch), settle. A development aid for the hot path: run with
// `npx tsx bench/scheduler-scripts.ts`; it prints one line per transition.
import { Redis } from 'ioredis';
import { ManagedRedis } from '../controlplane/redis/managed.ts';
import { idGenerator } from '../controlplane/scheduler/client.ts';
import { SchedShard } from '../controlplane/scheduler/shard.ts';
import { normalizeBatch } from '../controlplane/scheduler/tasks.ts';
import { DEFAULT_SETTLE_ARGS } from '../controlplane/scheduler/worker.ts';
import { Keys } from '../controlplane/store/keys.ts';
import { redisCpuS } from './lib/redis-cpu.ts';
import { redisInstructions } from './scheduler-profile.ts';

const N = Number(process.env['BENCH_TASKS'] ?? 20_000);
const BATCH = Number(process.env['BENCH_BATCH'] ?? 100);
/** Bytes of each submitted task's payload (a JSON string), 0 = none. */
const PAYLOAD_BYTES = Number(process.env['BENCH_PAYLOAD_BYTES'] ?? 0);

const server = await ManagedRedis.start({
  ...(process.env['AOF'] === 'no' ? {} : { appendfsync: 'everysec' as const }),
  startTimeoutMs: 120_000, // valgrind starts slowly
});
try {
  process.stderr.write(`redis-server pid ${server.pid}\n`);
  // Time to attach a profiler (perf record -p <pid>) before the measurements start.
  await new Promise((res) => setTimeout(res, Number(process.env['BENCH_ATTACH_MS'] ?? 0)));
  const r = new Redis(server.url);
  const shard = new SchedShard(r, new Keys('p'), '0');
  const measure = async (what: string, fn: () => Promise<void>) => {
    const c0 = await redisCpuS(r);
    const t0 = Date.now();
    const n0 = process.cpuUsage();
    const ins = await redisInstructions(server.pid, fn);
    const n1 = process.cpuUsage(n0);
    const us = ((await redisCpuS(r)) - c0) * 1e6;
    process.stdout.write(
      `${what}: ${(us / N).toFixed(1)} us redis cpu, ${(ins / N / 1000).toFixed(1)} k redis instructions, ${((n1.user + n1.system) / N).toFixed(1)} us node cpu per task, ${Date.now() - t0} ms wall\n`,
    );
  };
  const newId = idGenerator('b');
  const now = Date.now();
  await measure('submit', async () => {
    for (let i = 0; i < N; i += 1000) {
      const tasks = normalizeBatch(
        Array.from({ length: 1000 }, () => ({
          type: 'noop',
          ...(PAYLOAD_BYTES > 0 ? { payload: 'x'.repeat(PAYLOAD_BYTES - 2) } : {}),
        })),
        newId,
        { payloadBytesMax: 65536 },
      );
      await shard.submit(tasks, now);
    }
  });
  await shard.heartbeat(
    {
      workerId: 'w1',
      heartbeatMs: 60_000,
      capacity: { cpu: 1e5, memMb: 1e6 },
      slots: 1e5,
      host: 'h',
      pid: 1,
      renew: [],
    },
    now,
  );
  const leased: { taskId: string; token: string }[] = [];
  await measure(`dispatch (batch ${BATCH}, window 0)`, async () => {
    const ids = await r.zrange(shard.k.runnable(), 0, -1);
    for (let i = 0; i < ids.length; i += BATCH) {
      const part = ids.slice(i, i + BATCH);
      await shard.dispatch(
        {
          leaseMs: 60_000,
          retryLimit: 3,
          backoffMs: 100,
          window: 0,
          workersMax: 10,
          windowPerSlot: 4,
          windowMin: 0,
          assignments: part.map((taskId) => ({ taskId, workerId: 'w1' })),
        },
        now,
      );
      for (const taskId of part) leased.push({ taskId, token: '' });
    }
  });
  // The lease tokens, read outside the measurements.
  const pipe = r.pipeline();
  for (const l of leased) pipe.hget(shard.k.task(l.taskId), 'lease');
  ((await pipe.exec()) ?? []).forEach(([, v], i) => {
    (leased[i] as { token: string }).token = String(v).split('\t')[0] as string;
  });
  await measure(`settle (batch ${BATCH})`, async () => {
    for (let i = 0; i < leased.length; i += BATCH) {
      await shard.settle(
        leased.slice(i, i + BATCH).map((l) => ({ ...l, outcome: 'ok' as const, detail: null })),
        DEFAULT_SETTLE_ARGS,
        now + 5,
      );
    }
  });
  const done = await r.zcard(shard.k.done());
  process.stdout.write(`done ${done}/${N}\n`);
  r.disconnect();
} finally {
  await server.stop();
}
