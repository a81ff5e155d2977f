// The SLO guard: after a promotion, watches one live telemetry metric against its level
// before the promotion and, on a regression beyond the stated bound, rolls the proposal's
// knobs back to their base values in one atomic step (marking the proposal rolled_back, with
// audit and history entries). The guard keeps no state of its own: the proposal row says when
// it went live, and the telemetry tables say what happened before and after.
import type { KnobTable } from '../knobs/table.ts';
import type { PromoteResult } from '../knobs/table.ts';
import { PinnedError, StaleVersionError } from '../store/errors.ts';
import { telemetryEntries, telemetrySeries } from '../telemetry/read.ts';
import type { LogEntry as TelemetryEntry } from '../store/log.ts';
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
  /**
   * Counters in the service's telemetry whose positive count shows that work arrived (jobs
   * submitted, reads served): missing metric points are a regression only with demand.
   * Default: DEMAND_COUNTERS of the service.
   */
  demand?: readonly string[];
  /**
   * The least level a worsening is measured against, in the metric's units: its resolution
   * and noise near 0. Without it, a baseline of 0 (a p99 of an idle shard at ms resolution)
   * made any observation an unbounded regression. Default 0.
   */
  noiseFloor?: number;
}

/**
 * The counters each service's telemetry carries that count arriving work (a counter seen once
 * is written, 0 when idle, on every flush of its instance): the scheduler's client counts
 * submitted tasks and its dispatchers started ones; the files service counts each operation
 * and its reader the cache hits and misses; messaging's producers count produced messages and
 * its partition workers consumed ones.
 */
export const DEMAND_COUNTERS: Readonly<Record<string, readonly string[]>> = {
  scheduler: ['tasks_submitted', 'tasks_started'],
  files: ['ops_read', 'cache_hits', 'cache_misses'],
  messaging: ['produced', 'consumed'],
};

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
 * the metric stopped while work kept arriving (final; rolled back). no_baseline: too little
 * data before the promotion to judge (final). no_data: too few points after the promotion
 * and no demand to show that any were due (an idle service; final, left standing).
 * ambiguous: another change on the service went live inside the watch window before this one
 * could be judged alone (final; left standing: the guard cannot tell whose it is).
 */
export type GuardVerdict =
  'watching' | 'ok' | 'regressed' | 'no_baseline' | 'no_data' | 'ambiguous';

export interface GuardReport {
  verdict: GuardVerdict;
  baseline: number | null;
  observed: number | null;
  /** Relative worsening of the observed level against the baseline (positive = worse). */
  worsening: number | null;
  /**
   * The same over the last `trailingPoints` points only (a late regression the mean dilutes);
   * judged once, at the window's end.
   */
  trailingWorsening?: number | null;
  points: { baseline: number; observed: number };
  /** Another change on the service inside the window: the after-window ends before it. */
  cutBy?: { knob: string; proposalId: string; at: number };
  /** Other changes on the service made in the promotion's very millisecond: judged jointly. */
  jointWith?: { knob: string; proposalId: string }[];
  /** Demand counted (DEMAND_COUNTERS) in the judged window, when it was read. */
  demand?: number;
  /** Instances that carried the metric before the promotion and stopped carrying it. */
  silentInstances?: string[];
  checkedAt: number;
  rolledBack?: PromoteResult[];
  reason: string;
}

/** Knob history entries read per knob when looking for other changes in a watch window. */
const HISTORY_SCAN = 100;

/** The trailing window judged at the window's end: this share of the points since the promotion. */
const TRAILING_SHARE = 0.25;

export class SloGuard {
  constructor(
    private readonly knobs: KnobTable,
    private readonly proposals: ProposalTable,
  ) {}

  /** The knobs whose changes move slo.service's metric: its catalog's, `own` and `related`. */
  private namesOf(slo: SloSpec, own: readonly string[], related: readonly string[]): Set<string> {
    return new Set([
      ...this.knobs.catalog.filter((k) => k.service === slo.service).map((k) => k.name),
      ...own,
      ...related,
    ]);
  }

