// The knob catalog with the benchmark's dispatch batch as the default of
// `scheduler.dispatch_batch`, so seeding the knobs table gives every shard that batch.
import { CATALOG, type KnobSpec } from '../../knobs/index.ts';

export function catalogWithDispatchBatch(dispatchBatch: number): KnobSpec[] {
  return CATALOG.map((k) =>
    k.name === 'scheduler.dispatch_batch' ? ({ ...k, default: dispatchBatch } as KnobSpec) : k,
  );
}
