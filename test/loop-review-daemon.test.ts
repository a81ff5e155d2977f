// Review fixes of the daemon and the proposals table, on real Redis: one watched promotion per
// service at a time, none before a clean baseline follows the service's last change, a refused shadow start leaves no shadow in the audit, a guard verdict lost
// after a rollback is written on the next pass, and transition() never sets live or rolled_back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../controlplane/knobs/clock.ts';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { createLogger } from '../controlplane/log.ts';
import { LoopDaemon } from '../controlplane/loop/daemon.ts';
import { ProposalTable } from '../controlplane/loop/proposals.ts';
import type { TuningTarget } from '../controlplane/loop/target.ts';
import { PinnedError } from '../controlplane/store/errors.ts';
import { batchingTarget } from './helpers/batching-target.ts';
import { livePromotion } from './helpers/live-promotion.ts';
import { startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

const target = batchingTarget;

describe('loop daemon, as reviewed', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterAll(async () => {
    await redis?.stop();
  });

  async function setup(
    targets: TuningTarget[],
    proposalsOf = (k: KnobTable) => new ProposalTable(k),
  ) {
    const clock = new ManualClock();
    const knobs = new KnobTable(redis.client(), { keys: uniqueKeys(), clock });
    await knobs.seed();
    clock.advance(3_600_000);
    const proposals = proposalsOf(knobs);
    const daemon = new LoopDaemon({
      knobs,
      proposals,
      targets,
      log: createLogger('test', 'silent'),
      minChangeIntervalMs: 60_000,
    });
    return { clock, knobs, proposals, daemon };
  }

  it('holds a promotion while another on the same service is watched, and promotes after', async () => {
    // The other target's promotion is watched for an hour (no verdict yet).
    const other = target({
      name: 'messaging.linger',
      knobs: ['messaging.linger_ms'],
      propose: async () => null,
      slo: { ...target().slo, watchMs: 3_600_000 },
    });
    const { clock, knobs, proposals, daemon } = await setup([target(), other]);
    const row = await knobs.get('messaging.linger_ms');
    const watched = await proposals.create({
      learner: 'messaging.linger',
      reason: 'r',
      changes: [
        { name: 'messaging.linger_ms', value: (row.value as number) + 1, baseVersion: row.version },
      ],
    });
    await proposals.transition(watched.id, 'simulated', { actor: 'gate', reason: 'ok' });
    await knobs.promoteAll({
      actor: 'x',
      actorKind: 'automation',
      reason: 'p',
      proposalId: watched.id,
      changes: watched.changes,
    });
    await daemon.tick(); // propose
    await daemon.tick(); // gate
    await daemon.tick(); // shadow
    clock.advance(5_000);
    const held = await daemon.tick();
    const [mine] = await proposals.list({ open: true });
    expect(held).toContainEqual(
      expect.objectContaining({
        kind: 'held',
        id: mine?.id,
        why: expect.stringContaining(watched.id),
      }),
    );
    expect((await knobs.get('messaging.batch_size')).version).toBe(1);
    // The other's verdict is in: the waiting one goes live.
    await proposals.annotate(watched.id, { guardReport: { verdict: 'ok' } });
    expect(await daemon.tick()).toContainEqual(
      expect.objectContaining({ kind: 'promoted', id: mine?.id }),
    );
    expect((await knobs.get('messaging.batch_size')).value).toBe(256);
  });

  it('holds a promotion until a clean baseline follows the last change on its service', async () => {
    const { clock, knobs, proposals, daemon } = await setup([target()]);
    await daemon.tick(); // propose
    await daemon.tick(); // gate
    await daemon.tick(); // shadow
    clock.advance(5_000);
    // An operator changes another knob of the service just before the promotion would go.
    const row = await knobs.get('messaging.linger_ms');
    await knobs.promote({
      name: 'messaging.linger_ms',
      value: (row.value as number) + 1,
      baseVersion: row.version,
      actor: 'op',
      reason: 'by hand',
    });
    const [mine] = await proposals.list({ open: true });
    expect(await daemon.tick()).toContainEqual(
      expect.objectContaining({
        kind: 'held',
        id: mine?.id,
        why: expect.stringContaining('a clean baseline on messaging: messaging.linger_ms changed'),
      }),
    );
    expect((await knobs.get('messaging.batch_size')).version).toBe(1);
    clock.advance(1_001); // the guard's baseline (1000 ms, no settle) is clean of it now
    expect(await daemon.tick()).toContainEqual(
      expect.objectContaining({ kind: 'promoted', id: mine?.id }),
    );
  });

  it('leaves no shadow audit entry for a shadow the knobs table refused to start', async () => {
    const refused = target({
      startShadow: async () => {
        throw new PinnedError('knob messaging.batch_size is pinned');
      },
    });
    const { knobs, proposals, daemon } = await setup([refused]);
    await daemon.tick(); // propose
    await daemon.tick(); // gate
    const events = await daemon.tick();
    expect(events[0]).toMatchObject({
      kind: 'rejected',
      why: expect.stringMatching(/shadow could not start/),
    });
    const [p] = await proposals.list();
    expect(p?.status).toBe('rejected');
    const actions = (await knobs.audit({ limit: 20 }))
      .filter((a) => a.target === p?.id)
      .map((a) => a.action);
    expect(actions).not.toContain('proposal.shadow');
    expect(actions).toContain('proposal.rejected');
  });

  it("writes the guard's verdict on the next pass when writing it after a rollback failed", async () => {
    const live = await livePromotion({
      redis: redis.client(),
      service: 'messaging',
      metric: 'latency_ms',
      before: 10,
      learner: 'messaging.batching',
      change: { name: 'messaging.batch_size', value: 128 },
    });
    await live.emit(30, 400);
    // The proposals table as the daemon sees it, its first guard annotate failing (Redis away).
    let failNext = true;
    const proposals = new ProposalTable(live.knobs);
    const annotate = proposals.annotate.bind(proposals);
    proposals.annotate = async (id, reports) => {
      if (reports.guardReport !== undefined && failNext) {
        failNext = false;
        throw new Error('connection lost');
      }
      return annotate(id, reports);
    };
    const daemon = new LoopDaemon({
      knobs: live.knobs,
      proposals,
      targets: [target()],
      log: createLogger('test', 'silent'),
      minChangeIntervalMs: 60_000,
    });
    expect(await daemon.tick()).toContainEqual(expect.objectContaining({ kind: 'error' }));
    let { proposal } = await proposals.get(live.proposal.id);
    expect(proposal.status).toBe('rolled_back');
    expect(proposal.guardReport).toBeUndefined();
    await daemon.tick();
    ({ proposal } = await proposals.get(live.proposal.id));
    expect(proposal.guardReport).toMatchObject({ verdict: 'regressed', rollbackBy: 'slo-guard' });
  });
});

