// The loop daemon: on every tick, for every tuning target, it moves open proposals one step
// along the pipeline (proposed -> simulation gate -> shadow -> promotion), lets the SLO guard
// judge recent promotions, and, when the target has nothing open and its knobs have been
// still for the minimum interval, calibrates a simulator from the live tables and asks the
// target's learner for a proposal. All its state is in the tables: any daemon instance can
// take over from one that stopped, and a shadow run is rebuilt from the trace stream since the
// shadow began (two running at once are not coordinated: run one).
import type { KnobValues } from '../../knobs/index.ts';
import { canonicalJson } from '../knobs/row.ts';
import { FrozenError, KnobosError } from '../store/errors.ts';
import type { KnobTable } from '../knobs/table.ts';
import type { Logger } from '../log.ts';
import { runGate } from './gate.ts';
import { isOpen, type Proposal } from './proposal.ts';
import type { ProposalTable } from './proposals.ts';
import { SloGuard } from './slo-guard.ts';
import type { ShadowRun, TuningTarget } from './target.ts';

export interface DaemonOptions {
  knobs: KnobTable;
  proposals: ProposalTable;
  targets: readonly TuningTarget[];
  log: Logger;
  /** Least time between two proposals of one target, and since the last change of its knobs. */
  minChangeIntervalMs: number;
  tickMs?: number;
  seed?: number;
  /**
   * Longest a proposal waits for a calibration before the simulation gate (its target's
   * calibrate() finding too little live data), before it is rejected. Default 30 minutes.
   */
  calibrateWaitMs?: number;
  /**
   * Longest a shadow may stay undecided, as a multiple of its target's shadowMs, before the
   * proposal is rejected. Default 4.
   */
  shadowPatience?: number;
  /**
   * Passes in a row a proposal's advance may fail (an error thrown: its simulator, Redis)
   * before the proposal is rejected with the error. Default 5.
   */
  advanceFailures?: number;
  /**
   * How long after a watched promotion's window ends the daemon still holds other promotions
   * on its service waiting for its verdict. Default 5 minutes.
   */
  guardGraceMs?: number;
  /**
   * How long a change the SLO guard rolled back is not proposed again by its target (the same
   * knobs to the same values): its simulator still favours it, and without this the loop
   * promoted, regressed and rolled back for ever. Default 24 hours.
   */
  refutedHoldMs?: number;
}

const CALIBRATE_WAIT_MS = 30 * 60_000;
const SHADOW_PATIENCE = 4;
/** How long a kind of reason for proposing nothing is not logged again. */
const QUIET_LOG_MS = 10 * 60_000;
const ADVANCE_FAILURES = 5;
const GUARD_GRACE_MS = 5 * 60_000;
const REFUTED_HOLD_MS = 24 * 3_600_000;

export type LoopEvent =
  | { kind: 'frozen' }
  | { kind: 'proposed'; target: string; id: string }
  | { kind: 'no_proposal'; target: string; why: string }
  | { kind: 'gate'; target: string; id: string; outcome: string }
  | { kind: 'shadow_started' | 'shadow_pending'; target: string; id: string }
  | { kind: 'held'; target: string; id: string; why: string }
  | { kind: 'promoted' | 'rejected'; target: string; id: string; why: string }
  | { kind: 'guard'; target: string; id: string; verdict: string }
  | { kind: 'error'; target: string; message: string };

/** Open proposals read per pass: far more than targets ever hold open (one each). */
const OPEN_MAX = 1_000;

export class LoopDaemon {
  private readonly shadows = new Map<string, ShadowRun>();
  private readonly guard: SloGuard;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<LoopEvent[]> | undefined;
  private seq = 0;
  /**
   * Per target, when each kind of reason for proposing nothing was last logged: again only
   * after QUIET_LOG_MS (a target alternating between two reasons logged every tick).
   */
  private readonly quietWhy = new Map<string, Map<string, number>>();
  /** Failed advances in a row, per proposal id (in memory: a restart gives it a fresh count). */
  private readonly failures = new Map<string, number>();

  constructor(private readonly opts: DaemonOptions) {
    this.guard = new SloGuard(opts.knobs, opts.proposals);
  }

