// The SLO guard: after a promotion, watches one live telemetry metric against its level
// before the promotion and, on a regression beyond the stated bound, rolls the proposal's
// knobs back to their base values in one atomic step (marking the proposal rolled_back, with
// audit and history entries). The guard keeps no state of its own: the proposal row says when
// it went live, and the telemetry tables say what happened before and after.
import type { KnobTable } from '../knobs/table.ts';
import type { PromoteResult } from '../knobs/table.ts';
import { PinnedError, StaleVersionError } from '../store/errors.ts';
import { telemetryEntries, telemetrySeries } from '../telemetry/read.ts';
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

/**
 * watching: no final verdict yet. ok: held (final). regressed: worsened beyond the bound, or
 * went silent (final; rolled back). no_baseline: too little data before the promotion to judge
 * (final). ambiguous: another change on the service went live inside the watch window before
 * this one could be judged alone (final; left standing: the guard cannot tell whose it is).
 */
export type GuardVerdict = 'watching' | 'ok' | 'regressed' | 'no_baseline' | 'ambiguous';

export interface GuardReport {
  verdict: GuardVerdict;
  baseline: number | null;
  observed: number | null;
  /** Relative worsening of the observed level against the baseline (positive = worse). */
  worsening: number | null;
  /** The same over the last minPoints points only: a late regression the mean dilutes. */
  trailingWorsening?: number | null;
  points: { baseline: number; observed: number };
  /** Another change on the service inside the window: the after-window ends before it. */
  cutBy?: { knob: string; proposalId: string; at: number };
  /** Instances reporting before the promotion that went silent after it. */
  silentInstances?: string[];
  checkedAt: number;
  rolledBack?: PromoteResult[];
  reason: string;
}

/** Knob history entries read per knob when looking for other changes in a watch window. */
const HISTORY_SCAN = 100;

export class SloGuard {
  constructor(
    private readonly knobs: KnobTable,
    private readonly proposals: ProposalTable,
  ) {}

  /**
   * The first change, not this proposal's, to a knob of the service (the catalog's knobs of
   * slo.service, the proposal's own and `related`) at or after liveAt and by `until`: another
   * proposal's promotion or rollback, or an operator's change.
   */
  private async firstOtherChange(
    proposal: Proposal,
    slo: SloSpec,
    related: readonly string[],
    liveAt: number,
    until: number,
  ): Promise<GuardReport['cutBy'] | undefined> {
    const names = new Set([
      ...this.knobs.catalog.filter((k) => k.service === slo.service).map((k) => k.name),
      ...proposal.changes.map((c) => c.name),
      ...related,
    ]);
    let first: GuardReport['cutBy'] | undefined;
    for (const name of names) {
      for (const h of await this.knobs.history(name, { limit: HISTORY_SCAN })) {
        if (h.at < liveAt) break; // newest first: the rest is older
        if (h.at > until || h.kind === 'seed' || h.proposalId === proposal.id) continue;
        // Another proposal's promotion or rollback, or an operator's change; not the loop's
        // own bookkeeping without a proposal (a shadow knob set and reset: it never acts).
        if (h.proposalId === '' && h.actorKind !== 'operator') continue;
        if (!first || h.at < first.at) first = { knob: name, proposalId: h.proposalId, at: h.at };
      }
    }
    return first;
  }

  /**
   * Instances that reported in the steps just before the promotion and not for the last
   * `max(minPoints steps, 3 of its own reporting intervals)` up to `end`; none while the judged
   * window is shorter than that (a quiet instance is not yet a silent one).
   */
  private async silentInstances(slo: SloSpec, liveAt: number, end: number): Promise<string[]> {
    const { redis, keys } = this.knobs;
    const before = await telemetryEntries(
      redis,
      keys,
      slo.service,
      liveAt - slo.baselineMs,
      liveAt - 1,
    );
    const perInstance = new Map<string, number>();
    for (const e of before) {
      const inst = e.fields['instance'] ?? '';
      perInstance.set(inst, (perInstance.get(inst) ?? 0) + 1);
    }
    const recentBefore = liveAt - slo.minPoints * slo.stepMs;
    const alive = new Set(
      before.filter((e) => e.ms >= recentBefore).map((e) => e.fields['instance'] ?? ''),
    );
    const quietMs = (inst: string) =>
      Math.max(slo.minPoints * slo.stepMs, (3 * slo.baselineMs) / (perInstance.get(inst) ?? 1));
    const judgedFrom = liveAt + slo.settleMs;
    const longest = Math.max(0, ...[...alive].map(quietMs));
    if (alive.size === 0) return [];
    const after = await telemetryEntries(
      redis,
      keys,
      slo.service,
      Math.max(judgedFrom, end - longest),
      end,
    );
    const lastSeen = new Map<string, number>();
    for (const e of after) lastSeen.set(e.fields['instance'] ?? '', e.ms);
    return [...alive].filter((inst) => {
      const quiet = quietMs(inst);
      if (end - judgedFrom < quiet) return false;
      const seen = lastSeen.get(inst);
      return seen === undefined || seen < end - quiet;
    });
  }

