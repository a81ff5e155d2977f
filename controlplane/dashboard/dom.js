// Small DOM and formatting helpers. Text always goes in as text nodes (never as HTML), so a
// knob reason or an actor name cannot inject markup.
/* global document */

const SVG_NS = 'http://www.w3.org/2000/svg';

/** h('div', { class: 'x', onclick: fn }, child, 'text', ...) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

/** The same for SVG elements. */
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(typeof c === 'string' || typeof c === 'number' ? String(c) : c);
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** The key an element is found again by after a rebuild: its data-key, else a link's href. */
function focusKey(el) {
  return el.dataset?.key ?? (el.tagName === 'A' ? el.getAttribute('href') : null) ?? null;
}

/**
 * Shows `children` in `el` for a panel that is rebuilt on every poll. Nothing is touched when
 * they equal what is shown (so focus, selection and hover stay); otherwise the element that
 * had the keyboard focus gets it back through its twin (same data-key or href), not the body.
 */
export function update(el, ...children) {
  const next = document.createElement(el.tagName);
  append(next, children);
  const now = [...el.childNodes];
  const fresh = [...next.childNodes];
  if (now.length === fresh.length && now.every((n, i) => n.isEqualNode(fresh[i]))) return el;
  const active = document.activeElement;
  const key = active && active !== el && el.contains(active) ? focusKey(active) : null;
  el.replaceChildren(...fresh);
  if (key !== null)
    [...el.querySelectorAll('[data-key], a[href]')]
      .find((x) => focusKey(x) === key)
      ?.focus({ preventScroll: true });
  return el;
}

export function byId(id) {
  return document.getElementById(id);
}

/** A knob value as text: strings bare, placement maps as `a→1, b→0`, floats to `digits`. */
export function fmtValue(v, unit, digits = 4) {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'object')
    return (
      Object.entries(v)
        .map(([k, x]) => `${k}→${x}`)
        .join(', ') || '{}'
    );
  if (typeof v === 'number') {
    const n = Number.isInteger(v)
      ? v.toLocaleString('en-US')
      : String(Number(v.toPrecision(digits)));
    return unit ? `${n} ${unit}` : n;
  }
  return String(v);
}

/**
 * Two values as text for an `old → new` line: numbers get as many digits as it takes to tell
 * them apart (12.345 and 12.3449 are not both "12.35"), so a change never reads as no change.
 */
export function fmtPair(a, b, unit) {
  for (let digits = 4; digits < 17; digits++) {
    const pair = [fmtValue(a, unit, digits), fmtValue(b, unit, digits)];
    if (pair[0] !== pair[1] || a === b) return pair;
  }
  return [fmtValue(a, unit, 17), fmtValue(b, unit, 17)];
}

/** The domain a knob's declaration allows, in a few words. */
export function fmtDomain(spec) {
  switch (spec.type) {
    case 'int':
    case 'float':
    case 'duration':
      return `${fmtValue(spec.min)} – ${fmtValue(spec.max)}${spec.unit ? ' ' + spec.unit : ''}${spec.log ? ' (log)' : ''}`;
    case 'enum':
      return spec.values.join(' | ');
    case 'bool':
      return 'true | false';
    case 'placement':
      return `map → shard 0–${spec.shards - 1}, ≤ ${spec.maxEntries} entries`;
    default:
      return spec.type;
  }
}

export function fmtAgo(ms, now = Date.now()) {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 5) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export function fmtTime(ms) {
  return new Date(ms).toLocaleString('en-GB', { hour12: false });
}

/** The human part of an actor `name#tokenid`. */
export function fmtActor(actor) {
  const i = actor.indexOf('#');
  return i > 0 ? actor.slice(0, i) : actor;
}

/**
 * An action's failure as text: `CODE: message`, then the field and rule the API named (a
 * network failure has no code).
 */
export function fmtError(err) {
  const e = err?.body?.error;
  const where = [
    typeof e?.field === 'string' ? `field ${e.field}` : null,
    typeof e?.rule === 'string' ? `rule ${e.rule}` : null,
  ].filter(Boolean);
  const text = `${err?.code ?? 'error'}: ${err?.message ?? String(err)}`;
  return where.length ? `${text} (${where.join(', ')})` : text;
}