  private now(): number {
    return this.opts.knobs.clock.now();
  }

  start(): this {
    this.timer ??= setInterval(() => {
      // A pass still running (stuck on a Redis that is away) is not joined: joining would log
      // its one failure once per interval.
      if (this.running) return;
      void this.tick().catch((err: Error) =>
        this.opts.log.error({ err: err.message }, 'loop tick failed'),
      );
    }, this.opts.tickMs ?? 1_000);
    return this;
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    // A failed pass was logged where it failed; stopping still stops.
    await this.running?.catch(() => undefined);
    await Promise.all([...this.shadows.values()].map((s) => s.stop()));
    this.shadows.clear();
  }

  /** One pass over every target; ticks never overlap. Returns what it did. */
  tick(): Promise<LoopEvent[]> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async pass(): Promise<LoopEvent[]> {
    const { knobs, proposals, targets } = this.opts;
    // A freeze stops new proposals and promotions, not the SLO guard: an incident, when
    // operators freeze, is when a regressed promotion most needs rolling back.
    const frozen = (await knobs.frozen()) !== null;
    const events: LoopEvent[] = frozen ? [{ kind: 'frozen' }] : [];
    // Every open proposal (from the open index: an old one must not drop out of view behind
    // newer ones, or it is never moved on and a second one opens on the same knob), and the
    // recent ones, for the guard's watch windows and the rate limit.
    const [open, latest] = await Promise.all([
      proposals.list({ open: true, limit: OPEN_MAX }),
      proposals.list({ limit: 200 }),
    ]);
    const recent = [...new Map([...latest, ...open].map((p) => [p.id, p])).values()];
    // A shadow run whose proposal left shadow some other way (an operator promoted it, another
    // daemon decided it) would read the live stream for ever: stop it.
    const inShadow = new Set(open.filter((p) => p.status === 'shadow').map((p) => p.id));
    for (const [id, run] of this.shadows) {
      if (inShadow.has(id)) continue;
      this.shadows.delete(id);
      await run.stop();
    }
    // Services promoted on during this pass: `recent` was read before it, so a second target
    // on the same service would not see the first one's promotion there.
    const promotedOn = new Set<string>();
    for (const target of targets) {
      // One target's failure (Redis, its simulator) must not starve the targets after it.
      try {
        events.push(...(await this.passTarget(target, recent, frozen, promotedOn)));
      } catch (err) {
        this.opts.log.error({ err, target: target.name }, 'loop: target pass failed');
        events.push({ kind: 'error', target: target.name, message: (err as Error).message });
      }
    }
    return events;
  }

  private async passTarget(
    target: TuningTarget,
    recent: readonly Proposal[],
    frozen: boolean,
    promotedOn: Set<string>,
  ): Promise<LoopEvent[]> {
    const events: LoopEvent[] = [];
    const mine = recent.filter((p) => p.learner === target.name);
    const open = mine.filter((p) => isOpen(p.status));
    // The guard first, on its own: a proposal whose advance fails must not keep the target's
    // live promotion from being judged (nor, unjudged, hold the service's other targets).
    try {
      events.push(...(await this.guardTarget(target, [...mine, ...this.adopted(target, recent)])));
    } catch (err) {
      this.opts.log.error({ err, target: target.name }, 'loop: slo guard failed');
      events.push({ kind: 'error', target: target.name, message: (err as Error).message });
    }
    if (!frozen)
      for (const p of open) {
        try {
          const out = await this.advance(target, p, recent, promotedOn);
          this.failures.delete(p.id);
          events.push(...out);
        } catch (err) {
          events.push(...(await this.advanceFailed(target, p, err as Error)));
        }
      }
    if (!frozen && open.length === 0) events.push(await this.proposeNew(target, mine));
    if (!frozen) {
      try {
        await this.endShadowLeft(target);
      } catch (err) {
        this.opts.log.error({ err, target: target.name }, 'loop: ending a shadow left on failed');
        events.push({ kind: 'error', target: target.name, message: (err as Error).message });
      }
    }
    return events;
  }

