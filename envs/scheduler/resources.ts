// Integer resource accounting on a simulated worker: whether a stage's task fits, which devices
// it gets, and taking and giving back capacity. Policies reason on float views with a little
// slack; the simulator checks their answers here, exactly.
import { NO_DEVICES, type WorkloadClass, nodeFragMilli } from '../../policies/gpu/index.ts';
import type { SimStage, SimWorker } from './state.ts';

export function modelOk(st: SimStage, w: SimWorker): boolean {
  const models = st.spec.demand.gpuModels;
  if (models === undefined || models.length === 0 || st.spec.demand.gpu === 0) return true;
  return w.spec.gpuModel !== undefined && models.includes(w.spec.gpuModel);
}

export function fitsWorker(st: SimStage, w: SimWorker): boolean {
  if (w.cpuFreeMilli < st.cpuMilli || w.memFreeKib < st.memKib) return false;
  const need = st.spec.demand.gpu;
  if (need === 0) return true;
  if (!modelOk(st, w)) return false;
  let n = 0;
  for (const g of w.gpuFree) if (g >= st.gpuMilli && ++n >= need) return true;
  return false;
}

/** Whether the stage's task could ever run on the worker (fits its empty capacity). */
export function fitsCapacity(st: SimStage, w: SimWorker): boolean {
  // Memory in MB as given: rounded to KiB, a demand up to half a KiB above every worker's memory
  // passed, and no policy (they compare MB) ever placed it.
  if (w.cpuCapMilli < st.cpuMilli || w.spec.capacity.memMb < st.spec.demand.memMb) return false;
  return st.spec.demand.gpu <= w.gpuFree.length && modelOk(st, w);
}

/** The lowest-indexed devices that fit; [] for a CPU task. Call only when `fitsWorker`. */
export function firstDevices(st: SimStage, w: SimWorker): readonly number[] {
  const need = st.spec.demand.gpu;
  if (need === 0) return NO_DEVICES;
  const out: number[] = [];
  for (let i = 0; i < w.gpuFree.length && out.length < need; i++) {
    if ((w.gpuFree[i] as number) >= st.gpuMilli) out.push(i);
  }
  return out;
}

/** Why `gpus` is not a valid device choice for the stage's task on the worker; null if it is. */
export function badDevices(st: SimStage, w: SimWorker, gpus: readonly number[]): string | null {
  if (gpus.length !== st.spec.demand.gpu)
    return `needs ${st.spec.demand.gpu} devices, got ${gpus.length}`;
  const seen = new Set<number>();
  for (const g of gpus) {
    if (!Number.isInteger(g) || g < 0 || g >= w.gpuFree.length) return `no device ${g}`;
    if (seen.has(g)) return `device ${g} twice`;
    seen.add(g);
    if ((w.gpuFree[g] as number) < st.gpuMilli)
      return `device ${g} has ${w.gpuFree[g]} thousandths free, needs ${st.gpuMilli}`;
  }
  return null;
}

/** Adds `sign` (1 take, -1 give back) times the task's demand; returns the change in fragmentation. */
export function adjust(
  st: SimStage,
  w: SimWorker,
  gpus: readonly number[],
  sign: 1 | -1,
  classes: readonly WorkloadClass[] | null,
): number {
  w.cpuFreeMilli -= sign * st.cpuMilli;
  w.memFreeKib -= sign * st.memKib;
  // Indexed loops: a for-of over the shared empty device list still builds an iterator.
  for (let i = 0; i < gpus.length; i++) {
    const g = gpus[i] as number;
    w.gpuFree[g] = (w.gpuFree[g] as number) - sign * st.gpuMilli;
  }
  w.syncView();
  if (classes === null) return 0;
  const before = w.fragMilli;
  w.fragMilli = nodeFragMilli(w.view, classes);
  return w.fragMilli - before;
}
