// The knob value editor of the knob panel: reads the text as a value of the knob's type,
// checks it against the knob's declaration and step limits as the server will, and promotes it
// on the version it was read at, with a reason; errors show next to the field.
import { api, canOperate } from './api.js';
import { toast } from './dialogs.js';
import { fmtDomain, fmtError, fmtValue, h } from './dom.js';

/**
 * Reads the editor's text as a value of the knob's type and checks it against the knob's
 * declaration (the spec each row of /api/knobs carries) and its step limits, as the server
 * will: returns { value } or { error: { field, rule, message } }. The server still decides
 * (cooldown, pin, freeze, a concurrent change).
 */
function parseKnobValue(spec, text, current) {
  const fail = (rule, message, field = 'value') => ({ error: { field, rule, message } });
  const t = text.trim();
  let value;
  switch (spec.type) {
    case 'int':
    case 'float':
    case 'duration': {
      if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(t))
        return fail('type', 'must be a number');
      value = Number(t);
      if (!Number.isFinite(value)) return fail('type', 'must be a finite number');
      if (spec.type !== 'float' && !Number.isInteger(value))
        return fail('integer', 'must be an integer');
      if (value < spec.min) return fail('min', `must be at least ${fmtValue(spec.min)}`);
      if (value > spec.max) return fail('max', `must be at most ${fmtValue(spec.max)}`);
      const step = Math.abs(value - current);
      if (
        typeof current === 'number' &&
        spec.safety?.maxStep !== undefined &&
        step > spec.safety.maxStep
      )
        return fail('max_step', `may change by at most ${spec.safety.maxStep} per step`);
      if (
        typeof current === 'number' &&
        spec.safety?.maxStepRatio !== undefined &&
        value !== current
      ) {
        const unit = spec.type === 'float' ? Number.MIN_VALUE : 1;
        const [a, b] = [Math.max(current, unit), Math.max(value, unit)];
        if (Math.max(a / b, b / a) > spec.safety.maxStepRatio)
          return fail(
            'max_step_ratio',
            `may change by at most ×${spec.safety.maxStepRatio} per step`,
          );
      }
      return { value };
    }
    case 'enum':
      return spec.values.includes(t)
        ? { value: t }
        : fail('enum', `must be one of ${spec.values.join(', ')}`);
    case 'bool':
      return t === 'true' || t === 'false'
        ? { value: t === 'true' }
        : fail('type', 'must be true or false');
    case 'placement': {
      try {
        value = JSON.parse(t);
      } catch {
        return fail('type', 'must be a JSON object of name → shard, e.g. {"t1": 0}');
      }
      if (typeof value !== 'object' || value === null || Array.isArray(value))
        return fail('type', 'must be a JSON object of name → shard');
      // The server refuses this key as prototype poisoning (a body it cannot read). A tenant
      // named constructor is a name like any other (its value, a shard, has no prototype).
      if (Object.hasOwn(value, '__proto__')) return fail('name', 'may not be __proto__');
      const entries = Object.entries(value);
      if (entries.length > spec.maxEntries)
        return fail('max_entries', `must have at most ${spec.maxEntries} entries`);
      for (const [k, shard] of entries) {
        if (k === '') return fail('non_empty_key', 'must not map an empty name');
        if (!Number.isInteger(shard)) return fail('type', 'must be an integer shard', `value.${k}`);
        if (shard < 0 || shard >= spec.shards)
          return fail('shard_range', `must be in 0..${spec.shards - 1}`, `value.${k}`);
      }
      if (spec.safety?.maxMoves !== undefined && current && typeof current === 'object') {
        const moves = [...new Set([...Object.keys(current), ...Object.keys(value)])].filter(
          (k) => current[k] !== value[k],
        ).length;
        if (moves > spec.safety.maxMoves)
          return fail('max_moves', `may move at most ${spec.safety.maxMoves} entries per step`);
      }
      return { value };
    }
    default:
      return fail('type', `cannot edit a ${spec.type} knob here`);
  }
}

/** The value as the editor shows it: the text parseKnobValue reads back. */
function editText(spec, v) {
  return spec.type === 'placement' ? JSON.stringify(v ?? {}) : String(v);
}

/**
 * The "change the value" form: a field fit for the knob's type, a reason, and Promote. It
 * sends the version the operator saw as baseVersion; when the knob changes while they type,
 * the first submit only says so (with the new value) and a second one promotes on it. Errors
 * (the local check, or the server's, field and rule) show next to the field they concern.
 */
