// Where to put one task (a pod) among workers: first fit and best fit. The fragmentation-aware
// policy lives in fragmentation.ts; all three share this interface, and the scheduling policies
// use one of them to place the tasks they rank.
import type { Demand, WorkerView } from '../scheduling/types.ts';
import { GPU_MILLI, chooseDevices, fits, gpuMilliOf } from './fit.ts';

/** Worker index into the array given to `place`, and the device indices on it. */
export interface Placement {
  worker: number;
  gpus: readonly number[];
}

export interface PlacementPolicy {
  readonly name: string;
  /** Pure: the best placement of `d` on `workers`, or null when it fits none. */
  place(d: Demand, workers: readonly WorkerView[]): Placement | null;
}

/** The first worker (in the given order) that fits; its lowest-indexed devices. */
export const firstFit: PlacementPolicy = {
  name: 'first_fit',
  place(d, workers) {
    for (let i = 0; i < workers.length; i++) {
      const w = workers[i] as WorkerView;
      if (!fits(d, w)) continue;
      const gpus = chooseDevices(d, w, 'first');
      if (gpus) return { worker: i, gpus };
    }
    return null;
  },
};

function share(free: number, capacity: number): number {
  return capacity > 0 ? free / capacity : 0;
}

/**
 * How loose a worker would be after placing `d` on it: GPU thousandths left first (for GPU
 * tasks), then the shares of cores and memory left. Smaller is tighter. Computed, not built.
 */
function leftover(d: Demand, w: WorkerView): [number, number] {
  const rest =
    share(w.free.cpu - d.cpu, w.capacity.cpu) + share(w.free.memMb - d.memMb, w.capacity.memMb);
  if (d.gpu <= 0) return [0, rest];
  let gpuLeft = 0;
  if (w.gpuFreeMilli) for (const f of w.gpuFreeMilli) gpuLeft += f;
  else gpuLeft = w.free.gpu * GPU_MILLI;
  return [gpuLeft - gpuMilliTotal(d), rest];
}

/** The tightest worker that fits (least left over after placing), its tightest devices. */
export const bestFit: PlacementPolicy = {
  name: 'best_fit',
  place(d, workers) {
    let best = -1;
    let bestKey: [number, number] = [Infinity, Infinity];
    for (let i = 0; i < workers.length; i++) {
      const w = workers[i] as WorkerView;
      if (!fits(d, w)) continue;
      const key = leftover(d, w);
      if (key[0] < bestKey[0] || (key[0] === bestKey[0] && key[1] < bestKey[1] - 1e-12)) {
        best = i;
        bestKey = key;
      }
    }
    if (best < 0) return null;
    const gpus = chooseDevices(d, workers[best] as WorkerView, 'tightest');
    return gpus === null ? null : { worker: best, gpus };
  },
};

/** Thousandths of GPU a demand takes in total. */
export function gpuMilliTotal(d: Demand): number {
  return d.gpu * gpuMilliOf(d);
}
