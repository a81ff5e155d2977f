// The dashboard's only way to the server: JSON requests with the bearer token, and the change
// stream read with fetch() (EventSource cannot send an Authorization header, and a token in
// the URL would end up in logs). The token is kept in sessionStorage: entered once per tab.
/* global fetch, sessionStorage, TextDecoderStream, setTimeout */

const TOKEN_KEY = 'knobos.token';

export class ApiFailure extends Error {
  constructor(status, body) {
    super(body?.error?.message ?? `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code ?? 'HTTP_' + status;
    this.body = body;
  }
}

/**
 * The answer to a request sent with another token than the one held now (the user signed
 * out, or in as someone else, meanwhile): dropped, so it never shows after the sign-out.
 */
export class SignedOut extends Error {
  constructor() {
    super('signed out');
  }
}

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY) ?? '';
}

export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

function headers(json) {
  const h = {};
  const token = getToken();
  if (token) h['authorization'] = `Bearer ${token}`;
  if (json) h['content-type'] = 'application/json';
  return h;
}

export async function api(path, { method = 'GET', body } = {}) {
  const token = getToken();
  const res = await fetch(path, {
    method,
    headers: headers(body !== undefined),
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  if (getToken() !== token) throw new SignedOut();
  if (res.ok) return text ? JSON.parse(text) : null;
  // An error body may not be ours (a proxy's HTML page): then the status is the message.
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    // not JSON
  }
  throw new ApiFailure(res.status, data);
}

/** Parses one `event:`/`data:` block of a text/event-stream. */
function parseBlock(block) {
  let event = 'message';
  const data = [];
  for (const line of block.split('\n')) {
    if (line.startsWith('event:')) event = line.slice(6).trim();
    else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
  }
  return data.length ? { event, data: JSON.parse(data.join('\n')) } : null;
}

/** How long a stream must have stayed up before the reconnect pause starts from 1 s again. */
const STREAM_STABLE_MS = 30_000;

/**
 * Follows /api/events until `signal` aborts, reconnecting with a growing pause (1 s to 10 s).
 * The pause grows also when a stream connects and then ends at once (a proxy ending it, a
 * server bouncing): reset on connect, a flapping stream reconnected, and reloaded, every second.
 * `onStatus` gets 'live' | 'connecting' | 'offline' | 'unauthorized'.
 */
export async function followEvents({ onEvent, onStatus, signal }) {
  let pauseMs = 1000;
  while (!signal.aborted) {
    onStatus('connecting');
    let connectedAt = 0;
    try {
      const res = await fetch('/api/events', { headers: headers(false), signal });
      if (res.status === 401) {
        onStatus('unauthorized');
        return;
      }
      if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
      onStatus('live');
      connectedAt = Date.now();
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
          const parsed = parseBlock(buf.slice(0, i));
          buf = buf.slice(i + 2);
          if (parsed) onEvent(parsed.event, parsed.data);
        }
      }
    } catch (err) {
      if (signal.aborted) return;
      void err;
    }
    onStatus('offline');
    if (connectedAt > 0 && Date.now() - connectedAt >= STREAM_STABLE_MS) pauseMs = 1000;
    await new Promise((r) => setTimeout(r, pauseMs));
    pauseMs = Math.min(10_000, pauseMs * 2);
  }
}

/** Whether the signed-in token may change knobs: an operator or admin not scoped to a tenant. */
export function canOperate(state) {
  return Boolean(
    state.auth &&
    (state.auth.role === 'operator' || state.auth.role === 'admin') &&
    !state.auth.tenant,
  );
}
