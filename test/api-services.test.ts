// The services' state routes with inject, against a real scheduler (service and worker), a
// messaging topic with a consumer group, and a file-service volume, on one Redis: tasks by
// state, one task, counts, workers and their load, stragglers, usage per tenant; topics and
// their lag; stat, readdir, find and largest directories. Tenant-scoped tokens see only their
// tenant's rows (tasks, stragglers, counts, usage) and their subtree of the volume.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileService, FILE_KNOBS } from '../controlplane/files/service.ts';
import { ROOT } from '../controlplane/files/types.ts';
import { KnobClient } from '../controlplane/knobs/client.ts';
import { MessagingKeys } from '../controlplane/messaging/keys.ts';
import { Topics } from '../controlplane/messaging/topics.ts';
import { ADMIN_TOKEN, TestClock } from './helpers/api-server.ts';
import { startRegistryApi, type RegistryApi } from './helpers/registry-fixtures.ts';
import { eventually, startTestRedis, type TestRedis } from './helpers/redis.ts';
import { startScheduler, type SchedulerHarness } from './helpers/scheduler-harness.ts';

const ADMIN = { authorization: `Bearer ${ADMIN_TOKEN}` };

/** The API's clock must be the scheduler's (real time): leases and heartbeats are compared. */
class WallClock extends TestClock {
  override now(): number {
    return Date.now();
  }
}

