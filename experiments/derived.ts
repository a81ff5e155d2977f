// Derived comparisons: the gap of every entry to the study's oracle, whether anything beat the
// oracle, and the claims a spec asks about (BO within 5% of the best known value by 30
// evaluations, BO against random search at equal budget, a learned policy against the best
// heuristic). Every claim ends in a verdict:
//
// - holds / fails: the evidence decides it. Comparisons of two entries are judged on a 95%
//   interval or test, never on the means alone: where seeds are workload draws both entries
//   ran on, a paired confidence interval of the improvement (shown in the text) against the
//   claim's target (margin included); where seeds are a tuner's seeds on one fixed objective
//   (tuning studies), pairing seed i with seed i means nothing, so an exact rank test
//   (Mann-Whitney U) of the two sets of runs.
// - inconclusive: the interval straddles the target, or the test does not reject.
// - tied: the two entries gave identical values on every seed (one is the other): nothing to
//   judge, and never reported as "holds".
// - not judged: the runs were shorter than the claim asks (a claim at 30 evaluations of a run
//   of 12), or the scores the claim needs were not recorded (held-out scores of a study without
//   held-out seeds).
//
// A `within` claim measured against the declared oracle of a tuning study (an exhaustive but
// coarse grid) is easy to misread: tuners find configurations between its points, and any
// negative gap would pass. Such claims use the best known value instead (`BEST_KNOWN`: the best
// value any entry reached on any seed, the oracle, the baselines and every tuner evaluation
// included), and the study records which entries beat its declared oracle.
import type { ComparisonSpec, Direction } from './spec.ts';
import { CONFIDENCE, mannWhitney, meanInterval } from './stats.ts';
import {
  absoluteGap,
  better,
  improvementOver,
  mean,
  relativeGap,
  type ComparisonResult,
  type EntryResult,
  type StudyResult,
  type Verdict,
} from './results.ts';

/** The reference of a `within` claim that means "the best value known for this objective". */
export const BEST_KNOWN = 'best-known';

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
/** A signed percentage; two decimals below 1% (so a narrow interval stays readable). */
const signedPct = (x: number): string =>
  `${x >= 0 ? '+' : '-'}${(Math.abs(x) * 100).toFixed(Math.abs(x) < 0.01 ? 2 : 1)}%`;
const num = (x: number): string => (Math.abs(x) >= 100 ? x.toFixed(1) : x.toPrecision(4));

/** What a study's seeds are, which decides how two entries are compared. */
export interface CompareContext {
  /**
   * 'workload': each seed is a workload draw every entry ran on (comparisons pair by seed).
   * 'tuner': each seed is one tuner run on one fixed objective (comparisons are unpaired).
   */
  seeds: 'workload' | 'tuner';
  /** Evaluations each tuner run was given (tuning studies): claims asking more are not judged. */
  budget?: number;
  /** The study's declared oracle, if any. */
  oracle?: string;
}

/** Fills gap_to_oracle / gap_to_oracle_abs of every entry but the oracle. */
export function addOracleGaps(
  entries: EntryResult[],
  direction: Direction,
  oracle: string | undefined,
): void {
  const o = entries.find((e) => e.name === oracle);
  if (!o) return;
  for (const e of entries) {
    if (e === o) continue;
    const rel = relativeGap(direction, e.mean, o.mean);
    if (Number.isFinite(rel)) e.gap_to_oracle = rel;
    e.gap_to_oracle_abs = absoluteGap(direction, e.mean, o.mean);
  }
}

/**
 * The entries that beat the declared oracle on some seed (a tuner's best value below the grid
 * optimum, a policy below a lower bound): the oracle is then no optimum, only a reference.
 */
export function oracleBeatenBy(
  entries: readonly EntryResult[],
  direction: Direction,
  oracle: string | undefined,
): string[] {
  const o = entries.find((e) => e.name === oracle);
  if (!o) return [];
  const at = new Map(o.seeds.map((s) => [s.seed, s.value]));
  return entries
    .filter(
      (e) =>
        e !== o &&
        e.seeds.some((s) => {
          const ref = at.get(s.seed);
          return ref !== undefined && better(direction, s.value, ref);
        }),
    )
    .map((e) => e.name);
}

