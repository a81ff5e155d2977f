// A generic jobs CSV: one single-task job per row. The header names the columns, in any order:
// `arrival_s` and `duration_s` are required; `cpu` (cores, default 1; counted in millicores, so
// at least 0.001 unless the job asks for a GPU), `mem` (MB, default 0),
// `gpu` (default 0: a fraction below 1 is a share of one device, else a whole number of
// devices), `tenant` (default "default") and `priority` (default 0) are optional. Any other
// column is an error, so a misspelt name is not silently ignored. Arrivals are replayed from the
// earliest one (a trace in epoch seconds loads like one that starts at 0).
import type { Demand } from '../../policies/scheduling/index.ts';
import type { JobSpec, Workload } from '../scheduler/types.ts';
import { columns, readCsv } from './csv.ts';
import { Arrivals, FieldReader, MAX_TIME_SECONDS, MAX_TRACE_SECONDS } from './jobs-common.ts';

export const JOBS_CSV_COLUMNS = [
  'arrival_s',
  'duration_s',
  'cpu',
  'mem',
  'gpu',
  'tenant',
  'priority',
] as const;

export function loadJobsCsv(file: string): Workload {
  const csv = readCsv(file);
  const col = columns(
    csv,
    ['arrival_s', 'duration_s'],
    ['cpu', 'mem', 'gpu', 'tenant', 'priority'],
    false,
  );
  const r = new FieldReader(file, csv.header);
  const arrivals = new Arrivals(r, 'arrival_s');
  const jobs: JobSpec[] = csv.rows.map((row, k) => {
    const gpu = r.optionalNumber(row, col.gpu, 0, { min: 0 });
    if (gpu > 1 && !Number.isInteger(gpu))
      r.fail(row, `gpu above 1 must be a whole number of devices, got ${gpu}`);
    const demand: Demand = {
      cpu: r.optionalNumber(row, col.cpu, 1, { min: 0 }),
      memMb: r.optionalNumber(row, col.mem, 0, { min: 0 }),
      gpu: gpu > 0 && gpu < 1 ? 1 : gpu,
    };
    if (gpu > 0 && gpu < 1) {
      demand.gpuMilli = Math.round(gpu * 1000);
      if (demand.gpuMilli < 1) r.fail(row, `gpu share must be at least 0.001, got ${gpu}`);
    }
    // The simulator counts cores in millicores: a demand that rounds to 0 takes no CPU at all.
    if (Math.round(demand.cpu * 1000) === 0 && demand.gpu === 0) {
      r.fail(
        row,
        demand.cpu === 0
          ? 'a job must ask for cpu > 0 or gpu > 0'
          : `cpu must be at least 0.001 (cores are counted in millicores), got ${demand.cpu}`,
      );
    }
    const runMs = Math.round(
      r.number(row, col.duration_s, { min: 0, max: MAX_TRACE_SECONDS }) * 1000,
    );
    const tenant = col.tenant >= 0 ? r.text(row, col.tenant) : '';
    arrivals.add(row, r.number(row, col.arrival_s, { min: 0, max: MAX_TIME_SECONDS }));
    return {
      id: `job${k}`,
      arrivalMs: 0,
      tenant: tenant === '' ? 'default' : tenant,
      priority: r.optionalNumber(row, col.priority, 0),
      stages: [{ numTasks: 1, parents: [], demand, durationsMs: [runMs], estimateMs: runMs }],
    };
  });
  if (jobs.length === 0) r.fail({ line: 2 }, 'no jobs: the file has a header but no rows');
  arrivals.rebasedMs().forEach((ms, k) => ((jobs[k] as JobSpec).arrivalMs = ms));
  return { name: file, jobs };
}
