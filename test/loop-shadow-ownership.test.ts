// Who ends the scheduler's shadow knob, on real Redis. The knob a loop shadow sets is shared
// state: a daemon that lost the move to shadow must not turn off the winner's shadow, and a
// shadow whose proposal went live (or was decided) while no daemon held its run is ended by
// the next pass of any daemon, though never one an operator set by hand.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ManualClock } from '../controlplane/knobs/clock.ts';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { createLogger } from '../controlplane/log.ts';
import { LoopDaemon } from '../controlplane/loop/daemon.ts';
import { ProposalTable } from '../controlplane/loop/proposals.ts';
import { shadowTestTarget } from './helpers/shadow-target.ts';
import { startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startTestRedis('single');
});
afterAll(async () => {
  await redis?.stop();
});

/** A knobs table, and a proposal of srpt for scheduler.policy past its simulation gate. */
async function simulatedProposal() {
  const clock = new ManualClock();
  const knobs = new KnobTable(redis.client(), { keys: uniqueKeys(), clock });
  await knobs.seed();
  clock.advance(3_600_000);
  const proposals = new ProposalTable(knobs);
  const policy = await knobs.get('scheduler.policy');
  const p = await proposals.create({
    learner: 'scheduler.policy',
    changes: [{ name: 'scheduler.policy', value: 'srpt', baseVersion: policy.version }],
    reason: 'test',
  });
  await proposals.transition(p.id, 'simulated', { actor: 'loop', reason: 'gate passed' });
  const opts = {
    knobs,
    proposals,
    log: createLogger('test', 'silent'),
    minChangeIntervalMs: 60_000,
  };
  return { clock, knobs, proposals, p, policy, opts };
}

it('a daemon that loses the move to shadow leaves the winner its shadow knob', async () => {
  const { knobs, proposals, p, opts } = await simulatedProposal();
  const targetA = shadowTestTarget(knobs);
  const targetB = shadowTestTarget(knobs);
  // B read the proposal as `simulated` and reaches the shadow's start after A moved it there
  // (held at standDown, as a slow reply or a pause would hold it).
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const standDown = targetB.standDown.bind(targetB);
  targetB.standDown = async () => {
    await gate;
    return standDown();
  };
  const a = new LoopDaemon({ ...opts, targets: [targetA] });
  const b = new LoopDaemon({ ...opts, targets: [targetB] });
  try {
    const bPass = b.tick();
    await new Promise((r) => setTimeout(r, 200)); // B has read the open proposals
    expect((await a.tick())[0]).toMatchObject({ kind: 'shadow_started', id: p.id });
    expect((await knobs.get('scheduler.shadow_policy')).value).toBe('srpt');
    release();
    const bEvents = await bPass;
    expect(bEvents.filter((e) => e.kind === 'error')).toEqual([]);
    expect((await proposals.get(p.id)).proposal.status).toBe('shadow');
    expect((await knobs.get('scheduler.shadow_policy')).value).toBe('srpt');
  } finally {
    await a.stop();
    await b.stop();
  }
});

it('a later pass ends a shadow whose proposal went live while no daemon held its run', async () => {
  const { clock, knobs, proposals, p, policy, opts } = await simulatedProposal();
  const a = new LoopDaemon({ ...opts, targets: [shadowTestTarget(knobs)] });
  expect((await a.tick())[0]).toMatchObject({ kind: 'shadow_started', id: p.id });
  expect((await knobs.get('scheduler.shadow_policy')).value).toBe('srpt');
  // A dies (its run, in memory, with it); an operator promotes the proposal meanwhile.
  await knobs.promote({
    name: 'scheduler.policy',
    value: 'srpt',
    baseVersion: policy.version,
    actor: 'op',
    reason: 'promoted by hand',
    proposalId: p.id,
  });
  expect((await proposals.get(p.id)).proposal.status).toBe('live');
  const b = new LoopDaemon({ ...opts, targets: [shadowTestTarget(knobs)] });
  try {
    for (let i = 0; i < 2; i++) {
      await b.tick();
      clock.advance(1_000);
    }
    expect((await knobs.get('scheduler.shadow_policy')).value).toBe('none');
  } finally {
    await b.stop();
  }
});

it('never ends a shadow an operator set by hand', async () => {
  const { knobs, proposals, p, opts } = await simulatedProposal();
  await proposals.transition(p.id, 'rejected', { actor: 'op', reason: 'not now' });
  const shadow = await knobs.get('scheduler.shadow_policy');
  await knobs.promote({
    name: 'scheduler.shadow_policy',
    value: 'sjf',
    baseVersion: shadow.version,
    actor: 'op',
    reason: 'watching sjf',
  });
  const d = new LoopDaemon({ ...opts, targets: [shadowTestTarget(knobs)] });
  try {
    await d.tick();
    await d.tick();
    expect((await knobs.get('scheduler.shadow_policy')).value).toBe('sjf');
  } finally {
    await d.stop();
  }
});
