// No 5xx on malformed input to the registry's write routes and the new read routes
// (proposals, policies, services, experiments): seeded random requests (the seed is printed
// on failure) with near-valid and random bodies, raw payloads, odd content types, path
// parameters, query strings and tokens. Every answer is below 500 and, when an error, a
// registry code in the documented body shape.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../controlplane/api/errors.ts';
import { createRng, type Rng } from '../envs/core/rng.ts';
import { ADMIN_TOKEN, HOUR_MS } from './helpers/api-server.ts';
import {
  mutate,
  randomContentType,
  randomJson,
  randomParam,
  randomPayload,
  randomQuery,
  randomString,
  sendAndJudge,
  type FuzzRequest,
} from './helpers/api-fuzz.ts';
import { startRegistryApi, tinyTpchTrace, type RegistryApi } from './helpers/registry-fixtures.ts';
import { startTestRedis, type TestRedis } from './helpers/redis.ts';

const SEED = Number(process.env['KNOBOS_FUZZ_SEED'] ?? 20_261_122);
const REQUESTS = 1_000;
const IN_FLIGHT = 8;

interface Route {
  method: 'POST' | 'GET';
  path: (rng: Rng) => string;
  valid?: (rng: Rng) => Record<string, unknown>;
  /** A query that passes the schema, before random extras. */
  query?: (rng: Rng) => string;
}