  /**
   * Judges a live proposal now; rolls it back when the SLO regressed. `related` names knobs
   * outside the service's catalog entries whose changes also move its metric (another
   * target's knobs guarded on the same service).
   */
  async check(
    proposal: Proposal,
    slo: SloSpec,
    related: readonly string[] = [],
  ): Promise<GuardReport> {
    const now = this.knobs.clock.now();
    const liveAt = proposal.updatedAt;
    const windowEnd = liveAt + slo.watchMs;
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
    // A change promoted on the same service meanwhile moves the metric too: only the part
    // before it is this proposal's. Once it happened, no later data is clean: final.
    const cutBy = await this.firstOtherChange(
      proposal,
      slo,
      related,
      liveAt,
      Math.min(now, windowEnd),
    );
    const end = Math.min(now, windowEnd, cutBy ? cutBy.at - 1 : Infinity);
    const final = now >= windowEnd || cutBy !== undefined;
    // Up to the millisecond before the promotion: a point written in its millisecond may
    // already be the change's (a range's ends are inclusive).
    const before = await series(liveAt - slo.baselineMs, liveAt - 1);
    const after = end >= liveAt + slo.settleMs ? await series(liveAt + slo.settleMs, end) : [];
    const report: GuardReport = {
      verdict: 'watching',
      baseline: before.length ? mean(before.map((p) => p.value)) : null,
      observed: after.length ? mean(after.map((p) => p.value)) : null,
      worsening: null,
      points: { baseline: before.length, observed: after.length },
      ...(cutBy ? { cutBy } : {}),
      checkedAt: now,
      reason: '',
    };
    const cutNote = cutBy
      ? ` (judged up to ${cutBy.knob}'s change by ${cutBy.proposalId || 'an operator'} at ${cutBy.at}, inside the watch window)`
      : '';
    if (before.length < slo.minPoints) {
      // Without a baseline the guard cannot judge; it says so rather than guess.
      return {
        ...report,
        verdict: final ? 'no_baseline' : 'watching',
        reason: `${before.length} of ${slo.minPoints} baseline points`,
      };
    }
    const regressed = async (reason: string, r: GuardReport): Promise<GuardReport> => {
      const judged = { ...r, verdict: 'regressed' as const, reason };
      return { ...judged, rolledBack: await this.rollback(proposal, reason, judged) };
    };
    const base = report.baseline as number;
    const worse = (obs: number) =>
      (slo.direction === 'min' ? obs - base : base - obs) / Math.max(Math.abs(base), 1e-12);
    const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
    const bound = `over the ${pct(slo.maxRegression)} bound`;
    if (after.length >= slo.minPoints) {
      const obs = report.observed as number;
      const trailingObs = mean(after.slice(-slo.minPoints).map((p) => p.value));
      const worsening = worse(obs);
      const trailing = worse(trailingObs);
      report.worsening = worsening;
      report.trailingWorsening = trailing;
      if (worsening > slo.maxRegression)
        return regressed(
          `${slo.service}.${slo.metric} worsened ${pct(worsening)} (from ${base.toPrecision(4)} to ${obs.toPrecision(4)}), ${bound}${cutNote}`,
          report,
        );
      // The mean since the promotion dilutes a regression that starts late in the window.
      if (trailing > slo.maxRegression)
        return regressed(
          `${slo.service}.${slo.metric} worsened ${pct(trailing)} over its last ${slo.minPoints} points (from ${base.toPrecision(4)} to ${trailingObs.toPrecision(4)}), ${bound}${cutNote}`,
          report,
        );
    }
    // A change that stops the service (or some of its instances) stops its telemetry: silence
    // is the worst regression, not a lack of evidence.
    const silent = await this.silentInstances(slo, liveAt, end);
    if (silent.length > 0)
      return regressed(
        `${slo.service} instances ${silent.join(', ')} reported before the promotion and stopped after it${cutNote}`,
        { ...report, silentInstances: silent },
      );
    if (after.length < slo.minPoints) {
      const got = `${after.length} of ${slo.minPoints} points since the promotion`;
      if (!final) return { ...report, reason: got };
      if (cutBy)
        return {
          ...report,
          verdict: 'ambiguous',
          reason: `${got} before another change on ${slo.service}${cutNote}: left standing, not judged`,
        };
      return regressed(
        `${slo.service}.${slo.metric}: only ${got} over the whole watch window: missing telemetry after a promotion counts as a regression`,
        report,
      );
    }
    if (final)
      return {
        ...report,
        verdict: 'ok',
        reason: cutBy
          ? `held within ${pct(slo.maxRegression)}${cutNote}`
          : `held within ${pct(slo.maxRegression)} for the watch window`,
      };
    return {
      ...report,
      reason: `worsening ${pct(report.worsening as number)} within bound so far`,
    };
  }

  /**
   * Restores every knob of a live proposal to its value at the proposal's base version, in
   * one atomic step that also marks the proposal rolled_back. A knob someone changed since the
   * promotion makes the rollback stale: the guard does not overwrite a newer decision.
   */
  async rollback(
    proposal: Proposal,
    reason: string,
    report: GuardReport,
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
