// A registry reason of spaces is refused up front (the registry's text rule and the API's
// schema require a non-space character). The knobs table refuses a blank reason only at the
// knob step, after the registry created and advanced a proposal on one of the knob version's
// PROPOSAL_ATTEMPTS (5) ids: five such 400s and the version could not be promoted at all.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOUR_MS } from './helpers/api-server.ts';
import { startRegistryApi, tinyTpchTrace, type RegistryApi } from './helpers/registry-fixtures.ts';
import { startTestRedis, type TestRedis } from './helpers/redis.ts';

const SPEC = { seeds: [1, 2], jobs: 20, workers: 4 };

describe('registry promote with a blank reason', () => {
  let redis: TestRedis;
  let api: RegistryApi;
  const trace = tinyTpchTrace();
  let operator: { authorization: string };

  beforeAll(async () => {
    redis = await startTestRedis('single');
    api = await startRegistryApi(redis, { trace });
    api.clock.advance(HOUR_MS);
    operator = api.bearer(await api.token('operator'));
  });
  afterAll(async () => {
    await api?.close();
    await redis?.stop();
    trace.remove();
  });

  const post = (url: string, payload: unknown) =>
    api.app.inject({ method: 'POST', url, headers: operator, payload: payload as object });

  it('is refused up front and does not use up the version promotion attempts', async () => {
    const reg = await post('/api/policies', {
      name: 'scheduler',
      kind: 'scheduling',
      artifact: { heuristic: 'srpt' },
    });
    expect(reg.statusCode).toBe(201);
    expect(
      (await post('/api/policies/scheduler/versions/1/evaluate', { reason: 'sim', ...SPEC }))
        .statusCode,
    ).toBe(200);
    const codes: number[] = [];
    for (let i = 0; i < 5; i++)
      codes.push(
        (await post('/api/policies/scheduler/versions/1/promote', { reason: '   ' })).statusCode,
      );
    expect(codes).toEqual([400, 400, 400, 400, 400]);
    const good = await post('/api/policies/scheduler/versions/1/promote', { reason: 'better' });
    expect(good.statusCode, good.body).toBe(200);
  });
});
