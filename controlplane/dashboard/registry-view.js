// The policy registry: every policy name with its live version (the knob that selects it),
// and its versions newest first with status, artifact, lineage and their simulation and
// shadow verdicts; a version's details (reports, artifact, lineage) open in a dialog from a
// link (#policy=<name>@<version>).
import { api } from './api.js';
import { byId, fmtActor, fmtAgo, fmtTime, h, update } from './dom.js';
import { openDetail, reportBlock, safeRow, statusBadge, verdictChip } from './pipeline-view.js';

const VERSIONS_SHOWN = 8;
/** Versions read per page, and at most this many pages (the newest 5000 versions). */
const PAGE = 500;
const MAX_PAGES = 10;

function lineageText(p) {
  const l = p.lineage && typeof p.lineage === 'object' ? p.lineage : {};
  const parts = [];
  if (l.parent) parts.push(`from v${l.parent}`);
  if (l.learner) parts.push(l.learner);
  if (l.run) parts.push(l.run);
  return parts.join(' · ') || '—';
}

function versionRow(p) {
  return h(
    'tr',
    { 'data-version': p.id },
    h(
      'td',
      { title: `${fmtTime(p.createdAt)} by ${p.createdBy}` },
      h('a', { href: `#policy=${encodeURIComponent(p.id)}`, class: 'mono' }, `v${p.version}`),
    ),
    h('td', {}, statusBadge(p.status)),
    h(
      'td',
      {},
      h('div', { class: 'mono' }, p.artifactSummary),
      h('div', { class: 'muted small' }, lineageText(p)),
    ),
    h('td', {}, verdictChip(p.simReport, true)),
    h('td', {}, verdictChip(p.shadowReport, true)),
  );
}

function policyBlock(name, versions, live) {
  const head = ['Ver', 'Status', 'Artifact · lineage', 'Sim', 'Shadow'];
  return h(
    'div',
    { class: 'policy', 'data-policy': name },
    h(
      'div',
      { class: 'policy-head' },
      h('span', { class: 'mono policy-name' }, name),
      h('span', { class: 'muted' }, versions[0].kind),
      name in live
        ? h(
            'span',
            { class: 'live-version', title: 'selected by its knob' },
            live[name] > 0 ? `live v${live[name]}` : 'live: heuristic',
          )
        : null,
    ),
    h(
      'div',
      { class: 'table-wrap' },
      h(
        'table',
        { class: 'registry' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            head.map((t) => h('th', {}, t)),
          ),
        ),
        h(
          'tbody',
          {},
          versions.slice(0, VERSIONS_SHOWN).map((p) =>
            safeRow(
              () => versionRow(p),
              () =>
                h(
                  'tr',
                  { 'data-version': p.id },
                  h('td', { colspan: 5, class: 'muted' }, `${p.id}: cannot be shown`),
                ),
            ),
          ),
        ),
      ),
    ),
  );
}

/** Loads and renders the registry; returns the versions (for the shadow panel). */
export async function loadRegistry() {
  // Every page (newest first), so a policy whose versions are all older than another's
  // newest hundred still shows; capped so a huge registry cannot stall the dashboard.
  const first = await api(`/api/policies?limit=${PAGE}`);
  const { live } = first;
  const policies = [...first.policies];
  for (let next = first.next, n = 1; next !== null && n < MAX_PAGES; n++) {
    const page = await api(`/api/policies?limit=${PAGE}&cursor=${encodeURIComponent(next)}`);
    policies.push(...page.policies);
    next = page.next;
  }
  const byName = new Map();
  for (const p of policies) {
    if (!byName.has(p.name)) byName.set(p.name, []);
    byName.get(p.name).push(p);
  }
  // Redrawn every poll: nothing changes when nothing did, and a focused link keeps the focus.
  update(
    byId('registry-list'),
    byName.size
      ? [...byName.entries()].map(([name, versions]) => policyBlock(name, versions, live))
      : h('p', { class: 'empty', id: 'no-policies' }, 'No policies registered yet.'),
  );
  return policies;
}

/** Opens a version's details: status, lineage, reports and artifact. */
export async function showPolicy(id) {
  const dlg = byId('detail-dialog');
  const at = id.lastIndexOf('@');
  const name = id.slice(0, at);
  const version = id.slice(at + 1);
  let body;
  try {
    const [p, l] = await Promise.all([
      api(`/api/policies/${encodeURIComponent(name)}/versions/${encodeURIComponent(version)}`),
      api(
        `/api/policies/${encodeURIComponent(name)}/versions/${encodeURIComponent(version)}/lineage`,
      ),
    ]);
    body = [
      h('h2', {}, 'Policy ', h('span', { class: 'mono' }, p.id)),
      h(
        'p',
        {},
        statusBadge(p.status),
        ` ${p.kind} at ${p.decisionPoint} · registered ${fmtAgo(p.createdAt)} by ${fmtActor(p.createdBy)} · `,
        h('em', {}, p.reason),
      ),
      h(
        'div',
        { class: 'report' },
        h('h3', {}, 'Lineage'),
        h(
          'p',
          { class: 'mono' },
          [...l.ancestors]
            .reverse()
            .map((a) => `v${a.version} → `)
            .join(''),
          `v${p.version}`,
          l.children.length ? ` → ${l.children.map((c) => `v${c.version}`).join(', ')}` : '',
        ),
        h('p', { class: 'muted' }, lineageText(p)),
      ),
      p.promotion
        ? h(
            'p',
            { class: 'muted' },
            `promoted by ${fmtActor(p.promotion.by)} ${fmtAgo(p.promotion.at)} (proposal `,
            h(
              'a',
              { href: `#proposal=${encodeURIComponent(p.promotion.proposalId)}`, class: 'mono' },
              p.promotion.proposalId,
            ),
            `, ${p.promotion.knob} v${p.promotion.knobVersion})`,
          )
        : null,
      reportBlock('Simulation', p.simReport),
      reportBlock('Shadow', p.shadowReport),
      h(
        'div',
        { class: 'report' },
        h('h3', {}, 'Artifact'),
        h('pre', { class: 'json' }, JSON.stringify(p.artifact, null, 2)),
      ),
    ];
  } catch (err) {
    body = [h('h2', {}, 'Policy'), h('p', { class: 'form-error' }, err.message)];
  }
  openDetail(dlg, body);
}
