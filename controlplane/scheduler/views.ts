// Builds the policy's TaskView from what the dispatch script returns: the static part stored on
// the row at submit (parsed once per task and cached, bounded), and the parts that move (ready
// time, attempts, the tenant's running count and service, the job's remaining work).
import type { Demand, TaskView } from '../../policies/scheduling/index.ts';
import type { TaskRow } from './schema.ts';
import type { DispatchReply, RawTask } from './shard.ts';
import type { StaticView } from './tasks.ts';

function demandOf(s: StaticView): Demand {
  return {
    cpu: s.c,
    memMb: s.m,
    gpu: s.g,
    ...(s.g > 0 ? { gpuMilli: s.gm } : {}),
    ...(s.gl ? { gpuModels: s.gl } : {}),
  };
}

export class ViewCache {
  private readonly cache = new Map<string, StaticView>();
  constructor(private readonly max = 50_000) {}

  private parse(raw: RawTask): StaticView {
    let v = this.cache.get(raw.id);
    if (v) return v;
    v = JSON.parse(raw.view) as StaticView;
    // Map order is insertion order: dropping the first entry drops the oldest.
    if (this.cache.size >= this.max) {
      const first = this.cache.keys().next();
      if (!first.done) this.cache.delete(first.value);
    }
    this.cache.set(raw.id, v);
    return v;
  }

  forget(id: string): void {
    this.cache.delete(id);
  }

  views(reply: DispatchReply): TaskView[] {
    return reply.tasks.map((raw) => {
      const s = this.parse(raw);
      const tenant = reply.tenants.get(raw.tenant);
      const view: TaskView = {
        id: raw.id,
        jobId: s.j,
        tenant: s.t,
        priority: s.p,
        demand: demandOf(s),
        jobRemainingWorkMs: reply.jobRemainingWorkMs.get(raw.job) ?? 0,
        criticalPathMs: s.cp,
        submittedAt: s.s,
        readyAt: raw.readyAt,
        attempts: raw.attempts,
        stageDepth: raw.depth,
        tenantRunning: tenant?.running ?? 0,
        tenantServedMs: tenant?.servedMs ?? 0,
      };
      if (s.e !== undefined) view.estimateMs = s.e;
      return view;
    });
  }
}

/** The view of a task from its full row (speculation, queries); tenant numbers left at 0. */
export function viewFromRow(row: TaskRow): TaskView {
  const s = JSON.parse(row.view) as StaticView;
  const view: TaskView = {
    id: row.id,
    jobId: s.j,
    tenant: s.t,
    priority: s.p,
    demand: demandOf(s),
    jobRemainingWorkMs: 0,
    criticalPathMs: s.cp,
    submittedAt: s.s,
    readyAt: row.ready_at ?? s.s,
    attempts: row.attempts,
    stageDepth: row.depth,
    tenantRunning: 0,
    tenantServedMs: 0,
  };
  if (s.e !== undefined) view.estimateMs = s.e;
  return view;
}