  /**
   * Ends a shadow the target's loop started that no open proposal holds: its proposal went
   * live or was decided while no daemon held its run (the one that started it died). A proposal
   * in `simulated` holds it too: a daemon starts the shadow before it moves the proposal on.
   * The open proposals are read again here: a list read at the pass's start could miss one
   * another daemon moved to `simulated` and started a shadow for since.
   */
  private async endShadowLeft(target: TuningTarget): Promise<void> {
    if (!target.shadowLeft || !target.endShadow) return;
    const left = await target.shadowLeft();
    if (!left) return;
    const open = await this.opts.proposals.list({ open: true, limit: OPEN_MAX });
    const held = open.some((p) => {
      if (p.learner !== target.name || (p.status !== 'simulated' && p.status !== 'shadow'))
        return false;
      const values = this.valuesOf(p, {});
      return Object.entries(left).every(([k, v]) => values[k] === v);
    });
    if (held) return;
    this.opts.log.info({ target: target.name, shadow: left }, 'loop: ending a shadow left on');
    await target.endShadow(left);
  }

  /**
   * A failed advance: reported; after `advanceFailures` in a row the proposal is rejected with
   * the error, or it would hold its knobs (and its target's next proposal) for ever.
   */
  private async advanceFailed(target: TuningTarget, p: Proposal, err: Error): Promise<LoopEvent[]> {
    const n = (this.failures.get(p.id) ?? 0) + 1;
    const limit = this.opts.advanceFailures ?? ADVANCE_FAILURES;
    this.opts.log.error(
      { err, target: target.name, proposal: p.id, failures: n },
      'loop: advance failed',
    );
    const events: LoopEvent[] = [{ kind: 'error', target: target.name, message: err.message }];
    if (n < limit) {
      this.failures.set(p.id, n);
      return events;
    }
    const why = `advance failed ${n} passes in a row: ${err.message}`;
    try {
      await this.opts.proposals.transition(p.id, 'rejected', {
        actor: `loop:${target.name}`,
        reason: why,
      });
      this.failures.delete(p.id);
      await this.shadows.get(p.id)?.stop();
      this.shadows.delete(p.id);
      events.push({ kind: 'rejected', target: target.name, id: p.id, why });
    } catch (e) {
      // Redis away as well: tried again on the next pass.
      this.failures.set(p.id, n);
      events.push({ kind: 'error', target: target.name, message: (e as Error).message });
    }
    return events;
  }

  /** The guard over the target's live promotions without a final verdict, and lost verdicts. */
  private async guardTarget(target: TuningTarget, mine: readonly Proposal[]): Promise<LoopEvent[]> {
    const events: LoopEvent[] = [];
    // Every live promotion without a final verdict: the guard judges from stored telemetry
    // over the watch window, so a daemon that was down through it still judges it on return.
    for (const p of mine.filter((x) => x.status === 'live' && x.guardReport === undefined)) {
      const r = await this.guard.check(p, target.slo, this.relatedKnobs(target));
      if (r.verdict !== 'watching') {
        this.opts.log.info(
          { target: target.name, proposal: p.id, ...r },
          `slo guard: ${r.verdict}`,
        );
        // Kept on the proposal: judged once, and the verdict is there to read.
        await this.opts.proposals.annotate(p.id, { guardReport: r });
        // Refuted live: the target does not propose the same change again for refutedHoldMs,
        // however many proposals come after (the recent list holds only the newest 200).
        if (r.verdict === 'regressed' && p.learner === target.name) {
          const { redis, keys } = this.opts.knobs;
          await redis.hset(keys.loopRefuted(target.name), changeKey(p.changes), String(this.now()));
        }
      }
      events.push({ kind: 'guard', target: target.name, id: p.id, verdict: r.verdict });
    }
    // A rollback whose verdict was not written (the annotate after it failed): the verdict is
    // in the rollback's history entry, so it is written now rather than lost.
    for (const p of mine.filter((x) => x.status === 'rolled_back' && x.guardReport === undefined))
      await this.recoverGuardReport(p);
    return events;
  }

