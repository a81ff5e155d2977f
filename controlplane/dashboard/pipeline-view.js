// The proposal pipeline (counts by status, the latest proposals with their simulation and
// shadow verdicts), the shadow reports (decision divergence of scheduling candidates, ghost
// cache hit ratios of cache candidates), and a proposal's details in a dialog, opened from a
// link (#proposal=<id>) so a proposal can be pointed at.
/* global window */
import { api } from './api.js';
import { byId, clear, fmtActor, fmtAgo, fmtTime, fmtValue, h, update } from './dom.js';

const STAGES = [
  ['proposed', 'Proposed'],
  ['simulated', 'Sim-evaluated'],
  ['shadow', 'Shadow'],
  ['live', 'Live'],
  ['rolled_back', 'Rolled back'],
];
const LATEST = 12;
const SHADOWS = 6;

// Reports are free-form JSON written by learners, the loop and the registry: every field is
// read for what it is, never assumed, so one odd report cannot break a panel.

/** The verdict word of any report: the loop's gate says `outcome`, the others `verdict`. */
export function verdictOf(report) {
  if (!report || typeof report !== 'object') return null;
  const v = report.verdict ?? report.outcome;
  return typeof v === 'string' && v ? v : null;
}

/** A report's reasons as one line: a list of texts, or one text. */
export function reasonsOf(report) {
  const r = report && typeof report === 'object' ? report.reasons : undefined;
  if (typeof r === 'string') return r;
  if (!Array.isArray(r)) return '';
  return r
    .map((x) => (typeof x === 'string' ? x : JSON.stringify(x)))
    .filter(Boolean)
    .join('; ');
}

const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const obj = (v) => (v && typeof v === 'object' && !Array.isArray(v) ? v : {});

/**
 * One row (of proposals, versions, shadow runs) drawn on its own: one whose data cannot be
 * drawn shows as such, and its neighbours still show.
 */
export function safeRow(draw, fallback) {
  try {
    return draw();
  } catch (err) {
    return fallback(err);
  }
}

/** Relative improvement a report claims (positive = better), when it has one. */
function improvementOf(report) {
  if (!report || typeof report !== 'object') return null;
  const v = report.improvement ?? report.improvementVsIncumbent ?? report.predicted?.improvement;
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

const GOOD = new Set(['successful', 'better']);
const BAD = new Set(['failed', 'worse']);

/**
 * A verdict chip: green for good, red for bad, grey otherwise; a dash without a report. The
 * claimed improvement follows the verdict, or (compact) only shows on hover.
 */
export function verdictChip(report, compact = false) {
  const v = verdictOf(report);
  if (!v) return h('span', { class: 'muted' }, '—');
  const cls = GOOD.has(v) ? 'good' : BAD.has(v) ? 'bad' : 'neutral';
  const imp = improvementOf(report);
  const pct = imp === null ? '' : `${imp >= 0 ? '+' : ''}${(imp * 100).toFixed(1)}%`;
  const reasons = reasonsOf(report);
  return h(
    'span',
    { class: `verdict ${cls}`, title: compact && pct ? `${pct} · ${reasons}` : reasons },
    v,
    compact || !pct ? '' : ` ${pct}`,
  );
}

export function statusBadge(status) {
  const s = String(status);
  return h('span', { class: `status st-${s}` }, s.replace('_', ' '));
}

function changesText(p) {
  return (Array.isArray(p.changes) ? p.changes : [])
    .map((c) => `${c?.name} → ${fmtValue(c?.value)}`)
    .join(', ');
}

function proposalRow(p) {
  return h(
    'tr',
    { 'data-proposal': p.id },
    h(
      'td',
      {},
      h('a', { href: `#proposal=${encodeURIComponent(p.id)}`, class: 'mono' }, p.id),
      h('div', { class: 'muted small', title: String(p.learner) }, fmtActor(String(p.learner))),
    ),
    h('td', { class: 'mono change' }, changesText(p)),
    h('td', {}, statusBadge(p.status)),
    h('td', { 'data-col': 'sim' }, verdictChip(p.simReport)),
    h('td', { 'data-col': 'shadow' }, verdictChip(p.shadowReport)),
    h('td', { title: fmtTime(p.updatedAt) }, fmtAgo(p.updatedAt)),
  );
}

export async function loadPipeline() {
  const { proposals, counts, countedOver } = await api(`/api/proposals?limit=${LATEST}`);
  // Redrawn every poll: nothing changes when nothing did, and a focused link keeps the focus.
  update(
    byId('pipeline-stages'),
    STAGES.map(([key, label]) =>
      h(
        'div',
        { class: 'stage', 'data-stage': key },
        h('div', { class: 'count' }, String(counts[key] ?? 0)),
        h('div', { class: 'label' }, label),
      ),
    ),
  );
  byId('pipeline-note').textContent =
    `${counts.rejected ?? 0} rejected · newest ${countedOver} counted`;
  update(
    byId('pipeline-list'),
    proposals.length
      ? h(
          'div',
          { class: 'table-wrap' },
          h(
            'table',
            { class: 'pipeline' },
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                ['Proposal', 'Change', 'Status', 'Sim', 'Shadow', 'When'].map((t) =>
                  h('th', {}, t),
                ),
              ),
            ),
            h(
              'tbody',
              {},
              proposals.map((p) =>
                safeRow(
                  () => proposalRow(p),
                  () =>
                    h(
                      'tr',
                      { 'data-proposal': p.id },
                      h('td', { colspan: 6, class: 'muted' }, `${p.id}: cannot be shown`),
                    ),
                ),
              ),
            ),
          ),
        )
      : h('p', { class: 'empty', id: 'no-proposals' }, 'No proposals yet.'),
  );
  return proposals;
}

