// What the messaging simulator is made of: a stream of messages, the batching knobs, and the
// cost model of delivering a batch.
//
// Cost model (assumed, not measured; stated so a calibration can replace it): a consumer
// handles one batch at a time and a batch of n messages takes
//   batchOverheadMs + sum over its messages of (perMessageMs + perKTokenMs * tokens / 1000).
// The per-batch overhead (a round trip, a commit, an fsync) is what batching amortises; the
// per-message and per-token parts are not amortised. Each partition has one consumer, so
// partitions are the parallelism. A message's latency is the completion time of its batch
// minus its arrival time: lingering, queueing behind earlier batches and processing.

/** A bad simulator input or knob setting: names the field and the rule it breaks. */
export class MessagingConfigError extends Error {
  constructor(
    readonly field: string,
    readonly rule: string,
  ) {
    super(`messaging: ${field} ${rule}`);
    this.name = 'MessagingConfigError';
  }
}

export interface Messages {
  /** Arrival times in ms, non-decreasing. */
  tMs: Float64Array;
  /** Payload size of each message in tokens (drives the per-token cost). */
  tokens: Float64Array;
}

export interface CostModel {
  batchOverheadMs: number;
  perMessageMs: number;
  perKTokenMs: number;
}

/** Defaults: a ~1 ms batch round trip against ~0.02 ms of per-message work. */
export const DEFAULT_COST_MODEL: CostModel = {
  batchOverheadMs: 1,
  perMessageMs: 0.01,
  perKTokenMs: 0.005,
};

export interface BatchKnobs {
  /** messaging.batch_size: a batch is sealed once it holds this many messages. */
  batchSize: number;
  /** messaging.linger_ms: ...or once its first message has waited this long. */
  lingerMs: number;
}

export function checkMessages(m: Messages): void {
  if (m.tMs.length !== m.tokens.length) {
    throw new MessagingConfigError('tokens', 'must have one entry per message');
  }
  for (let i = 1; i < m.tMs.length; i++) {
    if ((m.tMs[i] as number) < (m.tMs[i - 1] as number)) {
      throw new MessagingConfigError('tMs', `must be non-decreasing (index ${i})`);
    }
  }
}

export function checkKnobs(k: BatchKnobs): void {
  if (!Number.isInteger(k.batchSize) || k.batchSize < 1) {
    throw new MessagingConfigError('batchSize', `must be an integer >= 1, got ${k.batchSize}`);
  }
  if (!Number.isFinite(k.lingerMs) || k.lingerMs < 0) {
    throw new MessagingConfigError('lingerMs', `must be >= 0, got ${k.lingerMs}`);
  }
}
