// Throughput of the cluster simulator on TPC-H DAGs at 85% load (Decima's setting: 50 one-core
// executors, Poisson arrivals), in events per second. Loading and the workload draw are
// excluded; each policy runs once untimed (JIT warm-up), then repeatedly until MIN_MS have
// passed (and at least MIN_RUNS times). The median run by wall clock counts: `_events_per_s`
// is its wall-clock rate and `_events_per_cpu_s` its rate per CPU second of this process (the
// same run); `_best_events_per_s` is the fastest run's wall-clock rate. Events are the
// simulator's own: arrivals, task ends, retries, straggler checks and dispatch completions;
// every task end is followed by a policy decision, so a rate includes the policy's cost.
import { loadTpchDags, tpchWorkloadFrom } from '../envs/loaders/jobs-tpch.ts';
import { createSim, summarise, uniformWorkers } from '../envs/scheduler/index.ts';
import { SCHEDULING_POLICY_NAMES, createSchedulingPolicy } from '../policies/scheduling/index.ts';

const MIN_MS = 1500;
/**
 * At least this many timed runs, however long they take, so the median is of at least five
 * (a run takes a second or more on a shared machine).
 */
const MIN_RUNS = 5;
/** Bound on timed runs per policy, whatever the clock says. */
const MAX_RUNS = 1000;

export interface SchedulerBenchOptions {
  jobs?: number;
  minMs?: number;
  /** Policies to time (default all baselines); `fifo` is the headline number. */
  policies?: readonly string[];
}

export async function benchSchedulerSim(
  opts: SchedulerBenchOptions = {},
): Promise<Record<string, number>> {
  const workers = uniformWorkers(50, { cpu: 1, memMb: 4096, gpu: 0 });
  const workload = tpchWorkloadFrom(loadTpchDags(), {
    workers,
    jobs: opts.jobs ?? 200,
    load: 0.85,
    seed: 1,
  });
  const minMs = opts.minMs ?? MIN_MS;
  const out: Record<string, number> = {
    jobs: workload.jobs.length,
    workers: workers.length,
    load: 0.85,
  };
  for (const name of opts.policies ?? SCHEDULING_POLICY_NAMES) {
    // Building the simulator (jobs, DAG critical paths) is setup, like loading: not timed.
    const fresh = () => {
      const policy = createSchedulingPolicy(name);
      const sim = createSim(workload, { workers });
      return { sim, go: () => sim.run((r, f, now) => policy.pick(r, f, now)) };
    };
    const warm = fresh();
    warm.go();
    const first = warm.sim;
    const events = first.events;
    // Every timed run's wall clock and CPU time; the median run by wall clock counts, with the
    // CPU time of that same run. The fastest run is kept too, named as such.
    const timed: { wallMs: number; cpuMs: number }[] = [];
    const t0 = performance.now();
    while ((performance.now() - t0 < minMs || timed.length < MIN_RUNS) && timed.length < MAX_RUNS) {
      const { go } = fresh();
      const cpu0 = process.cpuUsage();
      const start = performance.now();
      go();
      const wallMs = performance.now() - start;
      const cpu = process.cpuUsage(cpu0);
      timed.push({ wallMs, cpuMs: (cpu.user + cpu.system) / 1000 });
    }
    timed.sort((a, b) => a.wallMs - b.wallMs);
    // The middle run (for an even count, the slower of the two middle ones).
    const median = timed[Math.floor(timed.length / 2)]!;
    const perS = (ms: number) => Math.round(events / (ms / 1000));
    const rate = perS(median.wallMs);
    out[`${name}_events_per_s`] = rate;
    out[`${name}_events_per_cpu_s`] = perS(median.cpuMs);
    out[`${name}_best_events_per_s`] = perS(timed[0]!.wallMs);
    out[`${name}_runs`] = timed.length;
    out[`${name}_events_per_run`] = events;
    out[`${name}_mean_jct_s`] = Math.round((summarise(first)['mean_jct_s'] ?? 0) * 1000) / 1000;
    process.stderr.write(
      `sim-scheduler: ${name} ${rate} events/s, median of ${timed.length} runs ` +
        `(${events} events per run)\n`,
    );
  }
  // The headline: FIFO's median-run rate, or the slowest policy timed when FIFO was not.
  const rates = Object.entries(out).filter(
    ([k]) => k.endsWith('_events_per_s') && !k.endsWith('_best_events_per_s'),
  );
  out['scheduler_events_per_s'] = out['fifo_events_per_s'] ?? Math.min(...rates.map(([, v]) => v));
  return out;
}
