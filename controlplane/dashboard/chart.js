// A tiny SVG line chart: time on x, a number or a category on y, optional step lines, an area
// under the line, point markers with tooltips, and vertical annotations (rollbacks, proposals,
// pins). No library: a few dozen shapes per chart, drawn with presentation attributes and
// classes only (the page's content security policy forbids inline styles).
import { s } from './dom.js';

const M = { left: 58, right: 14, top: 18, bottom: 26 };

/** About `count` round tick values covering [lo, hi]. */
export function niceTicks(lo, hi, count = 4) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((st) => raw <= st) ?? 10 * mag;
  const ticks = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9 && ticks.length < 20; t += step)
    ticks.push(Number(t.toPrecision(12)));
  return ticks;
}

const BINARY = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** The power of 1024 byte ticks up to `max` are labelled in (4 MiB, not 4.19M). */
function binaryScale(max) {
  let k = 0;
  while (k < BINARY.length - 1 && Math.abs(max) >= 1024 ** (k + 1)) k++;
  return k;
}

/**
 * A tick's label, with the digits its spacing `step` needs: ticks one unit apart on 30,000
 * read 30k, 30.001k, not 30k three times (three digits were always kept).
 */
function fmtTick(v, step) {
  const a = Math.abs(v);
  const digits =
    step > 0 && a > 0 ? Math.min(15, Math.max(3, Math.ceil(Math.log10(a / step)) + 1)) : 3;
  if (a >= 1e9) return `${Number((v / 1e9).toPrecision(digits))}G`;
  if (a >= 1e6) return `${Number((v / 1e6).toPrecision(digits))}M`;
  if (a >= 1e4) return `${Number((v / 1e3).toPrecision(digits))}k`;
  return String(Number(v.toPrecision(digits)));
}

function fmtClock(ms, spanMs) {
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, '0');
  if (spanMs > 2 * 86_400_000) return `${d.getMonth() + 1}/${d.getDate()}`;
  return spanMs < 600_000
    ? `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`
    : `${p(d.getHours())}:${p(d.getMinutes())}`;
}

/**
 * opts: { width, height, xDomain: [t0, t1], series: [{ points: [{x, y, title?}], step?, cls?,
 * area? }], yCategories?: string[] (y is then an index), yDomain?, yUnit?: string (`bytes`
 * labels ticks in binary units, another is written above the axis), annotations?: [{ x, label,
 * kind }], empty?: string }
 */
