// Tenant isolation over every route of the API. The routes come from the server's own route
// table (routeTable), so a route added later is walked without being listed here. Tenant
// "globex" owns scheduler tasks (done, dead, leased, waiting), a topic, files, tokens and audit
// entries; tenant "acme"'s admin token then calls every route with globex's identifiers in the
// path, the query and the body. Every answer must be a refusal (400/403/404) or a success that
// shows nothing of globex; after every write, globex's rows and the shared configuration are
// unchanged. As a control, globex's own token does see its rows through the same routes. The
// API runs as its Redis ACL user (docs/security.md), as `npm start` runs it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenStore } from '../controlplane/api/auth/tokens.ts';
import type { RequestAuth } from '../controlplane/api/context.ts';
import { TOPICS_MAX, visibleTopics } from '../controlplane/api/routes/services-messaging.ts';
import { routeTable, type RouteEntry } from '../controlplane/api/server.ts';
import { FileService, FILE_KNOBS } from '../controlplane/files/service.ts';
import { ROOT } from '../controlplane/files/types.ts';
import { KnobClient } from '../controlplane/knobs/client.ts';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { MessagingKeys } from '../controlplane/messaging/keys.ts';
import { Topics } from '../controlplane/messaging/topics.ts';
import { aclLogin, aclPasswords, applyAcl } from '../controlplane/redis/acl.ts';
import { connect, type RedisClient } from '../controlplane/redis/connect.ts';
import { RegistryKeys } from '../controlplane/registry/keys.ts';
import { SchedKeys } from '../controlplane/scheduler/keys.ts';
import { PermanentTaskError } from '../controlplane/scheduler/worker.ts';
import { TestClock } from './helpers/api-server.ts';
import { startRegistryApi, type RegistryApi } from './helpers/registry-fixtures.ts';
import { eventually, startTestRedis, type TestRedis } from './helpers/redis.ts';
import { startScheduler, type SchedulerHarness } from './helpers/scheduler-harness.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const A = 'acme';
const B = 'globex';

/** The API's clock must be the scheduler's (real time): leases and heartbeats are compared. */
class WallClock extends TestClock {
  override now(): number {
    return Date.now();
  }
}

type Json = Record<string, unknown>;
interface Probe {
  method: string;
  url: string;
  payload?: Json;
}

/** Values of B to put in each named path parameter, query field or body field. */
function hintsFor(bTokenId: string): Record<string, unknown[]> {
  return {
    id: ['globex-done-0', 'globex-dead', 'globex-slow', 'globex-child', 'globex-gone', bTokenId],
    topic: ['globex.orders'],
    service: ['scheduler', 'files', 'messaging'],
    metric: ['ops_read', 'claims_ok'],
    name: ['scheduler.policy', 'scheduler'],
    version: [1],
    tenant: [B],
    state: ['runnable', 'delayed', 'leased', 'done', 'dead', 'cancelled'],
    path: ['/', '/secret-globex', '/tenants/globex/secret-globex', '/../globex/secret-globex'],
    under: ['/', '/tenants/globex', '/../globex'],
    uid: [0],
    target: ['globex-done-0', bTokenId],
    role: ['admin'],
    reason: ['tenant isolation test'],
    value: ['sjf'],
    baseVersion: [1],
    toVersion: [1],
  };
}

/** A value of a JSON schema's type, for a field without a hint. */
function fallback(schema: Json): unknown {
  if (Array.isArray(schema['enum'])) return schema['enum'][0];
  const type = Array.isArray(schema['type']) ? schema['type'][0] : schema['type'];
  if (type === 'integer' || type === 'number') return schema['minimum'] ?? 1;
  if (type === 'boolean') return false;
  if (type === 'object') return {};
  if (type === 'array') return [];
  return 'x';
}

/**
 * Variants of an object schema's values: every required property filled, and each hinted
 * property tried with each of its hints (one property varied at a time, so the count stays
 * small), optional hinted properties also tried.
 */
function variants(schema: Json | undefined, hints: Record<string, unknown[]>): Json[] {
  if (!schema || schema['type'] !== 'object') return [{}];
  const props = (schema['properties'] ?? {}) as Record<string, Json>;
  const required = new Set((schema['required'] ?? []) as string[]);
  const base: Json = {};
  for (const k of required) base[k] = hints[k]?.[0] ?? fallback(props[k] ?? {});
  const out: Json[] = [base];
  for (const k of Object.keys(props))
    for (const v of hints[k] ?? []) if (base[k] !== v) out.push({ ...base, [k]: v });
  return out;
}

