// Development aids for bench:scheduler. With BENCH_PROFILE_DIR set, a process records a V8 CPU
// profile (node:inspector) and writes it there when told to stop. With BENCH_CALLGRIND=1 and a
// `redis-server` wrapper on the PATH that runs the real one under valgrind's callgrind, the
// instructions redis-server executes during a phase are counted exactly: unlike CPU time, the
// machine's load cannot disturb that count. Otherwise nothing happens.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';

export async function startProfile(name: string): Promise<() => Promise<void>> {
  const dir = process.env['BENCH_PROFILE_DIR'];
  if (!dir) return async () => {};
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return async () => {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(join(dir, `${name}-${process.pid}.cpuprofile`), JSON.stringify(profile));
    session.disconnect();
  };
}

export const callgrindEnabled = process.env['BENCH_CALLGRIND'] === '1';

/** Instructions redis-server executed while `fn` ran; NaN unless under callgrind. */
export async function redisInstructions(
  pid: number | undefined,
  fn: () => Promise<void>,
): Promise<number> {
  if (pid === undefined || !callgrindEnabled) {
    await fn();
    return Number.NaN;
  }
  const ctl = (op: string) =>
    execFileSync('callgrind_control', [op, String(pid)], { stdio: 'ignore' });
  ctl('-z');
  await fn();
  ctl('-d');
  const dir = process.env['BENCH_CALLGRIND_DIR'] ?? '/tmp';
  const files = readdirSync(dir)
    .filter((f) => f.startsWith(`cg.out.${pid}.`))
    .sort((x, y) => Number(x.split('.').pop()) - Number(y.split('.').pop()));
  const last = files[files.length - 1];
  if (!last) return Number.NaN;
  const text = readFileSync(join(dir, last), 'utf8');
  return Number(/^(?:summary|totals): (\d+)/m.exec(text)?.[1] ?? Number.NaN);
}
