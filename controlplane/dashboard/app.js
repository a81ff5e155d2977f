// The dashboard's entry point: sign in (a token kept in sessionStorage), load the knobs, then
// follow the change stream so every panel updates without a reload. Telemetry is polled.
/* global window, setInterval, setTimeout, clearTimeout, document, AbortController */
import { ApiFailure, SignedOut, api, followEvents, getToken, setToken } from './api.js';
import { askToken, toast } from './dialogs.js';
import { byId, clear, fmtActor, h } from './dom.js';
import { detailBehind, loadDetail, renderDetail, renderKnobTable } from './knobs-view.js';
import { loadAudit, loadTelemetry, renderFreeze, toggleFreeze } from './panels-view.js';
import { loadPipeline, renderShadows, showProposal } from './pipeline-view.js';
import { loadRegistry, showPolicy } from './registry-view.js';

const TELEMETRY_REFRESH_MS = 5_000;
const FLASH_MS = 2_500;
/** How long the first load waits for the stream's hello (which loads) before going ahead. */
const HELLO_WAIT_MS = 2_000;
/** Pauses between tries of /api/whoami while the server is unavailable (ms). */
const RETRY_MS = [1_000, 2_000, 5_000, 10_000];

const state = {
  auth: null,
  knobs: new Map(),
  frozen: null,
  selected: null,
  history: [],
  knobAudit: [],
  // The knob the history and audit are of: another knob's are never drawn under its name.
  historyFor: null,
  filter: '',
  flash: new Map(), // knob name -> the live change that flashes its row
  telemetry: { service: null, services: [] },
  select(name) {
    state.selected = name;
    renderKnobTable(state);
    void loadDetail(state).catch(report);
  },
  async refreshKnob(name) {
    const { res, seen } = await snapshot(() => api(`/api/knobs/${encodeURIComponent(name)}`));
    mergeChanges([{ row: res }, ...seen]);
  },
};

function report(err) {
  if (err instanceof SignedOut) return; // an answer for the session that ended
  if (err instanceof ApiFailure && err.status === 401)
    return void signIn('Your token was refused.');
  toast(err?.message ?? String(err), 'error');
}

/**
 * A snapshot (the list, one knob) may have been read before changes whose events reach us
 * while it loads: those events are kept and replayed on top of it, so the older snapshot
 * never wins. Each load has its own list; a knob or freeze event goes to every load in flight.
 */
const inflight = new Set();
async function snapshot(load) {
  const seen = [];
  inflight.add(seen);
  try {
    return { res: await load(), seen };
  } finally {
    inflight.delete(seen);
  }
}

/**
 * Puts knob rows and freeze states in, in order; skips a row older than the one held (a lower
 * version). Pins keep the version, so a row at the same version is taken: events replay in
 * the order they came, the latest last. Returns whether the selected knob changed.
 */
function putChanges(items) {
  let selected = false;
  for (const { row, frozen } of items) {
    if (!row) {
      state.frozen = frozen;
      continue;
    }
    const held = state.knobs.get(row.name);
    if (held && held.version > row.version) continue;
    state.knobs.set(row.name, row);
    selected ||= row.name === state.selected;
  }
  return selected;
}

function mergeChanges(items) {
  const selected = putChanges(items);
  renderKnobTable(state);
  if (selected) void loadDetail(state).catch(report);
}

let flashes = 0;
/** A live change: its row flashes, and the loads in flight will replay it. */
function applyRow(row) {
  for (const seen of inflight) seen.push({ row });
  const stamp = ++flashes;
  state.flash.set(row.name, stamp);
  setTimeout(() => {
    if (state.flash.get(row.name) !== stamp) return; // a later change flashes on
    state.flash.delete(row.name);
    renderKnobTable(state);
  }, FLASH_MS);
  mergeChanges([{ row }]);
}

let loadSeq = 0;
let loadShown = 0;
/** Whether the knobs on screen may be behind: the last load of the list failed. */
let knobsStale = false;

/** Loads the knob list and the freeze switch (the events in flight replayed on top). */
async function loadKnobs() {
  // Loads overlap (a reconnect's hello and a resync): one older than the last shown is dropped.
  const seq = ++loadSeq;
  let got;
  try {
    got = await snapshot(() => api('/api/knobs'));
  } catch (err) {
    knobsStale = true;
    throw err;
  }
  const { res, seen } = got;
  if (seq < loadShown || !state.auth) return false;
  loadShown = seq;
  knobsStale = false;
  state.knobs = new Map(res.knobs.map((r) => [r.name, r]));
  state.frozen = res.frozen;
  putChanges(seen);
  state.selected ??= res.knobs[0]?.name ?? null;
  renderKnobTable(state);
  renderFreeze(state);
  renderDetail(state);
  return true;
}

/**
 * Loads the knobs, then every panel on its own: a panel that fails to load is reported (a
 * toast naming it) and the others still render. Rejects only when the knobs themselves fail.
 */
