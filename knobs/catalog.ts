// The knob catalog: one declaration per knob of every service. The simulators, the learners
// and the live services read these very objects, so a name here means the same everywhere.
import type { KnobSpec } from './types.ts';

const MINUTE_MS = 60_000;

/** Scheduling policy names; each is implemented in policies/scheduling. */
export const SCHEDULER_POLICIES = [
  'fifo',
  'sjf',
  'srpt',
  'critical_path',
  'fair',
  'priority',
] as const;
/** Cache policy names; each is implemented in policies/cache. */
export const CACHE_POLICIES = ['lru', 'fifo', 'lfu', 'arc', 'sieve', 's3fifo'] as const;

export const CATALOG: readonly KnobSpec[] = [
  {
    name: 'scheduler.policy',
    service: 'scheduler',
    type: 'enum',
    values: SCHEDULER_POLICIES,
    default: 'fifo',
    description: 'Which runnable task the dispatcher picks first.',
    cost: 'light',
    safety: { cooldownMs: MINUTE_MS },
  },
  {
    name: 'scheduler.shadow_policy',
    service: 'scheduler',
    type: 'enum',
    values: ['none', ...SCHEDULER_POLICIES],
    default: 'none',
    description:
      'A policy the dispatcher runs beside the live one on every decision, never acting: its picks and their divergence from the live picks are traced (shadow mode).',
    cost: 'light',
    // Shadowing changes nothing live, so it needs no cooldown.
    safety: { cooldownMs: 0 },
  },
  {
    name: 'scheduler.dispatch_batch',
    service: 'scheduler',
    type: 'int',
    min: 1,
    max: 1024,
    default: 16,
    log: true,
    unit: 'tasks',
    description: 'Tasks claimed per dispatch round trip.',
    cost: 'light',
    safety: { maxStepRatio: 4, cooldownMs: 10_000 },
  },
  {
    name: 'scheduler.lease_ms',
    service: 'scheduler',
    type: 'duration',
    min: 500,
    max: 600_000,
    default: 30_000,
    log: true,
    unit: 'ms',
    description: 'How long a claimed task stays leased without a heartbeat before it is retried.',
    cost: 'light',
    safety: { maxStepRatio: 4, cooldownMs: 30_000 },
  },
  {
    name: 'scheduler.retry_backoff_ms',
    service: 'scheduler',
    type: 'duration',
    min: 10,
    max: 300_000,
    default: 1_000,
    log: true,
    unit: 'ms',
    description: 'Base of the exponential backoff between attempts of a failed task.',
    cost: 'light',
    safety: { maxStepRatio: 10, cooldownMs: 10_000 },
  },
  {
    name: 'scheduler.retry_limit',
    service: 'scheduler',
    type: 'int',
    min: 0,
    max: 20,
    default: 3,
    unit: 'attempts',
    description: 'Attempts after the first before a task goes to the dead-letter table.',
    cost: 'light',
    safety: { maxStep: 5, cooldownMs: 10_000 },
  },
  {
    name: 'scheduler.straggler_threshold',
    service: 'scheduler',
    type: 'float',
    min: 1.1,
    max: 20,
    default: 3,
    unit: 'x median',
    description: 'A running task is a straggler once it has run this many times its stage median.',
    cost: 'light',
    safety: { maxStep: 5, cooldownMs: 10_000 },
  },
  {
    name: 'scheduler.speculative_execution',
    service: 'scheduler',
    type: 'bool',
    default: false,
    description: 'Launch a second copy of a straggler; the first to finish wins.',
    cost: 'light',
    safety: { cooldownMs: MINUTE_MS },
  },
  {
    name: 'scheduler.policy_version',
    service: 'scheduler',
    type: 'int',
    min: 0,
    max: 1_000_000,
    default: 0,
    unit: 'version',
    description:
      "0 = the heuristic named by scheduler.policy; N = version N of the registry's 'scheduler' policy.",
    cost: 'light',
    safety: { cooldownMs: MINUTE_MS },
  },
  {
    name: 'messaging.batch_size',
    service: 'messaging',
    type: 'int',
    min: 1,
    max: 4096,
    default: 64,
    log: true,
    unit: 'messages',
    description: 'Messages delivered to a handler per batch.',
    cost: 'light',
    safety: { maxStepRatio: 8, cooldownMs: 10_000 },
  },
  {
    name: 'messaging.linger_ms',
    service: 'messaging',
    type: 'duration',
    min: 0,
    max: 1_000,
    default: 5,
    unit: 'ms',
    description: 'How long a producer waits to fill a batch before sending it.',
    cost: 'light',
    safety: { maxStep: 250, cooldownMs: 10_000 },
  },
  {
    name: 'messaging.partitions',
    service: 'messaging',
    type: 'int',
    min: 1,
    max: 256,
    default: 4,
    unit: 'partitions',
    description: 'Partitions per topic; changing it repartitions the topic.',
    cost: 'heavy',
    safety: { maxStepRatio: 2, cooldownMs: 10 * MINUTE_MS },
  },
  {
    name: 'files.chunk_bytes',
    service: 'files',
    type: 'int',
    min: 4_096,
    max: 16_777_216,
    default: 65_536,
    log: true,
    unit: 'bytes',
    description: 'Size of a data chunk for files written from now on.',
    cost: 'heavy',
    safety: { maxStepRatio: 4, cooldownMs: 10 * MINUTE_MS },
  },
  {
    name: 'files.cache_bytes',
    service: 'files',
    type: 'int',
    min: 0,
    max: 17_179_869_184,
    default: 67_108_864,
    log: true,
    unit: 'bytes',
    description: 'Size of the read cache of each file-service instance.',
    cost: 'light',
    safety: { maxStepRatio: 4, cooldownMs: 30_000 },
  },
  {
    name: 'files.cache_policy',
    service: 'files',
    type: 'enum',
    values: CACHE_POLICIES,
    default: 'lru',
    description: 'Eviction policy of the file read cache.',
    cost: 'light',
    safety: { cooldownMs: MINUTE_MS },
  },
  {
    name: 'placement.map',
    service: 'placement',
    type: 'placement',
    shards: 3,
    maxEntries: 10_000,
    default: {},
    description:
      'Tenant or partition -> shard. Unlisted names hash to a shard. A change is a live migration.',
    cost: 'heavy',
    safety: { maxMoves: 4, cooldownMs: 5 * MINUTE_MS },
  },
];

/** Looks a knob up by name in a catalog; undefined when it is not declared. */
export function findKnob(catalog: readonly KnobSpec[], name: string): KnobSpec | undefined {
  return catalog.find((k) => k.name === name);
}

/** The default value of every knob of a catalog. */
export function defaultValues(catalog: readonly KnobSpec[]): Record<string, KnobSpec['default']> {
  return Object.fromEntries(catalog.map((k) => [k.name, k.default]));
}