  /**
   * Proposals no target made (a policy version promoted through the registry, an operator's
   * proposal through the API) whose changes move this target's service: its guard judges them
   * like its own (they went unjudged), the first target on the service only.
   */
  private adopted(target: TuningTarget, recent: readonly Proposal[]): Proposal[] {
    const { targets } = this.opts;
    return recent.filter(
      (p) =>
        !targets.some((t) => t.name === p.learner) &&
        targets.find((t) => this.servicesOf(p).has(t.slo.service)) === target,
    );
  }

  /** Knobs of the other targets guarded on the same service: their changes move its metric. */
  private relatedKnobs(target: TuningTarget): string[] {
    return this.opts.targets
      .filter((t) => t !== target && t.slo.service === target.slo.service)
      .flatMap((t) => t.knobs);
  }

  /** The services a proposal's change moves: its target's SLO service, else its knobs'. */
  private servicesOf(p: Proposal): Set<string> {
    const owner = this.opts.targets.find((t) => t.name === p.learner);
    if (owner) return new Set([owner.slo.service]);
    return new Set(p.changes.map((c) => this.opts.knobs.spec(c.name).service as string));
  }

  /**
   * A promotion on the target's service still under watch: live without a final verdict, and
   * inside its watch window (its own target's, else this target's) plus a grace for the guard
   * to give its verdict. A verdict that never comes (its target gone, its guard failing) holds
   * the service no longer than that.
   */
  private watchedOnService(
    target: TuningTarget,
    recent: readonly Proposal[],
  ): Proposal | undefined {
    const now = this.now();
    const grace = this.opts.guardGraceMs ?? GUARD_GRACE_MS;
    return recent.find((p) => {
      if (p.status !== 'live' || p.guardReport !== undefined) return false;
      if (!this.servicesOf(p).has(target.slo.service)) return false;
      const owner = this.opts.targets.find((t) => t.name === p.learner);
      const watchMs = (owner ?? target).slo.watchMs;
      return now < p.updatedAt + watchMs + (owner ? grace : 0);
    });
  }

  /** Writes the guard's verdict of a rollback from the rollback's history entry. */
  private async recoverGuardReport(p: Proposal): Promise<void> {
    for (const c of p.changes) {
      const entry = (await this.opts.knobs.history(c.name, { limit: 100 })).find(
        (h) => h.kind === 'rollback' && h.proposalId === p.id,
      );
      if (!entry) continue;
      const evidence = (entry.evidence ?? {}) as Record<string, unknown>;
      // The guard's rollback carries its report (with its verdict) as evidence; any other
      // (an operator's, through the API) is no guard verdict and is not labelled as one.
      const byGuard = entry.actor === 'slo-guard' && typeof evidence['verdict'] === 'string';
      await this.opts.proposals.annotate(p.id, {
        guardReport: {
          ...evidence,
          verdict: byGuard ? evidence['verdict'] : 'operator_rollback',
          reason: entry.reason,
          rollbackBy: entry.actor,
          recoveredFrom: `history of ${c.name}, version ${entry.version}`,
        },
      });
      return;
    }
  }

  private async currentValues(
    target: TuningTarget,
  ): Promise<{ values: KnobValues; versions: Record<string, number>; lastChangeAt: number }> {
    const rows = await Promise.all(target.knobs.map((n) => this.opts.knobs.get(n)));
    return {
      values: Object.fromEntries(rows.map((r) => [r.name, r.value])),
      versions: Object.fromEntries(rows.map((r) => [r.name, r.version])),
      lastChangeAt: Math.max(...rows.map((r) => (r.version === 1 ? 0 : r.updatedAt))),
    };
  }

