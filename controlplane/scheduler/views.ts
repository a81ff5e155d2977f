// Builds the policy's views from rows: a TaskView from what the dispatch script returns for a
// runnable task (its attrs, attempts and ready time, the tenant's running count and service,
// the job's remaining work), or from a full task row (speculation).
import type { Demand, TaskView } from '../../policies/scheduling/index.ts';
import type { TaskAttrs, TaskRow } from './schema.ts';
import type { DispatchReply } from './shard.ts';

function demandOf(a: TaskAttrs): Demand {
  return {
    type: a.type,
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

/**
 * What the dispatcher holds of a runnable task between rounds: its attrs and its view, built
 * once and refreshed in place each round (policies are pure and keep nothing between calls, so
 * reusing the object is safe, and a round allocates nothing for the tasks it saw before).
 */
export interface KnownTask {
  readyAt: number;
  attrs: TaskAttrs;
  view: TaskView;
}

/**
 * Views of the window's tasks, from their entries and, for entries up to the marker, what the
 * caller held already (`known`, updated here). Entries it cannot resolve are left out and
 * reported, so the next round asks for everything again.
 */
export function taskViews(
  reply: DispatchReply,
  known: Map<string, KnownTask>,
): { views: TaskView[]; unresolved: number } {
  const views: TaskView[] = [];
  let unresolved = 0;
  for (const raw of reply.tasks) {
    let k: KnownTask | undefined;
    if (raw.attrs) {
      const a = raw.attrs;
      k = {
        readyAt: raw.readyAt,
        attrs: a,
        view: view(raw.id, a, raw.readyAt, raw.attempts ?? 0, 0, undefined),
      };
      known.set(raw.id, k);
    } else {
      k = known.get(raw.id);
      if (!k || k.readyAt !== raw.readyAt) {
        unresolved++;
        continue;
      }
    }
    const v = k.view;
    // A task that is its own job has no job row: its job's remaining work is its own.
    v.jobRemainingWorkMs = reply.jobRemainingWorkMs.get(k.attrs.job) ?? k.attrs.estimate_ms ?? 0;
    const tenant = reply.tenants.get(k.attrs.tenant);
    v.tenantRunning = tenant?.running ?? 0;
    v.tenantServedMs = tenant?.servedMs ?? 0;
    views.push(v);
  }
  return { views, unresolved };
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