describe('API fuzz: registry, proposals, services, experiments', () => {
  let redis: TestRedis;
  let api: RegistryApi;
  let tokens: string[];
  const trace = tinyTpchTrace();

  beforeAll(async () => {
    redis = await startTestRedis('single');
    api = await startRegistryApi(redis, { trace });
    api.clock.advance(HOUR_MS);
    for (const h of ['srpt', 'fifo', 'sjf'])
      await api.registry.register(
        { name: 'scheduler', kind: 'scheduling', artifact: { heuristic: h } },
        'fuzz',
      );
    tokens = [
      ADMIN_TOKEN,
      await api.token('operator'),
      await api.token('viewer'),
      await api.token('operator', 'acme'),
    ];
  });
  afterAll(async () => {
    await api?.close();
    await redis?.stop();
    trace.remove();
  });

  const names = ['scheduler', 'cache', 'nosuch'];
  const version = (rng: Rng) =>
    rng.next() < 0.8 ? String(1 + rng.int(5)) : randomParam(rng, ['0', '-1', '1.5', 'x']);
  const policyPath = (action: string) => (rng: Rng) =>
    `/api/policies/${randomParam(rng, names)}/versions/${version(rng)}/${action}`;
  const spec = (rng: Rng) => ({
    reason: 'fuzz',
    // Small simulations: the point is the input handling, not the simulator's speed.
    seeds: [1 + rng.int(3)],
    jobs: 2 + rng.int(8),
    workers: 1 + rng.int(4),
    ...(rng.next() < 0.3 ? { load: rng.pick([0.5, 0.85, 0.99]) } : {}),
  });
  const q = (pairs: Record<string, (rng: Rng) => string>) => (rng: Rng) =>
    '?' +
    Object.entries(pairs)
      .map(([k, v]) => `${k}=${encodeURIComponent(v(rng).replace(/[\ud800-\udfff]/g, '?'))}`)
      .join('&');

  function routes(): Route[] {
    return [
      {
        method: 'POST',
        path: () => '/api/policies',
        valid: (rng) => ({
          name: rng.pick(names),
          kind: rng.pick(['scheduling', 'cache', 'placement']),
          artifact:
            rng.next() < 0.7 ? { heuristic: rng.pick(['srpt', 'lru', 'hash']) } : randomJson(rng),
          ...(rng.next() < 0.3 ? { lineage: { parent: 1 + rng.int(4), learner: 'ppo' } } : {}),
        }),
      },
      { method: 'POST', path: policyPath('evaluate'), valid: spec },
      { method: 'POST', path: policyPath('shadow'), valid: spec },
      { method: 'POST', path: policyPath('promote'), valid: () => ({ reason: 'fuzz' }) },
      { method: 'POST', path: policyPath('retire'), valid: () => ({ reason: 'fuzz' }) },
      {
        method: 'POST',
        path: (rng) => `/api/policies/${randomParam(rng, names)}/rollback`,
        valid: () => ({ reason: 'fuzz' }),
      },
      { method: 'GET', path: () => '/api/policies' },
      { method: 'GET', path: (rng) => `/api/policies/${randomParam(rng, names)}` },
      { method: 'GET', path: policyPath('lineage') },
      { method: 'GET', path: () => '/api/registry/audit' },
      { method: 'GET', path: () => '/api/proposals' },
      {
        method: 'GET',
        path: (rng) => `/api/proposals/${randomParam(rng, ['reg-scheduler-1-k1'])}`,
      },
      {
        method: 'GET',
        path: () => '/api/services/scheduler/tasks',
        query: q({ state: (rng) => rng.pick(['runnable', 'done', 'dead', 'leased', 'x']) }),
      },
      { method: 'GET', path: (rng) => `/api/services/scheduler/tasks/${randomParam(rng, ['t1'])}` },
      { method: 'GET', path: () => '/api/services/scheduler/usage' },
      { method: 'GET', path: () => '/api/services/scheduler/stragglers' },
      { method: 'GET', path: () => '/api/services/scheduler/workers/loaded' },
      { method: 'GET', path: () => '/api/services/messaging/topics' },
      {
        method: 'GET',
        path: (rng) => `/api/services/messaging/topics/${randomParam(rng, ['orders'])}`,
      },
      {
        method: 'GET',
        path: (rng) => `/api/services/files/${rng.pick(['stat', 'readdir', 'find'])}`,
        query: q({
          path: (rng) => rng.pick(['/', '/a/../b', randomString(rng)]),
          under: (rng) => rng.pick(['/', 'x']),
        }),
      },
      { method: 'GET', path: (rng) => `/api/experiments/${randomParam(rng, ['cache'])}` },
    ];
  }

  function request(rng: Rng, route: Route): FuzzRequest {
    const headers: Record<string, string> = {};
    const auth = rng.next();
    if (auth < 0.85) headers['authorization'] = `Bearer ${rng.pick(tokens)}`;
    else if (auth < 0.95) headers['authorization'] = randomString(rng).replace(/[^\x20-\x7e]/g, '');
    const base = route.query && rng.next() < 0.7 ? route.query(rng) : '';
    const extra = randomQuery(rng);
    const url = route.path(rng) + (base ? base + extra.replace(/^\?/, '&') : extra);
    if (route.method !== 'POST') return { method: route.method, url, headers };
    const body = route.valid && rng.next() < 0.6 ? mutate(rng, route.valid(rng)) : randomJson(rng);
    const type = randomContentType(rng);
    if (type) headers['content-type'] = type;
    return { method: 'POST', url, headers, payload: randomPayload(rng, body) };
  }

  it(`answers ${REQUESTS} random requests with < 500 and registry error bodies (seed ${SEED})`, async () => {
    const rng = createRng(SEED);
    const all = routes();
    const reqs = Array.from({ length: REQUESTS }, (_, i) =>
      request(rng, all[i % all.length] as Route),
    );
    const statuses = await sendAndJudge(api.app, reqs, {
      seed: SEED,
      inFlight: IN_FLIGHT,
      codes: ERROR_CODES,
    });
    // The mix reached past the schema layer: successes and the registry's own rejections.
    expect(statuses.get(200) ?? 0).toBeGreaterThan(50);
    for (const s of [400, 401, 403, 404, 409, 422])
      expect(statuses.get(s) ?? 0, `status ${s}`).toBeGreaterThan(0);
  });
});