/** Whether two value lists are equal element by element (the same entry in effect). */
export function identical(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The entries that gave identical values on every seed: groups of two or more names. */
export function identicalGroups(entries: readonly EntryResult[]): string[][] {
  const groups: EntryResult[][] = [];
  for (const e of entries) {
    const values = e.seeds.map((s) => s.value);
    const g = groups.find((x) =>
      identical(
        (x[0] as EntryResult).seeds.map((s) => s.value),
        values,
      ),
    );
    if (g) g.push(e);
    else groups.push([e]);
  }
  return groups.filter((g) => g.length > 1).map((g) => g.map((e) => e.name));
}

function entry(entries: readonly EntryResult[], name: string): EntryResult {
  const e = entries.find((x) => x.name === name);
  if (!e) {
    const names = entries.map((x) => x.name).join(', ');
    throw new RangeError(`comparison names entry ${name}, which the study lacks (has: ${names})`);
  }
  return e;
}

type On = 'train' | 'held-out';

/**
 * Per-seed values of an entry: on the held-out seeds (the final configurations' scores), or
 * after `evaluations` (tuners; a run that stopped earlier, such as a grid that ran out of
 * points, keeps its last best), else its final values. Undefined when not recorded.
 */
function valuesOf(e: EntryResult, on: On, evaluations: number | undefined): number[] | undefined {
  if (on === 'held-out') return e.test?.seeds.map((s) => s.value);
  if (evaluations === undefined || !e.trajectories) return e.seeds.map((s) => s.value);
  return e.trajectories.map((t) => t[Math.min(evaluations, t.length) - 1] as number);
}

/**
 * Why a claim cannot be judged on these results, or undefined: runs shorter than asked, or
 * held-out scores asked at an earlier evaluation (only final configurations are re-scored),
 * or not recorded.
 */
function notJudged(
  entries: readonly EntryResult[],
  on: On,
  evaluations: number | undefined,
  ctx: CompareContext,
): string | undefined {
  if (on === 'held-out') {
    if (evaluations !== undefined) {
      return 'held-out scores exist for final configurations only';
    }
    const missing = entries.filter((e) => !e.test).map((e) => e.name);
    if (missing.length > 0) return `no held-out scores for ${missing.join(', ')}`;
    return undefined;
  }
  if (evaluations === undefined) return undefined;
  const lengths = entries.flatMap((e) => (e.trajectories ?? []).map((t) => t.length));
  const ran = ctx.budget ?? (lengths.length > 0 ? Math.max(...lengths) : undefined);
  if (ran !== undefined && ran < evaluations) {
    return `runs have ${ran} evaluations, fewer than the ${evaluations} asked`;
  }
  return undefined;
}

function atText(on: On, evaluations: number | undefined): string {
  if (on === 'held-out') return 'on held-out workloads (final configurations)';
  return evaluations === undefined ? 'at equal budget' : `after ${evaluations} evaluations`;
}

/** The best value any entry reached on any seed (a tuner's: its best evaluation). */
function bestKnown(
  entries: readonly EntryResult[],
  d: Direction,
  on: On,
): { value: number; by: string } | undefined {
  let best: { value: number; by: string } | undefined;
  for (const e of entries) {
    const seeds = (on === 'held-out' ? e.test?.seeds : e.seeds) ?? [];
    // A tuner's seed value is the best of its trajectory, so the seeds cover every evaluation.
    const same = seeds.every((s) => s.value === seeds[0]?.value);
    for (const s of seeds) {
      if (!best || better(d, s.value, best.value)) {
        best = { value: s.value, by: same ? e.name : `${e.name}, seed ${s.seed}` };
      }
    }
  }
  return best;
}

function notJudgedResult(
  base: Record<string, unknown> & { type: ComparisonResult['type'] },
  head: string,
  why: string,
): ComparisonResult {
  return { ...base, verdict: 'not judged', holds: false, text: `${head}: not judged (${why})` };
}

function within(
  entries: readonly EntryResult[],
  d: Direction,
  c: Extract<ComparisonSpec, { type: 'within' }>,
  ctx: CompareContext,
): ComparisonResult {
  const on = c.on ?? 'train';
  const e = entry(entries, c.entry);
  const isBest = c.reference === BEST_KNOWN;
  const refEntry = isBest ? undefined : entry(entries, c.reference);
  const at = atText(on, c.evaluations);
  const base = {
    type: 'within' as const,
    entry: c.entry,
    reference: c.reference,
    on,
    tolerance: c.tolerance,
    evaluations: c.evaluations ?? null,
  };
  const head = `${c.entry} ${at}`;
  const why = notJudged(refEntry ? [e, refEntry] : [e], on, c.evaluations, ctx);
  const values = valuesOf(e, on, c.evaluations);
  if (why || !values) return notJudgedResult(base, head, why ?? 'no values');
  let ref: number;
  let refText: string;
  let oracleBeaten = false;
  if (isBest) {
    const b = bestKnown(entries, d, on) as { value: number; by: string };
    ref = b.value;
    const o = entries.find((x) => x.name === ctx.oracle);
    const oValues = o ? valuesOf(o, on, undefined) : undefined;
    const oValue = oValues ? mean(oValues) : undefined;
    oracleBeaten = oValue !== undefined && better(d, ref, oValue);
    const what =
      on === 'held-out' ? 'best held-out score of any final configuration' : 'best known';
    const oracleText =
      o && oValue === undefined
        ? ''
        : o && on === 'held-out'
          ? `; the declared oracle ${o.name}'s configuration scores ${num(oValue as number)} there`
          : o
            ? `; declared oracle ${o.name} ${num(oValue as number)}${oracleBeaten ? ', ORACLE BEATEN' : ''}`
            : '';
    refText = `${what} ${num(ref)} (${b.by}${oracleText})`;
  } else {
    const rv = valuesOf(refEntry as EntryResult, on, undefined) as number[];
    ref = mean(rv);
    refText = `${c.reference} ${num(ref)}`;
  }
  // A tolerance relative to 0 is no tolerance at all: nothing to judge it on.
  if (ref === 0) return notJudgedResult(base, head, `${refText}: no relative gap to a 0`);
  const gaps = values.map((v) => relativeGap(d, v, ref));
  const seedsWithin = gaps.filter((g) => g <= c.tolerance).length;
  const meanGap = relativeGap(d, mean(values), ref);
  // Judged on the 95% interval of the per-seed gaps, as every claim is (before, on the mean
  // gap alone: a spread of seeds on both sides of the tolerance read as within or not).
  const ci = meanInterval(gaps);
  // A gap exactly at the tolerance (no spread) is within it: float noise must not tip it.
  const tol = c.tolerance + 1e-12;
  const verdict: Verdict = ci.hi <= tol ? 'holds' : ci.lo > tol ? 'fails' : 'inconclusive';
  const beatsRef = !isBest && meanGap < 0 ? `; ${c.entry} beats ${c.reference}` : '';
  const spread = ctx.seeds === 'tuner' ? ' (tuner seeds on one fixed objective)' : '';
  const word =
    verdict === 'holds' ? 'within' : verdict === 'fails' ? 'NOT within' : 'undecided against';
  return {
    ...base,
    mean_value: mean(values),
    reference_value: ref,
    ...(isBest ? { oracle_beaten: oracleBeaten } : {}),
    mean_gap: meanGap,
    ci_low: ci.lo,
    ci_high: ci.hi,
    confidence: CONFIDENCE,
    seeds_within: seedsWithin,
    seeds: values.length,
    verdict,
    holds: verdict === 'holds',
    text:
      `${head}: mean ${num(mean(values))} vs ${refText}, gap ` +
      `${pct(meanGap)}, ` +
      (values.length < 2
        ? 'one seed: no interval '
        : `95% CI of the per-seed gap ${signedPct(ci.lo)} to ${signedPct(ci.hi)} `) +
      `(${word} ${pct(c.tolerance)}${beatsRef}); ${seedsWithin}/${values.length} seeds within${spread}`,
  };
}

/** The target a comparison checks, as a relative improvement threshold, and its wording. */
function target(by: number | undefined, margin: number | undefined): { t: number; text: string } {
  const m = margin ?? 0;
  if (by === undefined || (by === 0 && m === 0)) return { t: 0, text: 'better' };
  if (by === 0)
    return { t: -m, text: `no worse (margin ${pct(m)}: improvement > ${signedPct(-m)})` };
  return { t: by - m, text: `better by at least ${pct(by)}` };
}

interface Judgement {
  verdict: Verdict;
  fields: Record<string, unknown>;
  text: string;
}

/**
 * a against b (per-seed values), whether a improves on b by more than `t` (relative to b's
 * mean). Paired: the 95% CI of the mean per-seed improvement. Unpaired: the exact rank test
 * of a against b shifted by the target.
 */
function judge(
  d: Direction,
  a: readonly number[],
  b: readonly number[],
  t: number,
  ctx: CompareContext,
  names: [string, string],
): Judgement {
  if (identical(a, b)) {
    return {
      verdict: 'tied',
      fields: {},
      text: `identical on every seed (${names[0]} gives ${names[1]}'s values)`,
    };
  }
  const scale = Math.abs(mean(b));
  if (ctx.seeds === 'workload') {
    const ci = meanInterval(a.map((x, i) => absoluteGap(d, b[i] as number, x)));
    // Decided on the absolute interval against the target in b's units: a reference mean of
    // 0 has no relative interval (dividing by it gave infinities and NaN, and a verdict by
    // accident), and any relative target of it is 0.
    const bar = t * scale;
    const verdict: Verdict = ci.lo > bar ? 'holds' : ci.hi < bar ? 'fails' : 'inconclusive';
    if (scale === 0)
      return {
        verdict,
        fields: {
          pairing: 'paired',
          ci_low_abs: ci.lo,
          ci_high_abs: ci.hi,
          confidence: CONFIDENCE,
          n: ci.n,
        },
        text:
          `paired ${CONFIDENCE * 100}% CI of the improvement ${num(ci.lo)} to ${num(ci.hi)} ` +
          `(absolute: the reference mean is 0; n = ${ci.n})`,
      };
    const [lo, hi] = [ci.lo / scale, ci.hi / scale];
    return {
      verdict,
      fields: { pairing: 'paired', ci_low: lo, ci_high: hi, confidence: CONFIDENCE, n: ci.n },
      text:
        `paired ${CONFIDENCE * 100}% CI of the improvement ${signedPct(lo)} to ${signedPct(hi)} ` +
        `(n = ${ci.n})`,
    };
  }
  // Unpaired: a "wins" a pair when it is better than b_j by more than the target.
  const shift = t * scale;
  const shifted = b.map((y) => (d === 'min' ? y - shift : y + shift));
  const oriented = (xs: readonly number[]) => (d === 'min' ? xs.map((x) => -x) : [...xs]);
  const r = mannWhitney(oriented(a), oriented(shifted));
  const alpha = 1 - CONFIDENCE;
  const centre = r.pairs / 2;
  const verdict: Verdict =
    r.p < alpha && r.u > centre ? 'holds' : r.p < alpha && r.u < centre ? 'fails' : 'inconclusive';
  const by = t === 0 ? '' : ` by more than ${pct(t)}`;
  return {
    verdict,
    fields: { pairing: 'unpaired', u: r.u, pairs: r.pairs, p_value: r.p, exact: r.exact },
    text:
      `unpaired (tuner seeds on one fixed objective): ${names[0]} better${by} in ` +
      `${r.u} of ${r.pairs} run pairs, Mann-Whitney ${r.exact ? 'exact ' : ''}p = ${r.p.toPrecision(2)}`,
  };
}

/** "better by 3.1%" or "worse by 3.1%". */
function signed(improvement: number): string {
  return improvement >= 0 ? `better by ${pct(improvement)}` : `worse by ${pct(-improvement)}`;
}

function versus(
  entries: readonly EntryResult[],
  d: Direction,
  c: Extract<ComparisonSpec, { type: 'versus' }>,
  ctx: CompareContext,
): ComparisonResult {
  const on = c.on ?? 'train';
  const [ea, eb] = [entry(entries, c.a), entry(entries, c.b)];
  const head = `${c.a} vs ${c.b} ${atText(on, c.evaluations)}`;
  const base = {
    type: 'versus' as const,
    a: c.a,
    b: c.b,
    on,
    evaluations: c.evaluations ?? null,
  };
  const why = notJudged([ea, eb], on, c.evaluations, ctx);
  const a = valuesOf(ea, on, c.evaluations);
  const b = valuesOf(eb, on, c.evaluations);
  if (why || !a || !b) return notJudgedResult(base, head, why ?? 'no values');
  const [ma, mb] = [mean(a), mean(b)];
  const improvement = improvementOver(d, ma, mb);
  const j = judge(d, a, b, 0, ctx, [c.a, c.b]);
  return {
    ...base,
    a_mean: ma,
    b_mean: mb,
    improvement,
    ...j.fields,
    verdict: j.verdict,
    holds: j.verdict === 'holds',
    text: `${head}: ${num(ma)} vs ${num(mb)} (${c.a} ${signed(improvement)}); ${j.text}: ${j.verdict}`,
  };
}

function beatsBestOf(
  entries: readonly EntryResult[],
  d: Direction,
  c: Extract<ComparisonSpec, { type: 'beats-best-of' }>,
  ctx: CompareContext,
): ComparisonResult {
  const e = entry(entries, c.entry);
  const others = c.others.map((n) => entry(entries, n));
  const best = others.reduce((x, y) => (better(d, y.mean, x.mean) ? y : x));
  const improvement = improvementOver(d, e.mean, best.mean);
  const goal = target(c.by, c.margin);
  const values = (x: EntryResult) => x.seeds.map((s) => s.value);
  const j = judge(d, values(e), values(best), goal.t, ctx, [c.entry, best.name]);
  const distinct = new Set(others.map((o) => JSON.stringify(values(o)))).size;
  const dupes = distinct < others.length ? `, ${distinct} distinct on these seeds` : '';
  return {
    type: 'beats-best-of',
    entry: c.entry,
    others: [...c.others],
    by: c.by ?? null,
    margin: c.margin ?? null,
    best_other: best.name,
    entry_mean: e.mean,
    best_other_mean: best.mean,
    improvement,
    ...j.fields,
    verdict: j.verdict,
    holds: j.verdict === 'holds',
    text:
      `${c.entry} ${num(e.mean)} vs the best of ${c.others.join(', ')} (${best.name} ` +
      `${num(best.mean)}${dupes}): ${signed(improvement)}; target ${goal.text}; ${j.text}: ${j.verdict}`,
  };
}

function improvesOn(
  entries: readonly EntryResult[],
  d: Direction,
  c: Extract<ComparisonSpec, { type: 'improves-on' }>,
  ctx: CompareContext,
): ComparisonResult {
  const e = entry(entries, c.entry);
  const r = entry(entries, c.reference);
  const improvement = improvementOver(d, e.mean, r.mean);
  const goal = target(c.by, c.margin);
  const values = (x: EntryResult) => x.seeds.map((s) => s.value);
  const j = judge(d, values(e), values(r), goal.t, ctx, [c.entry, c.reference]);
  return {
    type: 'improves-on',
    entry: c.entry,
    reference: c.reference,
    by: c.by,
    margin: c.margin ?? null,
    improvement,
    ...j.fields,
    verdict: j.verdict,
    holds: j.verdict === 'holds',
    text:
      `${c.entry} ${num(e.mean)} vs ${c.reference} ${num(r.mean)}: ${signed(improvement)}; ` +
      `target ${goal.text}; ${j.text}: ${j.verdict}`,
  };
}

export function compare(
  entries: readonly EntryResult[],
  direction: Direction,
  specs: readonly ComparisonSpec[],
  ctx: CompareContext = { seeds: 'workload' },
): ComparisonResult[] {
  return specs.map((c) => {
    switch (c.type) {
      case 'within':
        return within(entries, direction, c, ctx);
      case 'versus':
        return versus(entries, direction, c, ctx);
      case 'beats-best-of':
        return beatsBestOf(entries, direction, c, ctx);
      case 'improves-on':
        return improvesOn(entries, direction, c, ctx);
    }
  });
}

/**
 * A study's claims and the entries that beat its oracle, from its entries: what the runner
 * adds to a study, and what experiments/rederive.ts recomputes from a stored result.
 */
export function deriveStudy(
  s: Pick<StudyResult, 'type' | 'results' | 'direction' | 'oracle' | 'budget'>,
  specs: readonly ComparisonSpec[],
): Pick<StudyResult, 'comparisons' | 'oracle_beaten_by'> {
  const beaten = oracleBeatenBy(s.results, s.direction, s.oracle);
  const ctx: CompareContext = {
    seeds: s.type === 'tuning' ? 'tuner' : 'workload',
    ...(s.budget === undefined ? {} : { budget: s.budget }),
    ...(s.oracle === undefined ? {} : { oracle: s.oracle }),
  };
  return {
    ...(beaten.length > 0 ? { oracle_beaten_by: beaten } : {}),
    comparisons: compare(s.results, s.direction, specs, ctx),
  };
}