describe('proposal transitions, as reviewed', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('never sets live or rolled_back: only the knob promotion and rollback do', async () => {
    const knobs = new KnobTable(redis.client(), { keys: uniqueKeys() });
    await knobs.seed();
    const proposals = new ProposalTable(knobs);
    const p = await proposals.create({
      learner: 'bo',
      reason: 'r',
      changes: [{ name: 'scheduler.retry_limit', value: 5, baseVersion: 1 }],
    });
    await proposals.transition(p.id, 'simulated', { actor: 'gate', reason: 'ok' });
    await expect(proposals.transition(p.id, 'live', { actor: 'x', reason: 'y' })).rejects.toThrow(
      /cannot move from simulated to live here/,
    );
    await proposals.transition(p.id, 'shadow', { actor: 'loop', reason: 'shadow' });
    await expect(proposals.transition(p.id, 'live', { actor: 'x', reason: 'y' })).rejects.toThrow(
      /cannot move from shadow to live/,
    );
    expect((await knobs.get('scheduler.retry_limit')).version).toBe(1);
    await knobs.promoteAll({
      actor: 'loop',
      actorKind: 'automation',
      reason: 'p',
      proposalId: p.id,
      changes: p.changes,
    });
    await expect(
      proposals.transition(p.id, 'rolled_back', { actor: 'x', reason: 'y' }),
    ).rejects.toThrow(/cannot move from live to rolled_back/);
    expect((await proposals.get(p.id)).proposal.status).toBe('live');
  });
});
