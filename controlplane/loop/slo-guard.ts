// The SLO guard: after a promotion, watches one live telemetry metric against its level
// before the promotion and, on a regression beyond the stated bound, rolls the proposal's
// knobs back to their base values in one atomic step (marking the proposal rolled_back, with
// audit and history entries). The guard keeps no state of its own: the proposal row says when
// it went live, and the telemetry tables say what happened before and after.
import type { KnobTable } from '../knobs/table.ts';
import type { PromoteResult } from '../knobs/table.ts';
import { PinnedError, StaleVersionError } from '../store/errors.ts';
import { telemetrySeries } from '../telemetry/read.ts';
import type { Proposal } from './proposal.ts';
import type { ProposalTable } from './proposals.ts';
import { mean } from './stats.ts';

export interface SloSpec {
  service: string;
  metric: string;
  /** Which way is better for the metric. */
  direction: 'min' | 'max';
  /** Largest tolerated relative worsening (0.1 = 10%). */
  maxRegression: number;
  /** The window before the promotion that sets the baseline. */
  baselineMs: number;
  /** How long after the promotion the guard watches; after it the promotion stands. */
  watchMs: number;
  /** Time after the promotion ignored while the change settles in. */
  settleMs: number;
  /** Telemetry points needed on each side before any verdict. */
  minPoints: number;
  /** Step of the telemetry series. */
  stepMs: number;
}

/** A target's SLO: its metric, with its own or else the guard's default windows unless overridden. */
export function sloSpec(
  metric: Pick<SloSpec, 'service' | 'metric' | 'direction' | 'maxRegression'> & Partial<SloSpec>,
  over: Partial<SloSpec> = {},
): SloSpec {
  return {
    baselineMs: 60_000,
    watchMs: 120_000,
    settleMs: 5_000,
    minPoints: 5,
    stepMs: 1_000,
    ...metric,
    ...over,
  };
}

export type GuardVerdict = 'watching' | 'ok' | 'regressed' | 'no_baseline';

export interface GuardReport {
  verdict: GuardVerdict;
  baseline: number | null;
  observed: number | null;
  /** Relative worsening of the observed level against the baseline (positive = worse). */
  worsening: number | null;
  points: { baseline: number; observed: number };
  checkedAt: number;
  rolledBack?: PromoteResult[];
  reason: string;
}

export class SloGuard {
  constructor(
    private readonly knobs: KnobTable,
    private readonly proposals: ProposalTable,
  ) {}

  /** Judges a live proposal now; rolls it back when the SLO regressed. */
  async check(proposal: Proposal, slo: SloSpec): Promise<GuardReport> {
    const now = this.knobs.clock.now();
    const liveAt = proposal.updatedAt;
    const series = (fromMs: number, toMs: number) =>
      telemetrySeries(this.knobs.redis, this.knobs.keys, slo.service, slo.metric, {
        fromMs,
        toMs,
        stepMs: slo.stepMs,
        // A percentile or maximum is judged on the worst instance (shard): averaged, a
        // regression of one of three shards would show a third of its size.
        ...(/_(p50|p99|max)$/.test(slo.metric)
          ? { across: slo.direction === 'min' ? ('max' as const) : ('min' as const) }
          : {}),
      });
    // Up to the millisecond before the promotion: a point written in its millisecond may
    // already be the change's (a range's ends are inclusive).
    const before = await series(liveAt - slo.baselineMs, liveAt - 1);
    const after = await series(liveAt + slo.settleMs, Math.min(now, liveAt + slo.watchMs));
    const report: GuardReport = {
      verdict: 'watching',
      baseline: before.length ? mean(before.map((p) => p.value)) : null,
      observed: after.length ? mean(after.map((p) => p.value)) : null,
      worsening: null,
      points: { baseline: before.length, observed: after.length },
      checkedAt: now,
      reason: '',
    };
    if (before.length < slo.minPoints) {
      // Without a baseline the guard cannot judge; it says so rather than guess.
      return {
        ...report,
        verdict: now >= liveAt + slo.watchMs ? 'no_baseline' : 'watching',
        reason: `${before.length} of ${slo.minPoints} baseline points`,
      };
    }
    if (after.length < slo.minPoints) {
      return {
        ...report,
        reason: `${after.length} of ${slo.minPoints} points since the promotion`,
      };
    }
    const base = report.baseline as number;
    const obs = report.observed as number;
    const worsening =
      (slo.direction === 'min' ? obs - base : base - obs) / Math.max(Math.abs(base), 1e-12);
    report.worsening = worsening;
    if (worsening > slo.maxRegression) {
      const reason = `${slo.service}.${slo.metric} worsened ${(worsening * 100).toFixed(1)}% (from ${base.toPrecision(4)} to ${obs.toPrecision(4)}), over the ${(slo.maxRegression * 100).toFixed(1)}% bound`;
      return {
        ...report,
        verdict: 'regressed',
        reason,
        rolledBack: await this.rollback(proposal, reason, report),
      };
    }
    if (now >= liveAt + slo.watchMs)
      return {
        ...report,
        verdict: 'ok',
        reason: `held within ${(slo.maxRegression * 100).toFixed(1)}% for the watch window`,
      };
    return { ...report, reason: `worsening ${(worsening * 100).toFixed(1)}% within bound so far` };
  }

  /**
   * Restores every knob of a live proposal to its value at the proposal's base version, in
   * one atomic step that also marks the proposal rolled_back. A knob someone changed since the
   * promotion makes the rollback stale: the guard does not overwrite a newer decision.
   */
  async rollback(
    proposal: Proposal,
    reason: string,
    report: Omit<GuardReport, 'rolledBack'>,
  ): Promise<PromoteResult[]> {
    const changes = [];
    for (const c of proposal.changes) {
      const history = await this.knobs.history(c.name, { limit: 1000 });
      const atBase = history.find((h) => h.version === c.baseVersion);
      if (!atBase)
        throw new Error(`slo guard: knob ${c.name} has no version ${c.baseVersion} in its history`);
      changes.push({ name: c.name, value: atBase.new, baseVersion: c.baseVersion + 1 });
    }
    try {
      // 'system': a safety rollback restores a known-good state even while automation is frozen.
      return await this.knobs.promoteAll(
        {
          actor: 'slo-guard',
          actorKind: 'system',
          reason: `rollback: ${reason}`,
          proposalId: proposal.id,
          evidence: report,
          changes,
        },
        'rollback',
      );
    } catch (err) {
      // Changed since (stale) or held by an operator (pinned): their decision stands.
      if (err instanceof StaleVersionError || err instanceof PinnedError) return [];
      throw err;
    }
  }
}
