// The knob table and the selected knob's panel: its declaration, its history as a chart
// annotated with rollbacks, proposals and pins, and the operator actions: change the value
// (knob-editor.js), pin, unpin, roll back to a version (each of the last three behind a
// confirmation dialog).
/* global document */
import { ApiFailure, api, canOperate } from './api.js';
import { lineChart } from './chart.js';
import { confirmAction, toast } from './dialogs.js';
import { valueEditor } from './knob-editor.js';
import {
  byId,
  clear,
  fmtActor,
  fmtAgo,
  fmtDomain,
  fmtError,
  fmtPair,
  fmtTime,
  fmtValue,
  h,
} from './dom.js';

const HISTORY_LIMIT = 200;

function sameValue(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * The rows are updated in place, kept by knob name: it is rendered on every select, live
 * change and the 5 s refresh, and a rebuilt row would throw the keyboard focus to the body.
 */
export function renderKnobTable(state) {
  const filter = state.filter.trim().toLowerCase();
  const rows = [...state.knobs.values()].filter(
    (r) =>
      !filter ||
      r.name.includes(filter) ||
      r.service.includes(filter) ||
      r.reason.toLowerCase().includes(filter),
  );
  const tbody = byId('knob-rows');
  const held = new Map(
    [...tbody.querySelectorAll('tr[data-knob]')].map((tr) => [tr.dataset.knob, tr]),
  );
  const trs = rows.map((r) => {
    const tr = held.get(r.name) ?? knobRow(state, r.name);
    const selected = r.name === state.selected;
    tr.classList.toggle('selected', selected);
    flash(tr, state.flash.get(r.name));
    tr.setAttribute('aria-selected', String(selected));
    tr.replaceChildren(...knobCells(r));
    return tr;
  });
  if (!trs.length)
    trs.push(h('tr', {}, h('td', { colspan: 5, class: 'empty' }, 'No knob matches the filter.')));
  // Drop the rows no longer shown, then move only the misplaced ones (moving one blurs it).
  const keep = new Set(trs);
  for (const el of [...tbody.children]) if (!keep.has(el)) el.remove();
  trs.forEach((tr, i) => {
    if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] ?? null);
  });
  byId('knob-count').textContent = `${rows.length} of ${state.knobs.size}`;
}

/** Flashes a row once per live change: the row is kept, so the animation is restarted. */
function flash(tr, stamp) {
  if (!stamp) {
    tr.classList.remove('flash');
    delete tr.dataset.flash;
  } else if (tr.dataset.flash !== String(stamp)) {
    tr.classList.remove('flash');
    void tr.offsetWidth; // a reflow, so adding the class again restarts the animation
    tr.classList.add('flash');
    tr.dataset.flash = String(stamp);
  }
}

function knobRow(state, name) {
  return h('tr', {
    'data-knob': name,
    tabindex: 0,
    onclick: () => state.select(name),
    onkeydown: (e) => {
      if (e.key !== 'Enter' && e.key !== ' ') return;
      e.preventDefault(); // Space would scroll the page
      state.select(name);
    },
  });
}

function knobCells(r) {
  const modified = !sameValue(r.value, r.default);
  return [
    h(
      'td',
      { class: 'knob-name' },
      h(
        'div',
        { class: 'name' },
        r.name,
        h('span', { class: 'svc svc-' + r.service }, r.service),
        r.pinned
          ? h(
              'span',
              {
                class: 'badge pinned',
                'data-col': 'status',
                title: `pinned by ${r.pinnedBy}: ${r.pinReason}`,
              },
              'pinned',
            )
          : null,
      ),
      h('div', { class: 'desc', title: r.spec.description ?? '' }, r.spec.description ?? ''),
    ),
    h(
      'td',
      { class: 'value' + (modified ? ' modified' : ''), 'data-col': 'value' },
      h('div', {}, fmtValue(r.value, r.spec.unit)),
      modified
        ? h('div', { class: 'default' }, 'default ', fmtValue(r.default, r.spec.unit))
        : null,
    ),
    h('td', { class: 'domain muted' }, fmtDomain(r.spec)),
    h('td', { class: 'mono', 'data-col': 'version' }, `v${r.version}`),
    h(
      'td',
      { class: 'change' },
      h(
        'div',
        {},
        h('span', { title: fmtTime(r.updatedAt) }, fmtAgo(r.updatedAt)),
        ' · ',
        h('span', { class: 'who', title: r.updatedBy }, fmtActor(r.updatedBy)),
      ),
      h('div', { class: 'why', title: r.reason }, r.reason),
    ),
  ];
}