export function lineChart(opts) {
  const width = opts.width ?? 640;
  const height = opts.height ?? 200;
  const svg = s('svg', {
    viewBox: `0 0 ${width} ${height}`,
    class: 'chart',
    role: 'img',
    'aria-label': opts.label ?? 'chart',
  });
  const pts = opts.series.flatMap((se) => se.points);
  if (pts.length === 0) {
    svg.append(
      s(
        'text',
        { x: width / 2, y: height / 2, class: 'chart-empty', 'text-anchor': 'middle' },
        opts.empty ?? 'no data',
      ),
    );
    return svg;
  }
  const [x0, x1raw] = opts.xDomain;
  const x1 = x1raw > x0 ? x1raw : x0 + 1;
  const cats = opts.yCategories;
  let [y0, y1] = cats ? [-0.5, cats.length - 0.5] : (opts.yDomain ?? extent(pts.map((p) => p.y)));
  if (!cats && y1 - y0 < 1e-9) [y0, y1] = [y0 - 1, y1 + 1];
  if (!cats && !opts.yDomain) [y0, y1] = pad(y0, y1);
  const X = (x) => M.left + ((x - x0) / (x1 - x0)) * (width - M.left - M.right);
  const Y = (y) => height - M.bottom - ((y - y0) / (y1 - y0)) * (height - M.top - M.bottom);

  const grid = s('g', { class: 'chart-grid' });
  // Byte ticks fall on round KiB/MiB/GiB, so they read as the sizes people set.
  const bytes = !cats && opts.yUnit === 'bytes';
  const scale = bytes ? 1024 ** binaryScale(Math.max(Math.abs(y0), Math.abs(y1))) : 1;
  const yTicks = cats
    ? cats.map((_, i) => i)
    : niceTicks(y0 / scale, y1 / scale, 4).map((t) => t * scale);
  const step = yTicks.length > 1 ? Math.abs(yTicks[1] - yTicks[0]) : 0;
  for (const t of yTicks) {
    grid.append(s('line', { x1: M.left, x2: width - M.right, y1: Y(t), y2: Y(t) }));
    const label = cats
      ? shorten(cats[t], 9)
      : bytes
        ? `${fmtTick(t / scale, step / scale)} ${BINARY[Math.log2(scale) / 10]}`
        : fmtTick(t, step);
    grid.append(s('text', { x: M.left - 6, y: Y(t) + 4, 'text-anchor': 'end' }, label));
  }
  if (!cats && !bytes && opts.yUnit)
    grid.append(s('text', { x: 4, y: M.top - 8, 'text-anchor': 'start' }, opts.yUnit));
  for (const t of timeTicks(x0, x1)) {
    grid.append(s('line', { x1: X(t), x2: X(t), y1: M.top, y2: height - M.bottom, class: 'v' }));
    grid.append(
      s('text', { x: X(t), y: height - 8, 'text-anchor': 'middle' }, fmtClock(t, x1 - x0)),
    );
  }
  svg.append(grid);

  // Labels that would overlap the previous one move down a line (at most 3 lines).
  const lineEnds = [-Infinity, -Infinity, -Infinity];
  const notes = (opts.annotations ?? [])
    .filter((a) => a.x >= x0 && a.x <= x1)
    .sort((a, b) => a.x - b.x);
  for (const a of notes) {
    const x = X(a.x);
    const row = Math.max(
      0,
      lineEnds.findIndex((end) => end < x),
    );
    lineEnds[row] = x + 8 + a.label.length * 6;
    // Near the right edge a label is drawn to the left of its line.
    const atEnd = x + 8 + a.label.length * 6 > width - M.right;
    const g = s('g', { class: `chart-note note-${a.kind}` });
    g.append(s('line', { x1: x, x2: x, y1: M.top - 4, y2: height - M.bottom }));
    g.append(s('title', {}, a.title ?? a.label));
    g.append(
      s(
        'text',
        {
          x: atEnd ? x - 3 : x + 3,
          y: M.top + 6 + row * 11,
          'text-anchor': atEnd ? 'end' : 'start',
        },
        a.label,
      ),
    );
    svg.append(g);
  }

  for (const se of opts.series) {
    if (se.points.length === 0) continue;
    const path = linePath(se.points, X, Y, se.step, x1);
    if (se.area) {
      const base = Y(Math.max(y0, Math.min(0, y1)));
      const first = se.points[0];
      const lastX = se.step ? x1 : se.points[se.points.length - 1].x;
      svg.append(
        s('path', {
          d: `${path} L${X(lastX)},${base} L${X(first.x)},${base} Z`,
          class: `chart-area ${se.cls ?? ''}`,
        }),
      );
    }
    svg.append(s('path', { d: path, class: `chart-line ${se.cls ?? ''}`, fill: 'none' }));
    if (se.markers !== false && se.points.length <= 80) {
      for (const p of se.points) {
        svg.append(
          s(
            'circle',
            { cx: X(p.x), cy: Y(p.y), r: 3.2, class: `chart-dot ${p.cls ?? se.cls ?? ''}` },
            s('title', {}, p.title ?? fmtTick(p.y)),
          ),
        );
      }
    }
  }
  return svg;
}

function linePath(points, X, Y, step, xEnd) {
  let d = '';
  points.forEach((p, i) => {
    if (i === 0) d += `M${X(p.x)},${Y(p.y)}`;
    else if (step) d += ` H${X(p.x)} V${Y(p.y)}`;
    else d += ` L${X(p.x)},${Y(p.y)}`;
  });
  if (step) d += ` H${X(xEnd)}`;
  return d;
}

function extent(ys) {
  return [Math.min(...ys), Math.max(...ys)];
}

function pad(lo, hi) {
  const span = hi - lo;
  const low = lo >= 0 && lo - span * 0.1 < 0 ? 0 : lo - span * 0.1;
  return [low, hi + span * 0.1];
}

function shorten(text, n) {
  return text.length > n ? text.slice(0, n - 1) + '…' : text;
}

function timeTicks(x0, x1) {
  const span = x1 - x0;
  const steps = [1e3, 5e3, 15e3, 3e4, 6e4, 3e5, 9e5, 1.8e6, 3.6e6, 1.08e7, 2.16e7, 8.64e7, 6.048e8];
  const step = steps.find((st) => span / st <= 6) ?? 6.048e8;
  const ticks = [];
  for (let t = Math.ceil(x0 / step) * step; t <= x1 && ticks.length < 10; t += step) ticks.push(t);
  return ticks;
}