  /**
   * Changes to `names` from `fromMs` to `untilMs`, newest first per knob, not `skip`'s (a
   * proposal id): another proposal's promotion or rollback, or an operator's change; not a
   * seed, nor the loop's own bookkeeping without a proposal (a shadow knob set and reset: it
   * never acts).
   */
  private async changes(
    names: Iterable<string>,
    fromMs: number,
    untilMs: number,
    skip = '',
  ): Promise<{ knob: string; proposalId: string; at: number }[]> {
    const out: { knob: string; proposalId: string; at: number }[] = [];
    for (const name of names)
      for (const h of await this.knobs.history(name, { limit: HISTORY_SCAN })) {
        if (h.at < fromMs) break; // newest first: the rest is older
        if (h.at > untilMs || h.kind === 'seed' || (skip !== '' && h.proposalId === skip)) continue;
        if (h.proposalId === '' && h.actorKind !== 'operator') continue;
        out.push({ knob: name, proposalId: h.proposalId, at: h.at });
      }
    return out;
  }

  /**
   * The latest change from `fromMs` to `untilMs` to a knob that moves slo.service's metric
   * (its catalog's and `related`), by anyone: the loop holds a promotion until a baseline
   * clean of it has accumulated (daemon.ts), and the guard reads its baseline after it.
   */
  async lastChange(
    slo: SloSpec,
    related: readonly string[],
    fromMs: number,
    untilMs: number,
    skip = '',
  ): Promise<{ knob: string; proposalId: string; at: number } | undefined> {
    const all = await this.changes(this.namesOf(slo, [], related), fromMs, untilMs, skip);
    return all.reduce<(typeof all)[number] | undefined>(
      (a, c) => (!a || c.at > a.at ? c : a),
      undefined,
    );
  }

  /**
   * Changes, not this proposal's, to a knob of the service (the catalog's knobs of
   * slo.service, the proposal's own and `related`) from liveAt to `until`: another proposal's
   * promotion or rollback, or an operator's change. `cut` is the first after liveAt; `joint`
   * those in liveAt's own millisecond (promoted together with this one: nothing can be judged
   * before them, so the guard judges the joint change rather than nothing).
   */
  private async otherChanges(
    proposal: Proposal,
    slo: SloSpec,
    related: readonly string[],
    liveAt: number,
    until: number,
  ): Promise<{ cut?: GuardReport['cutBy']; joint: NonNullable<GuardReport['jointWith']> }> {
    const names = this.namesOf(
      slo,
      proposal.changes.map((c) => c.name),
      related,
    );
    let first: GuardReport['cutBy'] | undefined;
    const joint: NonNullable<GuardReport['jointWith']> = [];
    for (const c of await this.changes(names, liveAt, until, proposal.id)) {
      if (c.at <= liveAt) joint.push({ knob: c.knob, proposalId: c.proposalId });
      else if (!first || c.at < first.at) first = c;
    }
    return { ...(first ? { cut: first } : {}), joint };
  }