let reload;
let reloadAgain = false;
/**
 * loadAll, coalesced: while one runs, calls share it and at most one more runs after it (a
 * hello or resync arriving meanwhile may carry changes the running load read too early).
 */
function loadAll() {
  if (reload) {
    reloadAgain = true;
    return reload;
  }
  reload = loadAllOnce().finally(() => {
    reload = undefined;
    if (reloadAgain) {
      reloadAgain = false;
      void loadAll().catch(report);
    }
  });
  return reload;
}

async function loadAllOnce() {
  if (!(await loadKnobs())) return;
  const panels = [
    ['Knob details', loadDetail(state)],
    ['Audit log', loadAudit()],
    ['Pipeline and registry', loadLoop()],
    ['Telemetry', loadTelemetry(state)],
  ];
  const results = await Promise.allSettled(panels.map(([, p]) => p));
  results.forEach((r, i) => {
    if (r.status === 'rejected') reportPanel(panels[i][0], r.reason);
  });
}

/** A panel's load failure: a refused token signs out; anything else is a toast naming it. */
function reportPanel(panel, err) {
  if (err instanceof SignedOut) return;
  if (err instanceof ApiFailure && err.status === 401) return report(err);
  toast(`${panel} could not be loaded: ${err?.message ?? String(err)}`, 'error');
}

let loopLoading;
/** The pipeline, the registry and the shadow reports; one load at a time (polls overlap). */
function loadLoop() {
  loopLoading ??= Promise.allSettled([loadPipeline(), loadRegistry()])
    .then(([proposals, policies]) => {
      // Each of the two renders by itself; the shadow panel needs both.
      if (proposals.status === 'fulfilled' && policies.status === 'fulfilled')
        renderShadows(proposals.value, policies.value);
      const failed = [proposals, policies].find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
    })
    .finally(() => {
      loopLoading = undefined;
    });
  return loopLoading;
}

let loopTimer;
function loopSoon() {
  clearTimeout(loopTimer);
  loopTimer = setTimeout(
    () => void loadLoop().catch((err) => reportPanel('Pipeline and registry', err)),
    300,
  );
}

/** `#proposal=<id>` and `#policy=<name>@<version>` open that row's details. */
function followLink() {
  const m = /^#(proposal|policy)=(.+)$/.exec(window.location.hash);
  if (!m || !state.auth) return;
  const id = decodeURIComponent(m[2]);
  void (m[1] === 'proposal' ? showProposal(id) : showPolicy(id)).catch(report);
}

let auditTimer;
function auditSoon() {
  clearTimeout(auditTimer);
  auditTimer = setTimeout(
    () => void loadAudit().catch((err) => reportPanel('Audit log', err)),
    300,
  );
}

/** Called with the first sign of the stream (its hello, or its failure to connect). */
let streamSettled = () => {};

function onEvent(event, data) {
  if (event === 'hello') {
    // Every hello, the first too: changes made before the stream was attached (before the
    // first, while it was refused or down) were never sent on it, so the panels reload. The
    // epoch cannot tell that nothing was missed: pins and the freeze switch leave it alone.
    streamSettled('hello');
    void loadAll().catch(report);
  } else if (event === 'knob') {
    applyRow(data.row);
    auditSoon();
    loopSoon(); // a promotion or rollback moves proposals and policy versions too
  } else if (event === 'freeze') {
    for (const seen of inflight) seen.push({ frozen: data.frozen });
    state.frozen = data.frozen;
    renderFreeze(state);
    auditSoon();
  } else if (event === 'resync') {
    void loadAll().catch(report);
  }
}

let liveStatus = 'connecting';
function setLive(status) {
  liveStatus = status;
  const el = byId('live');
  el.className = `live ${status}`;
  el.textContent = {
    live: 'Live',
    connecting: 'Connecting…',
    offline: 'Reconnecting…',
    unauthorized: 'Signed out',
    signedout: 'Signed out',
    unavailable: 'Server unavailable',
  }[status];
  el.dataset.status = status;
  if (status !== 'unavailable') el.title = '';
}

function onStreamStatus(status) {
  setLive(status);
  if (status === 'offline' || status === 'unauthorized') streamSettled(status);
  if (status === 'unauthorized') void signIn('Your token was refused.');
}

let events;
function startEvents() {
  events?.abort();
  events = new AbortController();
  void followEvents({ onEvent, onStatus: onStreamStatus, signal: events.signal });
}

