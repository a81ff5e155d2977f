// Builds the policy's views from rows: a TaskView from what the dispatch script returns for a
// runnable task (its attrs, attempts and ready time, the tenant's running count and service,
// the job's remaining work), or from a full task row (speculation).
import type { Demand, TaskView } from '../../policies/scheduling/index.ts';
import type { TaskAttrs, TaskRow } from './schema.ts';
import type { DispatchReply } from './shard.ts';

function demandOf(a: TaskAttrs): Demand {
  return {
    cpu: a.cpu_m / 1000,
    memMb: a.mem_mb,
    gpu: a.gpu,
    ...(a.gpu > 0 ? { gpuMilli: a.gpu_milli } : {}),
    ...(a.gpu_models !== '' ? { gpuModels: a.gpu_models.split(',') } : {}),
  };
}

function view(
  id: string,
  a: TaskAttrs,
  readyAt: number,
  attempts: number,
  jobRemainingWorkMs: number,
  tenant: { running: number; servedMs: number } | undefined,
): TaskView {
  const v: TaskView = {
    id,
    jobId: a.job,
    tenant: a.tenant,
    priority: a.priority,
    demand: demandOf(a),
    jobRemainingWorkMs,
    criticalPathMs: a.critical_ms,
    submittedAt: a.submitted_at,
    readyAt,
    attempts,
    stageDepth: a.depth,
    tenantRunning: tenant?.running ?? 0,
    tenantServedMs: tenant?.servedMs ?? 0,
  };
  if (a.estimate_ms !== undefined) v.estimateMs = a.estimate_ms;
  return v;
}

export function taskViews(reply: DispatchReply): TaskView[] {
  return reply.tasks.map((raw) =>
    view(
      raw.id,
      raw.attrs,
      raw.readyAt,
      raw.attempts,
      // A task that is its own job has no job row: its job's remaining work is its own.
      reply.jobRemainingWorkMs.get(raw.attrs.job) ?? raw.attrs.estimate_ms ?? 0,
      reply.tenants.get(raw.attrs.tenant),
    ),
  );
}

/** The view of a task from its row; tenant numbers left at 0, job work its own estimate. */
export function viewFromRow(row: TaskRow): TaskView {
  return view(
    row.id,
    row,
    row.ready_at ?? row.submitted_at,
    row.attempts,
    row.estimate_ms ?? 0,
    undefined,
  );
}