/** History entries -> chart series, with categories for enums, booleans and placements. */
function historySeries(row, history) {
  const entries = [...history].reverse(); // oldest first
  const numeric = typeof row.value === 'number';
  let cats;
  if (!numeric) {
    const labels =
      row.spec.type === 'enum'
        ? [...row.spec.values]
        : row.spec.type === 'bool'
          ? ['false', 'true']
          : [];
    for (const e of entries) if (!labels.includes(fmtValue(e.new))) labels.push(fmtValue(e.new));
    cats = labels;
  }
  const points = entries.map((e) => ({
    x: e.at,
    y: numeric ? e.new : cats.indexOf(fmtValue(e.new)),
    cls: e.kind === 'rollback' ? 'dot-rollback' : e.proposalId ? 'dot-proposal' : '',
    title: `v${e.version} · ${fmtValue(e.new, row.spec.unit)} · ${e.kind} by ${fmtActor(e.actor)}: ${e.reason}`,
  }));
  return { points, cats };
}

function annotations(history, audit) {
  const notes = [];
  for (const e of history) {
    if (e.kind === 'rollback')
      notes.push({
        x: e.at,
        kind: 'rollback',
        label: `↩ v${e.version}`,
        title: `rollback by ${fmtActor(e.actor)}: ${e.reason}`,
      });
    else if (e.proposalId)
      notes.push({
        x: e.at,
        kind: 'proposal',
        label: e.proposalId,
        title: `proposal ${e.proposalId}`,
      });
  }
  for (const a of audit) {
    if (a.action === 'knob.pin' || a.action === 'knob.unpin')
      notes.push({
        x: a.at,
        kind: a.action === 'knob.pin' ? 'pin' : 'unpin',
        label: a.action === 'knob.pin' ? 'pin' : 'unpin',
        title: `${a.action} by ${fmtActor(a.actor)}: ${a.detail?.reason ?? ''}`,
      });
  }
  return notes;
}

let detailSeq = 0;
/** The knob and row state (detailKey) whose history and audit the panel shows. */
let detailLoaded = null;

/** What the history and pin notes depend on: a new version, or a pin (which keeps it). */
function detailKey(row) {
  return JSON.stringify([row?.version, row?.pinned, row?.pinnedBy, row?.pinReason]);
}

/** Whether the selected knob's row moved on since its history and audit were loaded. */
export function detailBehind(state) {
  const name = state.selected;
  return Boolean(name) && detailLoaded !== `${name} ${detailKey(state.knobs.get(name))}`;
}

export async function loadDetail(state) {
  const name = state.selected;
  if (!name) return;
  // Loads can overlap (a click, a live change, an action); only the latest one renders.
  const seq = ++detailSeq;
  const loading = `${name} ${detailKey(state.knobs.get(name))}`;
  const [hist, audit] = await Promise.all([
    api(`/api/knobs/${encodeURIComponent(name)}/history?limit=${HISTORY_LIMIT}`),
    api(`/api/audit?source=knobs&limit=50&target=${encodeURIComponent(name)}`),
  ]);
  if (seq !== detailSeq || state.selected !== name) return;
  state.history = hist.history;
  state.knobAudit = audit.audit;
  state.historyFor = name;
  detailLoaded = loading;
  renderDetail(state);
}

/** The focused control of the detail panel, as a selector for its twin once rebuilt. */
function focusedControl(host) {
  const el = document.activeElement;
  if (!el || el === host || !host.contains(el)) return null;
  if (el.closest('.knob-editor')) return null; // the editor is kept, focus and all
  if (el.dataset.rollback) return `[data-rollback="${el.dataset.rollback}"]`;
  return '[data-action="pin"]';
}

/**
 * Rebuilt on every live change of the selected knob: the control that had the focus gets it
 * back (the same rollback button, else the pin button), not the body. The value editor is
 * kept while the same knob is shown, so a live change never loses what is being typed.
 */
export function renderDetail(state) {
  const host = byId('knob-detail');
  const focused = focusedControl(host);
  buildDetail(state, host);
  if (focused)
    (host.querySelector(focused) ?? host.querySelector('[data-action="pin"]'))?.focus({
      preventScroll: true,
    });
}

/** The detail panel's parts for the knob shown; the editor part is never rebuilt. */
let shown = null;