/** Who the token is; null when it is refused (401). Other failures reject. */
async function whoami() {
  try {
    return await api('/api/whoami');
  } catch (err) {
    if (err instanceof ApiFailure && err.status === 401) return null;
    throw err;
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Who the token is, asking again while the server cannot tell (a 5xx, the network): only a
 * refusal (401) means the token is bad, so nothing else drops it.
 */
async function whoamiRetrying() {
  for (let i = 0; ; i++) {
    try {
      return await whoami();
    } catch (err) {
      if (err instanceof SignedOut) throw err;
      setLive('unavailable');
      byId('live').title = `${err?.message ?? String(err)}; trying again`;
      await sleep(RETRY_MS[Math.min(i, RETRY_MS.length - 1)]);
    }
  }
}

/**
 * Ends the session on screen: the stream stops, loads in flight are dropped (api.js), and
 * every panel showing the old token's data is emptied, so nothing of it stays after a
 * sign-out or a refused token.
 */
function signOutView(status) {
  events?.abort();
  state.auth = null;
  state.knobs = new Map();
  state.frozen = null;
  state.selected = null;
  state.history = [];
  state.knobAudit = [];
  state.historyFor = null;
  state.flash.clear();
  state.telemetry = { service: null, services: [] };
  for (const id of [
    'knob-rows',
    'telemetry-tabs',
    'telemetry-charts',
    'pipeline-stages',
    'pipeline-list',
    'shadow-list',
    'registry-list',
    'audit-rows',
  ])
    clear(byId(id));
  clear(byId('knob-detail'), h('p', { class: 'empty' }, 'Signed out.'));
  // Error toasts stay until dismissed: the old session's must not show to the next user.
  clear(byId('toasts'));
  for (const id of ['knob-count', 'pipeline-note', 'who', 'role']) byId(id).textContent = '';
  byId('who').title = '';
  byId('signout').hidden = true;
  byId('freeze-banner').hidden = true;
  byId('freeze-btn').disabled = true;
  delete document.body.dataset.role;
  if (byId('detail-dialog').open) byId('detail-dialog').close();
  if (byId('confirm-dialog').open) byId('confirm-dialog').close();
  setLive(status);
}

let signingIn;
/** Asks for a token until one is accepted, then starts; one sign-in at a time. */
function signIn(error) {
  signingIn ??= (async () => {
    setToken('');
    signOutView(error ? 'unauthorized' : 'signedout');
    for (let msg = error; ;) {
      setToken(await askToken(msg));
      try {
        state.auth = await whoami();
        msg = 'That token was not accepted.';
      } catch (err) {
        // Not a refusal: the token may be fine, the server could not say.
        msg = `Could not check the token (server unavailable: ${err?.message ?? String(err)}). Try again.`;
      }
      if (state.auth) break;
    }
    signingIn = undefined;
    await start();
  })().catch((err) => {
    signingIn = undefined;
    toast(`Sign-in failed: ${err?.message ?? String(err)}`, 'error');
  });
  return signingIn;
}

/**
 * Shows who is signed in, then starts the live stream and the hash links before loading the
 * panels: a panel that fails to load must not keep the stream (or the links) from starting.
 * The first load is the stream's hello's (so nothing between the snapshot and the stream is
 * missed); a stream that is refused (429) or slow does not hold the panels back.
 */
async function start() {
  const who = state.auth;
  byId('who').textContent = `${fmtActor(who.actor)}${who.tenant ? ' · tenant ' + who.tenant : ''}`;
  byId('who').title = who.actor;
  byId('role').textContent = who.role;
  byId('signout').hidden = who.via === 'off';
  document.body.dataset.role = who.role;
  let settle;
  const settled = new Promise((resolve) => (settle = resolve));
  streamSettled = settle;
  startEvents();
  followLink();
  const first = await Promise.race([settled, sleep(HELLO_WAIT_MS)]);
  if (streamSettled === settle) streamSettled = () => {}; // a later start() has its own
  if (first !== 'hello' && state.auth === who) await loadAll().catch(report);
}

function wire() {
  byId('filter').addEventListener('input', (e) => {
    state.filter = e.target.value;
    renderKnobTable(state);
  });
  byId('freeze-btn').addEventListener('click', () => void toggleFreeze(state));
  byId('signout').addEventListener('click', () => void signIn());
  window.addEventListener('hashchange', followLink);
  setInterval(() => {
    if (!state.auth) return;
    // Without a live stream (refused, down) knob changes come only from here; a list that
    // failed to load is tried again too. The selected knob's history and pin notes follow
    // when its row moved (they are loaded only on stream events otherwise).
    if (liveStatus !== 'live' || knobsStale)
      void loadKnobs()
        .then((shown) => shown && detailBehind(state) && loadDetail(state))
        .catch(() => {});
    void loadTelemetry(state).catch(() => {});
    // Proposals, the registry, tokens and their audit entries have no change events.
    void loadLoop().catch(() => {});
    void loadAudit().catch(() => {});
    renderKnobTable(state); // refreshes the "x min ago" labels
  }, TELEMETRY_REFRESH_MS);
}

window.addEventListener('DOMContentLoaded', async () => {
  wire();
  // With auth off (local only) whoami answers without a token; else the saved token is tried.
  // Only a refusal asks for another; an unavailable server is asked again.
  state.auth = await whoamiRetrying().catch(() => null);
  if (!state.auth) return void signIn(getToken() ? 'Your saved token was refused.' : undefined);
  await start().catch(report);
});
