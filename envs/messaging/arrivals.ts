// Where messages come from: a request trace (each request is one message whose payload is its
// context plus generated tokens), or generated Poisson or bursty arrivals.
//
// The shared Azure code trace carries 2.6 requests/s; a topic that quiet never needs batching.
// `ratePerS` replays a trace compressed in time to a busier topic's mean rate, which keeps the
// trace's burst shape (relative gaps) while making the batching trade-off real.
import type { RequestTrace } from '../loaders/requests-azure.ts';
import type { Rng } from '../core/rng.ts';
import {
  burstyArrivals,
  poissonArrivals,
  requirePositive,
  type BurstyArrivalsConfig,
} from '../workload/index.ts';
import type { Messages } from './model.ts';

/** Messages of a request trace; with ratePerS, time is scaled so the mean rate is that. */
export function messagesFromTrace(trace: RequestTrace, ratePerS?: number): Messages {
  const n = trace.tMs.length;
  const spanMs = n > 1 ? (trace.tMs[n - 1] as number) - (trace.tMs[0] as number) : 0;
  let scale = 1;
  if (ratePerS !== undefined) {
    requirePositive('ratePerS', ratePerS);
    // n - 1 gaps span the trace; a trace of one instant cannot be scaled and is left alone.
    if (spanMs > 0) scale = (n - 1) / (ratePerS / 1000) / spanMs;
  }
  return {
    tMs: Float64Array.from(trace.tMs, (t) => t * scale),
    tokens: Float64Array.from(
      trace.contextTokens,
      (c, i) => c + (trace.generatedTokens[i] as number),
    ),
  };
}

export interface GeneratedMessagesConfig {
  durationMs: number;
  /** Poisson at ratePerS, or bursty (a two-state modulated Poisson process). */
  arrivals:
    | { kind: 'poisson'; ratePerS: number }
    | ({ kind: 'bursty' } & Omit<BurstyArrivalsConfig, 'durationMs'>);
  /** Payload size of every message. */
  tokensPerMessage: number;
  maxArrivals?: number;
}

export function generatedMessages(rng: Rng, cfg: GeneratedMessagesConfig): Messages {
  const bound = cfg.maxArrivals !== undefined ? { maxArrivals: cfg.maxArrivals } : {};
  const tMs =
    cfg.arrivals.kind === 'poisson'
      ? poissonArrivals(rng, {
          ratePerS: cfg.arrivals.ratePerS,
          durationMs: cfg.durationMs,
          ...bound,
        })
      : burstyArrivals(rng, { ...cfg.arrivals, durationMs: cfg.durationMs, ...bound });
  return { tMs, tokens: new Float64Array(tMs.length).fill(cfg.tokensPerMessage) };
}
