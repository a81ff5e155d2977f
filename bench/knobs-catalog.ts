// Knobs used only by the knobs benchmark: no cooldown and no step limit, so the benchmark
// measures the table and the notification path, not the safety rules.
import type { KnobSpec } from '../knobs/index.ts';

export const benchCatalog: KnobSpec[] = Array.from({ length: 4 }, (_, i) => ({
  name: `bench.k${i}`,
  service: 'scheduler',
  type: 'int',
  min: 0,
  max: 1_000_000_000,
  default: 0,
  description: 'benchmark knob',
  cost: 'light',
  safety: { cooldownMs: 0 },
}));
