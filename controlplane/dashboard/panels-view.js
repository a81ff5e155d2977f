// The other panels: the freeze switch, live telemetry charts per service, and the audit log.
// The proposal pipeline and shadow reports are in pipeline-view.js, the registry in
// registry-view.js.
import { api } from './api.js';
import { lineChart } from './chart.js';
import { confirmAction, toast } from './dialogs.js';
import { byId, clear, fmtActor, fmtAgo, fmtError, fmtTime, h, update } from './dom.js';

const TELEMETRY_WINDOW_MS = 15 * 60_000;
const MAX_CHARTS = 6;
/** The metric names GET /api/telemetry/:service/:metric accepts; others cannot be charted. */
const METRIC_NAME = /^[a-z][a-z0-9_]{0,99}$/;

export function renderFreeze(state) {
  const f = state.frozen;
  const operate = state.auth && state.auth.role !== 'viewer' && !state.auth.tenant;
  const pill = byId('automation-state');
  pill.className = f ? 'pill frozen' : 'pill running';
  pill.textContent = f ? 'Automation frozen' : 'Automation running';
  const btn = byId('freeze-btn');
  btn.textContent = f ? 'Unfreeze' : 'Freeze automation';
  btn.className = f ? 'btn' : 'btn danger-outline';
  btn.disabled = !operate;
  btn.title = operate ? '' : 'needs an operator token without a tenant scope';
  const banner = byId('freeze-banner');
  banner.hidden = !f;
  if (f)
    clear(
      banner,
      h('strong', {}, 'Automation is frozen. '),
      `Learners and the promotion pipeline may not change knobs; operators still can. Frozen by ${fmtActor(f.by)} ${fmtAgo(f.at)}: “${f.reason}”.`,
    );
}

export async function toggleFreeze(state) {
  const freeze = !state.frozen;
  // A failure stays in the dialog, with the reason typed (dialogs.js).
  const res = await confirmAction({
    title: freeze ? 'Freeze all automation?' : 'Unfreeze automation?',
    body: freeze
      ? 'The kill switch: every knob change by automation (learners, the promotion pipeline) is refused until unfrozen; the SLO guard still rolls back a promotion that regressed. Operators can still act.'
      : 'Learners and the promotion pipeline may change knobs again.',
    confirmLabel: freeze ? 'Freeze' : 'Unfreeze',
    danger: freeze,
    action: (reason) =>
      api(freeze ? '/api/freeze' : '/api/unfreeze', { method: 'POST', body: { reason } }),
  });
  if (res === null) return;
  state.frozen = res.frozen;
  renderFreeze(state);
  toast(freeze ? 'automation frozen' : 'automation unfrozen', 'ok');
}

/** Which metrics to chart first: rates, tails, then gauges; raw counters and sums last. */
function rankMetrics(names) {
  const set = new Set(names);
  const score = (n) => {
    if (n.endsWith('_per_s')) return 0;
    if (n.endsWith('_p99')) return 1;
    if (/_(p50|mean|max|count)$/.test(n)) return 9;
    if (set.has(`${n}_per_s`)) return 9; // a counter: its rate is shown
    return 2;
  };
  const ranked = [...names].sort((a, b) => score(a) - score(b) || a.localeCompare(b));
  const main = ranked.filter((n) => score(n) < 9);
  return (main.length >= 3 ? main : ranked).slice(0, MAX_CHARTS);
}

// Loads overlap (the 5 s poll, a tab click): a load renders its tabs, and then its charts,
// only if no later load rendered them first, and its charts only for the service still shown.
let telemetrySeq = 0;
let tabsShown = 0;
let chartsShown = 0;

