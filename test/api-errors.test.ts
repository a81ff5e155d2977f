// The errors registry: every code is documented in docs/api-errors.md, every typed error of
// the control plane (controlplane/*/errors.ts) is in the registry with the same status, codes
// are unique, and failures map to the documented bodies (including a bug: a 500 that gives
// nothing away but a request id).
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classify } from '../controlplane/api/error-handler.ts';
import { ApiError, ERROR_CODES } from '../controlplane/api/errors.ts';
import { buildServer } from '../controlplane/api/server.ts';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { KnobosError } from '../controlplane/store/errors.ts';
import { startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

const ROOT = resolve(import.meta.dirname, '..');
const DOC = readFileSync(join(ROOT, 'docs', 'api-errors.md'), 'utf8');

/** Every concrete KnobosError class exported by a controlplane/<area>/errors.ts file. */
async function errorClasses(): Promise<{ file: string; code: string; status: number }[]> {
  const dir = join(ROOT, 'controlplane');
  const files = readdirSync(dir)
    .map((area) => join(dir, area, 'errors.ts'))
    .filter(existsSync);
  const out: { file: string; code: string; status: number }[] = [];
  for (const file of files) {
    const mod = (await import(file)) as Record<string, unknown>;
    for (const value of Object.values(mod)) {
      if (typeof value !== 'function' || !(value.prototype instanceof KnobosError)) continue;
      // Constructors take (message, ...details): any arguments make an instance to read.
      const Ctor = value as new (...args: unknown[]) => KnobosError;
      let e: KnobosError;
      try {
        e = new Ctor('probe', 'field', 'rule', {});
      } catch {
        continue; // abstract or needs specific arguments: its subclasses are checked
      }
      // An abstract base (FieldError) has no code of its own: its subclasses are checked.
      if (e.code === undefined) continue;
      out.push({ file, code: e.code, status: e.status });
    }
  }
  return out;
}

describe('errors registry', () => {
  it('documents every code in docs/api-errors.md with its status', () => {
    for (const [code, spec] of Object.entries(ERROR_CODES)) {
      const row = DOC.split('\n').find((l) => new RegExp(`^\\|\\s*\`${code}\`\\s*\\|`).test(l));
      expect(row, `${code} is not documented`).toBeDefined();
      expect(row, code).toMatch(new RegExp(`^\\|[^|]+\\|\\s*${spec.status}\\s*\\|`));
    }
  });

  it('documents no code that the registry does not have', () => {
    const documented = [...DOC.matchAll(/^\|\s*`(KNOBOS_[A-Z_]+)`\s*\|/gm)].map((m) => m[1]);
    expect(documented.sort()).toEqual(Object.keys(ERROR_CODES).sort());
  });

  it('has every typed error of the control plane, with the same status', async () => {
    const classes = await errorClasses();
    expect(classes.length).toBeGreaterThanOrEqual(6);
    for (const c of classes) {
      expect(ERROR_CODES[c.code], `${c.code} (${c.file}) is not in the registry`).toBeDefined();
      expect(ERROR_CODES[c.code]?.status, c.code).toBe(c.status);
    }
  });

  it('maps fastify and Redis failures to stable codes', () => {
    const validation = Object.assign(new Error('body must have required property'), {
      validation: [
        { instancePath: '', keyword: 'required', params: { missingProperty: 'reason' } },
      ],
      validationContext: 'body',
    });
    expect(classify(validation)).toMatchObject({
      code: 'KNOBOS_API_VALIDATION',
      status: 400,
      details: { field: 'body.reason', rule: 'required' },
    });
    const nested = Object.assign(new Error('x'), {
      validation: [{ instancePath: '/limit', keyword: 'maximum', message: 'must be <= 500' }],
      validationContext: 'querystring',
    });
    expect(classify(nested).details).toEqual({ field: 'query.limit', rule: 'maximum' });
    expect(
      classify(
        Object.assign(new Error('x'), { code: 'FST_ERR_CTP_BODY_TOO_LARGE', statusCode: 413 }),
      ).code,
    ).toBe('KNOBOS_API_BODY_TOO_LARGE');
    expect(classify(Object.assign(new Error('x'), { statusCode: 406 })).code).toBe(
      'KNOBOS_API_BAD_REQUEST',
    );
    expect(classify(new Error('Connection is closed.')).code).toBe('KNOBOS_API_UNAVAILABLE');
    expect(classify(new TypeError('x is undefined')).code).toBe('KNOBOS_API_INTERNAL');
    expect(new ApiError('KNOBOS_API_FORBIDDEN', 'no').status).toBe(403);
  });
});

describe('error bodies from a live server', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('answers a bug with a 500 that names only the code and a request id; unknown routes 404', async () => {
    const knobs = new KnobTable(redis.client(), { keys: uniqueKeys() });
    await knobs.seed();
    // A plugged-in route module, as the services' routes will be.
    const app = await buildServer({
      redis: redis.client(),
      knobs,
      auth: { mode: 'off' },
      routes: [
        (api) => {
          api.get('/api/boom', { schema: { headers: { type: 'object' } } }, async () => {
            throw new Error('secret internal detail');
          });
        },
      ],
    });
    const res = await app.inject({ url: '/api/boom' });
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual({
      error: {
        code: 'KNOBOS_API_INTERNAL',
        message: 'internal error; the server log has the details',
        requestId: expect.any(String),
      },
    });
    expect(res.body).not.toContain('secret');
    const missing = await app.inject({ url: '/api/nothing-here?x=1' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toEqual({
      error: { code: 'KNOBOS_API_ROUTE_NOT_FOUND', message: 'no route GET /api/nothing-here' },
    });
    const longParam = await app.inject({ url: `/api/knobs/${'a'.repeat(300)}` });
    expect(longParam.statusCode).toBe(414);
    expect(longParam.json().error.code).toBe('KNOBOS_API_URI_TOO_LONG');
    await app.close();
  });
});