  /** Demand counted in entries (DEMAND_COUNTERS of the service unless the spec names its own). */
  private static demandOf(slo: SloSpec, entries: readonly TelemetryEntry[]): number {
    const counters = slo.demand ?? DEMAND_COUNTERS[slo.service] ?? [];
    let n = 0;
    for (const e of entries)
      for (const c of counters) {
        const v = Number(e.fields[c] ?? 0);
        if (Number.isFinite(v) && v > 0) n += v;
      }
    return n;
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
    const { redis, keys } = this.knobs;
    const series = (fromMs: number, toMs: number) =>
      telemetrySeries(redis, keys, slo.service, slo.metric, {
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
    const { cut: cutBy, joint } = await this.otherChanges(
      proposal,
      slo,
      related,
      liveAt,
      Math.min(now, windowEnd),
    );
    const end = Math.min(now, windowEnd, cutBy ? cutBy.at - 1 : Infinity);
    const final = now >= windowEnd || cutBy !== undefined;
    const judgedFrom = liveAt + slo.settleMs;
    // Up to the millisecond before the promotion: a point written in its millisecond may
    // already be the change's (a range's ends are inclusive). From the settle after the last
    // other change before it: the level before that change is not what this one changed (a
    // promotion right after another's rollback read the regressed period as its baseline).
    const prior = await this.lastChange(
      slo,
      [...proposal.changes.map((c) => c.name), ...related],
      liveAt - slo.baselineMs,
      liveAt - 1,
      proposal.id,
    );
    const baselineFrom = Math.max(liveAt - slo.baselineMs, prior ? prior.at + slo.settleMs : 0);
    const before = baselineFrom < liveAt ? await series(baselineFrom, liveAt - 1) : [];
    const after = end >= judgedFrom ? await series(judgedFrom, end) : [];
    const report: GuardReport = {
      verdict: 'watching',
      baseline: before.length ? mean(before.map((p) => p.value)) : null,
      observed: after.length ? mean(after.map((p) => p.value)) : null,
      worsening: null,
      points: { baseline: before.length, observed: after.length },
      ...(cutBy ? { cutBy } : {}),
      ...(joint.length ? { jointWith: joint } : {}),
      checkedAt: now,
      reason: '',
    };
    const cutNote =
      (cutBy
        ? ` (judged up to ${cutBy.knob}'s change by ${cutBy.proposalId || 'an operator'} at ${cutBy.at}, inside the watch window)`
        : '') +
      (joint.length
        ? ` (promoted in the same millisecond as ${joint.map((j) => `${j.knob} by ${j.proposalId || 'an operator'}`).join(', ')}: judged jointly)`
        : '');
    if (before.length < slo.minPoints) {
      // Without a baseline the guard cannot judge; it says so rather than guess.
      return {
        ...report,
        verdict: final ? 'no_baseline' : 'watching',
        reason:
          `${before.length} of ${slo.minPoints} baseline points` +
          (prior ? ` (read after ${prior.knob}'s change at ${prior.at})` : ''),
      };
    }
    const regressed = async (reason: string, r: GuardReport): Promise<GuardReport> => {
      const judged = { ...r, verdict: 'regressed' as const, reason };
      return { ...judged, rolledBack: await this.rollback(proposal, reason, judged) };
    };
    const base = report.baseline as number;
    const worse = (obs: number) =>
      (slo.direction === 'min' ? obs - base : base - obs) /
      Math.max(Math.abs(base), slo.noiseFloor ?? 0, 1e-12);
    const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
    const bound = `over the ${pct(slo.maxRegression)} bound`;
    // The raw entries since the settle time: demand, and whether the metric stopped coming.
    const entries =
      end >= judgedFrom ? await telemetryEntries(redis, keys, slo.service, judgedFrom, end) : [];
    if (after.length >= slo.minPoints) {
      const obs = report.observed as number;
      const worsening = worse(obs);
      report.worsening = worsening;
      if (worsening > slo.maxRegression)
        return regressed(
          `${slo.service}.${slo.metric} worsened ${pct(worsening)} (from ${base.toPrecision(4)} to ${obs.toPrecision(4)}), ${bound}${cutNote}`,
          report,
        );
      // The mean since the promotion dilutes a regression that starts late in the window; the
      // trailing part is judged once, at the end: checked on every tick, the noise of a few
      // points would cross the bound on one look or another (an A/A test rolled back a third
      // or more of no-op changes so).
      if (final) {
        const k = Math.max(slo.minPoints, Math.ceil(after.length * TRAILING_SHARE));
        const trailingObs = mean(after.slice(-k).map((p) => p.value));
        const trailing = worse(trailingObs);
        report.trailingWorsening = trailing;
        if (trailing > slo.maxRegression)
          return regressed(
            `${slo.service}.${slo.metric} worsened ${pct(trailing)} over its last ${k} points (from ${base.toPrecision(4)} to ${trailingObs.toPrecision(4)}), ${bound}${cutNote}`,
            report,
          );
      }
    }
    if (after.length < slo.minPoints) {
      const got = `${after.length} of ${slo.minPoints} points since the promotion`;
      if (!final) return { ...report, reason: got };
      if (cutBy)
        return {
          ...report,
          verdict: 'ambiguous',
          reason: `${got} before another change on ${slo.service}${cutNote}: left standing, not judged`,
        };
      // Missing points are a regression only when work arrived that should have made them:
      // an idle service has nothing to measure.
      const demand = SloGuard.demandOf(slo, entries);
      if (demand > 0)
        return regressed(
          `${slo.service}.${slo.metric}: only ${got} over the whole watch window while ${demand} units of work arrived: missing telemetry after a promotion counts as a regression`,
          { ...report, demand },
        );
      return {
        ...report,
        verdict: 'no_data',
        demand,
        reason: `${got} over the whole watch window and no demand counted (${(slo.demand ?? DEMAND_COUNTERS[slo.service] ?? []).join(', ') || 'no demand counters'}): idle, left standing`,
      };
    }
    // The metric stopped while work kept arriving: silence is a regression when demand shows
    // the service is not serving it. Measured against the stream's newest entry (Redis's
    // clock names the ids), not this process's clock.
    const stopped = this.stopped(slo, liveAt, before.length, entries);
    if (stopped)
      return regressed(
        `${slo.service}.${slo.metric} stopped for ${stopped.quietMs} ms while ${stopped.demand} units of work arrived${stopped.silent.length ? ` (instances ${stopped.silent.join(', ')} carried it before the promotion)` : ''}${cutNote}`,
        { ...report, demand: stopped.demand, silentInstances: stopped.silent },
      );
    if (final)
      return {
        ...report,
        verdict: 'ok',
        reason: cutBy
          ? `held within ${pct(slo.maxRegression)}${cutNote}`
          : `held within ${pct(slo.maxRegression)} for the watch window${cutNote}`,
      };
    return {
      ...report,
      reason: `worsening ${pct(report.worsening as number)} within bound so far`,
    };
  }

  /**
   * Whether the metric has been missing from the newest stretch of the judged entries for
   * `max(minPoints steps, 3 of its baseline intervals)` while demand was counted in that
   * stretch: the service (or the instances serving it) stopped serving.
   */
  private stopped(
    slo: SloSpec,
    liveAt: number,
    baselinePoints: number,
    entries: readonly TelemetryEntry[],
  ): { quietMs: number; demand: number; silent: string[] } | undefined {
    if (entries.length === 0) return undefined;
    const newest = (entries[entries.length - 1] as TelemetryEntry).ms;
    const judgedFrom = liveAt + slo.settleMs;
    let last = judgedFrom;
    for (const e of entries) if (e.fields[slo.metric] !== undefined) last = Math.max(last, e.ms);
    const quiet = Math.max(
      slo.minPoints * slo.stepMs,
      (3 * slo.baselineMs) / Math.max(1, baselinePoints),
    );
    if (newest - last < quiet) return undefined;
    const demand = SloGuard.demandOf(
      slo,
      entries.filter((e) => e.ms > last),
    );
    if (demand <= 0) return undefined;
    // The instances that carried the metric in the judged window (none since `last`): named
    // in the verdict; none when it never came after the settle time.
    const silent = [
      ...new Set(
        entries
          .filter((e) => e.fields[slo.metric] !== undefined)
          .map((e) => e.fields['instance'] ?? ''),
      ),
    ];
    return { quietMs: newest - last, demand, silent };
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
      // The value before the promotion: its own entry's `old` (the newer entry, so the last to
      // be trimmed from the history), else the base version's own entry.
      const own = history.find(
        (h) => h.version === c.baseVersion + 1 && h.proposalId === proposal.id && h.old !== null,
      );
      const value = own ? own.old : history.find((h) => h.version === c.baseVersion)?.new;
      if (value === undefined || value === null)
        throw new Error(`slo guard: knob ${c.name} has no version ${c.baseVersion} in its history`);
      changes.push({ name: c.name, value, baseVersion: c.baseVersion + 1 });
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
