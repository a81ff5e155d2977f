// What every benchmark, experiment and CLI run shares: the machine's details for result
// files, writing those files, and the `--json` contract (one JSON object as the last line).
import { mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { cpus, totalmem, platform, release, arch, tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { execFileSync } from 'node:child_process';

export interface MachineInfo {
  cpu_model: string;
  cpus: number;
  memory_gib: number;
  platform: string;
  arch: string;
  node: string;
  redis_server?: string;
  /**
   * Share of CPU time the hypervisor gave to other guests while this run lasted (Linux
   * `steal`, in %). On a shared VM, latency tails move with it, so it is kept with the figures.
   */
  cpu_steal_pct?: number;
}

/** The `cpu` line of /proc/stat: total and steal jiffies; undefined off Linux. */
function cpuTimes(): { total: number; steal: number } | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
    if (f.length < 8 || f.some((x) => !Number.isFinite(x))) return undefined;
    return { total: f.reduce((a, b) => a + b, 0), steal: f[7] as number };
  } catch {
    return undefined;
  }
}

const atStart = cpuTimes();

function redisVersion(): string | undefined {
  try {
    return execFileSync('redis-server', ['--version'], { encoding: 'utf8' }).trim().split(' ')[2];
  } catch {
    return undefined;
  }
}

export function machineInfo(): MachineInfo {
  const c = cpus();
  const info: MachineInfo = {
    cpu_model: c[0]?.model ?? 'unknown',
    cpus: c.length,
    memory_gib: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    platform: `${platform()} ${release()}`,
    arch: arch(),
    node: process.version,
  };
  const now = cpuTimes();
  if (atStart && now && now.total > atStart.total)
    info.cpu_steal_pct =
      Math.round(((now.steal - atStart.steal) / (now.total - atStart.total)) * 1000) / 10;
  const redis = redisVersion();
  if (redis) info.redis_server = redis.replace(/^v=/, '');
  return info;
}

/** Writes `{ name, date, machine, ...result }` as pretty JSON; returns the path. */
export function writeResultFile(path: string, name: string, result: object): string {
  mkdirSync(dirname(path), { recursive: true });
  const body = { name, date: new Date().toISOString(), machine: machineInfo(), ...result };
  writeFileSync(path, JSON.stringify(body, null, 2) + '\n');
  return path;
}

/**
 * Where a benchmark writes its result file: `headline` for the benchmark as documented; the
 * temp directory for a development run, one that sets any of `devVars` (a size or setting),
 * so a quick run never replaces the file the README's figures come from.
 */
export function benchResultPath(headline: string, devVars: readonly string[]): string {
  return devVars.some((v) => process.env[v] !== undefined)
    ? join(tmpdir(), `dev-${basename(headline)}`)
    : headline;
}

export function readResultFile<T = Record<string, unknown>>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

let failureLine = false;

/**
 * Whether the command line asks for machine-readable output. When it does, a run that fails
 * with an uncaught error still ends with one JSON object on stdout: `{ error }` (errorJson).
 */
export function wantsJson(argv: readonly string[] = process.argv): boolean {
  const json = argv.includes('--json');
  if (json && !failureLine) {
    failureLine = true;
    // The monitor sees uncaught exceptions and unhandled rejections before the process exits;
    // stdout to a pipe or a file is written synchronously on Linux, so the line is not lost.
    process.on('uncaughtExceptionMonitor', (err) => writeErrorLine(err));
  }
  return json;
}

/**
 * Prints `{ error }` as a line of stdout: the error's code (`code`, else its own code or
 * name), message, and the details a typed error carries.
 */
export function writeErrorLine(err: unknown, code?: string): void {
  const e = (err instanceof Error ? err : new Error(String(err))) as Error & {
    code?: unknown;
    details?: unknown;
  };
  const details = e.details && typeof e.details === 'object' ? e.details : {};
  const error = { ...details, code: code ?? String(e.code ?? e.name), message: e.message };
  process.stdout.write(JSON.stringify({ error }) + '\n');
}

/**
 * Reports a failure a command answers itself: `line` on stderr (then `usage`, the command's
 * usage text, for a usage error: code 'usage'), and when the command line has --json also
 * `{ error }` as the last stdout line. Returns the exit code: 2 for a usage error, else 1.
 */
export function commandFailed(
  line: string,
  err: unknown,
  argv: readonly string[],
  usage?: string,
): number {
  process.stderr.write(`${line}\n${usage === undefined ? '' : `\n${usage}`}`);
  if (argv.includes('--json')) writeErrorLine(err, usage === undefined ? undefined : 'usage');
  return usage === undefined ? 1 : 2;
}

/** Reports a failed run: on stderr, and with `json` also as `{ error }`, the last stdout line. */
export function emitError(prefix: string, err: unknown, json: boolean): void {
  process.stderr.write(
    `${prefix}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  if (json) writeErrorLine(err);
}

/**
 * Prints the human summary, then, with --json, the result as one JSON object on the last
 * line. Progress and logs go to stderr so stdout stays parseable.
 */
export function emitResult(human: string, result: object, json: boolean): void {
  if (!json) {
    process.stdout.write(human.endsWith('\n') ? human : human + '\n');
    return;
  }
  process.stdout.write(JSON.stringify(result) + '\n');
}
