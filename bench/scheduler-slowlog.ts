// Development aid for bench:scheduler: where the Redis time goes, per scheduler script. Run it
// beside a benchmark, against its redis-server (the URL bench:scheduler prints):
//   npx tsx bench/scheduler-slowlog.ts redis://127.0.0.1:<port>
// It logs every command (slowlog-log-slower-than 0), drains SLOWLOG every 200 ms and, on Ctrl-C
// (or SIGTERM) or when the server goes away, prints the time per script (EVALSHA named by the
// sha1 of each scheduler script's source) and per command. Commands a script calls are logged
// on their own too, and their time is also inside the script's. Under valgrind the
// microseconds are valgrind's, but their shares hold. The slowlog settings are put back on exit.
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { schedulerScripts, type SchedulerScript } from '../controlplane/scheduler/scripts.ts';

const url = process.argv[2];
if (!url) throw new Error('usage: scheduler-slowlog.ts <redis url>');
const redis = new Redis(url, { maxRetriesPerRequest: 0, retryStrategy: () => null });
let stopped = false;
redis.on('error', () => (stopped = true));
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => (stopped = true));

const scriptBySha = new Map<string, string>();
for (const name of schedulerScripts.names() as SchedulerScript[])
  scriptBySha.set(createHash('sha1').update(schedulerScripts.source(name)).digest('hex'), name);

const [, threshold] = (await redis.config('GET', 'slowlog-log-slower-than')) as string[];
const [, maxLen] = (await redis.config('GET', 'slowlog-max-len')) as string[];
await redis.config('SET', 'slowlog-log-slower-than', '0');
await redis.config('SET', 'slowlog-max-len', '100000');
await redis.slowlog('RESET');

const totals = new Map<string, { calls: number; us: number }>();
type Entry = [id: number, at: number, us: number, args: string[]];
while (!stopped) {
  await new Promise((r) => setTimeout(r, 200));
  const log = (await redis.slowlog('GET', 100_000).catch(() => [])) as Entry[];
  await redis.slowlog('RESET').catch(() => undefined);
  for (const [, , us, args] of log) {
    const cmd = String(args[0]).toLowerCase();
    const name =
      cmd === 'evalsha' || cmd === 'eval'
        ? (scriptBySha.get(
            cmd === 'evalsha'
              ? String(args[1])
              : createHash('sha1').update(String(args[1])).digest('hex'),
          ) ?? `${cmd} (other)`)
        : cmd;
    const t = totals.get(name) ?? { calls: 0, us: 0 };
    t.calls++;
    t.us += us;
    totals.set(name, t);
  }
}
const scripts = new Set(scriptBySha.values());
const inScripts = [...totals].filter(([k]) => scripts.has(k)).reduce((s, [, t]) => s + t.us, 0);
for (const [name, t] of [...totals].sort((a, b) => b[1].us - a[1].us))
  process.stdout.write(
    `${name.padEnd(16)} ${String(t.calls).padStart(8)} calls ${String(t.us).padStart(12)} us` +
      `${scripts.has(name) ? `  ${((100 * t.us) / inScripts).toFixed(1)}% of script time` : ''}` +
      `  ${(t.us / t.calls).toFixed(0)} us/call\n`,
  );
if (redis.status === 'ready') {
  await redis.config('SET', 'slowlog-log-slower-than', threshold ?? '10000');
  await redis.config('SET', 'slowlog-max-len', maxLen ?? '128');
}
redis.disconnect();
