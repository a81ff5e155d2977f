// With auth off every request acts as local#noauth (admin), and the API listens on loopback
// only; but a web page the operator opens can rebind its own name to 127.0.0.1 and then make
// same-origin requests with that name as Host (DNS rebinding). Only loopback Host names are
// answered with auth off.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiFixture } from './helpers/api-server.ts';
import { startTestRedis, type TestRedis } from './helpers/redis.ts';

describe('auth off: requests for a foreign Host (DNS rebinding)', () => {
  let redis: TestRedis;
  let api: ApiFixture;
  beforeAll(async () => {
    redis = await startTestRedis('single');
    api = await startApi(redis, { auth: { mode: 'off' } });
  });
  afterAll(async () => {
    await api?.close();
    await redis?.stop();
  });

  it('refuses a write whose Host is not a loopback name', async () => {
    const res = await api.app.inject({
      method: 'POST',
      url: '/api/freeze',
      headers: {
        host: 'attacker.example:8080',
        origin: 'http://attacker.example:8080',
        'content-type': 'application/json',
      },
      payload: { reason: 'rebound page' },
    });
    expect(res.statusCode).toBeGreaterThanOrEqual(400);
    expect((await api.knobs.frozen()) as unknown).toBeFalsy();
  });

  it('refuses a read (or token creation) whose Host is not a loopback name', async () => {
    const res = await api.app.inject({
      method: 'POST',
      url: '/api/tokens',
      headers: { host: 'attacker.example:8080', 'content-type': 'application/json' },
      payload: { name: 'stolen', role: 'admin' },
    });
    expect(res.statusCode).toBeGreaterThanOrEqual(400);
  });

  it('still serves loopback Hosts', async () => {
    for (const host of ['127.0.0.1:8080', 'localhost:8080', '[::1]:8080']) {
      const res = await api.app.inject({ url: '/api/whoami', headers: { host } });
      expect(res.statusCode, host).toBe(200);
    }
  });
});
