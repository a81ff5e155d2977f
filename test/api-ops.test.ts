// Operations and read routes: health and readiness (503 while Redis is away), Prometheus
// metrics, the OpenAPI document (a schema on every route) and its UI, the dashboard's static
// files, telemetry range queries, the pending proposals and policies lists, and the
// server-sent-events stream over a real socket.
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenStore } from '../controlplane/api/auth/tokens.ts';
import { buildServer } from '../controlplane/api/server.ts';
import { ChangeHub } from '../controlplane/api/sse.ts';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { connect } from '../controlplane/redis/connect.ts';
import { Telemetry } from '../controlplane/telemetry/metrics.ts';
import { ADMIN_TOKEN, HOUR_MS, startApi, type ApiFixture } from './helpers/api-server.ts';
import { openStream } from './helpers/api-sse.ts';
import { eventually, startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

const ADMIN = { authorization: `Bearer ${ADMIN_TOKEN}` };

describe('API operations and read routes', () => {
  let redis: TestRedis;
  let api: ApiFixture;

  beforeAll(async () => {
    redis = await startTestRedis('single');
    api = await startApi(redis, { listen: true, maxStreams: 2 });
    api.clock.advance(HOUR_MS);
  });
  afterAll(async () => {
    await api?.close();
    await redis?.stop();
  });

  it('answers /healthz and /readyz without a token', async () => {
    const health = await api.app.inject({ url: '/healthz' });
    expect(health.statusCode).toBe(200);
    expect(health.json().status).toBe('ok');
    const ready = await api.app.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json().status).toBe('ready');
  });

  it('answers /readyz 503 when Redis is unreachable, within its deadline', async () => {
    const dead = connect({ url: 'redis://127.0.0.1:1' }, { maxRetriesPerRequest: 1 });
    dead.on('error', () => {});
    const knobs = new KnobTable(dead, { keys: uniqueKeys() });
    const app = await buildServer({ redis: dead, knobs, auth: { mode: 'off' } }).catch(() => null);
    // The change stream cannot subscribe without Redis; the server must still come up.
    expect(app).not.toBeNull();
    const res = await app!.inject({ url: '/readyz' });
    expect(res.statusCode).toBe(503);
    expect(res.json().error.code).toBe('KNOBOS_API_UNAVAILABLE');
    const knobsRes = await app!.inject({ url: '/api/knobs' });
    expect(knobsRes.statusCode).toBe(503);
    expect(knobsRes.json().error.code).toBe('KNOBOS_API_UNAVAILABLE');
    await app!.close();
    dead.disconnect();
  });

  it('exposes Prometheus metrics: knob versions and values, requests per route', async () => {
    const promote = await api.app.inject({
      method: 'POST',
      url: '/api/knobs/messaging.batch_size/promote',
      headers: ADMIN,
      payload: { value: 128, baseVersion: 1, reason: 'metrics test' },
    });
    expect(promote.statusCode).toBe(200);
    const unauth = await api.app.inject({ url: '/metrics' });
    expect(unauth.statusCode).toBe(401);
    const res = await api.app.inject({ url: '/metrics', headers: ADMIN });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/plain; version=0.0.4');
    const text = res.body;
    expect(text).toContain(
      'knobos_knob_version{knob="messaging.batch_size",service="messaging"} 2',
    );
    expect(text).toContain(
      'knobos_knob_value{knob="messaging.batch_size",service="messaging"} 128',
    );
    expect(text).toContain(
      'knobos_knob_enum_value{knob="scheduler.policy",service="scheduler",value="fifo"} 1',
    );
    expect(text).toContain('knobos_knobs_frozen 0');
    expect(text).toMatch(
      /knobos_http_requests_total\{method="POST",route="\/api\/knobs\/:name\/promote",status="200"\} [1-9]/,
    );
    expect(text).toMatch(
      /knobos_http_request_duration_seconds_bucket\{method="POST",route="\/api\/knobs\/:name\/promote",le="\+Inf"\} [1-9]/,
    );
    // Every sample line is `name{labels} number` with the knobos_ prefix.
    for (const line of text.trim().split('\n')) {
      if (line.startsWith('#')) expect(line).toMatch(/^# (HELP|TYPE) knobos_[a-z_]+ /);
      else expect(line).toMatch(/^knobos_[a-z_]+(\{[^}]*\})? (-?[0-9.e+]+|NaN|[+-]Inf)$/);
    }
  });

  it('publishes an OpenAPI document with a schema on every route, and its UI at /docs', async () => {
    const res = await api.app.inject({ url: '/docs/json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json();
    expect(doc.openapi).toMatch(/^3\./);
    expect(doc.security).toEqual([{ bearer: [] }]);
    expect(doc.paths['/healthz'].get.security).toEqual([]);
    // Every parameter of every operation is a real one with a schema object: a bare
    // `headers: { type: 'object' }` was listed as a header named "type" with schema "object".
    for (const [path, methods] of Object.entries(
      doc.paths as Record<
        string,
        Record<string, { parameters?: { name: string; schema: unknown }[] }>
      >,
    ))
      for (const [m, op] of Object.entries(methods))
        for (const p of op.parameters ?? []) {
          expect(p.name, `${m} ${path}`).not.toBe('type');
          expect(typeof p.schema, `${m} ${path} ${p.name}`).toBe('object');
        }
    const ops = Object.entries(doc.paths as Record<string, Record<string, Record<string, unknown>>>)
      .filter(([path]) => path.startsWith('/api/'))
      .flatMap(([path, methods]) => Object.entries(methods).map(([m, op]) => ({ path, m, op })));
    expect(ops.length).toBeGreaterThanOrEqual(20);
    for (const { path, m, op } of ops) {
      const params = (op['parameters'] ?? []) as { in: string; name: string }[];
      const what = `${m} ${path}`;
      // The bearer header is the document's security scheme (swagger lists it there).
      expect(op['security'], what).toBeUndefined();
      for (const name of [...path.matchAll(/\{(\w+)\}/g)].map((x) => x[1]))
        expect(
          params.some((p) => p.in === 'path' && p.name === name),
          what,
        ).toBe(true);
      if (m === 'post') expect(op['requestBody'], what).toBeDefined();
      expect(Object.keys(op['responses'] as object), what).toContain('401');
    }
    for (const required of [
      '/api/knobs',
      '/api/knobs/{name}/history',
      '/api/proposals',
      '/api/policies',
      '/api/audit',
    ])
      expect(doc.paths[required]?.get, required).toBeDefined();
    expect(JSON.stringify(doc.paths['/api/proposals'])).not.toContain('NOT YET BACKED BY A TABLE');
    const ui = await api.app.inject({ url: '/docs/' });
    expect(ui.statusCode).toBe(200);
    expect(ui.headers['content-type']).toContain('text/html');
  });

  it('serves the dashboard at / with a strict content security policy', async () => {
    const res = await api.app.inject({ url: '/' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/html');
    expect(res.body).toContain('<script type="module" src="app.js">');
    expect(res.headers['content-security-policy']).toContain("script-src 'self'");
    const js = await api.app.inject({ url: '/app.js' });
    expect(js.statusCode).toBe(200);
    expect(js.headers['content-type']).toContain('javascript');
  });

  it('answers telemetry range queries, downsampled, and refuses too many points', async () => {
    // The read side selects entries by stream id (the time Redis appended them, now) and
    // buckets them by their `at` field: report times around now.
    const t0 = Math.floor(Date.now() / 30_000) * 30_000 - 30_000;
    const tel = new Telemetry({
      redis: api.redis,
      keys: api.knobs.keys,
      service: 'files',
      instance: 'i1',
    });
    await tel.flush(t0 - 1_000);
    for (let i = 0; i < 6; i++) {
      tel.gauge('cache_hit_ratio', 0.5 + i / 100);
      tel.inc('reads', 10);
      await tel.flush(t0 + i * 10_000);
    }
    const list = await api.app.inject({ url: '/api/telemetry', headers: ADMIN });
    const files = list.json().services.find((s: { service: string }) => s.service === 'files');
    expect(files).toMatchObject({ entries: 7, lastAt: t0 + 50_000 });
    const metrics = await api.app.inject({ url: '/api/telemetry/files', headers: ADMIN });
    expect(metrics.json().metrics).toEqual(['cache_hit_ratio', 'reads', 'reads_per_s']);
    const series = await api.app.inject({
      url: `/api/telemetry/files/cache_hit_ratio?fromMs=${t0}&toMs=${Date.now() + 1_000}&stepMs=30000`,
      headers: ADMIN,
    });
    expect(series.statusCode).toBe(200);
    expect(series.json().truncated).toBe(false); // 7 entries: the whole range was read
    const pts = series.json().points;
    expect(pts.map((p: { at: number }) => p.at)).toEqual([t0, t0 + 30_000]);
    expect(pts[0].value).toBeCloseTo(0.51, 6); // mean of 0.50, 0.51, 0.52
    expect(pts[0].n).toBe(3);
    const many = await api.app.inject({
      url: `/api/telemetry/files/reads?fromMs=0&toMs=${t0}&stepMs=1000`,
      headers: ADMIN,
    });
    expect(many.statusCode).toBe(400);
    expect(many.json().error).toMatchObject({
      code: 'KNOBOS_INVALID',
      field: 'query.stepMs',
      rule: 'max_points',
    });
    // 2,000 steps not starting on a boundary touch 2,001 buckets: refused; 2,000 buckets pass.
    const edge = (from: number, to: number) =>
      api.app.inject({
        url: `/api/telemetry/files/reads?fromMs=${from}&toMs=${to}&stepMs=1000`,
        headers: ADMIN,
      });
    expect((await edge(t0 + 500, t0 + 500 + 2_000_000)).statusCode).toBe(400);
    expect((await edge(t0, t0 + 1_999_999)).statusCode).toBe(200);
    const reversed = await api.app.inject({
      url: `/api/telemetry/files/reads?fromMs=${t0}&toMs=${t0 - 1}`,
      headers: ADMIN,
    });
    expect(reversed.json().error).toMatchObject({ field: 'query.fromMs', rule: 'before_to' });
    // A toMs within the default span of the epoch: the window starts at 0 (review: the
    // negative start reached Redis as a stream id, a 500).
    const early = await api.app.inject({
      url: '/api/telemetry/files/reads?toMs=1000',
      headers: ADMIN,
    });
    expect(early.statusCode, early.body).toBe(200);
    expect(early.json().fromMs).toBe(0);
    const badName = await api.app.inject({ url: '/api/telemetry/Files!/x', headers: ADMIN });
    expect(badName.statusCode).toBe(400);
    expect(badName.json().error).toMatchObject({
      code: 'KNOBOS_API_VALIDATION',
      field: 'params.service',
    });
  });

  it("lists proposals and policies from their tables, with the placeholders' shape", async () => {
    for (const key of ['proposals', 'policies']) {
      const res = await api.app.inject({ url: `/api/${key}`, headers: ADMIN });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ [key]: [], next: null, available: true });
    }
    const bad = await api.app.inject({ url: '/api/proposals?status=maybe', headers: ADMIN });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toMatchObject({ field: 'query.status', rule: 'enum' });
  });

  it('streams knob changes, pins and freezes as server-sent events', async () => {
    const stream = await openStream(api.url, ADMIN_TOKEN);
    try {
      const hello = await stream.next('hello');
      expect(hello.epoch).toBe(await api.knobs.epoch());
      const op = (url: string, payload: object) =>
        api.app.inject({ method: 'POST', url, headers: ADMIN, payload });
      await op('/api/knobs/scheduler.retry_limit/promote', {
        value: 4,
        baseVersion: 1,
        reason: 'sse',
      });
      const change = await stream.next('knob');
      expect(change).toMatchObject({
        kind: 'value',
        row: {
          name: 'scheduler.retry_limit',
          value: 4,
          version: 2,
          reason: 'sse',
          updatedBy: 'admin#env',
        },
      });
      // A change of two knobs (one message): an event for each, in the change's order (a change
      // set is written in knob name order).
      await api.knobs.promoteAll({
        actor: 'op',
        reason: 'both',
        changes: [
          { name: 'scheduler.policy', value: 'sjf', baseVersion: 1 },
          { name: 'scheduler.dispatch_batch', value: 32, baseVersion: 1 },
        ],
      });
      expect(await stream.next('knob')).toMatchObject({
        kind: 'value',
        row: { name: 'scheduler.dispatch_batch', value: 32, reason: 'both' },
      });
      expect(await stream.next('knob')).toMatchObject({
        kind: 'value',
        row: { name: 'scheduler.policy', value: 'sjf', reason: 'both' },
      });
      await op('/api/knobs/scheduler.retry_limit/pin', { reason: 'hold' });
      expect(await stream.next('knob')).toMatchObject({ kind: 'pin', row: { pinned: true } });
      await op('/api/freeze', { reason: 'drill' });
      expect(await stream.next('freeze')).toMatchObject({
        frozen: { reason: 'drill', by: 'admin#env' },
      });
      await op('/api/unfreeze', { reason: 'drill over' });
      expect(await stream.next('freeze')).toEqual({ frozen: null });
    } finally {
      stream.close();
    }
  });

  it('refuses event streams beyond its limit with 429, and frees the slot on disconnect', async () => {
    const a = await openStream(api.url, ADMIN_TOKEN);
    const b = await openStream(api.url, ADMIN_TOKEN);
    const res = await fetch(`${api.url}/api/events`, { headers: ADMIN });
    expect(res.status).toBe(429);
    expect((await res.json()).error).toMatchObject({
      code: 'KNOBOS_API_TOO_MANY_STREAMS',
      limit: 2,
    });
    a.close();
    b.close();
    await eventually(async () => {
      const again = await fetch(`${api.url}/api/events`, { headers: ADMIN });
      const ok = again.status === 200;
      await again.body?.cancel();
      return ok;
    }, 'a stream slot to free up');
    const unauth = await fetch(`${api.url}/api/events`);
    expect(unauth.status).toBe(401);
    // HEAD is no way to open one: it is not a route (fastify would run the stream for it).
    const head = await api.app.inject({ method: 'HEAD', url: '/api/events', headers: ADMIN });
    expect(head.statusCode).toBe(404);
    expect(api.app.hasRoute({ method: 'HEAD', url: '/api/events' })).toBe(false);
  });

  /** Opens /api/events with `token`; `ended` resolves when the server ends the stream. */
  const rawStream = async (base: string, token: string) => {
    const abort = new AbortController();
    const res = await fetch(`${base}/api/events`, {
      headers: { authorization: `Bearer ${token}` },
      signal: abort.signal,
    });
    expect(res.status).toBe(200);
    const events: string[] = [];
    const ended = (async () => {
      const decoder = new TextDecoder();
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>)
          for (const m of decoder.decode(chunk, { stream: true }).matchAll(/^event: (\w+)$/gm))
            events.push(m[1] as string);
        return 'ended';
      } catch {
        return 'aborted';
      }
    })();
    return { events, ended, close: () => abort.abort() };
  };
  const within = <T>(p: Promise<T>, ms: number) =>
    Promise.race([p, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms))]);

  it("ends a token's open event streams when the token is revoked", async () => {
    await eventually(async () => (await openStreams()) === 0, 'no open streams');
    const store = new TokenStore(api.redis, api.knobs.keys, api.clock);
    const { token, info } = await store.create({
      name: 'mallory',
      role: 'viewer',
      tenant: null,
      actor: 'test',
    });
    const s = await rawStream(api.url, token);
    try {
      await eventually(async () => s.events.includes('hello'), 'the hello event');
      const res = await fetch(`${api.url}/api/tokens/${info.id}`, {
        method: 'DELETE',
        headers: ADMIN,
      });
      expect(res.status).toBe(200);
      expect(await within(s.ended, 2_000)).toBe('ended');
      await api.app.inject({
        method: 'POST',
        url: '/api/freeze',
        headers: ADMIN,
        payload: { reason: 'after revoke' },
      });
      await api.app.inject({
        method: 'POST',
        url: '/api/unfreeze',
        headers: ADMIN,
        payload: { reason: 'after revoke' },
      });
      await new Promise((r) => setTimeout(r, 200));
      expect(s.events).toEqual(['hello']);
    } finally {
      s.close();
    }
    await eventually(async () => (await openStreams()) === 0, 'the stream to close');
  });

  it('ends a stream on its heartbeat once its token no longer verifies (revoked elsewhere)', async () => {
    const store = new TokenStore(api.redis, api.knobs.keys, api.clock);
    const { token, info } = await store.create({
      name: 'eve',
      role: 'viewer',
      tenant: null,
      actor: 'test',
    });
    // A second "process": its own hub with a short heartbeat, behind a bare HTTP server.
    const hub = new ChangeHub({ redis: api.redis, knobs: api.knobs, heartbeatMs: 100 });
    await hub.start();
    const server = http.createServer((_req, res) => {
      hub.attach(res, 0, { tokenId: info.id, verify: () => store.isLive(info.id) });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    const s = await rawStream(`http://127.0.0.1:${port}`, token);
    try {
      await eventually(async () => s.events.includes('hello'), 'the hello event');
      await new Promise((r) => setTimeout(r, 300)); // heartbeats pass: the token still holds
      expect(hub.size).toBe(1);
      await store.revoke(info.id, { actor: 'test', tenant: null }); // not through this hub
      expect(await within(s.ended, 2_000)).toBe('ended');
      expect(hub.size).toBe(0);
    } finally {
      s.close();
      await hub.close();
      await new Promise((r) => server.close(r));
    }
  });

  /** Open event streams, as /metrics counts them. */
  const openStreams = async () =>
    Number(
      /knobos_sse_clients (\d+)/.exec(
        (await api.app.inject({ url: '/metrics', headers: ADMIN })).body,
      )?.[1],
    );
  /** Holds every Redis command for `ms` (from another client), so a stream's open waits. */
  const pauseRedis = async (ms: number) => {
    const ctl = redis.client();
    await ctl.call('CLIENT', 'PAUSE', String(ms), 'ALL');
    ctl.disconnect();
  };

  it('answers two streams opened at once for the last slot: one 200, one 429 (none hangs)', async () => {
    await eventually(async () => (await openStreams()) === 0, 'no open streams');
    const a = await openStream(api.url, ADMIN_TOKEN); // one of the two slots
    const aborts: AbortController[] = [];
    try {
      await pauseRedis(300); // both pass the first room check, then wait for the epoch
      const open = () => {
        const abort = new AbortController();
        aborts.push(abort);
        const timer = setTimeout(() => abort.abort(), 5_000);
        return fetch(`${api.url}/api/events`, { headers: ADMIN, signal: abort.signal })
          .then(async (res) => ({
            status: res.status,
            body: res.status === 200 ? null : await res.json(),
          }))
          .catch(() => ({ status: 0, body: null })) // no answer within 5 s
          .finally(() => clearTimeout(timer));
      };
      const answers = await Promise.all([open(), open()]);
      expect(answers.map((r) => r.status).sort()).toEqual([200, 429]);
      expect(answers.find((r) => r.status === 429)?.body.error).toMatchObject({
        code: 'KNOBOS_API_TOO_MANY_STREAMS',
        limit: 2,
      });
      expect(await openStreams()).toBe(2);
    } finally {
      a.close();
      aborts.forEach((x) => x.abort());
    }
    await eventually(async () => (await openStreams()) === 0, 'the streams to close');
  });

  it('gives back the slot of a client that left while its stream was being opened', async () => {
    await eventually(async () => (await openStreams()) === 0, 'no open streams');
    await pauseRedis(300); // the handler waits for the epoch ...
    const req = http.get(`${api.url}/api/events`, { headers: ADMIN });
    req.on('error', () => {});
    await new Promise((r) => setTimeout(r, 100));
    req.destroy(); // ... and the client leaves meanwhile
    await new Promise((r) => setTimeout(r, 600)); // the pause is over, the handler has run
    expect(await openStreams()).toBe(0);
    // Both slots are free: two streams open.
    const a = await openStream(api.url, ADMIN_TOKEN);
    const b = await openStream(api.url, ADMIN_TOKEN);
    a.close();
    b.close();
    await eventually(async () => (await openStreams()) === 0, 'the streams to close');
  });
});
