// Derived comparisons: the gap of every entry to the study's oracle, and the claims a spec asks
// about (BO within 5% of the grid optimum by 30 evaluations, BO against random search at equal
// budget, a learned policy against the best heuristic). Each claim is judged on the means and
// says how many seeds agree, so a reader sees both the average and its consistency.
import type { ComparisonSpec, Direction } from './spec.ts';
import {
  absoluteGap,
  better,
  improvementOver,
  mean,
  relativeGap,
  type ComparisonResult,
  type EntryResult,
} from './results.ts';

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
const num = (x: number): string => (Math.abs(x) >= 100 ? x.toFixed(1) : x.toPrecision(4));

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

function entry(entries: readonly EntryResult[], name: string): EntryResult {
  const e = entries.find((x) => x.name === name);
  if (!e) {
    const names = entries.map((x) => x.name).join(', ');
    throw new RangeError(`comparison names entry ${name}, which the study lacks (has: ${names})`);
  }
  return e;
}

/** Per-seed values of an entry after `evaluations` (tuners), else its final values. */
function valuesAt(e: EntryResult, evaluations: number | undefined): number[] {
  if (evaluations === undefined || !e.trajectories) return e.seeds.map((s) => s.value);
  return e.trajectories.map((t) => t[Math.min(evaluations, t.length) - 1] as number);
}

/** The evaluations a claim is judged at: the asked number, or fewer when the runs were shorter. */
function effectiveEvaluations(
  entries: readonly EntryResult[],
  evaluations: number | undefined,
): number | undefined {
  if (evaluations === undefined) return undefined;
  const lengths = entries.flatMap((e) => (e.trajectories ?? []).map((t) => t.length));
  return lengths.length === 0 ? evaluations : Math.min(evaluations, ...lengths);
}

function atText(evaluations: number | undefined, asked: number | undefined): string {
  if (evaluations === undefined) return 'at equal budget';
  const short = asked !== undefined && evaluations < asked ? ` (runs shorter than ${asked})` : '';
  return `after ${evaluations} evaluations${short}`;
}

/** "better by 3.1%" or "worse by 3.1%". */
function signed(improvement: number): string {
  return improvement >= 0 ? `better by ${pct(improvement)}` : `worse by ${pct(-improvement)}`;
}

function verdict(holds: boolean, improvement: number): string {
  if (holds) return `better by ${pct(improvement)}`;
  return improvement === 0 ? 'NOT better: tied' : `NOT better: worse by ${pct(-improvement)}`;
}

function within(
  entries: readonly EntryResult[],
  d: Direction,
  c: Extract<ComparisonSpec, { type: 'within' }>,
): ComparisonResult {
  const e = entry(entries, c.entry);
  const ref = entry(entries, c.reference).mean;
  const evaluations = effectiveEvaluations([e], c.evaluations);
  const values = valuesAt(e, evaluations);
  const gaps = values.map((v) => relativeGap(d, v, ref));
  const seedsWithin = gaps.filter((g) => g <= c.tolerance).length;
  const meanGap = relativeGap(d, mean(values), ref);
  const at = evaluations === undefined ? '' : ` ${atText(evaluations, c.evaluations)}`;
  const holds = meanGap <= c.tolerance;
  return {
    type: 'within',
    entry: c.entry,
    reference: c.reference,
    tolerance: c.tolerance,
    evaluations: evaluations ?? null,
    mean_value: mean(values),
    reference_value: ref,
    mean_gap: meanGap,
    seeds_within: seedsWithin,
    seeds: values.length,
    holds,
    text:
      `${c.entry}${at}: mean ${num(mean(values))} vs ${c.reference} ${num(ref)}, gap ` +
      `${pct(meanGap)} (${holds ? 'within' : 'NOT within'} ${pct(c.tolerance)}); ` +
      `${seedsWithin}/${values.length} seeds within`,
  };
}

function versus(
  entries: readonly EntryResult[],
  d: Direction,
  c: Extract<ComparisonSpec, { type: 'versus' }>,
): ComparisonResult {
  const [ea, eb] = [entry(entries, c.a), entry(entries, c.b)];
  const evaluations = effectiveEvaluations([ea, eb], c.evaluations);
  const a = valuesAt(ea, evaluations);
  const b = valuesAt(eb, evaluations);
  let wins = 0;
  let ties = 0;
  a.forEach((x, i) => {
    const y = b[i] as number;
    if (x === y) ties++;
    else if (better(d, x, y)) wins++;
  });
  const [ma, mb] = [mean(a), mean(b)];
  const holds = better(d, ma, mb);
  const improvement = improvementOver(d, ma, mb);
  const at = atText(evaluations, c.evaluations);
  return {
    type: 'versus',
    a: c.a,
    b: c.b,
    evaluations: evaluations ?? null,
    a_mean: ma,
    b_mean: mb,
    improvement,
    wins,
    ties,
    losses: a.length - wins - ties,
    holds,
    text:
      `${c.a} vs ${c.b} ${at}: ${num(ma)} vs ${num(mb)} ` +
      `(${c.a} ${verdict(holds, improvement)}); ` +
      `per seed ${wins} wins, ${ties} ties, ${a.length - wins - ties} losses`,
  };
}

function beatsBestOf(
  entries: readonly EntryResult[],
  d: Direction,
  c: Extract<ComparisonSpec, { type: 'beats-best-of' }>,
): ComparisonResult {
  const e = entry(entries, c.entry);
  const others = c.others.map((n) => entry(entries, n));
  const best = others.reduce((x, y) => (better(d, y.mean, x.mean) ? y : x));
  const improvement = improvementOver(d, e.mean, best.mean);
  const holds = c.by === undefined ? better(d, e.mean, best.mean) : improvement >= c.by;
  const target = c.by === undefined ? 'better' : c.by === 0 ? 'no worse' : `better by ${pct(c.by)}`;
  return {
    type: 'beats-best-of',
    entry: c.entry,
    others: [...c.others],
    by: c.by ?? null,
    best_other: best.name,
    entry_mean: e.mean,
    best_other_mean: best.mean,
    improvement,
    holds,
    text:
      `${c.entry} ${num(e.mean)} vs the best of ${c.others.join(', ')} (${best.name} ` +
      `${num(best.mean)}): ${signed(improvement)} (target ${target}: ${holds ? 'met' : 'NOT met'})`,
  };
}

function improvesOn(
  entries: readonly EntryResult[],
  d: Direction,
  c: Extract<ComparisonSpec, { type: 'improves-on' }>,
): ComparisonResult {
  const e = entry(entries, c.entry);
  const r = entry(entries, c.reference);
  const improvement = improvementOver(d, e.mean, r.mean);
  const holds = improvement >= c.by;
  return {
    type: 'improves-on',
    entry: c.entry,
    reference: c.reference,
    by: c.by,
    improvement,
    holds,
    text:
      `${c.entry} ${num(e.mean)} vs ${c.reference} ${num(r.mean)}: ${signed(improvement)} ` +
      `(${holds ? 'meets' : 'does NOT meet'} the ${pct(c.by)} target)`,
  };
}

export function compare(
  entries: readonly EntryResult[],
  direction: Direction,
  specs: readonly ComparisonSpec[],
): ComparisonResult[] {
  return specs.map((c) => {
    switch (c.type) {
      case 'within':
        return within(entries, direction, c);
      case 'versus':
        return versus(entries, direction, c);
      case 'beats-best-of':
        return beatsBestOf(entries, direction, c);
      case 'improves-on':
        return improvesOn(entries, direction, c);
    }
  });
}
