// Modal dialogs: the confirmation every operator action goes through (with the reason that
// is written to history and audit), and the sign-in dialog that asks for an API token once.
// The dialog elements live as long as the page: each showing's listeners are removed when it
// ends (an AbortController), so they do not pile up on them.
/* global setTimeout, AbortController, document */
import { byId, clear, fmtError, h } from './dom.js';

/**
 * Asks to confirm an action. opts: { title, body: string | Node, confirmLabel, danger?,
 * defaultReason?, action?, blocked? }. Without `action`, resolves to the reason entered, or
 * null when cancelled. With `action(reason)`, the dialog stays open while it runs: it resolves
 * to what the action resolved to once it succeeds; a failure is shown inside the dialog (field
 * and rule too), keeping the reason typed, until it succeeds or is cancelled (null). After a
 * failure, `blocked()` may return a label: the action cannot succeed any more (another
 * operator's pin), so the confirm button says that and stays disabled; only Cancel is left.
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
  const error = h('p', { class: 'form-error', id: 'confirm-error', role: 'alert', hidden: true });
  const form = h(
    'form',
    { method: 'dialog', class: 'dialog-form' },
    h('h2', {}, opts.title),
    h('div', { class: 'dialog-body' }, opts.body),
    h('label', { for: 'confirm-reason' }, 'Reason'),
    reason,
    error,
    h('div', { class: 'dialog-actions' }, cancel, ok),
  );
  clear(dlg, form);
  // The control the dialog was opened from: closing gives it the focus back, unless a live
  // change rebuilt its panel meanwhile (the knob's event often comes before the action's
  // answer); then its twin in the rebuilt panel gets it, not the body.
  const opener = document.activeElement;
  const twin = opener?.dataset?.rollback
    ? `[data-rollback="${opener.dataset.rollback}"]`
    : opener?.dataset?.action
      ? `[data-action="${opener.dataset.action}"]`
      : null;
  return new Promise((resolve) => {
    const listening = new AbortController();
    const signal = listening.signal;
    let done = false;
    let busy = false;
    const finish = (v) => {
      if (done) return;
      done = true;
      listening.abort();
      if (dlg.open) dlg.close();
      if (opener && !opener.isConnected && twin) document.querySelector(twin)?.focus();
      resolve(v);
    };
    cancel.addEventListener('click', () => finish(null), { signal });
    dlg.addEventListener('close', () => finish(null), { signal }); // closed from outside (sign-out)
    dlg.addEventListener(
      'cancel',
      (e) => {
        if (busy)
          e.preventDefault(); // Escape while the request runs: its answer is awaited
        else finish(null);
      },
      { signal },
    );
    form.addEventListener(
      'submit',
      async (e) => {
        e.preventDefault();
        if (busy || ok.disabled) return;
        const text = reason.value.trim();
        if (!text) {
          reason.focus();
          return;
        }
        if (!opts.action) return finish(text);
        busy = true;
        ok.disabled = cancel.disabled = true;
        error.hidden = true;
        try {
          finish(await opts.action(text));
        } catch (err) {
          error.textContent = fmtError(err);
          error.hidden = false;
          reason.setAttribute('aria-describedby', 'confirm-error');
          reason.focus();
        } finally {
          busy = false;
          cancel.disabled = false;
          const blocked = opts.blocked?.() ?? null;
          ok.disabled = blocked !== null;
          ok.textContent = blocked ?? opts.confirmLabel ?? 'Confirm';
        }
      },
      { signal },
    );
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
    const listening = new AbortController();
    const signal = listening.signal;
    form.addEventListener(
      'submit',
      (e) => {
        e.preventDefault();
        const token = input.value.trim();
        if (!token) return;
        listening.abort();
        dlg.close();
        resolve(token);
      },
      { signal },
    );
    dlg.addEventListener('cancel', (e) => e.preventDefault(), { signal });
    dlg.showModal();
    input.focus();
  });
}

const MAX_ERRORS = 5;

/**
 * A short message at the bottom of the page. Errors are alerts that stay until dismissed (an
 * 8 s toast was easy to miss); the same error again replaces the old one, and only the newest
 * few are kept.
 */
export function toast(text, kind = 'info') {
  const host = byId('toasts');
  if (kind !== 'error') {
    const el = h('div', { class: `toast ${kind}`, role: 'status' }, text);
    host.append(el);
    setTimeout(() => el.remove(), 4000);
    return;
  }
  for (const old of host.querySelectorAll('.toast.error'))
    if (old.dataset.text === text) old.remove();
  const el = h(
    'div',
    { class: 'toast error', role: 'alert', 'data-text': text },
    h('span', {}, text),
    h(
      'button',
      {
        type: 'button',
        class: 'toast-close',
        'aria-label': 'Dismiss',
        onclick: () => el.remove(),
      },
      '×',
    ),
  );
  host.append(el);
  const errors = host.querySelectorAll('.toast.error');
  for (let i = 0; i < errors.length - MAX_ERRORS; i++) errors[i].remove();
}