function probes(route: RouteEntry, method: string, hints: Record<string, unknown[]>): Probe[] {
  const s = route.schema ?? {};
  const out: Probe[] = [];
  for (const params of variants(s['params'] as Json | undefined, hints))
    for (const query of variants(s['querystring'] as Json | undefined, hints))
      for (const body of method === 'GET' ? [undefined] : variants(s['body'] as Json, hints)) {
        const path = route.url.replace(/:([A-Za-z]+)/g, (_, p: string) =>
          encodeURIComponent(String(params[p] ?? 'x')),
        );
        const qs = new URLSearchParams(
          Object.entries(query).map(([k, v]) => [k, String(v)]),
        ).toString();
        out.push({ method, url: qs ? `${path}?${qs}` : path, ...(body ? { payload: body } : {}) });
      }
  return out;
}

describe('tenant isolation over every API route', () => {
  let redis: TestRedis;
  let admin: RedisClient;
  let h: SchedulerHarness;
  let api: RegistryApi;
  let fs: FileService;
  let fileKnobs: KnobClient;
  let acme: { authorization: string };
  let globex: { authorization: string };
  let bTokenId: string;
  let bToken: string;
  let release: () => void = () => {};
  const mkeys = () => new MessagingKeys(h.keys);

  beforeAll(async () => {
    redis = await startTestRedis('single');
    admin = redis.client();
    // Long leases and heartbeats: the snapshot compares task states, which a lease expiring or
    // a worker declared dead under load (the harness's 2 s and 200 ms) would change by itself.
    h = await startScheduler(redis, { knobs: { 'scheduler.lease_ms': 600_000 } });
    // The API runs as its own Redis ACL user, as under `npm start`.
    const passwords = aclPasswords({}, { generate: true });
    await applyAcl(admin, h.keys, passwords);
    const apiUser = connect(redis.target, aclLogin(h.keys, passwords, 'api'));
    apiUser.on('error', () => {});
    api = await startRegistryApi(
      { ...redis, client: () => apiUser },
      { knobs: new KnobTable(apiUser, { keys: h.keys }), clock: new WallClock(0) },
    );
    // It is that user: Redis refuses it a write to the scheduler's tables.
    await expect(api.redis.set(new SchedKeys(h.keys).seq(), '0')).rejects.toThrow(/NOPERM/);
    acme = api.bearer(await api.token('admin', A));
    bToken = await api.token('admin', B);
    globex = api.bearer(bToken);
    bTokenId = /^knobos_([0-9a-f]{16})_/.exec(bToken)![1]!;
    await api.token('viewer', B);

    // The scheduler: done, dead, leased (a straggler) and waiting tasks of both tenants.
    const held = new Promise<void>((r) => (release = r));
    await h.worker({
      heartbeatMs: 5_000,
      concurrency: 4,
      handlers: {
        quick: async () => 'ok',
        slow: () => held,
        bad: () => {
          throw new PermanentTaskError('globex-secret-error');
        },
      },
    });
    await h.service.client.submitMany([
      ...[0, 1, 2, 3, 4].map((i) => ({
        id: `globex-done-${i}`,
        type: 'quick',
        stage: 's',
        tenant: B,
        payload: { secret: 'globex-payload' },
      })),
      ...[0, 1, 2, 3, 4].map((i) => ({
        id: `acme-done-${i}`,
        type: 'quick',
        stage: 's',
        tenant: A,
      })),
      { id: 'globex-dead', type: 'bad', tenant: B },
    ]);
    await eventually(async () => (await h.service.queries.counts()).done === 10, '10 done');
    await h.service.client.submitMany([
      { id: 'globex-slow', type: 'slow', stage: 's', tenant: B, jobId: 'globex-job' },
      {
        id: 'globex-child',
        type: 'quick',
        stage: 's',
        tenant: B,
        jobId: 'globex-job',
        parents: ['globex-slow'],
      },
      { id: 'globex-gone', type: 'quick', stage: 's', tenant: B, parents: ['globex-slow'] },
    ]);
    await h.service.client.cancel('globex-gone', { actor: 'test', reason: 'a cancelled task' });
    await eventually(
      async () => (await h.service.client.get('globex-slow'))?.state === 'leased',
      'slow task leased',
    );
    await eventually(
      async () => (await h.service.client.get('globex-dead'))?.state === 'dead',
      'bad task dead',
    );
    // A straggler by the knob's threshold (3x its stage's median): under load the quick tasks'
    // durations, and so the time this takes, grow.
    await eventually(
      async () =>
        (await h.service.queries.stragglers({ now: Date.now(), threshold: 3 })).some(
          (x) => x.id === 'globex-slow',
        ),
      'slow task a straggler',
      30_000,
    );

    // Messaging: a topic of each tenant and a shared one. Globex's come first and fill more
    // than a page of the topic list, so acme's view must look past them.
    const topics = new Topics(admin, mkeys());
    for (let i = 0; i < TOPICS_MAX; i++) await topics.ensure(`globex.t${i}`, { partitions: 1 });
    await sleep(5); // later creation times than globex's
    for (const t of ['globex.orders', 'acme.orders', 'requests']) {
      await topics.ensure(t, { partitions: 1 });
      await admin.xadd(mkeys().stream(t, 0), '*', 'n', t);
    }

    // Files: each tenant's subtree.
    fileKnobs = await KnobClient.start({ table: h.table, names: FILE_KNOBS });
    fs = await FileService.start({ redis: admin, keys: h.keys, knobs: fileKnobs });
    await fs.mkdir(ROOT, '/tenants/globex/deep', { parents: true });
    await fs.mkdir(ROOT, '/tenants/acme', { parents: true });
    for (const [p, n] of [
      ['/tenants/globex/secret-globex', 9000],
      ['/tenants/globex/deep/globex-2', 100],
      ['/tenants/acme/mine', 10],
    ] as const) {
      await fs.create(ROOT, p);
      await fs.write(ROOT, p, 0, Buffer.alloc(n, 7));
    }
    await fs.flush();
    await new Promise((r) => setTimeout(r, 300)); // the slow task is a straggler now
  });
  afterAll(async () => {
    release();
    await fs?.close();
    await fileKnobs?.close();
    await api?.close();
    await h?.stop();
    api?.redis.disconnect();
    await redis?.stop();
  });

  /** What must not change when acme writes: globex's rows and the shared configuration. */
  async function snapshot(): Promise<string> {
    const tasks = await Promise.all(
      ['globex-done-0', 'globex-dead', 'globex-slow', 'globex-child', 'globex-gone'].map(
        async (id) => {
          const t = await h.service.client.get(id);
          return t && { id: t.id, state: t.state, tenant: t.tenant, payload: t.payload };
        },
      ),
    );
    const st = await fs.stat(ROOT, '/tenants/globex/secret-globex');
    const tokens = (await new TokenStore(admin, h.keys, new WallClock(0)).list(B)).map((t) => ({
      id: t.id,
      role: t.role,
      tenant: t.tenant,
    }));
    const knobs = (await h.table.list()).map((k) => [k.name, k.version, k.value, k.pinnedBy]);
    return JSON.stringify({
      tasks,
      file: [st.sizeBytes, st.version, st.mode, st.uid],
      dir: (await fs.readdir(ROOT, '/tenants/globex')).entries.map((e) => e.name).sort(),
      topic: await new Topics(admin, mkeys()).find('globex.orders'),
      messages: await admin.xlen(mkeys().stream('globex.orders', 0)),
      tokens,
      tokenWorks: (await new TokenStore(admin, h.keys, new WallClock(0)).verify(bToken))?.id,
      knobs,
      freeze: await admin.hgetall(h.keys.knobFreeze()),
      policies: await admin.zcard(new RegistryKeys(h.keys).names()),
    });
  }

  const leaks = (body: string) =>
    [B, bTokenId].filter((marker) => body.toLowerCase().includes(marker.toLowerCase()));

  /** Routes that hold tenant rows: globex's own token must see globex there (the control). */
  const TENANT_ROW_ROUTES = [
    'GET /api/services/scheduler/tasks',
    'GET /api/services/scheduler/tasks/:id',
    'GET /api/services/scheduler/stragglers',
    'GET /api/services/scheduler/usage',
    'GET /api/services/messaging/topics',
    'GET /api/services/messaging/topics/:topic',
    'GET /api/services/files/readdir',
    'GET /api/services/files/find',
    'GET /api/tokens',
    'GET /api/audit',
  ];

  it("refuses or hides globex's rows from acme's token on every route", async () => {
    const routes = routeTable(api.app).filter(
      (r) =>
        r.config.access !== 'public' &&
        // Server-sent events never end under inject; the stream carries only knob changes
        // (shared configuration), checked by the events tests.
        !((r.schema?.['produces'] as string[] | undefined) ?? []).includes('text/event-stream'),
    );
    expect(routes.length).toBeGreaterThan(30);
    const hints = hintsFor(bTokenId);
    const before = await snapshot();
    const failures: string[] = [];
    const seenByOwner = new Set<string>();
    let probed = 0;
    for (const route of routes)
      for (const method of route.methods.filter((m) => m !== 'HEAD'))
        for (const p of probes(route, method, hints)) {
          probed++;
          const inject = (headers: Record<string, string>) =>
            api.app.inject({
              method: p.method as 'GET',
              url: p.url,
              headers,
              ...(p.payload ? { payload: p.payload } : {}),
            });
          const res = await inject(acme);
          const what = `${p.method} ${p.url} ${p.payload ? JSON.stringify(p.payload) : ''}`;
          if (res.statusCode < 400) {
            const found = leaks(res.body);
            if (found.length) failures.push(`${what} -> ${res.statusCode} shows ${found}`);
          } else if (![400, 403, 404].includes(res.statusCode))
            failures.push(`${what} -> ${res.statusCode} ${res.body.slice(0, 200)}`);
          if (p.method !== 'GET') {
            const after = await snapshot();
            if (after !== before) failures.push(`${what} changed globex's rows or shared state`);
          } else if (TENANT_ROW_ROUTES.includes(`GET ${route.url}`)) {
            const own = await inject(globex);
            if (own.statusCode === 200 && leaks(own.body).length)
              seenByOwner.add(`GET ${route.url}`);
          }
        }
    expect(failures).toEqual([]);
    expect(probed).toBeGreaterThan(100);
    // The control: the rows were there, and their owner sees them through the same routes.
    expect([...seenByOwner].sort()).toEqual([...TENANT_ROW_ROUTES].sort());
  });

  it("acme's token still sees acme's own rows (the view is the tenant's, not empty)", async () => {
    const get = (url: string) => api.app.inject({ url, headers: acme });
    const done = (await get('/api/services/scheduler/tasks?state=done')).json();
    expect(done.tasks.map((t: { id: string }) => t.id).sort()).toEqual(
      [0, 1, 2, 3, 4].map((i) => `acme-done-${i}`),
    );
    const topics = (await get('/api/services/messaging/topics')).json();
    expect(topics.topics.map((t: { name: string }) => t.name).sort()).toEqual([
      'acme.orders',
      'requests',
    ]);
    expect((await get('/api/services/messaging/topics/globex.orders')).statusCode).toBe(404);
    const dir = (await get('/api/services/files/readdir?path=/')).json();
    expect(dir.entries.map((e: { name: string }) => e.name)).toEqual(['mine']);
  });

  it("acme's topic list pages past globex's topics, and says where it stopped", async () => {
    const topics = new Topics(admin, mkeys());
    const auth: RequestAuth = {
      actor: 'a',
      role: 'viewer',
      tenant: A,
      tokenId: null,
      via: 'token',
    };
    // Pages of 7 names: acme's topics are on the 15th page, after 101 of globex's.
    expect(await visibleTopics(topics, auth, TOPICS_MAX, { page: 7 })).toEqual({
      names: ['acme.orders', 'requests'],
      truncated: false,
    });
    expect(await visibleTopics(topics, auth, 1, { page: 7 })).toEqual({
      names: ['acme.orders'],
      truncated: true,
    });
    // A scan bounded before acme's topics finds none, and says it was cut.
    expect(await visibleTopics(topics, auth, TOPICS_MAX, { page: 7, scanMax: 50 })).toEqual({
      names: [],
      truncated: true,
    });
  });
});
