// The messaging service as `npm start` runs it: a topic, a knob client following the messaging
// knobs, and the live workload (the shared Azure code trace's arrivals replayed at about
// ratePerS, looped, into a consumer group counting per tenant). Retention is kept small so the
// embedded Redis holds a few minutes of messages next to the other services (~20 MB).
import { AZURE_CODE_TRACE, loadAzureRequests } from '../../envs/loaders/requests-azure.ts';
import type { KnobTable } from '../knobs/table.ts';
import type { Logger } from '../log.ts';
import { startStackKnobs } from './stack-knobs.ts';
import { MessagingKeys } from '../messaging/keys.ts';
import { Topics, type TopicOptions } from '../messaging/topics.ts';
import { MessagingWorkload, speedupForRate, type MessagingSource } from '../workload/messaging.ts';

export const STACK_TOPIC = 'requests';
export const STACK_GROUP = 'tenant-counters';

/** Per partition: ~10k newest messages, none older than 10 min; dedup for 5 min. */
const STACK_RETENTION: TopicOptions = {
  maxLen: 10_000,
  maxAgeMs: 600_000,
  dedupMs: 300_000,
  dedupMax: 20_000,
};

export interface MessagingStack {
  workload: MessagingWorkload;
  stop(): Promise<void>;
}

/**
 * The fallback profile when the trace is not there: bursty arrivals, calm 90% of the time at
 * 0.6x ratePerS and in bursts at 4.6x, so a mean of ratePerS in expectation. One 60 s
 * realisation (looped) holds only ~6 calm/burst cycles, so its own mean would depend on the
 * seed (0.7x-1.6x over seeds 1-20); ratePerS rescales its time axis so each pass averages
 * exactly ratePerS (the pass, and its calm and burst spells, stretch or shrink to match).
 */
export function burstySource(ratePerS: number): MessagingSource {
  return {
    kind: 'generated',
    config: {
      durationMs: 60_000,
      arrivals: {
        kind: 'bursty',
        calmRatePerS: 0.6 * ratePerS,
        burstRatePerS: 4.6 * ratePerS,
        meanCalmMs: 9_000,
        meanBurstMs: 1_000,
      },
      tokensPerMessage: 64,
    },
    ratePerS,
  };
}

/** The trace at the asked rate; a generated bursty profile when the trace is not there. */
async function stackSource(ratePerS: number, log: Logger): Promise<MessagingSource> {
  try {
    const trace = await loadAzureRequests(AZURE_CODE_TRACE);
    return { kind: 'trace', trace, speedup: speedupForRate(trace, ratePerS) };
  } catch (err) {
    log.warn(
      { err: (err as Error).message },
      'messaging: request trace unavailable, using a generated bursty profile',
    );
    return burstySource(ratePerS);
  }
}

export async function startMessagingStack(
  knobs: KnobTable,
  log: Logger,
  opts: { seed: number; ratePerS: number; shard?: string },
): Promise<MessagingStack> {
  const names = knobs.catalog.filter((k) => k.service === 'messaging').map((k) => k.name);
  const client = await startStackKnobs(knobs, names);
  try {
    const mkeys = new MessagingKeys(knobs.keys, opts.shard ?? '0');
    const topics = new Topics(knobs.redis, mkeys, { knobs: client });
    const topic = await topics.ensure(STACK_TOPIC, STACK_RETENTION);
    const source = await stackSource(opts.ratePerS, log);
    const workload = await MessagingWorkload.start({
      redis: knobs.redis,
      keys: mkeys,
      knobs: client,
      topics,
      topic: STACK_TOPIC,
      group: STACK_GROUP,
      source,
      seed: opts.seed,
      loop: true,
      maxMessageBytes: 512,
      // Sampled arrivals: the messaging simulator's input (messaging/trace.ts); no tuning
      // target of the loop calibrates from them yet (the experiments do, from traces).
      traceSampleRate: 0.05,
      log,
    });
    log.info(
      { topic: STACK_TOPIC, partitions: topic.partitions, source: source.kind, ...opts },
      'messaging: workload started',
    );
    let stopping: Promise<void> | undefined;
    const stop = async () => {
      // The knob client closes whatever the workload's stop did (its subscriber and timers
      // would keep the process alive and reconnecting).
      try {
        const { publishedByTenant: _, ...summary } = await workload.stop();
        log.info(summary, 'messaging: workload stopped');
      } finally {
        await client.close();
      }
    };
    return { workload, stop: () => (stopping ??= stop()) };
  } catch (err) {
    await client.close();
    throw err;
  }
}
