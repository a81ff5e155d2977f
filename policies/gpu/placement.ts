// Where to put one task (a pod) among workers: first fit and best fit. The fragmentation-aware
// policy lives in fragmentation.ts; all three share this interface, and the scheduling policies
// use one of them to place the tasks they rank.
import type { Demand, WorkerView } from '../scheduling/types.ts';
import { GPU_MILLI, afterPlacing, chooseDevices, fits, gpuMilliOf } from './fit.ts';

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
 * How loose a worker would be after placing: GPU thousandths left first (for GPU tasks), then
 * the shares of cores and memory left. Smaller is tighter.
 */
function leftover(d: Demand, after: WorkerView): [number, number] {
  const rest =
    share(after.free.cpu, after.capacity.cpu) + share(after.free.memMb, after.capacity.memMb);
  if (d.gpu <= 0) return [0, rest];
  const devices = after.gpuFreeMilli;
  let gpuLeft = 0;
  if (devices) for (const f of devices) gpuLeft += f;
  else gpuLeft = after.free.gpu * GPU_MILLI;
  return [gpuLeft, rest];
}

/** The tightest worker that fits (least left over after placing), its tightest devices. */
export const bestFit: PlacementPolicy = {
  name: 'best_fit',
  place(d, workers) {
    let best: Placement | null = null;
    let bestKey: [number, number] = [Infinity, Infinity];
    for (let i = 0; i < workers.length; i++) {
      const w = workers[i] as WorkerView;
      if (!fits(d, w)) continue;
      const gpus = chooseDevices(d, w, 'tightest');
      if (!gpus) continue;
      const key = leftover(d, afterPlacing(w, d, gpus));
      if (key[0] < bestKey[0] || (key[0] === bestKey[0] && key[1] < bestKey[1] - 1e-12)) {
        best = { worker: i, gpus };
        bestKey = key;
      }
    }
    return best;
  },
};

/** Thousandths of GPU a demand takes in total. */
export function gpuMilliTotal(d: Demand): number {
  return d.gpu * gpuMilliOf(d);
}
