// The assignment loop every ranking policy shares: take the best-ranked task left, place it
// with the placement policy on the workers as they stand after the assignments already made,
// repeat. A task that fits nowhere is skipped (later, smaller tasks may still fit: backfilling),
// and so is every task that needs at least as much, which keeps a call linear in the runnable
// tasks per assignment made.
import { FIT_EPS, afterPlacing, gpuMilliOf } from '../gpu/fit.ts';
import type { PlacementPolicy } from '../gpu/placement.ts';
import type { Assignment, Demand, TaskView, WorkerView } from './types.ts';

/** The deterministic order among equally ranked tasks: older job, then earlier ready, then id. */
export function fifoBefore(a: TaskView, b: TaskView): boolean {
  if (a.submittedAt !== b.submittedAt) return a.submittedAt < b.submittedAt;
  if (a.readyAt !== b.readyAt) return a.readyAt < b.readyAt;
  return a.id < b.id;
}

function sameModels(a: Demand, b: Demand): boolean {
  const x = a.gpuModels ?? [];
  const y = b.gpuModels ?? [];
  return x.length === y.length && x.every((m, i) => m === y[i]);
}

/** Whether `a` needs at least what `b` needs, so `a` fits nowhere `b` does not. */
export function needsAtLeast(a: Demand, b: Demand): boolean {
  // Another type may be run where `b`'s is not.
  if (a.type !== b.type) return false;
  if (a.cpu < b.cpu || a.memMb < b.memMb) return false;
  if (b.gpu <= 0) return true;
  if (a.gpu < b.gpu || gpuMilliOf(a) < gpuMilliOf(b)) return false;
  return (b.gpuModels ?? []).length === 0 || sameModels(a, b);
}

/** Ranks: higher `primary` first, then higher `secondary`, then `fifoBefore`. */
export interface Ranking {
  primary: Float64Array;
  secondary?: Float64Array;
  /** Called after task `i` is assigned; may lower the ranks of others (fair share does). */
  onAssign?: (i: number, ranking: Ranking, tasks: readonly TaskView[]) => void;
}

function ranksBefore(i: number, j: number, r: Ranking, tasks: readonly TaskView[]): boolean {
  const pi = r.primary[i] as number;
  const pj = r.primary[j] as number;
  if (pi !== pj) return pi > pj;
  if (r.secondary) {
    const si = r.secondary[i] as number;
    const sj = r.secondary[j] as number;
    if (si !== sj) return si > sj;
  }
  return fifoBefore(tasks[i] as TaskView, tasks[j] as TaskView);
}

// Scratch for the taken marks, reused between calls: a typed array per call costs more than the
// selection itself when only a few tasks are runnable. Task i is taken in a call when its entry
// equals that call's mark, so nothing needs clearing between calls. A nested call gets its own.
let scratch = new Uint32Array(256);
let lastMark = 0;
const MAX_MARK = 2 ** 30;
let scratchBusy = false;

/** A task that asks for neither cores nor GPU: it can still be placed on a full worker. */
export function asksNothing(d: Demand): boolean {
  return d.cpu <= 0 && d.gpu <= 0;
}

/**
 * Assigns the runnable tasks in `ranking`'s order. A caller that ranked them in one pass may pass
 * what it found on the way: `best`, the index of the best-ranked task (as `ranksBefore` orders
 * them), and `zeroDemand`, how many tasks ask for neither cores nor GPU (see `asksNothing`), which
 * spares the first scan.
 */
export function greedyAssign(
  runnable: readonly TaskView[],
  free: readonly WorkerView[],
  ranking: Ranking,
  placement: PlacementPolicy,
  best = -1,
  zeroDemand = 0,
): Assignment[] {
  const n = runnable.length;
  if (n === 0 || free.length === 0) return [];
  if (best < 0) {
    for (let i = 0; i < n; i++) {
      if (asksNothing((runnable[i] as TaskView).demand)) zeroDemand++;
    }
  }
  if (scratchBusy) {
    return assignWith(new Uint32Array(n), 1, runnable, free, ranking, placement, best, zeroDemand);
  }
  // Marks stay small integers (fast to compare); on wrapping, a cleared array starts over.
  if (scratch.length < n || lastMark === MAX_MARK) {
    scratch = new Uint32Array(
      scratch.length < n ? Math.max(n, 2 * scratch.length) : scratch.length,
    );
    lastMark = 0;
  }
  scratchBusy = true;
  try {
    return assignWith(scratch, ++lastMark, runnable, free, ranking, placement, best, zeroDemand);
  } finally {
    scratchBusy = false;
  }
}

