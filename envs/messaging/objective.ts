// messaging-batching-v1 as a KnobObjective over messaging.batch_size, messaging.linger_ms and
// messaging.partitions (the catalog's own declarations).
//
// The objective (lower is better) is objective_ms = p99_latency_ms + resource_cost_ms, with
//   resource_cost_ms = partitions * (partitionCostMs + batchSize * bufferSlotCostMs):
// each partition is a consumer someone pays for, and each reserves a batch buffer of batchSize
// slots (as a Kafka producer reserves batch.size per partition). The prices are exchange rates
// in milliseconds of p99, stated in the config. Why the optimum is inside the domain:
//   - batch_size 1 (or linger 0) ships every message alone; the per-batch overhead then caps
//     a consumer near 1/batchOverheadMs messages per ms, the trace's bursts exceed that and
//     p99 explodes in the queue;
//   - batch_size 4096 never fills at the trace's rate, so batches are sealed by linger alone:
//     no latency is gained over a moderate size, while its buffer costs the most; the size
//     that fills just before linger expires also ships bursts early and beats it on p99 alone;
//   - linger 1000 ms makes lone messages wait a second;
//   - 1 partition queues the bursts; 256 partitions cost more than the latency they save.
// A throughput floor is implicit: a configuration that cannot keep up queues without bound
// and its p99 shows it (throughput_per_s is reported next to offered_rate_per_s).
import { CATALOG, findKnob, validateValue } from '../../knobs/index.ts';
import type { KnobSpec, KnobValues, NumericKnob } from '../../knobs/index.ts';
import type { KnobObjective, Metrics } from '../core/env.ts';
import { createRng } from '../core/rng.ts';
import {
  DEFAULT_COST_MODEL,
  MessagingConfigError,
  type BatchKnobs,
  type CostModel,
} from './model.ts';
import { mean, percentile } from './metrics.ts';
import { BatchingSim, type WindowStats } from './sim.ts';
import type { MessageSource } from './source.ts';

export interface Prices {
  /** What one partition (consumer) costs, in ms of p99. */
  partitionCostMs: number;
  /** What one reserved batch-buffer slot per partition costs, in ms of p99. */
  bufferSlotCostMs: number;
}

export const DEFAULT_PRICES: Prices = { partitionCostMs: 0.5, bufferSlotCostMs: 0.0005 };

function numericKnob(name: string): NumericKnob {
  const k = findKnob(CATALOG, name);
  if (!k || (k.type !== 'int' && k.type !== 'duration')) {
    throw new Error(`messaging: knob ${name} missing from the catalog or not an integer knob`);
  }
  return k;
}

export const BATCH_SIZE_KNOB = numericKnob('messaging.batch_size');
export const LINGER_MS_KNOB = numericKnob('messaging.linger_ms');
export const PARTITIONS_KNOB = numericKnob('messaging.partitions');
export const MESSAGING_KNOBS: readonly KnobSpec[] = [
  BATCH_SIZE_KNOB,
  LINGER_MS_KNOB,
  PARTITIONS_KNOB,
];

export interface MessagingSettings extends BatchKnobs {
  partitions: number;
}

/** Knob values (catalog names; missing ones take their default) as simulator settings. */
export function settingsFromKnobs(values: KnobValues): MessagingSettings {
  const get = (spec: NumericKnob): number => {
    const v = values[spec.name] ?? spec.default;
    const bad = validateValue(spec, v);
    // The violation's message reads "knob <name>: <field> <rule text>"; keep the rule text.
    if (bad)
      throw new MessagingConfigError(spec.name, bad.message.slice(bad.message.indexOf(': ') + 2));
    return v as number;
  };
  return {
    batchSize: get(BATCH_SIZE_KNOB),
    lingerMs: get(LINGER_MS_KNOB),
    partitions: get(PARTITIONS_KNOB),
  };
}

export function resourceCostMs(s: MessagingSettings, prices: Prices): number {
  return s.partitions * (prices.partitionCostMs + s.batchSize * prices.bufferSlotCostMs);
}

/** Whole-run metrics of one simulation (all messages delivered). */
export function runMetrics(
  stats: WindowStats,
  s: MessagingSettings,
  firstArrivalMs: number,
  lastArrivalMs: number,
  prices: Prices,
): Metrics {
  const n = stats.latenciesMs.length;
  const p99 = percentile(stats.latenciesMs, 99);
  const resource = resourceCostMs(s, prices);
  const spanMs = stats.lastCompletionMs - firstArrivalMs;
  const offeredSpanMs = lastArrivalMs - firstArrivalMs;
  return {
    messages: n,
    batches: stats.batches,
    mean_batch_size: stats.batches > 0 ? n / stats.batches : 0,
    mean_latency_ms: mean(stats.latenciesMs),
    p50_latency_ms: percentile(stats.latenciesMs, 50),
    p99_latency_ms: p99,
    max_latency_ms: percentile(stats.latenciesMs, 100),
    throughput_per_s: spanMs > 0 ? (n * 1000) / spanMs : 0,
    // n arrivals span n - 1 gaps (the rate a trace is replayed at is set on its gaps).
    offered_rate_per_s: offeredSpanMs > 0 && n > 1 ? ((n - 1) * 1000) / offeredSpanMs : 0,
    consumer_utilisation: spanMs > 0 ? stats.busyMs / (spanMs * s.partitions) : 0,
    resource_cost_ms: resource,
    objective_ms: p99 + resource,
  };
}

/** Simulates the whole source under fixed settings; the seed picks partitions (and arrivals). */
export function simulateMessaging(
  source: MessageSource,
  s: MessagingSettings,
  seed: number,
  cost: CostModel = DEFAULT_COST_MODEL,
  prices: Prices = DEFAULT_PRICES,
): Metrics {
  const rng = createRng(seed);
  const messages = source.messages(rng.int(2 ** 31));
  const sim = new BatchingSim(messages, cost, s.partitions, s, rng.fork());
  const stats = sim.advance(Infinity);
  const n = messages.tMs.length;
  return runMetrics(stats, s, messages.tMs[0] ?? 0, messages.tMs[n - 1] ?? 0, prices);
}

export function messagingObjective(
  source: MessageSource,
  cost: CostModel = DEFAULT_COST_MODEL,
  prices: Prices = DEFAULT_PRICES,
): KnobObjective {
  return {
    id: `messaging-batching-v1/${source.id}`,
    knobs: MESSAGING_KNOBS,
    objective: { metric: 'objective_ms', direction: 'min' },
    evaluate: async (values, seed) =>
      simulateMessaging(source, settingsFromKnobs(values), seed, cost, prices),
  };
}
