// A message source for the objective and the env: the same seed gives the same messages.
// A trace source is loaded once (async, a file) and then serves every seed; a generated one
// draws its arrivals from the seed.
import { createRng } from '../core/rng.ts';
import { loadAzureRequests, type LoadOptions } from '../loaders/requests-azure.ts';
import { generatedMessages, messagesFromTrace, type GeneratedMessagesConfig } from './arrivals.ts';
import type { Messages } from './model.ts';

export interface MessageSource {
  readonly id: string;
  messages(seed: number): Messages;
}

/**
 * The default replay rate of a request trace: a topic busy enough that a ~1 ms batch round
 * trip matters (see arrivals.ts for why the shared trace is compressed in time).
 */
export const DEFAULT_TRACE_RATE_PER_S = 5_000;

export async function traceSource(
  path: string,
  ratePerS: number = DEFAULT_TRACE_RATE_PER_S,
  opts: LoadOptions = {},
): Promise<MessageSource> {
  const messages = messagesFromTrace(await loadAzureRequests(path, opts), ratePerS);
  return { id: `trace(${path}@${ratePerS}/s)`, messages: () => messages };
}

export function generatedSource(cfg: GeneratedMessagesConfig): MessageSource {
  return {
    id: `generated(${cfg.arrivals.kind})`,
    messages: (seed) => generatedMessages(createRng(seed), cfg),
  };
}

/** A fixed list of messages (hand-made cases, or messages built elsewhere). */
export function fixedSource(id: string, messages: Messages): MessageSource {
  return { id, messages: () => messages };
}