export async function loadTelemetry(state) {
  const seq = ++telemetrySeq;
  const { services } = await api('/api/telemetry');
  if (seq < tabsShown) return;
  tabsShown = seq;
  const live = services.filter((s) => s.entries > 0);
  state.telemetry.services = services;
  if (!live.some((s) => s.service === state.telemetry.service))
    state.telemetry.service = live[0]?.service ?? null;
  const svc = state.telemetry.service;
  const tabs = byId('telemetry-tabs');
  // Redrawn every poll: unchanged tabs are left alone, a changed one keeps the focus (data-key).
  update(
    tabs,
    services.map((s) =>
      h(
        'button',
        {
          type: 'button',
          'data-key': `tab:${s.service}`,
          class: 'tab' + (s.service === svc ? ' active' : ''),
          disabled: s.entries === 0,
          title:
            s.entries === 0
              ? 'no telemetry reported yet'
              : `${s.entries} entries, last ${fmtAgo(s.lastAt)}`,
          onclick: () => {
            state.telemetry.service = s.service;
            loadTelemetry(state).catch((err) => toast(fmtError(err), 'error'));
          },
        },
        s.service,
      ),
    ),
  );
  const grid = byId('telemetry-charts');
  if (!svc) {
    chartsShown = seq;
    update(
      grid,
      h(
        'p',
        { class: 'empty' },
        'No telemetry yet. Services report here once they run (npm start runs them with a workload).',
      ),
    );
    return;
  }
  const path = `/api/telemetry/${encodeURIComponent(svc)}`;
  const { metrics } = await api(path);
  const toMs = Date.now();
  const fromMs = toMs - TELEMETRY_WINDOW_MS;
  // Names come from the raw stream: one the route refuses is skipped, and each chart loads on
  // its own, so one failure shows in its own box and never blanks the others.
  const settled = await Promise.allSettled(
    rankMetrics(metrics.filter((m) => METRIC_NAME.test(m))).map(async (m) => {
      const res = await api(
        `${path}/${encodeURIComponent(m)}?fromMs=${fromMs}&toMs=${toMs}&stepMs=10000`,
      ).catch((err) => ({ error: err }));
      if (res.error)
        return h(
          'figure',
          { class: 'tchart failed', 'data-metric': m },
          h('figcaption', {}, h('span', {}, m)),
          h('p', { class: 'empty' }, `could not be loaded: ${res.error.message ?? res.error}`),
        );
      const pts = res.points.map((p) => ({
        x: p.at,
        y: p.value,
        title: `${fmtTime(p.at)}: ${p.value.toPrecision(4)}`,
      }));
      const last = pts[pts.length - 1];
      return h(
        'figure',
        { class: 'tchart', 'data-metric': m },
        h(
          'figcaption',
          {},
          h('span', {}, m),
          h(
            'span',
            { class: 'latest' },
            last ? Number(last.y.toPrecision(4)).toLocaleString('en-US') : '—',
          ),
        ),
        lineChart({
          width: 360,
          height: 150,
          label: `${svc} ${m}`,
          xDomain: [fromMs, toMs],
          series: [{ points: pts, cls: 'line-telemetry', area: true, markers: false }],
          empty: 'no points in the last 15 min',
        }),
      );
    }),
  );
  if (seq < chartsShown || svc !== state.telemetry.service) return;
  chartsShown = seq;
  const charts = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  update(
    grid,
    charts.length ? charts : h('p', { class: 'empty' }, `No chartable metrics for ${svc} yet.`),
  );
}

// Polls and event-driven loads overlap: an answer older than the one shown is dropped.
let auditSeq = 0;
let auditShown = 0;

export async function loadAudit() {
  const seq = ++auditSeq;
  const { audit } = await api('/api/audit?limit=12');
  if (seq < auditShown) return;
  auditShown = seq;
  update(
    byId('audit-rows'),
    audit.map((a) =>
      h(
        'tr',
        {},
        h('td', { title: fmtTime(a.at) }, fmtAgo(a.at)),
        h('td', { title: a.actor }, fmtActor(a.actor)),
        h('td', {}, h('span', { class: 'action' }, a.action)),
        h('td', { class: 'mono' }, a.target),
        h(
          'td',
          { class: 'why', title: String(a.detail?.reason ?? '') },
          String(a.detail?.reason ?? ''),
        ),
      ),
    ),
  );
}