function buildDetail(state, host) {
  const row = state.knobs.get(state.selected);
  if (!row) {
    shown = null;
    clear(host, h('p', { class: 'empty' }, 'Select a knob to see its history.'));
    return;
  }
  const spec = row.spec;
  const operate = canOperate(state);
  if (!shown || shown.name !== row.name || !host.contains(shown.head)) {
    shown = {
      name: row.name,
      head: h('div', { class: 'detail-head' }),
      note: h('div'),
      facts: h('dl', { class: 'facts' }),
      editor: valueEditor(state, row),
      rest: h('div'),
    };
    clear(host, shown.head, shown.note, shown.facts, shown.editor.el, shown.rest);
  }
  shown.editor.update(row, operate);
  const facts = [
    ['Value', fmtValue(row.value, spec.unit)],
    ['Default', fmtValue(row.default, spec.unit)],
    ['Domain', fmtDomain(spec)],
    ['Version', `v${row.version}`],
    ['Cost', spec.cost],
    ['Cooldown', `${(spec.safety.cooldownMs / 1000).toLocaleString('en-US')} s`],
  ];
  if (spec.safety.maxStepRatio) facts.push(['Max step', `×${spec.safety.maxStepRatio}`]);
  if (spec.safety.maxStep) facts.push(['Max step', `±${fmtValue(spec.safety.maxStep, spec.unit)}`]);
  // Until the selected knob's own history arrives, none: the previous knob's (still held while
  // it loads) would be drawn under this name, rollback buttons and all.
  const loaded = state.historyFor === row.name;
  const history = loaded ? state.history : [];
  const { points, cats } = historySeries(row, history);
  const t0 = points.length ? points[0].x : Date.now() - 60_000;
  // The browser's clock, or the newest change's (the server's) where that is ahead: a server a
  // minute ahead put its newest change past the right edge.
  const now = Math.max(Date.now(), points.length ? points[points.length - 1].x : 0);
  const chart = lineChart({
    width: 620,
    height: 210,
    label: `history of ${row.name}`,
    // A little room on both sides, so the first change and the latest marks are not on the edge.
    xDomain: [t0 - (now - t0) * 0.03, now + (now - t0) * 0.06],
    series: [{ points, step: true, cls: 'line-knob', area: !cats }],
    yCategories: cats,
    yUnit: spec.unit,
    annotations: annotations(history, loaded ? state.knobAudit : []),
    empty: 'no history yet',
  });
  const pinBtn = h(
    'button',
    {
      class: 'btn' + (row.pinned ? '' : ' warn'),
      id: row.pinned ? 'unpin-btn' : 'pin-btn',
      'data-action': 'pin',
      disabled: !operate,
      title: operate ? '' : 'needs an operator token without a tenant scope',
      onclick: () => (row.pinned ? unpin(state, row) : pin(state, row)),
    },
    row.pinned ? 'Unpin' : 'Pin',
  );
  clear(
    shown.head,
    h(
      'div',
      {},
      h('h3', { id: 'detail-name' }, row.name),
      h('p', { class: 'muted' }, spec.description),
    ),
    h('div', { class: 'detail-actions' }, pinBtn),
  );
  clear(
    shown.note,
    row.pinned
      ? h(
          'div',
          { class: 'note pinned-note' },
          `Pinned by ${fmtActor(row.pinnedBy)}: ${row.pinReason}. Promotions are refused until it is unpinned.`,
        )
      : null,
  );
  clear(
    shown.facts,
    facts.map(([k, v]) => h('div', { class: 'fact' }, h('dt', {}, k), h('dd', {}, v))),
  );
  clear(
    shown.rest,
    h('div', { class: 'chart-box' }, chart),
    h(
      'div',
      { class: 'legend' },
      h('span', { class: 'key key-line' }, 'value'),
      h('span', { class: 'key key-rollback' }, 'rollback'),
      h('span', { class: 'key key-proposal' }, 'proposal'),
      h('span', { class: 'key key-pin' }, 'pin / unpin'),
    ),
    historyTable(state, history, row, operate),
  );
}

function historyTable(state, history, row, operate) {
  const rows = history.slice(0, 12).map((e) =>
    h(
      'tr',
      { 'data-version': e.version },
      h('td', { class: 'mono' }, `v${e.version}`),
      h(
        'td',
        {},
        h('div', { class: 'mono' }, fmtValue(e.new, row.spec.unit)),
        h('span', { class: `kind kind-${e.kind}` }, e.kind),
      ),
      h(
        'td',
        { class: 'hist-who' },
        h(
          'div',
          {},
          h('span', { title: fmtTime(e.at) }, fmtAgo(e.at)),
          ' · ',
          h('span', { class: 'who', title: e.actor }, fmtActor(e.actor)),
        ),
        h('div', { class: 'why', title: e.reason }, e.reason),
      ),
      h(
        'td',
        { class: 'hist-action' },
        e.version !== row.version && !sameValue(e.new, row.value)
          ? h(
              'button',
              {
                class: 'btn small',
                'data-rollback': e.version,
                disabled: !operate || row.pinned,
                title: row.pinned
                  ? 'unpin the knob first'
                  : operate
                    ? `restore the value of v${e.version}`
                    : 'needs an operator token',
                onclick: () => rollback(state, row, e),
              },
              `Roll back`,
            )
          : null,
      ),
    ),
  );
  return h(
    'table',
    { class: 'history' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ['Ver', 'Value', 'When · who · why', ''].map((t) => h('th', {}, t)),
      ),
    ),
    h('tbody', {}, rows),
  );
}