  private async proposeNew(target: TuningTarget, mine: readonly Proposal[]): Promise<LoopEvent> {
    const none = (why: string): LoopEvent => {
      // Said once per kind of reason (its numbers aside), so an operator sees why a target is
      // quiet without a line every tick.
      const kind = why.replace(/\d+/g, '#');
      const logged = this.quietWhy.get(target.name) ?? new Map<string, number>();
      this.quietWhy.set(target.name, logged);
      const at = this.now();
      if (at - (logged.get(kind) ?? -Infinity) >= QUIET_LOG_MS) {
        logged.set(kind, at);
        this.opts.log.info({ target: target.name, why }, 'not proposing');
      }
      return { kind: 'no_proposal', target: target.name, why };
    };
    const down = await target.standDown?.();
    if (down) return none(down);
    const now = this.now();
    const lastProposal = Math.max(0, ...mine.map((p) => p.createdAt));
    const cur = await this.currentValues(target);
    const since = Math.max(lastProposal, cur.lastChangeAt);
    if (now - since < this.opts.minChangeIntervalMs)
      return none(`rate limit: last change ${now - since} ms ago`);
    const cal = await target.calibrate();
    if (!cal) return none('not enough live data to calibrate a simulator');
    if ('why' in cal) return none(cal.why);
    const cand = await target.propose(cal, cur.values, (this.opts.seed ?? 1) + this.seq++);
    if (!cand) return none('the learner found nothing better than the live configuration');
    const foreign = Object.keys(cand.values).find((n) => !target.knobs.includes(n));
    if (foreign !== undefined) {
      this.opts.log.warn({ target: target.name, knob: foreign }, 'learner proposed a foreign knob');
      return none(`the learner proposed knob ${foreign}, not one of its target's knobs`);
    }
    const changes = Object.entries(cand.values)
      .filter(([n, v]) => JSON.stringify(v) !== JSON.stringify(cur.values[n]))
      .map(([name, value]) => ({ name, value, baseVersion: cur.versions[name] as number }));
    if (changes.length === 0) return none('the learner proposed the live configuration');
    const hold = this.opts.refutedHoldMs ?? REFUTED_HOLD_MS;
    const key = changeKey(changes);
    const { redis, keys } = this.opts.knobs;
    const recorded = Number((await redis.hget(keys.loopRefuted(target.name), key)) ?? NaN);
    // The record, or (its write lost with the daemon) a rolled-back proposal among the recent.
    const refutedAt = Math.max(
      Number.isFinite(recorded) ? recorded : -Infinity,
      ...mine
        .filter((p) => p.status === 'rolled_back' && changeKey(p.changes) === key)
        .map((p) => p.updatedAt),
    );
    if (now - refutedAt < hold)
      return none(`the same change was rolled back live ${now - refutedAt} ms ago`);
    try {
      // A change the knobs table would refuse (step, cooldown, pin) is not worth a proposal.
      for (const c of changes)
        await this.opts.knobs.check({
          ...c,
          actor: target.name,
          actorKind: 'automation',
          reason: 'check',
        });
      const p = await this.opts.proposals.create({
        learner: target.name,
        changes,
        // The versions of all the target's knobs: the gate and the shadow judge the candidate
        // beside the others' values, so a move of any of them makes the proposal stale.
        evidence: { ...cand.evidence, calibration: cal.fit, targetVersions: cur.versions },
        reason: `calibrated on ${cal.records} live records; predicted ${JSON.stringify(cand.evidence['predicted'] ?? null)}`,
      });
      this.opts.log.info({ target: target.name, proposal: p.id, changes }, 'proposed');
      this.quietWhy.delete(target.name);
      return { kind: 'proposed', target: target.name, id: p.id };
    } catch (err) {
      if (err instanceof KnobosError) return none(err.message);
      throw err;
    }
  }

  private valuesOf(p: Proposal, base: KnobValues): KnobValues {
    return { ...base, ...Object.fromEntries(p.changes.map((c) => [c.name, c.value])) };
  }

