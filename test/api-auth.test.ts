// Authentication and authorisation: bearer tokens stored hashed, roles, revocation, tenant
// scopes (a tenant's admin sees and manages only its tenant's tokens and audit entries), the
// admin token from the environment, and auth 'off' confined to loopback. Runs on one Redis
// node and on a 3-node cluster (the tokens table and its audit log share one slot).
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { MAX_TOKENS_LISTED } from '../controlplane/api/auth/tokens.ts';
import { serverEnv } from '../controlplane/api/config.ts';
import { serveApi } from '../controlplane/api/serve.ts';
import { buildServer, startServer } from '../controlplane/api/server.ts';
import { ChangeHub } from '../controlplane/api/sse.ts';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { ADMIN_TOKEN, startApi, type ApiFixture } from './helpers/api-server.ts';
import { startTestRedis, uniqueKeys, type Backend, type TestRedis } from './helpers/redis.ts';

const ADMIN = { authorization: `Bearer ${ADMIN_TOKEN}` };

describe.each<Backend>(['single', 'cluster'])('API auth on %s redis', (backend) => {
  let redis: TestRedis;
  let api: ApiFixture;

  beforeAll(async () => {
    redis = await startTestRedis(backend);
    api = await startApi(redis);
  });
  afterAll(async () => {
    await api?.close();
    await redis?.stop();
  });

  async function create(headers: Record<string, string>, body: object) {
    return api.app.inject({ method: 'POST', url: '/api/tokens', headers, payload: body });
  }

  it('answers 401 with the rule for a missing, malformed or unknown token', async () => {
    const cases: [Record<string, string>, string][] = [
      [{}, 'required'],
      [{ authorization: 'Basic dXNlcjpwYXNz' }, 'bearer'],
      [{ authorization: 'Bearer' }, 'bearer'],
      [{ authorization: `Bearer knobos_0123456789abcdef_${'A'.repeat(43)}` }, 'known_token'],
      [{ authorization: 'Bearer not-a-token' }, 'known_token'],
    ];
    for (const [headers, rule] of cases) {
      const res = await api.app.inject({ url: '/api/knobs', headers });
      expect(res.statusCode, rule).toBe(401);
      expect(res.json().error, rule).toMatchObject({
        code: 'KNOBOS_API_UNAUTHENTICATED',
        field: 'headers.authorization',
        rule,
      });
    }
  });

  it('creates tokens shown once and stores only their SHA-256', async () => {
    const res = await create(ADMIN, { name: 'grafana', role: 'viewer' });
    expect(res.statusCode).toBe(201);
    const { token, info } = res.json();
    expect(token).toMatch(/^knobos_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    expect(info).toMatchObject({
      name: 'grafana',
      role: 'viewer',
      tenant: null,
      createdBy: 'admin#env',
    });
    const stored = await api.redis.hgetall(api.knobs.keys.row('tokens', 'tokens', info.id));
    expect(stored['hash']).toBe(createHash('sha256').update(token).digest('hex'));
    // The secret is base64url, which has '_' itself: it is everything after the id.
    const secret = token.split('_').slice(2).join('_');
    expect(Object.values(stored).some((v) => v.includes(secret))).toBe(false);
    const listed = await api.app.inject({ url: '/api/tokens', headers: ADMIN });
    expect(listed.json().tokens.map((t: { id: string }) => t.id)).toContain(info.id);
    expect(listed.body).not.toContain(secret);
    expect(listed.body).not.toContain(stored['hash']);
  });

  it('gives each role what it may do and no more', async () => {
    const viewer = api.bearer(await api.token('viewer'));
    const operator = api.bearer(await api.token('operator'));
    const admin = api.bearer(await api.token('admin'));
    const who = await api.app.inject({ url: '/api/whoami', headers: operator });
    expect(who.json()).toMatchObject({ role: 'operator', tenant: null, via: 'token' });
    expect(who.json().actor).toMatch(/^test-operator#[0-9a-f]{16}$/);
    for (const h of [viewer, operator, admin]) {
      expect((await api.app.inject({ url: '/api/knobs', headers: h })).statusCode).toBe(200);
      expect((await api.app.inject({ url: '/api/audit', headers: h })).statusCode).toBe(200);
      expect((await api.app.inject({ url: '/metrics', headers: h })).statusCode).toBe(200);
    }
    // One knob per role: a pinned knob refuses another pin.
    const pin = (h: Record<string, string>, knob = 'files.cache_policy') =>
      api.app.inject({
        method: 'POST',
        url: `/api/knobs/${knob}/pin`,
        headers: h,
        payload: { reason: 'role check' },
      });
    expect((await pin(viewer)).statusCode).toBe(403);
    expect((await pin(operator)).statusCode).toBe(200);
    expect((await pin(admin, 'scheduler.policy')).statusCode).toBe(200);
    const opCreate = await create(operator, { name: 'x', role: 'viewer' });
    expect(opCreate.statusCode).toBe(403);
    expect(opCreate.json().error).toMatchObject({ code: 'KNOBOS_API_FORBIDDEN', rule: 'admin' });
    expect((await create(admin, { name: 'made-by-admin', role: 'operator' })).statusCode).toBe(201);
    const badRole = await create(admin, { name: 'x', role: 'root' });
    expect(badRole.statusCode).toBe(400);
    expect(badRole.json().error).toMatchObject({ field: 'body.role', rule: 'enum' });
    // JSON bodies are not coerced: a number is not a name, a list is not a role.
    const before = (await api.app.inject({ url: '/api/tokens', headers: ADMIN })).json().tokens;
    for (const [body, field] of [
      [{ name: 12345, role: 'viewer' }, 'body.name'],
      [{ name: 'x', role: ['admin'] }, 'body.role'],
      [{ name: 12345, role: ['admin'] }, 'body.name'],
    ] as const) {
      const res = await create(ADMIN, body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(res.json().error, JSON.stringify(body)).toMatchObject({
        code: 'KNOBOS_API_VALIDATION',
        field,
        rule: 'type',
      });
    }
    const after = (await api.app.inject({ url: '/api/tokens', headers: ADMIN })).json().tokens;
    expect(after).toHaveLength(before.length);
  });

  it('revokes a token at once, and audits creation and revocation under the admin', async () => {
    const made = (await create(ADMIN, { name: 'temp', role: 'operator' })).json();
    const h = api.bearer(made.token);
    expect((await api.app.inject({ url: '/api/knobs', headers: h })).statusCode).toBe(200);
    const del = await api.app.inject({
      method: 'DELETE',
      url: `/api/tokens/${made.info.id}`,
      headers: ADMIN,
    });
    expect(del.statusCode).toBe(200);
    expect(del.json().revoked.id).toBe(made.info.id);
    const after = await api.app.inject({ url: '/api/knobs', headers: h });
    expect(after.statusCode).toBe(401);
    expect(after.json().error.rule).toBe('known_token');
    const again = await api.app.inject({
      method: 'DELETE',
      url: `/api/tokens/${made.info.id}`,
      headers: ADMIN,
    });
    expect(again.statusCode).toBe(404);
    const audit = await api.app.inject({
      url: `/api/audit?source=tokens&target=token:${made.info.id}`,
      headers: ADMIN,
    });
    expect(
      audit.json().audit.map((a: { action: string; actor: string }) => [a.action, a.actor]),
    ).toEqual([
      ['token.revoke', 'admin#env'],
      ['token.create', 'admin#env'],
    ]);
  });

  it("lists a tenant's token behind more than a listing's worth of other tenants' newer ones", async () => {
    const acmeAdmin = api.bearer(await api.token('admin', 'acme'));
    const old = (await create(acmeAdmin, { name: 'acme-old', role: 'viewer' })).json().info.id;
    // More newer tokens of another tenant than one listing returns (MAX_TOKENS_LISTED).
    api.clock.advance(1_000);
    await Promise.all(
      Array.from({ length: MAX_TOKENS_LISTED + 1 }, () => api.token('viewer', 'globex')),
    );
    const listed = (await api.app.inject({ url: '/api/tokens', headers: acmeAdmin })).json()
      .tokens as { id: string; tenant: string }[];
    expect(listed.map((t) => t.id)).toContain(old);
    expect(listed.every((t) => t.tenant === 'acme')).toBe(true);
    const all = (await api.app.inject({ url: '/api/tokens', headers: ADMIN })).json().tokens;
    expect(all).toHaveLength(MAX_TOKENS_LISTED);
    expect(new Set(all.map((t: { id: string }) => t.id)).size).toBe(MAX_TOKENS_LISTED);
  });

  it("scopes a tenant's admin to its tenant's tokens and audit entries", async () => {
    const acmeAdmin = api.bearer(await api.token('admin', 'acme'));
    const globexToken = (
      await create(ADMIN, { name: 'globex-bot', role: 'viewer', tenant: 'globex' })
    ).json();
    const mine = await create(acmeAdmin, { name: 'acme-bot', role: 'viewer' });
    expect(mine.statusCode).toBe(201);
    expect(mine.json().info.tenant).toBe('acme');
    const other = await create(acmeAdmin, { name: 'sneaky', role: 'viewer', tenant: 'globex' });
    expect(other.statusCode).toBe(403);
    expect(other.json().error).toMatchObject({ code: 'KNOBOS_API_FORBIDDEN', rule: 'own_tenant' });

    const listed = (await api.app.inject({ url: '/api/tokens', headers: acmeAdmin })).json().tokens;
    expect(listed.length).toBeGreaterThan(0);
    expect(listed.every((t: { tenant: string }) => t.tenant === 'acme')).toBe(true);

    const revoke = await api.app.inject({
      method: 'DELETE',
      url: `/api/tokens/${globexToken.info.id}`,
      headers: acmeAdmin,
    });
    expect(revoke.statusCode).toBe(404); // another tenant's row does not exist for acme
    expect(revoke.json().error.code).toBe('KNOBOS_NOT_FOUND');
    const stillThere = await api.app.inject({
      url: '/api/knobs',
      headers: api.bearer(globexToken.token),
    });
    expect(stillThere.statusCode).toBe(200);

    const audit = (await api.app.inject({ url: '/api/audit?limit=500', headers: acmeAdmin })).json()
      .audit;
    expect(audit.length).toBeGreaterThan(0);
    expect(audit.every((a: { detail: { tenant?: string } }) => a.detail.tenant === 'acme')).toBe(
      true,
    );
    const all = (await api.app.inject({ url: '/api/audit?limit=500', headers: ADMIN })).json()
      .audit;
    expect(all.some((a: { detail: { tenant?: string } }) => a.detail.tenant === 'globex')).toBe(
      true,
    );
  });
});

describe('auth off and server settings', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('acts as a local admin without tokens when auth is off', async () => {
    const knobs = new KnobTable(redis.client(), { keys: uniqueKeys() });
    await knobs.seed();
    const app = await buildServer({ redis: redis.client(), knobs, auth: { mode: 'off' } });
    const who = await app.inject({ url: '/api/whoami' });
    expect(who.json()).toMatchObject({ actor: 'local#noauth', role: 'admin', via: 'off' });
    const pin = await app.inject({
      method: 'POST',
      url: '/api/knobs/scheduler.policy/pin',
      payload: { reason: 'local' },
    });
    expect(pin.json().pinnedBy).toBe('local#noauth');
    await app.close();
  });

  it('refuses auth off on a non-loopback address, and listens on loopback', async () => {
    const knobs = new KnobTable(redis.client(), { keys: uniqueKeys() });
    await knobs.seed();
    const base = { redis: redis.client(), knobs, auth: { mode: 'off' as const }, port: 0 };
    await expect(startServer({ ...base, host: '0.0.0.0' })).rejects.toThrow(/loopback/);
    const server = await startServer({ ...base, host: '127.0.0.1' });
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`${server.url}/healthz`);
    expect(res.status).toBe(200);
    // A second server on the same port fails to listen, and closes what it started (its
    // change hub's subscriber connection, which stayed up before).
    const closed = vi.spyOn(ChangeHub.prototype, 'close');
    try {
      const port = Number(new URL(server.url).port);
      await expect(startServer({ ...base, host: '127.0.0.1', port })).rejects.toThrow(
        /127.0.0.1:\d+ is in use .*set PORT/,
      );
      expect(closed).toHaveBeenCalledTimes(1);
    } finally {
      closed.mockRestore();
    }
    await server.close();
  });

  it('serves from the environment with a generated admin token that works', async () => {
    const knobs = new KnobTable(redis.client(), { keys: uniqueKeys() });
    await knobs.seed();
    const served = await serveApi({ redis: redis.client(), knobs, env: { PORT: '0' } });
    expect(served.dashboardUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const token = served.generatedAdminToken as string;
    const ok = await fetch(`${served.url}/api/whoami`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(await ok.json()).toMatchObject({ actor: 'admin#env', role: 'admin' });
    expect((await fetch(`${served.url}/api/knobs`)).status).toBe(401);
    expect((await fetch(served.dashboardUrl)).status).toBe(200);
    await served.close();
  });

  it('reads PORT, HOST and the admin token from the environment', () => {
    expect(serverEnv({})).toEqual({
      port: 8080,
      host: '127.0.0.1',
      auth: { mode: 'tokens' },
      publicMetrics: false,
    });
    const env = serverEnv({ PORT: '9000', HOST: '::1', KNOBOS_ADMIN_TOKEN: 'a'.repeat(16) });
    expect(env).toMatchObject({ port: 9000, host: '::1', auth: { adminToken: 'a'.repeat(16) } });
    expect(serverEnv({ KNOBOS_AUTH: 'off' }).auth).toEqual({ mode: 'off' });
    expect(() => serverEnv({ KNOBOS_ADMIN_TOKEN: 'short' })).toThrow(/at least 16/);
    // An empty or blank PORT is no port (Number('') is 0: a random port before).
    for (const PORT of ['eighty', '', ' ', '1e3', '-1', '65536'])
      expect(() => serverEnv({ PORT }), PORT).toThrow(/PORT must be an integer/);
    expect(serverEnv({ PORT: '0' }).port).toBe(0);
    expect(() => serverEnv({ KNOBOS_AUTH: 'maybe' })).toThrow(/KNOBOS_AUTH/);
    const gen = serverEnv({}, { generateAdminToken: true });
    expect(gen.generatedAdminToken).toMatch(/^knobos_admin_[A-Za-z0-9_-]{32}$/);
    expect(gen.auth).toEqual({ mode: 'tokens', adminToken: gen.generatedAdminToken });
  });
});
