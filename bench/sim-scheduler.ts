// Throughput of the cluster simulator on TPC-H DAGs at 85% load (Decima's setting: 50 one-core
// executors, Poisson arrivals), in events per second. Loading and the workload draw are
// excluded; each policy runs once untimed (JIT warm-up), then repeatedly until MIN_MS have
// passed. Events are the simulator's own: arrivals, task ends, retries, straggler checks and
// dispatch completions.
import { loadTpchDags, tpchWorkloadFrom } from '../envs/loaders/jobs-tpch.ts';
import { createSim, summarise, uniformWorkers } from '../envs/scheduler/index.ts';
import { SCHEDULING_POLICY_NAMES, createSchedulingPolicy } from '../policies/scheduling/index.ts';

const MIN_MS = 1500;
const MIN_RUNS = 2;
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
    const once = () => {
      const policy = createSchedulingPolicy(name);
      const sim = createSim(workload, { workers });
      sim.run((r, f, now) => policy.pick(r, f, now));
      return sim;
    };
    const first = once();
    const events = first.events;
    let runs = 0;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    let elapsedMs = 0;
    while ((elapsedMs < minMs || runs < MIN_RUNS) && runs < MAX_RUNS) {
      once();
      runs++;
      elapsedMs = performance.now() - t0;
    }
    const cpu = process.cpuUsage(cpu0);
    const rate = Math.round((runs * events) / (elapsedMs / 1000));
    out[`${name}_events_per_s`] = rate;
    out[`${name}_events_per_cpu_s`] = Math.round((runs * events) / ((cpu.user + cpu.system) / 1e6));
    out[`${name}_events_per_run`] = events;
    out[`${name}_mean_jct_s`] = Math.round((summarise(first)['mean_jct_s'] ?? 0) * 1000) / 1000;
    process.stderr.write(`sim-scheduler: ${name} ${rate} events/s (${events} events per run)\n`);
  }
  // The headline: FIFO's rate, or the slowest policy timed when FIFO was not.
  const rates = Object.entries(out).filter(([k]) => k.endsWith('_events_per_s'));
  out['scheduler_events_per_s'] = out['fifo_events_per_s'] ?? Math.min(...rates.map(([, v]) => v));
  return out;
}