/** One shadow report as a row: what ran beside what, and how far apart they were. */
function shadowRow(subject, href, report) {
  const d = obj(report.details);
  const inc = num(obj(d.incumbent).hitRatio);
  const cand = num(obj(d.candidate).hitRatio);
  let measure;
  if (num(report.divergenceRate) !== null) {
    const pct = report.divergenceRate * 100;
    const fill = h('span');
    // A property, not a style attribute: the page's CSP allows no inline styles.
    fill.style.width = `${Math.min(100, pct).toFixed(1)}%`;
    measure = h(
      'div',
      {
        class: 'divergence',
        title: `${report.divergentDecisions} of ${report.decisions} decisions`,
      },
      h('div', { class: 'bar' }, fill),
      h('span', { class: 'mono' }, `${pct.toFixed(1)}% of decisions diverge`),
    );
  } else if (inc !== null && cand !== null) {
    measure = h(
      'span',
      { class: 'mono' },
      `hit ratio ${(inc * 100).toFixed(1)}% → ${(cand * 100).toFixed(1)}% (ghost cache, ${num(d.candidate.requests) ?? '?'} requests)`,
    );
  } else measure = h('span', { class: 'muted' }, 'no measure yet');
  return h(
    'div',
    { class: 'shadow-row', 'data-shadow': subject },
    h(
      'div',
      { class: 'shadow-head' },
      h('a', { href, class: 'mono' }, subject),
      verdictChip(report),
    ),
    measure,
  );
}

/** Shadow reports of recent proposals and policy versions, newest first. */
export function renderShadows(proposals, policies) {
  const row = (id, href, report, at) => ({
    at: num(report.at) ?? num(at) ?? 0,
    node: safeRow(
      () => shadowRow(id, href, report),
      () => h('div', { class: 'shadow-row muted', 'data-shadow': id }, `${id}: cannot be shown`),
    ),
  });
  const rows = [
    ...proposals
      .filter((p) => p.shadowReport && typeof p.shadowReport === 'object')
      .map((p) => row(p.id, `#proposal=${encodeURIComponent(p.id)}`, p.shadowReport, p.updatedAt)),
    ...policies
      .filter((p) => p.shadowReport && typeof p.shadowReport === 'object')
      .map((p) => row(p.id, `#policy=${encodeURIComponent(p.id)}`, p.shadowReport, p.updatedAt)),
  ]
    .sort((a, b) => b.at - a.at)
    .slice(0, SHADOWS);
  update(
    byId('shadow-list'),
    rows.length
      ? rows.map((r) => r.node)
      : h('p', { class: 'empty', id: 'no-shadows' }, 'No shadow runs yet.'),
  );
}

function section(title, ...children) {
  return h('div', { class: 'report' }, h('h3', {}, title), ...children);
}

export function reportBlock(title, report) {
  if (!report) return null;
  return section(
    title,
    h('p', {}, verdictChip(report), ' ', reasonsOf(report)),
    h('pre', { class: 'json' }, JSON.stringify(report, null, 2)),
  );
}

/** Opens the details of a proposal (or says why it cannot). */
export async function showProposal(id) {
  const dlg = byId('detail-dialog');
  let body;
  try {
    const p = await api(`/api/proposals/${encodeURIComponent(id)}`);
    body = [
      h('h2', {}, 'Proposal ', h('span', { class: 'mono' }, p.id)),
      h(
        'p',
        {},
        statusBadge(p.status),
        ` by ${fmtActor(p.learner)} · created ${fmtAgo(p.createdAt)} · `,
        h('em', {}, p.reason),
      ),
      section(
        'Changes',
        h(
          'ul',
          {},
          (Array.isArray(p.changes) ? p.changes : []).map((c) =>
            h(
              'li',
              { class: 'mono' },
              `${c?.name} → ${fmtValue(c?.value)} (on v${c?.baseVersion})`,
            ),
          ),
        ),
      ),
      reportBlock('Simulation', p.simReport),
      reportBlock('Shadow', p.shadowReport),
      reportBlock('SLO guard', p.guardReport),
    ];
  } catch (err) {
    body = [h('h2', {}, 'Proposal'), h('p', { class: 'form-error' }, err.message)];
  }
  openDetail(dlg, body);
}

/** Shows `body` in the details dialog; closing it clears the link. */
export function openDetail(dlg, body) {
  const close = h('button', { type: 'button', class: 'btn', id: 'detail-close' }, 'Close');
  clear(
    dlg,
    h('div', { class: 'dialog-form wide' }, ...body, h('div', { class: 'dialog-actions' }, close)),
  );
  close.addEventListener('click', () => dlg.close());
  dlg.addEventListener(
    'close',
    () => {
      if (window.location.hash) window.history.replaceState(null, '', window.location.pathname);
    },
    { once: true },
  );
  if (!dlg.open) dlg.showModal();
}
