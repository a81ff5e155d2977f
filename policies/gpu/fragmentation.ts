// Fragmentation-aware GPU placement after Weng et al., "Beware of Fragmentation: Scheduling
// GPU-Sharing Workloads with Fragmentation Gradient Descent" (USENIX ATC '23), the paper of the
// Alibaba GPU trace. A node's fragmentation is measured against the workload: for each class of
// task (by CPU and GPU demand, weighted by its share of the workload), the free GPU capacity that
// class could not use there. Placing a task moves the node's fragmentation; FGD picks the node
// and devices whose move is smallest (the steepest descent of expected fragmentation).
import type { Demand, WorkerView } from '../scheduling/types.ts';
import { afterPlacing, cpuMemFit, deviceFree, fits, gpuMilliOf, modelAccepted } from './fit.ts';
import type { Placement, PlacementPolicy } from './placement.ts';

/** A class of task in the target workload and its share of it (shares sum to 1). */
export interface WorkloadClass {
  demand: Demand;
  weight: number;
}

/** Most classes kept by `workloadClasses`; the rest (the rarest) are dropped and shares renormalised. */
export const MAX_WORKLOAD_CLASSES = 128;

/**
 * The workload's distribution of demands, as the paper builds it: tasks grouped by CPU and GPU
 * demand (count and share per device), each class weighted by how many tasks have it.
 */
export function workloadClasses(
  demands: Iterable<Demand>,
  maxClasses = MAX_WORKLOAD_CLASSES,
): WorkloadClass[] {
  const counts = new Map<string, { demand: Demand; n: number }>();
  let total = 0;
  for (const d of demands) {
    const key = `${d.cpu}|${d.gpu}|${d.gpu > 0 ? gpuMilliOf(d) : 0}`;
    const c = counts.get(key);
    if (c) c.n++;
    else
      counts.set(key, {
        demand: { cpu: d.cpu, memMb: 0, gpu: d.gpu, gpuMilli: d.gpu > 0 ? gpuMilliOf(d) : 1000 },
        n: 1,
      });
    total++;
  }
  if (total === 0) return [];
  // Most frequent first; ties by the key's demand so the order never depends on input order.
  const kept = [...counts.values()]
    .sort(
      (a, b) =>
        b.n - a.n ||
        a.demand.gpu - b.demand.gpu ||
        (a.demand.gpuMilli ?? 0) - (b.demand.gpuMilli ?? 0) ||
        a.demand.cpu - b.demand.cpu,
    )
    .slice(0, maxClasses);
  const keptTotal = kept.reduce((s, c) => s + c.n, 0);
  return kept.map((c) => ({ demand: c.demand, weight: c.n / keptTotal }));
}

/**
 * Expected GPU fragmentation of one worker in thousandths of a GPU: for each class, the free
 * GPU capacity the class could not use there (all of it when the class cannot run on the worker
 * at all, or needs no GPU; otherwise the devices with less free than the class's share), weighted
 * by the class's share.
 */
export function nodeFragMilli(w: WorkerView, classes: readonly WorkloadClass[]): number {
  const free = deviceFree(w);
  let total = 0;
  for (const f of free) total += f;
  if (total === 0) return 0;
  let frag = 0;
  for (const c of classes) {
    const d = c.demand;
    if (d.gpu <= 0 || !cpuMemFit(d, w) || !modelAccepted(d, w)) {
      frag += c.weight * total;
      continue;
    }
    const milli = gpuMilliOf(d);
    let usable = 0;
    let stranded = 0;
    for (const f of free) {
      if (f >= milli) usable++;
      else stranded += f;
    }
    frag += c.weight * (usable >= d.gpu ? stranded : total);
  }
  return frag;
}

/**
 * Device choices worth comparing on one worker, in a canonical order (devices with equal free
 * capacity are alike, so one per distinct free value, tightest first). Two workers in the same
 * state get the same list up to device indices, which is what lets `place` memoise.
 */
function candidateDevices(d: Demand, w: WorkerView): number[][] {
  if (d.gpu <= 0) return [[]];
  const free = deviceFree(w);
  const milli = gpuMilliOf(d);
  const ok: number[] = [];
  for (let i = 0; i < free.length; i++) if ((free[i] as number) >= milli) ok.push(i);
  if (ok.length < d.gpu) return [];
  ok.sort((a, b) => (free[a] as number) - (free[b] as number) || a - b);
  // Whole devices are interchangeable; several shares go on the tightest devices.
  if (d.gpu > 1 || milli >= 1000) return [ok.slice(0, d.gpu)];
  const out: number[][] = [];
  let last = -1;
  for (const i of ok) {
    if (free[i] !== last) out.push([i]);
    last = free[i] as number;
  }
  return out;
}

