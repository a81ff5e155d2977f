// The proposal pipeline (counts by status, the latest proposals with their simulation and
// shadow verdicts), the shadow reports (decision divergence of scheduling candidates, ghost
// cache hit ratios of cache candidates), and a proposal's details in a dialog, opened from a
// link (#proposal=<id>) so a proposal can be pointed at.
/* global window */
import { api } from './api.js';
import { byId, clear, fmtActor, fmtAgo, fmtTime, fmtValue, h } from './dom.js';

const STAGES = [
  ['proposed', 'Proposed'],
  ['simulated', 'Sim-evaluated'],
  ['shadow', 'Shadow'],
  ['live', 'Live'],
  ['rolled_back', 'Rolled back'],
];
const LATEST = 12;
const SHADOWS = 6;

/** The verdict word of any report: the loop's gate says `outcome`, the others `verdict`. */
export function verdictOf(report) {
  if (!report || typeof report !== 'object') return null;
  return report.verdict ?? report.outcome ?? null;
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
  const reasons = (report.reasons ?? []).join('; ');
  return h(
    'span',
    { class: `verdict ${cls}`, title: compact && pct ? `${pct} · ${reasons}` : reasons },
    v,
    compact || !pct ? '' : ` ${pct}`,
  );
}

export function statusBadge(status) {
  return h('span', { class: `status st-${status}` }, status.replace('_', ' '));
}

function changesText(p) {
  return p.changes.map((c) => `${c.name} → ${fmtValue(c.value)}`).join(', ');
}

export async function loadPipeline() {
  const { proposals, counts, countedOver } = await api(`/api/proposals?limit=${LATEST}`);
  clear(
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
  clear(
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
                h(
                  'tr',
                  { 'data-proposal': p.id },
                  h(
                    'td',
                    {},
                    h('a', { href: `#proposal=${encodeURIComponent(p.id)}`, class: 'mono' }, p.id),
                    h('div', { class: 'muted small' }, fmtActor(p.learner)),
                  ),
                  h('td', { class: 'mono change' }, changesText(p)),
                  h('td', {}, statusBadge(p.status)),
                  h('td', { 'data-col': 'sim' }, verdictChip(p.simReport)),
                  h('td', { 'data-col': 'shadow' }, verdictChip(p.shadowReport)),
                  h('td', { title: fmtTime(p.updatedAt) }, fmtAgo(p.updatedAt)),
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
  const d = report.details ?? {};
  let measure;
  if (typeof report.divergenceRate === 'number') {
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
  } else if (d.incumbent?.hitRatio !== undefined && d.candidate?.hitRatio !== undefined) {
    measure = h(
      'span',
      { class: 'mono' },
      `hit ratio ${(d.incumbent.hitRatio * 100).toFixed(1)}% → ${(d.candidate.hitRatio * 100).toFixed(1)}% (ghost cache, ${d.candidate.requests ?? '?'} requests)`,
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
  const rows = [
    ...proposals
      .filter((p) => p.shadowReport)
      .map((p) => ({
        at: p.updatedAt,
        node: shadowRow(p.id, `#proposal=${encodeURIComponent(p.id)}`, p.shadowReport),
      })),
    ...policies
      .filter((p) => p.shadowReport)
      .map((p) => ({
        at: p.shadowReport.at ?? p.updatedAt,
        node: shadowRow(p.id, `#policy=${encodeURIComponent(p.id)}`, p.shadowReport),
      })),
  ]
    .sort((a, b) => b.at - a.at)
    .slice(0, SHADOWS);
  clear(
    byId('shadow-list'),
    rows.length
      ? rows.map((r) => r.node)
      : h('p', { class: 'empty', id: 'no-shadows' }, 'No shadow runs yet.'),
  );
}

function section(title, ...children) {
  return h('div', { class: 'report' }, h('h3', {}, title), ...children);
}

function reportBlock(title, report) {
  if (!report) return null;
  return section(
    title,
    h('p', {}, verdictChip(report), ' ', (report.reasons ?? []).join('; ')),
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
          p.changes.map((c) =>
            h('li', { class: 'mono' }, `${c.name} → ${fmtValue(c.value)} (on v${c.baseVersion})`),
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