  private async advance(
    target: TuningTarget,
    p: Proposal,
    recent: readonly Proposal[],
    promotedOn: Set<string>,
  ): Promise<LoopEvent[]> {
    const { proposals, knobs, log } = this.opts;
    const actor = `loop:${target.name}`;
    const reject = async (
      why: string,
      reports: { simReport?: unknown; shadowReport?: unknown } = {},
    ): Promise<LoopEvent[]> => {
      await proposals.transition(p.id, 'rejected', { actor, reason: why, ...reports });
      const run = this.shadows.get(p.id);
      // A shadow this daemon does not hold (started before a restart or by another) still runs.
      if (run) await run.stop();
      else if (p.status === 'shadow') await target.endShadow?.(this.valuesOf(p, {}));
      this.shadows.delete(p.id);
      log.info({ target: target.name, proposal: p.id, why }, 'rejected');
      return [{ kind: 'rejected', target: target.name, id: p.id, why }];
    };
    const cur = await this.currentValues(target);
    const based: [string, number][] = [
      ...p.changes.map((c): [string, number] => [c.name, c.baseVersion]),
      ...Object.entries(targetVersions(p)),
    ];
    const stale = based.find(
      ([name, v]) => cur.versions[name] !== undefined && cur.versions[name] !== v,
    );
    if (stale)
      return reject(`knob ${stale[0]} moved from version ${stale[1]} to ${cur.versions[stale[0]]}`);
    const down = await target.standDown?.();
    if (down) return reject(down);
    const incumbent = cur.values;
    const candidate = this.valuesOf(p, incumbent);

    if (p.status === 'proposed') {
      const cal = await target.calibrate();
      if (!cal || 'why' in cal) {
        // An open proposal holds its knobs (no other opens on them), so it cannot wait for
        // ever on data that does not come.
        const waited = this.now() - p.updatedAt;
        const limit = this.opts.calibrateWaitMs ?? CALIBRATE_WAIT_MS;
        if (waited >= limit)
          return reject(
            `no calibration after ${waited} ms (limit ${limit} ms): ${cal?.why ?? 'too little live data'}`,
          );
        return [];
      }
      const report = await runGate(
        (v: KnobValues, seed, slice) => target.evaluate(cal, v, seed, slice),
        incumbent,
        candidate,
        {
          ...target.gate,
          seed: (this.opts.seed ?? 1) * 1000 + this.seq++,
        },
      );
      const simReport = { ...report, pairs: report.pairs.slice(0, 64), calibration: cal.fit };
      log.info(
        {
          target: target.name,
          proposal: p.id,
          outcome: report.outcome,
          improvement: report.improvement,
        },
        'simulation gate',
      );
      if (report.outcome !== 'successful')
        return reject(`simulation gate ${report.outcome}: ${report.reasons.join('; ')}`, {
          simReport,
        });
      await proposals.transition(p.id, 'simulated', {
        actor,
        reason: report.reasons.join('; '),
        simReport,
      });
      return [{ kind: 'gate', target: target.name, id: p.id, outcome: report.outcome }];
    }

    // A shadow the knobs table refuses to start (the scheduler's shadow knob pinned, or moved
    // under it) will not start on a later pass either: reject, or it would hold its knobs for
    // ever. A freeze passes: the proposal waits in shadow, as at promotion.
    const startShadow = async (sinceMs: number): Promise<ShadowRun | LoopEvent[]> => {
      try {
        return await target.startShadow(incumbent, candidate, sinceMs);
      } catch (err) {
        if (err instanceof FrozenError) return [{ kind: 'frozen' }];
        if (err instanceof KnobosError) return reject(`shadow could not start: ${err.message}`);
        throw err;
      }
    };

    if (p.status === 'simulated') {
      // Started before the move is audited: a start the knobs table refuses leaves no audit
      // entry for a shadow that never ran. The run counts from now; the move, a moment later,
      // is where a rebuilt run counts from.
      const started = await startShadow(this.now());
      if (Array.isArray(started)) return started;
      try {
        await proposals.transition(p.id, 'shadow', { actor, reason: 'shadow started' });
      } catch (err) {
        // Another daemon moved it first: the shadow (a knob both runs read) is the one it
        // started, and ending it here would blind that run. This run is kept as a rebuilt one.
        const now = await proposals.get(p.id).catch(() => undefined);
        if (now?.proposal.status === 'shadow') {
          this.shadows.set(p.id, started);
          return [{ kind: 'shadow_pending', target: target.name, id: p.id }];
        }
        await started.stop();
        throw err;
      }
      this.shadows.set(p.id, started);
      return [{ kind: 'shadow_started', target: target.name, id: p.id }];
    }

    // status 'shadow': rebuild the run if this daemon did not start it (a restart, a takeover).
    let run = this.shadows.get(p.id);
    const rebuilt = !run;
    if (!run) {
      const started = await startShadow(p.updatedAt);
      if (Array.isArray(started)) return started;
      run = started;
      this.shadows.set(p.id, run);
    }
    if (this.now() - p.updatedAt < target.shadowMs)
      return [{ kind: 'shadow_pending', target: target.name, id: p.id }];
    const shadow = await run.report();
    if (shadow.verdict === 'pending') {
      const ran = this.now() - p.updatedAt;
      const limit = target.shadowMs * (this.opts.shadowPatience ?? SHADOW_PATIENCE);
      // Patience runs out on a run that has seen the traffic, not on one rebuilt this pass or
      // still reading its backlog: all that traffic is in the stream, waiting to be read.
      if (ran >= limit && !rebuilt && !shadow.catchingUp)
        return reject(`shadow undecided after ${ran} ms (limit ${limit} ms)`, {
          shadowReport: shadow,
        });
      return [{ kind: 'shadow_pending', target: target.name, id: p.id }];
    }
    if (shadow.verdict !== 'better')
      return reject(`shadow: candidate ${shadow.verdict} than live`, { shadowReport: shadow });
    // Two promotions watched at once on one service confound each other's guard: this one
    // waits (its shadow keeps running) until the other has its verdict.
    if (promotedOn.has(target.slo.service)) {
      const why = `another promotion on ${target.slo.service} this pass: waiting for its SLO guard's verdict`;
      return [{ kind: 'held', target: target.name, id: p.id, why }];
    }
    const watched = this.watchedOnService(target, recent);
    if (watched) {
      const why = `waiting for the SLO guard's verdict on ${watched.id}, live on ${target.slo.service}`;
      return [{ kind: 'held', target: target.name, id: p.id, why }];
    }
    // The guard judges against the level since the service's last change: promoted sooner
    // (right after another promotion's rollback, say), it would have too few points to judge.
    const { settleMs, baselineMs } = target.slo;
    const now = this.now();
    const recentChange = await this.guard.lastChange(
      target.slo,
      [...target.knobs, ...this.relatedKnobs(target)],
      now - settleMs - baselineMs,
      now,
    );
    if (recentChange) {
      const why = `a clean baseline on ${target.slo.service}: ${recentChange.knob} changed at ${recentChange.at}, promotions wait ${settleMs + baselineMs} ms after a change`;
      return [{ kind: 'held', target: target.name, id: p.id, why }];
    }
    await proposals.annotate(p.id, { shadowReport: shadow });
    try {
      await knobs.promoteAll({
        actor,
        actorKind: 'automation',
        reason: `passed the simulation gate and shadow (${target.name})`,
        proposalId: p.id,
        evidence: { simReport: p.simReport, shadowReport: shadow },
        changes: p.changes,
      });
    } catch (err) {
      // A freeze that landed during this pass: the proposal waits in shadow for the unfreeze
      // (a stale base or a pin, by contrast, will not pass later either).
      if (err instanceof FrozenError) return [{ kind: 'frozen' }];
      if (err instanceof KnobosError) return reject(`promotion refused: ${err.message}`);
      throw err;
    }
    promotedOn.add(target.slo.service);
    await run.stop();
    this.shadows.delete(p.id);
    log.info({ target: target.name, proposal: p.id, changes: p.changes }, 'promoted');
    return [{ kind: 'promoted', target: target.name, id: p.id, why: 'gate and shadow passed' }];
  }
}

/**
 * The versions of its target's knobs a proposal was made on (evidence.targetVersions; none in
 * proposals made before it was recorded).
 */
function targetVersions(p: Proposal): Record<string, number> {
  const v = (p.evidence as { targetVersions?: unknown } | undefined)?.targetVersions;
  if (typeof v !== 'object' || v === null) return {};
  return Object.fromEntries(
    Object.entries(v).filter((e): e is [string, number] => Number.isInteger(e[1])),
  );
}

/** A change set's knobs and values (canonical JSON, names in order): equal for the same change. */
function changeKey(changes: readonly { name: string; value: unknown }[]): string {
  return JSON.stringify(
    [...changes]
      .sort((a, b) => (a.name < b.name ? -1 : 1))
      .map((c) => [c.name, canonicalJson(c.value)]),
  );
}