/** A hash of the worker's free state that ignores device order (equal states, equal hashes). */
function stateHash(w: WorkerView): number {
  let h = Math.imul(Math.round(w.free.cpu * 1000), 0x9e3779b1) ^ Math.round(w.free.memMb);
  let sum = 0;
  let squares = 0;
  for (const f of deviceFree(w)) {
    sum += f;
    squares = (squares + Math.imul(f, f)) | 0;
  }
  h = Math.imul(h ^ sum, 0x85ebca6b);
  return (Math.imul(h ^ squares, 0xc2b2ae35) ^ (w.gpuModel?.length ?? 0)) >>> 0;
}

/** Whether two workers are in the same state: cores, memory, model and free device shares. */
function sameState(a: WorkerView, b: WorkerView): boolean {
  if (a.free.cpu !== b.free.cpu || a.free.memMb !== b.free.memMb || a.gpuModel !== b.gpuModel) {
    return false;
  }
  const x = deviceFree(a);
  const y = deviceFree(b);
  if (x.length !== y.length) return false;
  if (x.length > 30) {
    const sx = [...x].sort((p, q) => p - q);
    const sy = [...y].sort((p, q) => p - q);
    return sx.every((v, i) => v === sy[i]);
  }
  // Multiset equality without sorting: each of x's values is matched to an unused equal one in y.
  let used = 0;
  for (const v of x) {
    let j = 0;
    while (j < y.length && ((used >> j) & 1 || y[j] !== v)) j++;
    if (j === y.length) return false;
    used |= 1 << j;
  }
  return true;
}

/** Memo of the best choice per worker state, for one `place` call. */
class ChoiceMemo {
  private readonly buckets = new Map<number, { rep: WorkerView; choice: Choice | null }[]>();

  get(w: WorkerView, hash: number): Choice | null | undefined {
    const bucket = this.buckets.get(hash);
    if (bucket) for (const e of bucket) if (sameState(e.rep, w)) return e.choice;
    return undefined;
  }

  set(w: WorkerView, hash: number, choice: Choice | null): void {
    const bucket = this.buckets.get(hash);
    if (bucket) bucket.push({ rep: w, choice });
    else this.buckets.set(hash, [{ rep: w, choice }]);
  }
}

interface Choice {
  delta: number;
  /** Index into the worker's canonical candidate list. */
  pick: number;
}

/** The fragmentation-aware placement for a workload (FGD). Ties go to the earlier worker. */
export class FragmentationAwarePlacement implements PlacementPolicy {
  readonly name = 'fgd';
  constructor(private readonly classes: readonly WorkloadClass[]) {}

  place(d: Demand, workers: readonly WorkerView[]): Placement | null {
    // Workers in the same state give the same answer, and many idle nodes are alike.
    const memo = new ChoiceMemo();
    let best: Placement | null = null;
    let bestDelta = Infinity;
    for (let i = 0; i < workers.length; i++) {
      const w = workers[i] as WorkerView;
      if (!fits(d, w)) continue;
      const hash = stateHash(w);
      let choice = memo.get(w, hash);
      let cands: number[][] | undefined;
      if (choice === undefined) {
        cands = candidateDevices(d, w);
        choice = this.bestOnWorker(d, w, cands);
        memo.set(w, hash, choice);
      }
      if (choice === null || choice.delta >= bestDelta - 1e-9) continue;
      cands ??= candidateDevices(d, w);
      best = { worker: i, gpus: cands[choice.pick] as number[] };
      bestDelta = choice.delta;
    }
    return best;
  }

  private bestOnWorker(d: Demand, w: WorkerView, cands: readonly number[][]): Choice | null {
    if (cands.length === 0) return null;
    const before = nodeFragMilli(w, this.classes);
    let best: Choice | null = null;
    for (let k = 0; k < cands.length; k++) {
      const after = afterPlacing(w, d, cands[k] as number[]);
      const delta = nodeFragMilli(after, this.classes) - before;
      if (best === null || delta < best.delta - 1e-9) best = { delta, pick: k };
    }
    return best;
  }
}