/**
 * Runs a confirmed action on the knob `first` shows: a toast when it succeeds; a failure stays
 * in the dialog. opts.body(row) draws the dialog's text from a row, and call(reason, row)
 * acts on the row drawn. On a 409 or a 423 (the knob moved, was pinned or its pin changed since
 * it was drawn) the dialog is drawn again from the refreshed row, so the next confirm acts on
 * what it shows; opts.blocked(row), when it gives a label, says the row allows no confirm.
 */
async function confirmed(state, first, opts, what, call) {
  let row = first;
  const body = h('div', {}, opts.body(row));
  const done = await confirmAction({
    ...opts,
    body,
    blocked: () => opts.blocked?.(row) ?? null,
    action: async (reason) => {
      let failure;
      const res = await call(reason, row).catch((err) => void (failure = err));
      // Refused or not, the row may have moved on (a stale base version, a pin).
      const refreshed = state.refreshKnob(row.name).catch((err) => toast(fmtError(err), 'error'));
      if (!failure) return res ?? true;
      if (failure instanceof ApiFailure && (failure.status === 409 || failure.status === 423)) {
        await refreshed;
        row = state.knobs.get(row.name) ?? row;
        clear(body, opts.body(row));
      }
      throw failure;
    },
  });
  if (done) toast(typeof what === 'function' ? what(done) : what, 'ok');
}

function pin(state, row) {
  return confirmed(
    state,
    row,
    {
      title: `Pin ${row.name}?`,
      body: (r) =>
        r.pinned
          ? `Already pinned by ${fmtActor(r.pinnedBy)}: ${r.pinReason}`
          : `Every promotion of ${r.name} (by learners and operators) is refused while it is pinned at ${fmtValue(r.value, r.spec.unit)} (v${r.version}).`,
      // Another operator's pin: a pin would be refused until they unpin.
      blocked: (r) => (r.pinned ? 'Already pinned' : null),
      confirmLabel: 'Pin knob',
    },
    `${row.name} pinned`,
    // Pinned on the version shown: the server refuses it (409) if the knob moved meanwhile.
    (reason, r) =>
      api(`/api/knobs/${encodeURIComponent(r.name)}/pin`, {
        method: 'POST',
        body: { reason, baseVersion: r.version },
      }),
  );
}

function unpin(state, row) {
  return confirmed(
    state,
    row,
    {
      title: `Unpin ${row.name}?`,
      body: (r) =>
        r.pinned
          ? `Removes the pin of ${fmtActor(r.pinnedBy)} (${r.pinReason}): promotions of this knob are accepted again.`
          : `${r.name} is not pinned any more.`,
      confirmLabel: 'Unpin knob',
      // Unpinned meanwhile: a confirm would send no pinnedBy and could remove a pin set since.
      blocked: (r) => (r.pinned ? null : 'Not pinned'),
    },
    (res) => (res?.changed === false ? `${row.name} was not pinned` : `${row.name} unpinned`),
    // Only the pin shown: the server refuses (409) if another was set since.
    (reason, r) =>
      api(`/api/knobs/${encodeURIComponent(r.name)}/unpin`, {
        method: 'POST',
        body: {
          reason,
          ...(r.pinnedBy ? { pinnedBy: r.pinnedBy } : {}),
          ...(r.pinReason ? { pinReason: r.pinReason } : {}),
        },
      }),
  );
}

function rollback(state, row, entry) {
  return confirmed(
    state,
    row,
    {
      title: `Roll back ${row.name} to v${entry.version}?`,
      body: (r) => {
        const [from, to] = fmtPair(r.value, entry.new, r.spec.unit);
        return [
          h(
            'p',
            {},
            `The value of version ${entry.version} is restored as version ${r.version + 1}:`,
          ),
          h(
            'p',
            { class: 'diff' },
            h('span', { class: 'old' }, from),
            ' → ',
            h('span', { class: 'new' }, to),
          ),
          r.pinned
            ? h(
                'p',
                { class: 'note pinned-note' },
                `Pinned by ${fmtActor(r.pinnedBy)}: ${r.pinReason}. Unpin it first.`,
              )
            : null,
        ];
      },
      blocked: (r) => (r.pinned ? 'Pinned' : null),
      confirmLabel: `Roll back to v${entry.version}`,
      danger: true,
    },
    `${row.name} rolled back to v${entry.version}`,
    (reason, r) =>
      api(`/api/knobs/${encodeURIComponent(r.name)}/rollback`, {
        method: 'POST',
        body: { toVersion: entry.version, baseVersion: r.version, reason },
      }),
  );
}
