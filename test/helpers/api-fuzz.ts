// Random requests for the API fuzz test, from a seeded Rng: random JSON (odd numbers, odd
// strings, deep nesting, prototype keys), near-valid bodies with one thing wrong, raw bytes
// that are not JSON, odd content types, odd path parameters and query strings.
import type { Rng } from '../../envs/core/rng.ts';

export interface FuzzRequest {
  method: 'GET' | 'POST' | 'DELETE';
  url: string;
  headers: Record<string, string>;
  payload?: string;
}

const ODD_STRINGS = [
  '',
  ' ',
  '\u0000',
  '{knobs}',
  '../../etc/passwd',
  '%00',
  '%zz',
  '__proto__',
  'constructor',
  '😀'.repeat(20),
  'a'.repeat(3000),
  '\ud800',
  'DROP TABLE knobs;',
  '$(reboot)',
  '\n\r\t',
  'knobos_0123456789abcdef_' + 'A'.repeat(43),
];

const ODD_NUMBERS = [0, -0, -1, 1, 1.5, 1e308, -1e308, 2 ** 53 + 1, 2 ** 31, 1e-320, 0.1 + 0.2];

export function randomString(rng: Rng): string {
  if (rng.next() < 0.4) return rng.pick(ODD_STRINGS);
  const n = rng.int(40);
  let out = '';
  for (let i = 0; i < n; i++)
    out += String.fromCharCode(rng.next() < 0.8 ? 32 + rng.int(95) : rng.int(0x3000));
  return out;
}

export function randomJson(rng: Rng, depth = 0): unknown {
  const r = rng.next();
  if (depth > 4 || r < 0.15) return rng.pick([null, true, false]);
  if (r < 0.4) return rng.next() < 0.5 ? rng.pick(ODD_NUMBERS) : rng.int(2000) - 500;
  if (r < 0.65) return randomString(rng);
  if (r < 0.8) return Array.from({ length: rng.int(5) }, () => randomJson(rng, depth + 1));
  const obj: Record<string, unknown> = {};
  // defineProperty: a key '__proto__' becomes an own property (sent as JSON), not a prototype.
  for (let i = rng.int(5); i > 0; i--)
    Object.defineProperty(obj, randomString(rng).slice(0, 30), {
      value: randomJson(rng, depth + 1),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  return obj;
}

/** A valid body with one field dropped, retyped, or an extra field added (or none changed). */
export function mutate(rng: Rng, valid: Record<string, unknown>): Record<string, unknown> {
  const body: Record<string, unknown> = { ...valid };
  const keys = Object.keys(body);
  const what = rng.int(4);
  if (what === 0 && keys.length) delete body[rng.pick(keys)];
  else if (what === 1 && keys.length) body[rng.pick(keys)] = randomJson(rng);
  else if (what === 2) body[randomString(rng).slice(0, 20) || 'x'] = randomJson(rng);
  return body;
}

/** A payload string: mostly JSON, sometimes broken, deeply nested, or too large. */
export function randomPayload(rng: Rng, body: unknown): string {
  const r = rng.next();
  if (r < 0.75) return JSON.stringify(body) ?? 'null';
  if (r < 0.85) return JSON.stringify(body)?.slice(0, rng.int(20)) ?? '{';
  if (r < 0.9) {
    const depth = 1 + rng.int(20_000);
    return rng.next() < 0.5
      ? '['.repeat(depth) + ']'.repeat(depth)
      : '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
  }
  if (r < 0.93) return JSON.stringify({ value: 'x'.repeat(70_000) });
  return randomString(rng);
}

export function randomContentType(rng: Rng): string | undefined {
  const r = rng.next();
  if (r < 0.8) return 'application/json';
  return rng.pick([
    undefined,
    'text/plain',
    'application/x-www-form-urlencoded',
    'application/json; charset=utf-16',
    'multipart/form-data; boundary=x',
    'garbage',
    'application/json; charset=utf-8',
  ]);
}

/** URL-encodes any string (lone surrogates cannot be encoded: they become '?'). */
function enc(s: string): string {
  return encodeURIComponent(s.replace(/[\ud800-\udfff]/g, '?'));
}

export function randomQuery(rng: Rng): string {
  if (rng.next() < 0.5) return '';
  const n = 1 + rng.int(3);
  const parts: string[] = [];
  for (let i = 0; i < n; i++) {
    const key = rng.pick([
      'limit',
      'before',
      'target',
      'source',
      'fromMs',
      'toMs',
      'stepMs',
      'status',
      randomString(rng),
    ]);
    const value = rng.next() < 0.5 ? String(JSON.stringify(randomJson(rng))) : randomString(rng);
    parts.push(`${enc(key)}=${rng.next() < 0.9 ? enc(value) : value}`);
  }
  return '?' + parts.join('&');
}

/** A path parameter: mostly a real name, otherwise something odd (encoded or raw). */
export function randomParam(rng: Rng, real: readonly string[]): string {
  if (rng.next() < 0.6) return rng.pick(real);
  const s = randomString(rng);
  return rng.next() < 0.85 ? enc(s) || 'x' : s.replace(/[/?#\s]/g, '') || '%';
}

/**
 * Sends the requests a few at a time (their Redis round trips overlap) and checks each answer:
 * below 500, and a 4xx carries a registry error body. Returns the count of each status.
 */
export async function sendAndJudge(
  app: { inject(r: FuzzRequest): Promise<{ statusCode: number; body: string; json(): unknown }> },
  reqs: readonly FuzzRequest[],
  opts: { seed: number; inFlight: number; codes: Record<string, unknown> },
): Promise<Map<number, number>> {
  const { expect } = await import('vitest');
  const statuses = new Map<number, number>();
  for (let i = 0; i < reqs.length; i += opts.inFlight) {
    const batch = reqs.slice(i, i + opts.inFlight);
    const answers = await Promise.all(batch.map((r) => app.inject(r)));
    answers.forEach((res, j) => {
      const req = batch[j] as FuzzRequest;
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
      const where = `seed ${opts.seed}, request ${i + j}: ${req.method} ${req.url.slice(0, 200)} ${String(req.payload).slice(0, 200)} -> ${res.statusCode} ${res.body.slice(0, 300)}`;
      expect(res.statusCode, where).toBeLessThan(500);
      if (res.statusCode >= 400) {
        const body = res.json() as { error?: { code?: string; message?: string } };
        expect(opts.codes[body.error?.code ?? ''], where).toBeDefined();
        expect(typeof body.error?.message, where).toBe('string');
      }
    });
  }
  return statuses;
}
