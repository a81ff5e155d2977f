// Plots of a study, drawn by Vega-Lite: the spec is data, compiled to Vega and rendered to SVG
// headless (renderer 'none', no canvas or browser). Learning curves show the best value found
// so far against evaluations, the mean over seeds as a line and the min-max spread as a band,
// with the grid optimum, the best known value (when a tuner beat the grid) and the best
// baseline as reference rules. Bar charts show every entry's mean with its standard deviation
// (on a log axis, a bar whose mean - std is not above 0 has its lower whisker cut at the axis,
// and the subtitle says so).
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { StudyResult } from './results.ts';

const WIDTH = 460;
const HEIGHT = 280;
/** A y axis spanning more than this ratio is drawn on a log scale (when all values are > 0). */
const LOG_SCALE_RATIO = 20;

function axisTitle(s: StudyResult): string {
  const dir = s.direction === 'min' ? 'lower is better' : 'higher is better';
  return `${s.metric}${s.unit ? ` (${s.unit})` : ''}, ${dir}`;
}

/** Evaluations from which the curves set the y range (the first draws are off the scale). */
const CURVE_RANGE_FROM = 5;

/** Colours by entry kind, the same in every chart. */
const KIND_COLOR = {
  domain: ['baseline', 'learner', 'oracle'],
  range: ['#4c78a8', '#f58518', '#54a24b'],
};

type Scale = { type: 'log' | 'linear'; zero?: false; domain: [number, number] };

/** A y scale over `values` with 5% padding; log when it spans more than LOG_SCALE_RATIO. */
function yScale(values: readonly number[]): Scale {
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  if (lo > 0 && hi / lo > LOG_SCALE_RATIO) return { type: 'log', domain: [lo, hi] };
  const pad = (hi - lo) * 0.05 || Math.abs(hi) * 0.05 || 1;
  return { type: 'linear', zero: false, domain: [lo - pad, hi + pad] };
}

/** Best-so-far against evaluations per tuner; undefined when the study has no tuners. */
export function learningCurveSpec(s: StudyResult): TopLevelSpec | undefined {
  const rows = s.results.flatMap((e) =>
    (e.trajectories ?? []).flatMap((t, i) =>
      t.map((best, k) => ({
        learner: e.name,
        seed: e.seeds[i]?.seed ?? i,
        evaluation: k + 1,
        best,
      })),
    ),
  );
  if (rows.length === 0) return undefined;
  const refs = s.results
    .filter((e) => e.kind === 'oracle')
    .map((e) => ({ label: e.name, value: e.mean }));
  if (s.oracle_beaten_by && s.oracle_beaten_by.length > 0) {
    const all = s.results.flatMap((e) => e.seeds.map((v) => v.value));
    const best = s.direction === 'min' ? Math.min(...all) : Math.max(...all);
    refs.push({ label: 'best known', value: best });
  }
  const baselines = s.results.filter((e) => e.kind === 'baseline');
  const bestBaseline = baselines.reduce<(typeof baselines)[number] | undefined>(
    (a, e) => (!a || (s.direction === 'min' ? e.mean < a.mean : e.mean > a.mean) ? e : a),
    undefined,
  );
  if (bestBaseline)
    refs.push({ label: `best baseline (${bestBaseline.name})`, value: bestBaseline.mean });
  // The y range covers the curves from CURVE_RANGE_FROM evaluations on and the references;
  // earlier, worse values are clipped rather than squashing the part that tells tuners apart.
  const lastEval = rows.reduce((m, r) => Math.max(m, r.evaluation), 1);
  const from = Math.min(CURVE_RANGE_FROM, lastEval);
  const scale = yScale([
    ...rows.filter((r) => r.evaluation >= from).map((r) => r.best),
    ...refs.map((r) => r.value),
  ]);
  // Reference labels alternate between the right and the left end, so two close rules stay legible.
  const label = (align: 'left' | 'right', at: number, values: typeof refs) => ({
    data: { values },
    mark: { type: 'text' as const, align, dy: -6, color: 'gray', fontSize: 10 },
    encoding: {
      y: { field: 'value', type: 'quantitative' as const, scale },
      x: { datum: at },
      text: { field: 'label' },
    },
  });
  const x = { field: 'evaluation', type: 'quantitative' as const, title: 'evaluations' };
  const y = { field: 'best', type: 'quantitative' as const, title: axisTitle(s), scale };
  const color = { field: 'learner', type: 'nominal' as const, title: 'tuner' };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {
      text: s.title,
      subtitle: 'best so far: mean over tuner seeds on one fixed objective (line), min-max (band)',
    },
    width: WIDTH,
    height: HEIGHT,
    layer: [
      {
        data: { values: rows },
        mark: { type: 'errorband', extent: 'min-max', opacity: 0.2, clip: true },
        encoding: { x, y, color },
      },
      {
        data: { values: rows },
        mark: { type: 'line', strokeWidth: 2, clip: true },
        encoding: { x, y: { ...y, aggregate: 'mean' }, color },
      },
      {
        data: { values: refs },
        mark: { type: 'rule', strokeDash: [4, 4], color: 'gray' },
        encoding: { y: { field: 'value', type: 'quantitative', scale } },
      },
      label(
        'right',
        lastEval,
        refs.filter((_, i) => i % 2 === 0),
      ),
      label(
        'left',
        1,
        refs.filter((_, i) => i % 2 === 1),
      ),
    ],
  } as TopLevelSpec;
}

