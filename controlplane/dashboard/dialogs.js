// Modal dialogs: the confirmation every operator action goes through (with the reason that
// is written to history and audit), and the sign-in dialog that asks for an API token once.
/* global setTimeout */
import { byId, clear, h } from './dom.js';

/**
 * Asks to confirm an action; resolves to the reason entered, or null when cancelled.
 * opts: { title, body: string | Node, confirmLabel, danger?, defaultReason? }
 */
export function confirmAction(opts) {
  const dlg = byId('confirm-dialog');
  const reason = h('input', {
    id: 'confirm-reason',
    type: 'text',
    required: true,
    maxlength: 500,
    placeholder: 'why (kept in history and audit)',
    value: opts.defaultReason ?? '',
  });
  const ok = h(
    'button',
    { type: 'submit', id: 'confirm-ok', class: opts.danger ? 'btn danger' : 'btn primary' },
    opts.confirmLabel ?? 'Confirm',
  );
  const cancel = h('button', { type: 'button', class: 'btn', id: 'confirm-cancel' }, 'Cancel');
  const form = h(
    'form',
    { method: 'dialog', class: 'dialog-form' },
    h('h2', {}, opts.title),
    h('div', { class: 'dialog-body' }, opts.body),
    h('label', { for: 'confirm-reason' }, 'Reason'),
    reason,
    h('div', { class: 'dialog-actions' }, cancel, ok),
  );
  clear(dlg, form);
  return new Promise((resolve) => {
    let done = false;
    const finish = (v) => {
      if (done) return;
      done = true;
      if (dlg.open) dlg.close();
      resolve(v);
    };
    cancel.addEventListener('click', () => finish(null));
    dlg.addEventListener('cancel', () => finish(null), { once: true });
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const text = reason.value.trim();
      if (!text) {
        reason.focus();
        return;
      }
      finish(text);
    });
    dlg.showModal();
    reason.focus();
  });
}

/** Asks for an API token; resolves with it. `error` explains why it asks again. */
export function askToken(error) {
  const dlg = byId('login-dialog');
  const input = h('input', {
    id: 'login-token',
    type: 'password',
    autocomplete: 'off',
    placeholder: 'knobos_… or your KNOBOS_ADMIN_TOKEN',
    required: true,
  });
  const form = h(
    'form',
    { method: 'dialog', class: 'dialog-form' },
    h('h2', {}, 'Sign in to knobos'),
    h(
      'p',
      { class: 'muted' },
      'Paste an API token. It is kept for this browser tab only (sessionStorage) and sent as a bearer token.',
    ),
    error ? h('p', { class: 'form-error', role: 'alert' }, error) : null,
    h('label', { for: 'login-token' }, 'API token'),
    input,
    h(
      'div',
      { class: 'dialog-actions' },
      h('button', { type: 'submit', class: 'btn primary', id: 'login-ok' }, 'Sign in'),
    ),
  );
  clear(dlg, form);
  return new Promise((resolve) => {
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const token = input.value.trim();
      if (!token) return;
      dlg.close();
      resolve(token);
    });
    dlg.addEventListener('cancel', (e) => e.preventDefault());
    dlg.showModal();
    input.focus();
  });
}

/** A short message at the bottom of the page. */
export function toast(text, kind = 'info') {
  const host = byId('toasts');
  const el = h('div', { class: `toast ${kind}`, role: 'status' }, text);
  host.append(el);
  setTimeout(() => el.remove(), kind === 'error' ? 8000 : 4000);
}