export function valueEditor(state, first) {
  const spec = first.spec;
  const id = (part) => `edit-${part}`;
  let input;
  if (spec.type === 'enum' || spec.type === 'bool') {
    const values = spec.type === 'bool' ? ['false', 'true'] : spec.values;
    input = h(
      'select',
      { id: id('value') },
      values.map((v) => h('option', { value: v }, v)),
    );
  } else {
    input = h('input', {
      id: id('value'),
      type: 'text',
      inputmode: spec.type === 'placement' ? undefined : 'decimal',
      autocomplete: 'off',
      spellcheck: 'false',
    });
  }
  const reason = h('input', {
    id: id('reason'),
    type: 'text',
    maxlength: 500,
    autocomplete: 'off',
    placeholder: 'why (kept in history and audit)',
  });
  const valueError = h('p', { class: 'field-error', id: id('value-error'), role: 'alert' });
  const reasonError = h('p', { class: 'field-error', id: id('reason-error'), role: 'alert' });
  const formError = h('p', { class: 'field-error', id: id('error'), role: 'alert' });
  const submit = h('button', { type: 'submit', class: 'btn primary', id: id('submit') }, 'Promote');
  const hint = h('span', { class: 'muted small', id: id('hint') });
  let row = first;
  let base = first.version; // the version the operator is looking at
  let dirty = false;
  let busy = false;

  const showError = (el, field, text) => {
    el.textContent = text;
    field?.setAttribute('aria-invalid', text ? 'true' : 'false');
  };
  const clearErrors = () => {
    showError(valueError, input, '');
    showError(reasonError, reason, '');
    showError(formError, null, '');
  };
  /** A failure goes next to the field it names: the value, the reason, else the form. */
  const placeError = (field, text) => {
    if (typeof field === 'string' && /^(body\.)?value(\.|$)/.test(field))
      showError(valueError, input, text);
    else if (typeof field === 'string' && /^(body\.)?reason$/.test(field))
      showError(reasonError, reason, text);
    else showError(formError, null, text);
  };

  const form = h(
    'form',
    { class: 'knob-editor', 'aria-label': `Change ${first.name}`, novalidate: true },
    h('h4', {}, 'Change the value'),
    h(
      'div',
      { class: 'editor-fields' },
      h(
        'div',
        { class: 'editor-field' },
        h('label', { for: id('value') }, 'New value'),
        input,
        hint,
        valueError,
      ),
      h(
        'div',
        { class: 'editor-field grow' },
        h('label', { for: id('reason') }, 'Reason'),
        reason,
        reasonError,
      ),
      submit,
    ),
    formError,
  );
  input.setAttribute('aria-describedby', `${id('hint')} ${id('value-error')}`);
  reason.setAttribute('aria-describedby', id('reason-error'));
  const edited = () => {
    if (!dirty) base = row.version; // editing starts on the version shown
    dirty = true;
  };
  input.addEventListener('input', edited);
  input.addEventListener('change', edited);
  reason.addEventListener('input', edited);

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (busy) return;
    clearErrors();
    const parsed = parseKnobValue(row.spec, input.value, row.value);
    if (parsed.error)
      return showError(valueError, input, `${parsed.error.message} (rule ${parsed.error.rule})`);
    const why = reason.value.trim();
    if (!why) {
      showError(reasonError, reason, 'a reason is required');
      return reason.focus();
    }
    if (base !== row.version) {
      // It changed under the operator: show what it is now; a second submit means "on this".
      showError(
        formError,
        null,
        `${row.name} changed to v${row.version} (${fmtValue(row.value, row.spec.unit)}) while you edited; check the value and promote again`,
      );
      base = row.version;
      return;
    }
    busy = true;
    submit.disabled = true;
    try {
      await api(`/api/knobs/${encodeURIComponent(row.name)}/promote`, {
        method: 'POST',
        body: { value: parsed.value, baseVersion: base, reason: why },
      });
      toast(`${row.name} changed to ${fmtValue(parsed.value, row.spec.unit)}`, 'ok');
      dirty = false;
      reason.value = '';
    } catch (err) {
      placeError(err?.body?.error?.field, fmtError(err));
    } finally {
      busy = false;
      submit.disabled = !canOperate(state) || row.pinned;
      await state.refreshKnob(row.name).catch(() => {});
    }
  });

  return {
    el: form,
    /** A newer row of the knob: the field follows it unless the operator is editing. */
    update(next, operate) {
      row = next;
      hint.textContent = fmtDomain(next.spec);
      if (!dirty) {
        base = next.version;
        input.value = editText(next.spec, next.value);
      }
      form.hidden = !operate;
      submit.disabled = busy || !operate || next.pinned;
      submit.title = next.pinned ? 'unpin the knob first' : '';
    },
  };
}