describe('services API', () => {
  let redis: TestRedis;
  let h: SchedulerHarness;
  let api: RegistryApi;
  let acme: { authorization: string };
  let globex: { authorization: string };
  let release: () => void = () => {};

  beforeAll(async () => {
    redis = await startTestRedis('single');
    h = await startScheduler(redis);
    api = await startRegistryApi(redis, { knobs: h.table, clock: new WallClock(0) });
    acme = api.bearer(await api.token('viewer', 'acme'));
    globex = api.bearer(await api.token('viewer', 'globex'));
  });
  afterAll(async () => {
    release();
    await api?.close();
    await h?.stop();
    await redis?.stop();
  });

  const get = (url: string, headers: Record<string, string> = ADMIN) =>
    api.app.inject({ url, headers });
  const ids = (res: { json(): { tasks: { id: string }[] } }) =>
    res
      .json()
      .tasks.map((t) => t.id)
      .sort();

  describe('scheduler', () => {
    it('lists runnable tasks by state, each tenant only its own', async () => {
      await h.service.client.submitMany([
        { id: 'a1', type: 'later', tenant: 'acme' },
        { id: 'a2', type: 'later', tenant: 'acme' },
        { id: 'a3', type: 'later', tenant: 'acme' },
        { id: 'g1', type: 'later', tenant: 'globex' },
        { id: 'g2', type: 'later', tenant: 'globex' },
      ]);
      const all = await get('/api/services/scheduler/tasks?state=runnable');
      expect(all.statusCode).toBe(200);
      expect(ids(all)).toEqual(['a1', 'a2', 'a3', 'g1', 'g2']);
      expect(ids(await get('/api/services/scheduler/tasks?state=runnable', acme))).toEqual([
        'a1',
        'a2',
        'a3',
      ]);
      // A tenant token cannot widen its view; an unscoped one may narrow it.
      expect(
        ids(await get('/api/services/scheduler/tasks?state=runnable&tenant=globex', acme)),
      ).toEqual(['a1', 'a2', 'a3']);
      expect(ids(await get('/api/services/scheduler/tasks?state=runnable&tenant=globex'))).toEqual([
        'g1',
        'g2',
      ]);
      expect((await get('/api/services/scheduler')).json().counts.runnable).toBe(5);
      expect((await get('/api/services/scheduler', acme)).json()).toMatchObject({
        tenant: 'acme',
        counts: { runnable: 3, done: 0 },
      });
    });

    it("answers another tenant's task as missing", async () => {
      const mine = await get('/api/services/scheduler/tasks/g1', globex);
      expect(mine.json()).toMatchObject({ id: 'g1', tenant: 'globex', state: 'runnable' });
      const theirs = await get('/api/services/scheduler/tasks/g1', acme);
      expect(theirs.statusCode).toBe(404);
      expect(theirs.json()).toEqual({
        error: {
          code: 'KNOBOS_SCHEDULER_UNKNOWN_TASK',
          message: 'task g1 does not exist in shard 0',
          field: 'id',
          rule: 'exists',
        },
      });
      expect((await get('/api/services/scheduler/tasks/nope')).statusCode).toBe(404);
      const badState = await get('/api/services/scheduler/tasks?state=sleeping');
      expect(badState.json().error).toMatchObject({ field: 'query.state', rule: 'enum' });
      const badShard = await get('/api/services/scheduler/tasks?state=done&shard=9');
      expect(badShard.json().error).toMatchObject({ field: 'query.shard', rule: 'enum' });
    });

    it('shows workers, done tasks, stragglers and usage per tenant', async () => {
      const held = new Promise<void>((r) => (release = r));
      await h.worker({
        concurrency: 4,
        handlers: {
          later: async () => 'ok',
          quick: async () => 'ok',
          slow: async () => held,
        },
      });
      await h.service.client.submitMany([
        ...Array.from({ length: 6 }, (_, i) => ({
          type: 'quick',
          stage: 's',
          tenant: 'acme',
          id: `q${i}`,
        })),
        ...Array.from({ length: 4 }, (_, i) => ({
          type: 'quick',
          stage: 's',
          tenant: 'globex',
          id: `r${i}`,
        })),
      ]);
      await eventually(async () => (await h.service.queries.counts()).done === 15, '15 done');
      await h.service.client.submit({ id: 'slow1', type: 'slow', stage: 's', tenant: 'acme' });
      await eventually(
        async () => (await h.service.client.get('slow1'))?.state === 'leased',
        'slow task leased',
      );
      await new Promise((r) => setTimeout(r, 300)); // far past 3x the quick tasks' median

      const done = await get('/api/services/scheduler/tasks?state=done&limit=500', globex);
      expect(ids(done)).toEqual(['g1', 'g2', 'r0', 'r1', 'r2', 'r3']);
      const workers = (await get('/api/services/scheduler/workers', acme)).json().workers;
      expect(workers).toHaveLength(1);
      expect(workers[0]).toMatchObject({ live: true, slots: 4, usedSlots: 1 });
      const loaded = (await get('/api/services/scheduler/workers/loaded?high=0.2&low=0.1')).json();
      expect(loaded.overloaded.map((w: { id: string }) => w.id)).toEqual([workers[0].id]);
      expect(loaded.underloaded).toEqual([]);

      const s = (await get('/api/services/scheduler/stragglers?threshold=3')).json();
      expect(s.stragglers.map((x: { id: string }) => x.id)).toEqual(['slow1']);
      expect((await get('/api/services/scheduler/stragglers?threshold=3', globex)).json()).toEqual({
        threshold: 3,
        stragglers: [],
      });
      expect((await get('/api/services/scheduler/stragglers', acme)).json().threshold).toBe(3); // the scheduler.straggler_threshold knob

      const usage = (await get('/api/services/scheduler/usage')).json();
      expect(usage.tenants.map((t: { tenant: string }) => t.tenant).sort()).toEqual([
        'acme',
        'globex',
      ]);
      const mine = (await get('/api/services/scheduler/usage', globex)).json();
      expect(mine.tenants.map((t: { tenant: string }) => t.tenant)).toEqual(['globex']);
      const reversed = await get('/api/services/scheduler/usage?fromMs=10&toMs=5');
      expect(reversed.json().error).toMatchObject({ field: 'query.fromMs', rule: 'before_to' });
      release();
    });
  });

  describe('messaging', () => {
    it('lists topics with each consumer group lag and pending', async () => {
      const mkeys = new MessagingKeys(h.keys);
      await new Topics(api.redis, mkeys).ensure('orders', { partitions: 2 });
      const stream = mkeys.stream('orders', 0);
      for (let i = 0; i < 5; i++) await api.redis.xadd(stream, '*', 'n', String(i));
      await api.redis.xgroup('CREATE', stream, 'billing', '0');
      await api.redis.xreadgroup('GROUP', 'billing', 'c1', 'COUNT', 3, 'STREAMS', stream, '>');

      const res = await get('/api/services/messaging/topics', acme);
      expect(res.statusCode).toBe(200);
      expect(res.json().topics).toEqual([
        expect.objectContaining({
          name: 'orders',
          partitions: 2,
          messages: 5,
          groups: [{ group: 'billing', consumers: 1, lag: 2, pending: 3 }],
        }),
      ]);
      const one = (await get('/api/services/messaging/topics/orders')).json();
      expect(one.partitionStates.map((p: { length: number }) => p.length)).toEqual([5, 0]);
      const missing = await get('/api/services/messaging/topics/nope');
      expect(missing.statusCode).toBe(404);
      expect(missing.json().error).toMatchObject({
        code: 'KNOBOS_MESSAGING_TOPIC_NOT_FOUND',
        topic: 'nope',
      });
    });
  });

  describe('files', () => {
    let fs: FileService | undefined;
    let knobs: KnobClient | undefined;
    afterAll(async () => {
      await fs?.close();
      await knobs?.close();
    });

    it('reports a volume that does not exist yet, without creating it', async () => {
      const res = await get('/api/services/files/stat?path=/');
      expect(res.statusCode).toBe(503);
      expect(res.json().error).toMatchObject({ code: 'KNOBOS_FILES_NO_VOLUME', volume: 'default' });
    });

    it('shows a tenant its subtree as the whole volume', async () => {
      knobs = await KnobClient.start({ table: h.table, names: FILE_KNOBS });
      fs = await FileService.start({ redis: api.redis, keys: h.keys, knobs });
      await fs.mkdir(ROOT, '/tenants/acme/docs', { parents: true });
      await fs.mkdir(ROOT, '/tenants/globex', { parents: true });
      for (const [p, n] of [
        ['/tenants/acme/docs/a', 5000],
        ['/tenants/acme/b', 10],
        ['/tenants/globex/secret', 9000],
        ['/top', 7000],
      ] as const) {
        await fs.create(ROOT, p);
        await fs.write(ROOT, p, 0, Buffer.alloc(n, 1));
      }
      const names = (r: { json(): { entries: { name: string }[] } }) =>
        r
          .json()
          .entries.map((e) => e.name)
          .sort();
      expect(names(await get('/api/services/files/readdir?path=/'))).toEqual(['tenants', 'top']);
      expect(names(await get('/api/services/files/readdir?path=/', acme))).toEqual(['b', 'docs']);
      const st = (await get('/api/services/files/stat?path=/docs/a', acme)).json();
      expect(st).toMatchObject({ path: '/docs/a', type: 'file', sizeBytes: 5000 });
      const escape = await get('/api/services/files/stat?path=/../globex/secret', acme);
      expect(escape.statusCode).toBe(400);
      expect(escape.json().error).toMatchObject({
        code: 'KNOBOS_FILES_INVALID',
        rule: 'no_dot_segments',
      });
      const hidden = await get('/api/services/files/stat?path=/secret', acme);
      expect(hidden.statusCode).toBe(404);

      const big = (await get('/api/services/files/find?under=/&minSizeBytes=1000', acme)).json();
      expect(big.files.map((f: { path: string }) => f.path)).toEqual(['/docs/a']);
      // The planner's count covers the whole volume: a tenant does not see it.
      expect(big).not.toHaveProperty('candidates');
      const all = (await get('/api/services/files/find?under=/&minSizeBytes=1000')).json();
      expect(all.candidates).toBeGreaterThanOrEqual(3);
      expect(all.files.map((f: { path: string }) => f.path).sort()).toEqual([
        '/tenants/acme/docs/a',
        '/tenants/globex/secret',
        '/top',
      ]);
      // Page by page through the API: the cursor it hands out is taken back.
      const paged: string[] = [];
      let cursor: string | null = null;
      do {
        const page: { files: { path: string }[]; cursor: string | null } = (
          await get(
            `/api/services/files/find?under=/&minSizeBytes=1000&limit=1${cursor ? `&cursor=${cursor}` : ''}`,
          )
        ).json();
        paged.push(...page.files.map((f: { path: string }) => f.path));
        cursor = page.cursor;
      } while (cursor && paged.length < 10);
      expect(paged.sort()).toEqual(all.files.map((f: { path: string }) => f.path).sort());
      // A tenant's cursor is a token for the position, which is a volume path (review: it
      // showed /tenants/acme/..., and at the scan bound could name another tenant's file).
      const mine: string[] = [];
      let token: string | null = null;
      const tokens: string[] = [];
      do {
        const page: { files: { path: string }[]; cursor: string | null } = (
          await get(
            `/api/services/files/find?under=/&limit=1${token ? `&cursor=${token}` : ''}`,
            acme,
          )
        ).json();
        mine.push(...page.files.map((f) => f.path));
        token = page.cursor;
        if (token) tokens.push(token);
      } while (token && mine.length < 10);
      expect(mine.sort()).toEqual(['/b', '/docs/a']);
      expect(tokens.length).toBeGreaterThan(0);
      for (const t of tokens) expect(t).toMatch(/^t:[0-9a-f]{32}$/);
      const refused = async (cursor: string, who: Record<string, string>) => {
        const res = await get(`/api/services/files/find?under=/&limit=1&cursor=${cursor}`, who);
        expect(res.statusCode, cursor).toBe(400);
        expect(res.json().error).toMatchObject({ field: 'query.cursor', rule: 'cursor' });
      };
      await refused(tokens[0] as string, globex); // another tenant's token
      await refused(tokens[0] as string, ADMIN); // an operator passes positions, not tokens
      await refused(`size:0:${Buffer.from('/tenants/globex/secret').toString('base64url')}`, acme);
      await refused(`t:${'0'.repeat(32)}`, acme); // expired or never given
      const dirs = (await get('/api/services/files/largest-dirs?uid=0&n=10', acme)).json().dirs;
      expect(dirs.map((d: { path: string }) => d.path)).toEqual(['/', '/docs']);
      const rootDirs = (await get('/api/services/files/largest-dirs?uid=0&n=2')).json().dirs;
      expect(rootDirs[0]).toMatchObject({ path: '/', subtreeBytes: 21010 });
    });

    it('refuses a readdir cursor beyond 64 bits with a 400, and takes the largest one', async () => {
      for (const cursor of ['18446744073709551616', '99999999999999999999']) {
        const res = await get(`/api/services/files/readdir?path=/&cursor=${cursor}`);
        expect(res.statusCode, cursor).toBe(400);
        expect(res.json().error, cursor).toMatchObject({
          code: 'KNOBOS_API_VALIDATION',
          field: 'query.cursor',
          rule: 'cursor',
        });
      }
      const max = await get('/api/services/files/readdir?path=/&cursor=18446744073709551615');
      expect(max.statusCode).toBe(200);
    });
  });
});
