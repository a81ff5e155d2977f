// The messaging experiment on a request-arrival trace (default: Azure LLM code-completion
// requests, replayed at 5,000 messages/s): tune batch size, linger and partitions for
// objective_ms = p99 latency + a resource price on partitions and their batch buffers
// (envs/messaging/objective.ts says why the optimum is interior). The catalog's domains are
// searched whole, but linger and partitions on a log scale: the optimum sits at a few ms and a
// few partitions, under 1% and 3% of their linear ranges, where a linear grid or uniform
// sampling would barely look (batch size is log-scaled in the catalog already).
import { messagingObjective, type MessageSource } from '../../envs/messaging/index.ts';
import { reshapeKnob } from '../objectives.ts';
import type { ExperimentSpec } from '../spec.ts';
import { HELD_OUT_TUNER_CLAIMS, STANDARD_TUNERS, TUNER_CLAIMS } from './tuners.ts';

export const messagingExperiment: ExperimentSpec<MessageSource> = {
  name: 'messaging',
  title: 'Messaging: batch size, linger and partitions',
  workload: {
    kind: 'requests',
    default: { path: '../shared/traces/requests/azure_llm2023_code.csv', format: 'azure' },
    description: 'every request a message, replayed at 5,000 messages/s (quick: first 1,000 rows)',
    load: (t) => {
      if (t?.kind !== 'requests')
        throw new RangeError('messaging experiment: needs a requests trace');
      return t.messages;
    },
  },
  defaults: { seeds: 5, budget: 50 },
  quick: { seeds: 2, budget: 12 },
  studies: [
    {
      type: 'tuning',
      name: 'messaging-batching',
      title: 'Messaging batching knobs',
      unit: 'ms',
      note: 'p99 latency plus the price of partitions and reserved batch buffers, in ms of p99.',
      objective: (source) => messagingObjective(source),
      space: (o) =>
        reshapeKnob(
          reshapeKnob(o.knobs, 'messaging.linger_ms', { log: true }),
          'messaging.partitions',
          {
            log: true,
          },
        ),
      // The seed assigns messages to partitions; held-out seeds assign them differently.
      // The metric spans orders of magnitude across the space: tuners see its log.
      tunerScale: 'log',
      trainSeeds: [1],
      testSeeds: [101, 102, 103],
      baselines: [
        { name: 'defaults', values: {} },
        { name: 'no-batching', values: { 'messaging.batch_size': 1, 'messaging.linger_ms': 0 } },
      ],
      learners: STANDARD_TUNERS,
      oracle: { type: 'grid', pointsPerNumeric: 13, quickPointsPerNumeric: 3 },
      comparisons: [...TUNER_CLAIMS, ...HELD_OUT_TUNER_CLAIMS],
    },
  ],
};
