// The loop daemon's pipeline against real Redis, with a scripted tuning target: the target's
// service-specific parts (calibration, learner, simulator, shadow) are plain functions here, so
// the test pins down the daemon's own decisions. The end-to-end test with a live service is
// loop-e2e.test.ts.
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KnobValues } from '../knobs/index.ts';
import { ManualClock } from '../controlplane/knobs/clock.ts';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { createLogger } from '../controlplane/log.ts';
import { LoopDaemon } from '../controlplane/loop/daemon.ts';
import { ProposalTable } from '../controlplane/loop/proposals.ts';
import type { ShadowReport, TuningTarget } from '../controlplane/loop/target.ts';
import { livePromotion } from './helpers/live-promotion.ts';
import { shadowTestTarget } from './helpers/shadow-target.ts';
import { startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

/** A target whose simulated objective is the batch size's distance from 256 (smaller is better). */
function scripted(opts: {
  shadow: ShadowReport['verdict'];
  simBias?: number;
}): TuningTarget & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    name: 'messaging.batching',
    knobs: ['messaging.batch_size'],
    gate: { direction: 'min', minEffect: 0.01, minSamples: 4, maxSamples: 8, slices: 2 },
    slo: {
      service: 'messaging',
      metric: 'latency_ms_p99',
      direction: 'min',
      maxRegression: 0.2,
      baselineMs: 1000,
      watchMs: 1000,
      settleMs: 0,
      minPoints: 3,
      stepMs: 100,
    },
    shadowMs: 5_000,
    async calibrate() {
      calls.push('calibrate');
      return {
        data: null,
        fit: { metric: 'latency_ms_p99', predicted: 10, observed: 10, relativeError: 0 },
        records: 1000,
      };
    },
    async propose(_cal, current: KnobValues) {
      calls.push('propose');
      const b = current['messaging.batch_size'] as number;
      return b >= 256
        ? null
        : {
            values: { 'messaging.batch_size': Math.min(256, b * 4) },
            evidence: { predicted: 'closer to 256' },
          };
    },
    async evaluate(_cal, values: KnobValues, seed: number, slice: number) {
      const b = values['messaging.batch_size'] as number;
      return Math.abs(b - 256) * (opts.simBias ?? 1) + 10 + ((seed * 7 + slice) % 3) * 0.01;
    },
    async startShadow() {
      calls.push('shadow');
      return {
        report: async () => ({ verdict: opts.shadow, details: { ghost: 'measured' } }),
        stop: async () => {},
      };
    },
  };
}