function hasRoom(w: WorkerView): boolean {
  return w.free.cpu > FIT_EPS || w.free.gpu > FIT_EPS;
}

/** `hasRoom` of the worker after placing `d` on it, without building that worker. */
function roomAfter(w: WorkerView, d: Demand): boolean {
  const gpu = (d.gpu * gpuMilliOf(d)) / 1000;
  return w.free.cpu - d.cpu > FIT_EPS || w.free.gpu - gpu > FIT_EPS;
}

/** The best-ranked task not taken in this call (some must be left). */
function bestLeft(
  taken: Uint32Array,
  mark: number,
  runnable: readonly TaskView[],
  ranking: Ranking,
): number {
  const primary = ranking.primary;
  let best = -1;
  let bestPrimary = 0;
  for (let i = 0; i < runnable.length; i++) {
    if (taken[i] === mark) continue;
    // `ranksBefore` with its first comparison inlined: most candidates lose on the primary key.
    const p = primary[i] as number;
    if (
      best < 0 ||
      p > bestPrimary ||
      (p === bestPrimary && ranksBefore(i, best, ranking, runnable))
    ) {
      best = i;
      bestPrimary = p;
    }
  }
  return best;
}

function assignWith(
  taken: Uint32Array,
  mark: number,
  runnable: readonly TaskView[],
  free: readonly WorkerView[],
  ranking: Ranking,
  placement: PlacementPolicy,
  first: number,
  zeroDemand: number,
): Assignment[] {
  const n = runnable.length;
  // Built on the first assignment as a one-element literal: an empty array's first push
  // allocates room for 17, and most calls assign one task.
  let out: Assignment[] | null = null;
  // Once no worker has cores or GPU left only a task asking for neither could still be placed,
  // so the loop stops there unless such a task was still untaken when the last pick was made
  // (the common case: one worker freed, one task assigned, done). `zeroLeft` counts them.
  let roomy = 0;
  for (let i = 0; i < free.length; i++) if (hasRoom(free[i] as WorkerView)) roomy++;
  let workers: WorkerView[] | null = null; // copied on the first assignment
  let left = n;
  let zeroLeft = zeroDemand;
  let best = first >= 0 ? first : bestLeft(taken, mark, runnable, ranking);
  while (true) {
    const task = runnable[best] as TaskView;
    // Whether a task asking for nothing was untaken when `best` was chosen.
    const zeroBefore = zeroLeft > 0;
    taken[best] = mark;
    left--;
    if (zeroBefore && asksNothing(task.demand)) zeroLeft--;
    const spot = placement.place(task.demand, workers ?? free);
    if (spot === null) {
      for (let i = 0; i < n; i++) {
        if (taken[i] === mark) continue;
        const d = (runnable[i] as TaskView).demand;
        if (needsAtLeast(d, task.demand)) {
          taken[i] = mark;
          left--;
          if (zeroLeft > 0 && asksNothing(d)) zeroLeft--;
        }
      }
      if (left === 0 || (roomy === 0 && !zeroBefore)) break;
      best = bestLeft(taken, mark, runnable, ranking);
      continue;
    }
    const w = (workers ?? free)[spot.worker] as WorkerView;
    const a: Assignment =
      spot.gpus.length > 0
        ? { taskId: task.id, workerId: w.id, gpus: spot.gpus }
        : { taskId: task.id, workerId: w.id };
    if (out === null) out = [a];
    else out.push(a);
    if (hasRoom(w) && !roomAfter(w, task.demand)) roomy--;
    if (left === 0 || (roomy === 0 && !zeroBefore)) break; // done: skip building the next state
    workers ??= free.slice();
    workers[spot.worker] = afterPlacing(w, task.demand, spot.gpus);
    ranking.onAssign?.(best, ranking, runnable);
    best = bestLeft(taken, mark, runnable, ranking);
  }
  return out ?? [];
}
