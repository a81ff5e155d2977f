// A knob change promoted live by the loop's path (proposal, gate, promotion) on real telemetry:
// the service's metric observed at `before` for a second first, then an `emit` to write what
// follows. Telemetry stream ids are real time, so the knobs' clock must be too (an offset a
// test may move past a cooldown is fine).
import type { Clock } from '../../controlplane/knobs/clock.ts';
import { KnobTable } from '../../controlplane/knobs/table.ts';
import { ProposalTable } from '../../controlplane/loop/proposals.ts';
import type { Proposal } from '../../controlplane/loop/proposal.ts';
import type { RedisClient } from '../../controlplane/redis/connect.ts';
import { Telemetry } from '../../controlplane/telemetry/metrics.ts';
import type { KnobValue } from '../../knobs/index.ts';
import { uniqueKeys } from './redis.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface LivePromotion {
  knobs: KnobTable;
  proposals: ProposalTable;
  proposal: Proposal;
  /** Observes `value` of the metric every 50 ms for `forMs`, flushing each time. */
  emit(value: number, forMs: number): Promise<void>;
}

export async function livePromotion(o: {
  redis: RedisClient;
  clock?: Clock;
  service: string;
  /** The observed metric (its summaries are `<metric>_p99`, ...). */
  metric: string;
  before: number;
  learner: string;
  change: { name: string; value: KnobValue };
}): Promise<LivePromotion> {
  const knobs = new KnobTable(o.redis, {
    keys: uniqueKeys(),
    ...(o.clock ? { clock: o.clock } : {}),
  });
  await knobs.seed();
  const proposals = new ProposalTable(knobs);
  const telemetry = new Telemetry({
    redis: knobs.redis,
    keys: knobs.keys,
    service: o.service,
    instance: 'i1',
  });
  const emit = async (value: number, forMs: number) => {
    const until = Date.now() + forMs;
    while (Date.now() < until) {
      telemetry.observe(o.metric, value);
      await telemetry.flush();
      await sleep(50);
    }
  };
  await emit(o.before, 1_000);
  const p = await proposals.create({
    learner: o.learner,
    reason: 'test',
    changes: [{ ...o.change, baseVersion: 1 }],
  });
  await proposals.transition(p.id, 'simulated', { actor: 'gate', reason: 'ok' });
  await knobs.promoteAll({
    actor: o.learner,
    actorKind: 'automation',
    reason: 'promote',
    proposalId: p.id,
    changes: p.changes,
  });
  const { proposal } = await proposals.get(p.id);
  return { knobs, proposals, proposal, emit };
}