describe('loop daemon', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterAll(async () => {
    await redis?.stop();
  });

  /** A daemon over a fresh knobs table, past every cooldown, with one target (or its maker). */
  async function setup(target: TuningTarget | ((knobs: KnobTable) => TuningTarget)) {
    const clock = new ManualClock();
    const knobs = new KnobTable(redis.client(), { keys: uniqueKeys(), clock });
    await knobs.seed();
    clock.advance(3_600_000);
    const proposals = new ProposalTable(knobs);
    const daemon = new LoopDaemon({
      knobs,
      proposals,
      targets: [typeof target === 'function' ? target(knobs) : target],
      log: createLogger('test', 'silent'),
      minChangeIntervalMs: 60_000,
    });
    return { clock, knobs, proposals, daemon };
  }

  it('logs why a target proposes nothing once per kind of reason, not every tick', async () => {
    const target = scripted({ shadow: 'better' });
    target.propose = async () => null;
    const { clock, knobs, proposals } = await setup(target);
    const lines: { msg: string; why?: string }[] = [];
    const log = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
    const daemon = new LoopDaemon({
      knobs,
      proposals,
      targets: [target],
      log,
      minChangeIntervalMs: 60_000,
    });
    for (let i = 0; i < 3; i++) {
      await daemon.tick();
      clock.advance(1_000);
    }
    const quiet = () => lines.filter((l) => l.msg === 'not proposing').map((l) => l.why);
    expect(quiet()).toEqual(['the learner found nothing better than the live configuration']);
    await knobs.promote({
      name: 'messaging.batch_size',
      value: 100,
      baseVersion: 1,
      actor: 'op',
      reason: 'x',
    });
    for (let i = 0; i < 3; i++) {
      await daemon.tick();
      clock.advance(1_000);
    }
    // The rate limit's reason, with its changing count of ms, is said once.
    expect(quiet()).toHaveLength(2);
    expect(quiet()[1]).toMatch(/^rate limit: last change \d+ ms ago$/);
    // Back to the learner's reason, and to the rate limit, within ten minutes: nothing new; a
    // target alternating between two reasons does not log every tick.
    clock.advance(60_000);
    await daemon.tick();
    await knobs.promote({
      name: 'messaging.batch_size',
      value: 90,
      baseVersion: 2,
      actor: 'op',
      reason: 'x',
    });
    await daemon.tick();
    expect(quiet()).toHaveLength(2);
    clock.advance(10 * 60_000);
    await daemon.tick();
    expect(quiet()).toHaveLength(3);
  });

  it('takes a proposal through the gate and shadow to promotion, with every step audited', async () => {
    const target = scripted({ shadow: 'better' });
    const { clock, knobs, proposals, daemon } = await setup(target);
    const [e1] = await daemon.tick();
    expect(e1?.kind).toBe('proposed');
    const id = (e1 as { id: string }).id;
    expect((await daemon.tick())[0]).toMatchObject({ kind: 'gate', outcome: 'successful' });
    expect((await daemon.tick())[0]).toMatchObject({ kind: 'shadow_started' });
    expect((await daemon.tick())[0]).toMatchObject({ kind: 'shadow_pending' });
    clock.advance(5_000);
    expect((await daemon.tick())[0]).toMatchObject({ kind: 'promoted', id });
    const row = await knobs.get('messaging.batch_size');
    expect(row.value).toBe(256);
    expect(row.proposalId).toBe(id);
    const { proposal } = await proposals.get(id);
    expect(proposal.status).toBe('live');
    expect(proposal.simReport).toMatchObject({ outcome: 'successful' });
    expect(proposal.shadowReport).toMatchObject({ verdict: 'better' });
    const actions = (await knobs.audit({ limit: 10 })).map((a) => a.action);
    // The knob step audits the proposal's move to live too, in the same step.
    expect(actions.slice(0, 5)).toEqual([
      'proposal.live',
      'knob.promote',
      'proposal.shadow',
      'proposal.simulated',
      'proposal.create',
    ]);
    // Nothing new until the knobs have been still for the minimum interval.
    expect((await daemon.tick()).find((e) => e.kind === 'no_proposal')).toMatchObject({
      why: expect.stringMatching(/^rate limit/),
    });
  });

  it('rejects a candidate the simulation gate fails, and promotes nothing', async () => {
    // A mis-specified simulator in which bigger batches look worse: the gate must refuse.
    const target = scripted({ shadow: 'better', simBias: -1 });
    const { knobs, proposals, daemon } = await setup(target);
    const [e1] = await daemon.tick();
    const [e2] = await daemon.tick();
    expect(e2).toMatchObject({
      kind: 'rejected',
      why: expect.stringMatching(/^simulation gate failed: regression/),
    });
    expect((await proposals.get((e1 as { id: string }).id)).proposal.status).toBe('rejected');
    expect((await knobs.get('messaging.batch_size')).version).toBe(1);
    expect(target.calls).not.toContain('shadow');
  });

  it('rejects a candidate shadow finds worse than live', async () => {
    const target = scripted({ shadow: 'worse' });
    const { clock, knobs, daemon } = await setup(target);
    await daemon.tick();
    await daemon.tick();
    await daemon.tick();
    clock.advance(5_000);
    expect((await daemon.tick())[0]).toMatchObject({
      kind: 'rejected',
      why: 'shadow: candidate worse than live',
    });
    expect((await knobs.get('messaging.batch_size')).version).toBe(1);
  });

  it('rejects a shadow still undecided after its patience, and stops its run', async () => {
    const target = scripted({ shadow: 'pending' });
    let stopped = 0;
    const start = target.startShadow.bind(target);
    target.startShadow = async (...a) => {
      const run = await start(...a);
      return { report: run.report, stop: async () => void stopped++ };
    };
    const { clock, knobs, daemon } = await setup(target);
    await daemon.tick();
    await daemon.tick();
    expect((await daemon.tick())[0]).toMatchObject({ kind: 'shadow_started' });
    clock.advance(5_000 * 4 - 1);
    expect((await daemon.tick())[0]).toMatchObject({ kind: 'shadow_pending' });
    clock.advance(1);
    expect((await daemon.tick())[0]).toMatchObject({
      kind: 'rejected',
      why: 'shadow undecided after 20000 ms (limit 20000 ms)',
    });
    expect(stopped).toBe(1);
    expect((await knobs.get('messaging.batch_size')).version).toBe(1);
  });

  it('rejects a proposal that waits too long for a calibration, freeing its knob', async () => {
    const target = scripted({ shadow: 'better' });
    // Live data enough to propose, then none: the gate can never calibrate.
    const calibrate = target.calibrate.bind(target);
    let calibrations = 0;
    target.calibrate = async () => (calibrations++ === 0 ? calibrate() : null);
    const { clock, proposals, daemon } = await setup(target);
    const [e1] = await daemon.tick();
    const id = (e1 as { id: string }).id;
    expect(await daemon.tick()).toEqual([]);
    clock.advance(30 * 60_000 - 1);
    expect(await daemon.tick()).toEqual([]);
    clock.advance(1);
    expect((await daemon.tick())[0]).toMatchObject({
      kind: 'rejected',
      id,
      why: 'no calibration after 1800000 ms (limit 1800000 ms): too little live data',
    });
    expect((await proposals.get(id)).proposal.status).toBe('rejected');
  });

  it('waits on a calibration that says why it cannot be had, then rejects naming it', async () => {
    const target = scripted({ shadow: 'better' });
    const calibrate = target.calibrate.bind(target);
    let calibrations = 0;
    const why = 'trace x holds 3 records sampled at rate 0.1';
    target.calibrate = async () => (calibrations++ === 0 ? calibrate() : { why });
    const { clock, daemon } = await setup(target);
    const id = ((await daemon.tick())[0] as { id: string }).id;
    clock.advance(30 * 60_000 - 1);
    expect(await daemon.tick()).toEqual([]);
    clock.advance(1);
    expect((await daemon.tick())[0]).toMatchObject({
      kind: 'rejected',
      id,
      why: `no calibration after 1800000 ms (limit 1800000 ms): ${why}`,
    });
  });

  it('drops a proposal whose base moved under it', async () => {
    const target = scripted({ shadow: 'better' });
    const { knobs, daemon } = await setup(target);
    await daemon.tick();
    await knobs.promote({
      name: 'messaging.batch_size',
      value: 100,
      baseVersion: 1,
      actor: 'op',
      reason: 'manual',
    });
    expect((await daemon.tick())[0]).toMatchObject({
      kind: 'rejected',
      why: 'knob messaging.batch_size moved from version 1 to 2',
    });
  });

  it('does nothing while automation is frozen', async () => {
    const target = scripted({ shadow: 'better' });
    const { knobs, proposals, daemon } = await setup(target);
    await knobs.freeze('op', 'incident');
    expect(await daemon.tick()).toEqual([{ kind: 'frozen' }]);
    expect(await proposals.list()).toEqual([]);
    expect(target.calls).toEqual([]);
  });

  it('keeps a proposal in shadow when a freeze lands during the pass, and promotes it after', async () => {
    const target = scripted({ shadow: 'better' });
    const { clock, knobs, proposals, daemon } = await setup(target);
    const id = ((await daemon.tick())[0] as { id: string }).id;
    await daemon.tick(); // gate
    await daemon.tick(); // shadow started
    clock.advance(5_000);
    // The shadow's report is read after the pass checked the freeze switch: freeze then.
    const start = target.startShadow.bind(target);
    target.startShadow = async (...a) => {
      const run = await start(...a);
      return {
        ...run,
        report: async () => {
          await knobs.freeze('oncall', 'incident');
          return run.report();
        },
      };
    };
    (daemon as unknown as { shadows: Map<string, unknown> }).shadows.clear();
    expect(await daemon.tick()).toEqual([{ kind: 'frozen' }]);
    expect((await proposals.get(id)).proposal.status).toBe('shadow');
    target.startShadow = start;
    (daemon as unknown as { shadows: Map<string, unknown> }).shadows.clear();
    await knobs.unfreeze('oncall', 'over');
    expect((await daemon.tick())[0]).toMatchObject({ kind: 'promoted', id });
  });

  it('stops the shadow run of a proposal an operator took live meanwhile', async () => {
    const target = scripted({ shadow: 'pending' });
    let stopped = 0;
    const start = target.startShadow.bind(target);
    target.startShadow = async (...a) => ({
      ...(await start(...a)),
      stop: async () => void stopped++,
    });
    const { knobs, proposals, daemon } = await setup(target);
    const id = ((await daemon.tick())[0] as { id: string }).id;
    await daemon.tick(); // gate
    expect((await daemon.tick())[0]).toMatchObject({ kind: 'shadow_started', id });
    const { proposal } = await proposals.get(id);
    await knobs.promoteAll({
      actor: 'op',
      actorKind: 'operator',
      reason: 'ship it',
      proposalId: id,
      changes: proposal.changes,
    });
    expect(stopped).toBe(0);
    await daemon.tick();
    expect(stopped).toBe(1);
  });

  it('gives a shadow run rebuilt after a restart a pass to read the stream before its patience', async () => {
    // A rebuilt run has read nothing yet: its first report is pending, whatever the stream holds.
    const target = scripted({ shadow: 'better' });
    const start = target.startShadow.bind(target);
    target.startShadow = async (...a) => {
      const run = await start(...a);
      let reports = 0;
      return {
        ...run,
        report: async () =>
          reports++ === 0 ? { verdict: 'pending', details: { requests: 0 } } : run.report(),
      };
    };
    const { clock, proposals, daemon } = await setup(target);
    const id = ((await daemon.tick())[0] as { id: string }).id;
    await daemon.tick(); // gate
    expect((await daemon.tick())[0]).toMatchObject({ kind: 'shadow_started', id });
    // The daemon is down for longer than the patience, then comes back.
    clock.advance(5_000 * 4 + 1_000);
    (daemon as unknown as { shadows: Map<string, unknown> }).shadows.clear();
    expect((await daemon.tick())[0]).toMatchObject({ kind: 'shadow_pending', id });
    expect((await daemon.tick())[0]).toMatchObject({ kind: 'promoted', id });
    expect((await proposals.get(id)).proposal.status).toBe('live');
  });

  it('waits past its patience for a shadow run still reading its backlog', async () => {
    const target = scripted({ shadow: 'better' });
    const start = target.startShadow.bind(target);
    let behind = 3;
    target.startShadow = async (...a) => {
      const run = await start(...a);
      return {
        ...run,
        report: async () =>
          behind-- > 0 ? { verdict: 'pending', catchingUp: true, details: {} } : run.report(),
      };
    };
    const { clock, daemon } = await setup(target);
    const id = ((await daemon.tick())[0] as { id: string }).id;
    await daemon.tick(); // gate
    await daemon.tick(); // shadow started
    clock.advance(5_000 * 4 + 1);
    for (let i = 0; i < 3; i++)
      expect((await daemon.tick())[0]).toMatchObject({ kind: 'shadow_pending', id });
    expect((await daemon.tick())[0]).toMatchObject({ kind: 'promoted', id });
  });

  describe('a shadow the knobs table refuses to start', () => {
    /** The scheduler target, its simulator replaced: every gate says srpt beats fifo. */
    async function schedulerSetup() {
      return setup((knobs) => {
        const target = shadowTestTarget(knobs);
        target.calibrate = async () => ({
          data: { name: 'none', jobs: [] },
          fit: { metric: 'mean_jct_ms', predicted: 1, observed: 1, relativeError: 0 },
          records: 100,
        });
        target.propose = async () => ({ values: { 'scheduler.policy': 'srpt' }, evidence: {} });
        target.evaluate = async (_c, v, seed, slice) =>
          (v['scheduler.policy'] === 'srpt' ? 80 : 100) + ((seed * 7 + slice) % 3) * 0.01;
        return target;
      });
    }

    it('stands down while a learned registry policy is live', async () => {
      const { knobs, proposals, daemon } = await schedulerSetup();
      const id = ((await daemon.tick())[0] as { id: string }).id;
      const row = await knobs.get('scheduler.policy_version');
      await knobs.promote({
        name: 'scheduler.policy_version',
        value: 3,
        baseVersion: row.version,
        actor: 'op',
        reason: 'learned policy v3',
      });
      const why = /scheduler.policy_version is 3: the registry's policy version 3 dispatches/;
      expect((await daemon.tick())[0]).toMatchObject({ kind: 'rejected', id, why });
      expect((await proposals.get(id)).proposal.status).toBe('rejected');
      expect(await daemon.tick()).toEqual([
        { kind: 'no_proposal', target: 'scheduler.policy', why: expect.stringMatching(why) },
      ]);
      expect((await knobs.get('scheduler.policy')).value).toBe('fifo');
    });

    it('turns off a shadow started before a restart when it stands down', async () => {
      const { knobs, proposals, daemon } = await schedulerSetup();
      const id = ((await daemon.tick())[0] as { id: string }).id;
      await daemon.tick(); // gate
      expect((await daemon.tick())[0]).toMatchObject({ kind: 'shadow_started', id });
      expect((await knobs.get('scheduler.shadow_policy')).value).toBe('srpt');
      // A new daemon (a restart) that holds no run of that shadow.
      const opts = (daemon as unknown as { opts: ConstructorParameters<typeof LoopDaemon>[0] })
        .opts;
      const restarted = new LoopDaemon(opts);
      const row = await knobs.get('scheduler.policy_version');
      await knobs.promote({
        name: 'scheduler.policy_version',
        value: 2,
        baseVersion: row.version,
        actor: 'op',
        reason: 'learned policy v2',
      });
      expect((await restarted.tick())[0]).toMatchObject({ kind: 'rejected', id });
      expect((await proposals.get(id)).proposal.status).toBe('rejected');
      expect((await knobs.get('scheduler.shadow_policy')).value).toBe('none');
    });

    it('rejects the proposal when the shadow knob is pinned, freeing its knob', async () => {
      const { knobs, proposals, daemon } = await schedulerSetup();
      await knobs.pin('scheduler.shadow_policy', 'op', 'hands off');
      const id = ((await daemon.tick())[0] as { id: string }).id;
      expect((await daemon.tick())[0]).toMatchObject({ kind: 'gate', id });
      expect((await daemon.tick())[0]).toMatchObject({
        kind: 'rejected',
        id,
        why: expect.stringMatching(/^shadow could not start: .*pinned/),
      });
      expect((await proposals.get(id)).proposal.status).toBe('rejected');
      expect((await knobs.get('scheduler.policy')).value).toBe('fifo');
    });

    it('rejects a proposal whose rebuilt shadow is refused, and retries other failures', async () => {
      const { knobs, proposals, daemon } = await schedulerSetup();
      const id = ((await daemon.tick())[0] as { id: string }).id;
      await daemon.tick(); // gate
      expect((await daemon.tick())[0]).toMatchObject({ kind: 'shadow_started', id });
      expect((await knobs.get('scheduler.shadow_policy')).value).toBe('srpt');
      // While the daemon is away, an operator turns the shadow off and pins it.
      const row = await knobs.get('scheduler.shadow_policy');
      await knobs.promote({
        name: 'scheduler.shadow_policy',
        value: 'none',
        baseVersion: row.version,
        actor: 'op',
        reason: 'no shadows today',
      });
      await knobs.pin('scheduler.shadow_policy', 'op', 'hands off');
      const shadows = (daemon as unknown as { shadows: Map<string, unknown> }).shadows;
      shadows.clear();
      // A failure that is not the knobs table's refusal: logged, retried on the next pass.
      const target = (daemon as unknown as { opts: { targets: TuningTarget[] } }).opts.targets[0]!;
      const start = target.startShadow.bind(target);
      target.startShadow = async () => {
        target.startShadow = start;
        throw new Error('redis away');
      };
      expect(await daemon.tick()).toEqual([
        { kind: 'error', target: 'scheduler.policy', message: 'redis away' },
      ]);
      expect((await proposals.get(id)).proposal.status).toBe('shadow');
      expect((await daemon.tick())[0]).toMatchObject({
        kind: 'rejected',
        id,
        why: expect.stringMatching(/^shadow could not start: .*pinned/),
      });
      expect((await proposals.get(id)).proposal.status).toBe('rejected');
      expect(shadows.size).toBe(0);
    });
  });

  it('refuses a proposal naming a knob outside its target, without failing the pass', async () => {
    const target = scripted({ shadow: 'better' });
    target.propose = async () => ({
      values: { 'messaging.batch_size': 64, 'scheduler.policy': 'srpt' },
      evidence: {},
    });
    const { proposals, daemon } = await setup(target);
    expect(await daemon.tick()).toEqual([
      {
        kind: 'no_proposal',
        target: 'messaging.batching',
        why: "the learner proposed knob scheduler.policy, not one of its target's knobs",
      },
    ]);
    expect(await proposals.list()).toEqual([]);
  });

  it('moves on an open proposal older than the 200 newest', async () => {
    const target = scripted({ shadow: 'better' });
    const { clock, proposals, daemon } = await setup(target);
    const id = ((await daemon.tick())[0] as { id: string }).id;
    for (let i = 0; i < 201; i++) {
      clock.advance(1); // each one newer than the last
      const p = await proposals.create({
        learner: 'someone.else',
        changes: [{ name: 'files.cache_bytes', value: 1 << 20, baseVersion: 1 }],
        evidence: {},
        reason: 'noise',
      });
      await proposals.transition(p.id, 'rejected', { actor: 'x', reason: 'noise' });
    }
    expect((await daemon.tick())[0]).toMatchObject({ kind: 'gate', id });
    expect((await proposals.list({ open: true })).map((p) => p.id)).toEqual([id]);
  });

  describe('the SLO guard inside the loop', () => {
    /** The guard's event for a regressed promotion of the scripted target. */
    const regressed = (id: string) =>
      ({ kind: 'guard', target: 'messaging.batching', id, verdict: 'regressed' }) as const;

    /** A live promotion of the target's knob, with a p99 latency of 10 before it and `after`
     * once it is live. */
    async function regressedLive(target: TuningTarget, after: number) {
      const { knobs, proposals, proposal, emit } = await livePromotion({
        redis: redis.client(),
        service: 'messaging',
        metric: 'latency_ms',
        before: 10,
        learner: target.name,
        change: { name: 'messaging.batch_size', value: 128 },
      });
      await emit(after, 400);
      const daemon = new LoopDaemon({
        knobs,
        proposals,
        targets: [target, { ...scripted({ shadow: 'better' }), name: 'other' }],
        log: createLogger('test', 'silent'),
        minChangeIntervalMs: 60_000,
      });
      return { knobs, proposals, daemon, id: proposal.id };
    }

    it('rolls back a regressed promotion while automation is frozen, and proposes nothing', async () => {
      const target = scripted({ shadow: 'better' });
      const { knobs, proposals, daemon, id } = await regressedLive(target, 30);
      await knobs.freeze('op', 'incident');
      const events = await daemon.tick();
      expect(events).toContainEqual({ kind: 'frozen' });
      expect(events).toContainEqual(regressed(id));
      expect(events.some((e) => e.kind === 'proposed' || e.kind === 'no_proposal')).toBe(false);
      expect((await knobs.get('messaging.batch_size')).version).toBe(3); // the rollback
      expect((await proposals.get(id)).proposal.status).toBe('rolled_back');
      expect(target.calls).toEqual([]);
    });

    it('judges a promotion whose watch window passed while the loop was down, once', async () => {
      const target = scripted({ shadow: 'better' });
      const { knobs, proposals, daemon, id } = await regressedLive(target, 30);
      // No pass ran during the 1 s watch window (plus a step): the daemon was down.
      await new Promise((r) => setTimeout(r, 1_300));
      const events = await daemon.tick();
      expect(events).toContainEqual(regressed(id));
      expect((await knobs.get('messaging.batch_size')).version).toBe(3); // the rollback
      const { proposal } = await proposals.get(id);
      expect(proposal.status).toBe('rolled_back');
      expect(proposal.guardReport).toMatchObject({ verdict: 'regressed' });
      expect((await daemon.tick()).some((e) => e.kind === 'guard')).toBe(false);
    });

    it('leaves a pinned knob to its operator, and the pass goes on to the next target', async () => {
      const target = scripted({ shadow: 'better' });
      const { knobs, proposals, daemon, id } = await regressedLive(target, 30);
      await knobs.pin('messaging.batch_size', 'op', 'holding it');
      const events = await daemon.tick();
      expect(events).toContainEqual(regressed(id));
      expect((await knobs.get('messaging.batch_size')).value).toBe(128);
      expect((await proposals.get(id)).proposal.status).toBe('live');
      // The next target was reached: it looked for a proposal of its own.
      expect(events).toContainEqual(
        expect.objectContaining({ kind: 'no_proposal', target: 'other' }),
      );
    });

    it('reports a target whose pass fails and goes on to the next', async () => {
      const broken = {
        ...scripted({ shadow: 'better' }),
        calibrate: async () => {
          throw new Error('simulator unavailable');
        },
      };
      const other = { ...scripted({ shadow: 'better' }), name: 'other' };
      const { knobs, proposals } = await setup(broken);
      const daemon = new LoopDaemon({
        knobs,
        proposals,
        targets: [broken, other],
        log: createLogger('test', 'silent'),
        minChangeIntervalMs: 60_000,
      });
      const events = await daemon.tick();
      expect(events).toContainEqual({
        kind: 'error',
        target: 'messaging.batching',
        message: 'simulator unavailable',
      });
      expect(events).toContainEqual(expect.objectContaining({ kind: 'proposed', target: 'other' }));
    });
  });

  // Redis away: a pass hangs, then fails. The interval must not join the stuck pass once per
  // tick (each join logged the same failure again), and stop() must still stop.
  describe('while a pass is stuck', () => {
    function stuckDaemon(failAfterMs: number) {
      const errors: string[] = [];
      const fake = {
        error: (_o: unknown, msg: string) => errors.push(msg),
        info: () => {},
        warn: () => {},
        child: () => fake,
      } as unknown as ReturnType<typeof createLogger>;
      let passes = 0;
      const knobs = { frozen: async () => null } as unknown as KnobTable;
      const proposals = {
        // A pass reads the open proposals and the recent ones: count it once.
        list: (o?: { open?: boolean }) => {
          if (!o?.open) passes++;
          return new Promise((_, reject) =>
            setTimeout(() => reject(new Error('redis is away')), failAfterMs),
          );
        },
      } as unknown as ProposalTable;
      const daemon = new LoopDaemon({
        knobs,
        proposals,
        targets: [],
        log: fake,
        minChangeIntervalMs: 60_000,
        tickMs: 10,
      });
      return { daemon, errors, passes: () => passes };
    }

    it('logs one failure once, not once per interval', async () => {
      const { daemon, errors, passes } = stuckDaemon(200);
      daemon.start();
      await new Promise((r) => setTimeout(r, 260));
      await daemon.stop().catch(() => undefined); // (that it resolves is the next test's)
      // Each pass (the second started after the first failed, and stop() waited for it)
      // logged its failure once: about 20 ticks fell in each.
      expect(passes()).toBe(2);
      expect(errors.filter((m) => m === 'loop tick failed')).toHaveLength(passes());
    });

    it('stop() resolves although the running pass fails', async () => {
      const { daemon } = stuckDaemon(50);
      daemon.start();
      await new Promise((r) => setTimeout(r, 20));
      await expect(daemon.stop()).resolves.toBeUndefined();
    });
  });
});
