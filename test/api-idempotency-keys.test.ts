// Idempotency-Key across the API's once-only writes: a retry of a policy registration whose
// artifact lists its keys in another order is the same request (it was refused: the request's
// hash covered the artifact's bytes), and a key used on one route is refused on another (each
// table compared only its own requests, so a policy's key promoted a knob).
import { afterAll, beforeAll, expect, it } from 'vitest';
import { HOUR_MS } from './helpers/api-server.ts';
import { startRegistryApi, tinyTpchTrace, type RegistryApi } from './helpers/registry-fixtures.ts';
import { startTestRedis, type TestRedis } from './helpers/redis.ts';

let redis: TestRedis;
let api: RegistryApi;
const trace = tinyTpchTrace();
let op: { authorization: string };
beforeAll(async () => {
  redis = await startTestRedis('single');
  api = await startRegistryApi(redis, { trace });
  api.clock.advance(HOUR_MS);
  op = api.bearer(await api.token('operator'));
});
afterAll(async () => {
  await api?.close();
  await redis?.stop();
  trace.remove();
});

const post = (url: string, payload: object, key: string) =>
  api.app.inject({ method: 'POST', url, headers: { ...op, 'idempotency-key': key }, payload });

it('answers a retry whose artifact lists the same keys in another order with the first version', async () => {
  const first = await post(
    '/api/policies',
    {
      name: 'idem-order',
      kind: 'scheduling',
      artifact: { heuristic: 'srpt', meta: { a: 1, b: 2 } },
    },
    'order-1',
  );
  expect(first.statusCode, first.body).toBe(201);
  const retry = await post(
    '/api/policies',
    {
      name: 'idem-order',
      kind: 'scheduling',
      artifact: { meta: { b: 2, a: 1 }, heuristic: 'srpt' },
    },
    'order-1',
  );
  expect(retry.statusCode, retry.body).toBe(201);
  expect(retry.json().version).toBe(first.json().version);
  // Other content under the key is still refused.
  const other = await post(
    '/api/policies',
    { name: 'idem-order', kind: 'scheduling', artifact: { heuristic: 'sjf' } },
    'order-1',
  );
  expect(other.statusCode).toBe(400);
  expect(other.json().error).toMatchObject({ field: 'requestId', rule: 'same_request' });
});

it('refuses a key used for a policy registration on a knob promotion, and writes nothing', async () => {
  const reg = await post(
    '/api/policies',
    { name: 'idem-cross', kind: 'scheduling', artifact: { heuristic: 'srpt' } },
    'cross-1',
  );
  expect(reg.statusCode).toBe(201);
  const url = '/api/knobs/scheduler.dispatch_batch';
  const knob = (await api.app.inject({ url, headers: op })).json();
  const promote = await post(
    `${url}/promote`,
    { value: knob.value === 1 ? 2 : knob.value - 1, baseVersion: knob.version, reason: 'reuse' },
    'cross-1',
  );
  expect(promote.statusCode, promote.body).toBe(400);
  expect(promote.json().error).toMatchObject({ field: 'requestId', rule: 'same_request' });
  expect((await api.app.inject({ url, headers: op })).json().version).toBe(knob.version);
  // The key's own route still answers its retry.
  const again = await post(
    '/api/policies',
    { name: 'idem-cross', kind: 'scheduling', artifact: { heuristic: 'srpt' } },
    'cross-1',
  );
  expect(again.statusCode).toBe(201);
  expect(again.json().version).toBe(reg.json().version);
});