/** Mean and standard deviation of every entry, best first. */
export function barsSpec(s: StudyResult): TopLevelSpec {
  // Best first: the data's own order (sort: null), so both layers agree on the axis.
  const ordered = [...s.results].sort((a, b) =>
    s.direction === 'min' ? a.mean - b.mean : b.mean - a.mean,
  );
  // One entry far off the others (no batching at all) would flatten every other bar: such
  // a chart is drawn on a log scale, its error bars kept above 0.
  const means = ordered.map((e) => e.mean);
  const log = Math.min(...means) > 0 && Math.max(...means) / Math.min(...means) > LOG_SCALE_RATIO;
  // A log bar needs a finite base: the left end of an explicit domain, below every bar and
  // every lower whisker that is above 0; a whisker that is not is cut at the base.
  const positiveLows = ordered.map((e) => e.mean - e.std).filter((x) => x > 0);
  const base = Math.min(...means, ...positiveLows) / 2;
  let cut = false;
  const rows = ordered.map((e) => {
    const lo = e.mean - e.std;
    if (log && lo <= 0) cut = true;
    return {
      name: e.name,
      kind: e.kind,
      mean: e.mean,
      lo: log && lo <= 0 ? base : lo,
      hi: e.mean + e.std,
    };
  });
  const yAxis = { field: 'name', type: 'nominal' as const, title: null, sort: null };
  const xTitle = `${axisTitle(s)}${log ? ' (log scale)' : ''}`;
  const over = s.type === 'tuning' ? 'tuner seeds on one fixed objective' : 'seeds';
  const subtitle =
    `mean over ${over}, error bar = one standard deviation` +
    (cut ? ' (a lower end at or below 0 is cut at the axis)' : '');
  const xScale = log
    ? { type: 'log' as const, domain: [base, Math.max(...rows.map((r) => r.hi)) * 1.2] }
    : { zero: true };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: s.title, subtitle },
    width: WIDTH,
    data: { values: rows },
    layer: [
      {
        mark: { type: 'bar' },
        encoding: {
          y: yAxis,
          x: { field: 'mean', type: 'quantitative', title: xTitle, scale: xScale },
          ...(log ? { x2: { datum: base } } : {}),
          color: { field: 'kind', type: 'nominal', title: 'kind', scale: KIND_COLOR },
        },
      },
      {
        mark: { type: 'errorbar', ticks: true },
        encoding: {
          y: yAxis,
          x: { field: 'lo', type: 'quantitative', title: xTitle, scale: xScale },
          x2: { field: 'hi' },
        },
      },
    ],
  } as TopLevelSpec;
}

/** Compiles a Vega-Lite spec and renders it to an SVG string without a browser. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** The plots of a study: file name (without directory) -> SVG text. */
export async function studyPlots(s: StudyResult): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const curve = learningCurveSpec(s);
  if (curve) out.set(`${s.name}-curve.svg`, await renderSvg(curve));
  out.set(`${s.name}-bars.svg`, await renderSvg(barsSpec(s)));
  return out;
}
