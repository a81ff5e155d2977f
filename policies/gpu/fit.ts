// Whether a task's demand fits a worker's free capacity, which GPU devices it would use, and the
// worker as it would look afterwards. Shared by every placement policy and by the simulator's
// check of a policy's answer, so "fits" means one thing everywhere.
import type { Demand, WorkerView } from '../scheduling/types.ts';

/** Slack for fractional cores: a policy subtracts floats, the simulator counts in integers. */
export const FIT_EPS = 1e-9;
export const GPU_MILLI = 1000;
/** The device list of a CPU-only placement, shared (frozen) rather than allocated per call. */
export const NO_DEVICES: readonly number[] = Object.freeze([]);

export function gpuMilliOf(d: Demand): number {
  return d.gpuMilli ?? GPU_MILLI;
}

export function modelAccepted(d: Demand, w: WorkerView): boolean {
  const models = d.gpuModels;
  if (models === undefined || models.length === 0) return true;
  return w.gpuModel !== undefined && models.includes(w.gpuModel);
}

/** Whether the worker runs tasks of the demand's type (a worker without `types` runs all). */
export function typeAccepted(d: Demand, w: WorkerView): boolean {
  return w.types === undefined || (d.type !== undefined && w.types.includes(d.type));
}

/** Free thousandths per device; a worker without per-device data offers whole free GPUs. */
export function deviceFree(w: WorkerView): readonly number[] {
  if (w.gpuFreeMilli) return w.gpuFreeMilli;
  const whole = Math.floor(w.free.gpu + FIT_EPS);
  return whole > 0 ? new Array<number>(whole).fill(GPU_MILLI) : [];
}

export function cpuMemFit(d: Demand, w: WorkerView): boolean {
  return w.free.cpu + FIT_EPS >= d.cpu && w.free.memMb + FIT_EPS >= d.memMb;
}

export function countDevicesWith(free: readonly number[], milli: number): number {
  let n = 0;
  for (const f of free) if (f >= milli) n++;
  return n;
}

export function fits(d: Demand, w: WorkerView): boolean {
  if (!cpuMemFit(d, w) || !typeAccepted(d, w)) return false;
  if (d.gpu <= 0) return true;
  if (!modelAccepted(d, w)) return false;
  return countDevicesWith(deviceFree(w), gpuMilliOf(d)) >= d.gpu;
}

/**
 * Devices for the demand: `first` takes the lowest indices that fit, `tightest` those with the
 * least free capacity that still fits (ties to the lower index). Null when too few fit.
 */
export function chooseDevices(
  d: Demand,
  w: WorkerView,
  how: 'first' | 'tightest',
): readonly number[] | null {
  if (d.gpu <= 0) return NO_DEVICES;
  const free = deviceFree(w);
  const milli = gpuMilliOf(d);
  const ok: number[] = [];
  for (let i = 0; i < free.length; i++) if ((free[i] as number) >= milli) ok.push(i);
  if (ok.length < d.gpu) return null;
  if (how === 'tightest') ok.sort((a, b) => (free[a] as number) - (free[b] as number) || a - b);
  return ok.slice(0, d.gpu);
}

/** The worker after placing `d` on it (a new object; the argument is not touched). */
export function afterPlacing(w: WorkerView, d: Demand, devices: readonly number[]): WorkerView {
  const milli = gpuMilliOf(d);
  const gpuTaken = (d.gpu * milli) / GPU_MILLI;
  // Same property order as the views a simulator or service builds: one hidden class for all.
  const next: WorkerView = {
    id: w.id,
    free: { cpu: w.free.cpu - d.cpu, memMb: w.free.memMb - d.memMb, gpu: w.free.gpu - gpuTaken },
    capacity: w.capacity,
  };
  if (w.gpuModel !== undefined) next.gpuModel = w.gpuModel;
  if (w.types !== undefined) next.types = w.types;
  if (w.gpuFreeMilli) {
    const g = w.gpuFreeMilli.slice();
    for (const i of devices) g[i] = (g[i] as number) - milli;
    next.gpuFreeMilli = g;
  }
  return next;
}
