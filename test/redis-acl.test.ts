// Redis ACL users (controlplane/redis/acl.ts) against real redis-server processes, one node and
// a 3-node cluster: every user is refused by Redis itself (NOPERM) on keys of families it was
// not granted, on writes to families it may only read, on commands it does not need and on
// channels of others; keys touched inside Lua scripts are checked too. And each service still
// works under its own user: a short scenario of the scheduler, messaging, files, the loop, a
// learner and the API, each over a connection logged in as that user.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildServer } from '../controlplane/api/server.ts';
import { tokenAuditKey } from '../controlplane/api/keys.ts';
import { FileKeys } from '../controlplane/files/keys.ts';
import { FILE_KNOBS, FileService } from '../controlplane/files/service.ts';
import { ROOT } from '../controlplane/files/types.ts';
import { KnobClient } from '../controlplane/knobs/client.ts';
import { ManualClock } from '../controlplane/knobs/clock.ts';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { createLogger } from '../controlplane/log.ts';
import { ProposalTable } from '../controlplane/loop/proposals.ts';
import { Consumer, MessagingKeys, Producer, Topics } from '../controlplane/messaging/index.ts';
import {
  aclLogin,
  aclModeFromEnv,
  aclPasswords,
  aclRules,
  aclUserName,
  ACL_USER_NAMES,
  applyAcl,
  passwordEnvName,
  type AclPasswords,
  type AclUserName,
} from '../controlplane/redis/acl.ts';
import { AclConnections } from '../controlplane/redis/acl-connect.ts';
import { connect, type RedisClient } from '../controlplane/redis/connect.ts';
import { RegistryKeys } from '../controlplane/registry/keys.ts';
import { SchedKeys } from '../controlplane/scheduler/keys.ts';
import { migrationKey, readMigration } from '../controlplane/scheduler/migration-row.ts';
import { PlacementMigrator } from '../controlplane/scheduler/placement-migrator.ts';
import { PLACEMENT_KNOB, shardNamesOnPrimaries } from '../controlplane/scheduler/placement.ts';
import { SchedulerRouter, startShardServices } from '../controlplane/scheduler/router.ts';
import { SCHEDULER_KNOBS, SchedulerService } from '../controlplane/scheduler/service.ts';
import { WorkerRuntime } from '../controlplane/scheduler/worker.ts';
import { ValidationError } from '../controlplane/store/errors.ts';
import { Keys } from '../controlplane/store/keys.ts';
import {
  eventually,
  startTestRedis,
  uniqueKeys,
  type Backend,
  type TestRedis,
} from './helpers/redis.ts';

const quiet = createLogger('acl-test', 'silent');
const HOUR_MS = 3_600_000;

type Access = 'rw' | 'r' | '-';
const FAMILIES = [
  'sched',
  'placement',
  'msg',
  'files',
  'knobs',
  'policies',
  'tokens',
  'telemetry:scheduler',
  'telemetry:files',
  'traces:messaging',
] as const;
type Family = (typeof FAMILIES)[number];

/** What each user may do to each family, written out by hand (not derived from ACL_USERS). */
const EXPECTED: Record<Exclude<AclUserName, 'admin' | 'learner'>, Record<Family, Access>> = {
  scheduler: {
    sched: 'rw',
    placement: 'rw',
    msg: '-',
    files: '-',
    knobs: 'r',
    policies: 'r',
    tokens: '-',
    'telemetry:scheduler': 'rw',
    'telemetry:files': '-',
    'traces:messaging': '-',
  },
  messaging: {
    sched: '-',
    placement: '-',
    msg: 'rw',
    files: '-',
    knobs: 'r',
    policies: '-',
    tokens: '-',
    'telemetry:scheduler': '-',
    'telemetry:files': '-',
    'traces:messaging': 'rw',
  },
  files: {
    sched: '-',
    placement: '-',
    msg: '-',
    files: 'rw',
    knobs: 'r',
    policies: '-',
    tokens: '-',
    'telemetry:scheduler': '-',
    'telemetry:files': 'rw',
    'traces:messaging': '-',
  },
  loop: {
    sched: 'r',
    placement: 'r',
    msg: '-',
    files: '-',
    knobs: 'rw',
    policies: 'r',
    tokens: '-',
    'telemetry:scheduler': 'r',
    'telemetry:files': 'r',
    'traces:messaging': 'r',
  },
  api: {
    sched: 'r',
    placement: 'r',
    msg: 'r',
    files: 'rw',
    knobs: 'rw',
    policies: 'rw',
    tokens: 'rw',
    'telemetry:scheduler': 'r',
    'telemetry:files': 'rw',
    'traces:messaging': 'r',
  },
};

/** A real key of each family, built by the family's own key module. */
function realKeys(keys: Keys): Record<Family, string> {
  return {
    sched: new SchedKeys(keys, '0').task('t1'),
    placement: migrationKey(keys, 'acme'),
    msg: new MessagingKeys(keys, '0').stream('orders', 0),
    files: new FileKeys(keys, 'default').inode(1),
    knobs: keys.knobRow('scheduler.policy'),
    policies: new RegistryKeys(keys).versions(),
    tokens: tokenAuditKey(keys),
    'telemetry:scheduler': keys.telemetry('scheduler'),
    'telemetry:files': keys.telemetry('files'),
    'traces:messaging': keys.trace('messaging', 'arrivals'),
  };
}

/** A string key of each family for write probes (`sched` and `msg` name a shard). */
function probeKey(keys: Keys, family: Family): string {
  const f =
    family === 'sched'
      ? 'sched:0'
      : family === 'msg'
        ? 'msg:0'
        : family === 'files'
          ? 'files:default'
          : family;
  return keys.key(f, 'acl-probe');
}

describe('redis ACL settings', () => {
  it('refuses a short or odd password, naming the variable, and a bad mode', () => {
    const env = { [passwordEnvName('scheduler')]: 'short' };
    const err = (() => {
      try {
        aclPasswords(env, { generate: true });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ValidationError);
    expect(err).toMatchObject({ field: 'KNOBOS_REDIS_PASSWORD_SCHEDULER', rule: 'password' });
    expect(() =>
      aclPasswords({ KNOBOS_REDIS_PASSWORD_API: 'has a space in it 1234' }, { generate: true }),
    ).toThrow(/KNOBOS_REDIS_PASSWORD_API/);
    expect(() => aclPasswords({}, { generate: false })).toThrow(
      expect.objectContaining({ field: 'KNOBOS_REDIS_PASSWORD_ADMIN', rule: 'required' }),
    );
    expect(() => aclModeFromEnv({ KNOBOS_REDIS_ACL: 'yes' }, true)).toThrow(
      expect.objectContaining({ field: 'KNOBOS_REDIS_ACL', rule: 'enum' }),
    );
    expect(aclModeFromEnv({}, true)).toBe('apply');
    expect(aclModeFromEnv({}, false)).toBe('off');
  });

  it('takes passwords from the environment, or generates distinct ones', () => {
    const given = 'a-password-from-the-env-0123';
    const a = aclPasswords({ KNOBOS_REDIS_PASSWORD_FILES: given }, { generate: true });
    expect(a.files).toBe(given);
    const b = aclPasswords({}, { generate: true });
    expect(new Set(Object.values(b)).size).toBe(ACL_USER_NAMES.length);
    expect(b.files).not.toBe(aclPasswords({}, { generate: true }).files);
    // The password reaches Redis only as the `>` rule.
    expect(aclRules(new Keys('k'), 'files', given).filter((r) => r.includes(given))).toEqual([
      `>${given}`,
    ]);
  });
});

describe("the node's connections (AclConnections)", () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterAll(async () => redis?.stop());

  it('embedded: applies the users, locks the default user, one connection per user', async () => {
    const keys = uniqueKeys();
    const conns = await AclConnections.open({
      target: redis.target,
      keys,
      env: {},
      embedded: true,
      log: quiet,
    });
    try {
      expect(conns.mode).toBe('apply');
      const files = conns.as('files');
      expect(conns.as('files')).toBe(files);
      expect(conns.as('admin')).not.toBe(files);
      await expect(files.set(keys.key('sched:0', 'x'), '1')).rejects.toThrow(/NOPERM/);
      await expect(conns.as('admin').set(keys.key('sched:0', 'x'), '1')).resolves.toBe('OK');
      expect(conns.login('admin')?.username).toBe(aclUserName(keys, 'admin'));
      // A connection without a login: PING, and SHUTDOWN for the managed stop(), nothing else.
      const anon = redis.client();
      expect(await anon.ping()).toBe('PONG');
      await expect(anon.get(keys.key('sched:0', 'x'))).rejects.toThrow(/NOPERM/);
      await expect(anon.call('ACL', 'LIST')).rejects.toThrow(/NOPERM/);
      expect(await conns.as('admin').call('ACL', 'DRYRUN', 'default', 'SHUTDOWN')).toBe('OK');
    } finally {
      conns.close();
    }
  });

  it('off: one shared connection; on without passwords: an error naming the variable', async () => {
    const keys = uniqueKeys();
    const env = { KNOBOS_REDIS_ACL: 'off' };
    const off = await AclConnections.open({
      target: redis.target,
      keys,
      env,
      embedded: true,
      log: quiet,
    });
    try {
      expect(off.as('files')).toBe(off.as('scheduler'));
      expect(off.login('admin')).toBeUndefined();
    } finally {
      off.close();
    }
    await expect(
      AclConnections.open({
        target: redis.target,
        keys,
        env: { KNOBOS_REDIS_ACL: 'on' },
        embedded: false,
        log: quiet,
      }),
    ).rejects.toMatchObject({ field: 'KNOBOS_REDIS_PASSWORD_ADMIN', rule: 'required' });
  });
});

describe.each<Backend>(['single', 'cluster'])('redis ACL users on %s redis', (backend) => {
  let redis: TestRedis;
  let admin: RedisClient;
  let keys: Keys;
  let passwords: AclPasswords;
  const conns: RedisClient[] = [];
  const closers: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    // The cluster has a replica per primary: the users must reach replicas too.
    redis = await startTestRedis(backend, backend === 'cluster' ? { replicas: 1 } : {});
    admin = redis.client();
    keys = uniqueKeys();
    passwords = aclPasswords({}, { generate: true });
    await applyAcl(admin, keys, passwords);
    const table = new KnobTable(admin, { keys, clock: new ManualClock(Date.now() - HOUR_MS) });
    await table.seed();
    for (const f of FAMILIES) await admin.set(probeKey(keys, f), 'seeded');
  });
  // Each test's services stop when it ends: none is left retrying against the node the
  // failover test kills, which made that test and the teardown slow past their limits.
  afterEach(async () => {
    for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
    conns.splice(0).forEach((c) => c.disconnect());
  });
  afterAll(async () => redis?.stop());

  function as(user: AclUserName): RedisClient {
    const c = connect(redis.target, aclLogin(keys, passwords, user));
    c.on('error', () => {});
    conns.push(c);
    return c;
  }

  it('creates every user on every node, replicas included', async () => {
    // Each node on its own connection, from the processes started (not the client's pool).
    const servers = redis.cluster?.nodes ?? [redis.single!];
    expect(servers.length).toBe(backend === 'cluster' ? 6 : 1);
    for (const server of servers) {
      const node = connect({ url: server.url });
      node.on('error', () => {});
      conns.push(node);
      const users = (await node.call('ACL', 'USERS')) as string[];
      for (const u of ACL_USER_NAMES) expect(users, server.url).toContain(aclUserName(keys, u));
    }
  });

  it('escapes glob characters of the key prefix', async () => {
    const odd = new Keys('p*');
    const pw = aclPasswords({}, { generate: true });
    await applyAcl(admin, odd, pw, { users: ['files'] });
    const lookalike = new Keys('pX');
    await admin.set(new FileKeys(lookalike, 'default').volumeRow(), 'other install');
    const files = connect(redis.target, aclLogin(odd, pw, 'files'));
    files.on('error', () => {});
    conns.push(files);
    await expect(files.get(new FileKeys(lookalike, 'default').volumeRow())).rejects.toThrow(
      /NOPERM/,
    );
    await expect(files.get(new FileKeys(odd, 'default').volumeRow())).resolves.toBeNull();
  });

  it('refuses a wrong password', async () => {
    // One node (a cluster client would retry the refused login forever).
    const t = redis.target;
    const node = 'url' in t ? t : { url: `redis://${t.cluster[0]!.host}:${t.cluster[0]!.port}` };
    const bad = connect(node, {
      username: aclLogin(keys, passwords, 'files').username as string,
      password: 'not-the-password-0123',
      maxRetriesPerRequest: 0,
    });
    bad.on('error', () => {});
    conns.push(bad);
    await expect(bad.get(probeKey(keys, 'files'))).rejects.toThrow(/WRONGPASS/);
  });

  it.each(Object.keys(EXPECTED) as (keyof typeof EXPECTED)[])(
    '%s: reads and writes only the families granted to it',
    async (user) => {
      const c = as(user);
      const real = realKeys(keys);
      for (const f of FAMILIES) {
        const access = EXPECTED[user][f];
        const what = `${user} on ${f}`;
        const read = c.exists(real[f]);
        const get = c.get(probeKey(keys, f));
        if (access === '-') {
          await expect(read, what).rejects.toThrow(/NOPERM/);
          await expect(get, what).rejects.toThrow(/NOPERM/);
        } else {
          await expect(read, what).resolves.toBeTypeOf('number');
          await expect(get, what).resolves.not.toBeUndefined();
        }
        const write = c.set(probeKey(keys, f), `by ${user}`);
        if (access === 'rw') await expect(write, what).resolves.toBe('OK');
        else await expect(write, what).rejects.toThrow(/NOPERM/);
        // Nothing a refused write asked for happened.
        if (access !== 'rw') expect(await admin.get(probeKey(keys, f)), what).toBe('seeded');
        else await admin.set(probeKey(keys, f), 'seeded');
      }
    },
  );

  it.each(['scheduler', 'messaging', 'files', 'loop', 'learner', 'api'] as const)(
    '%s: refuses commands no service needs',
    async (user) => {
      const c = as(user);
      const refused: [string, ...string[]][] = [
        ['FLUSHALL'],
        ['FLUSHDB'],
        ['CONFIG', 'GET', 'maxmemory'],
        ['CONFIG', 'SET', 'maxmemory', '1'],
        ['KEYS', '*'],
        ['RANDOMKEY'],
        ['ACL', 'LIST'],
        ['ACL', 'SETUSER', 'intruder', 'on', '+@all', '~*'],
        ['CLIENT', 'LIST'],
        ['CLIENT', 'KILL', 'TYPE', 'normal'],
        ['SAVE'],
        ['SLOWLOG', 'GET'],
        ['SCRIPT', 'FLUSH'],
        ['FUNCTION', 'FLUSH'],
        ['MODULE', 'LIST'],
        ['SWAPDB', '0', '1'],
      ];
      // SCAN lists every key name of a node: only the scheduler (migrations) may.
      if (user === 'scheduler') expect(await c.call('SCAN', '0')).toHaveLength(2);
      else refused.push(['SCAN', '0']);
      for (const [cmd, ...args] of refused)
        await expect(c.call(cmd, ...args), `${user}: ${cmd} ${args.join(' ')}`).rejects.toThrow(
          /NOPERM/,
        );
      // Asked with ACL DRYRUN, not run: a sync script debug session would block the server,
      // and BCAST tracking reports key names outside the user's grants.
      for (const cmd of [
        ['SCRIPT', 'DEBUG', 'SYNC'],
        ['CLIENT', 'TRACKING', 'ON', 'BCAST', 'PREFIX', 'knobos:'],
        ['CLIENT', 'CACHING', 'YES'],
      ])
        expect(
          await admin.call('ACL', 'DRYRUN', aclUserName(keys, user), ...cmd),
          `${user}: ${cmd.join(' ')}`,
        ).toMatch(/no permissions/);
      // ... and the probes every connection makes still work.
      expect(await c.ping()).toBe('PONG');
      expect(await c.info('server')).toMatch(/redis_version/);
      // WAIT: durable writes wait for replica acknowledgements (store.replica_acks).
      expect(await c.call('WAIT', '0', '0')).toBeTypeOf('number');
    },
  );

  it('refuses channels of other families; services follow knob changes but cannot announce them', async () => {
    for (const user of ['scheduler', 'messaging', 'files'] as const) {
      const sub = as(user);
      for (const ch of [
        keys.channel('sched:0', 'events'),
        keys.channel('files:default', 'events'),
        keys.channel('tokens', 'events'),
      ])
        await expect(sub.subscribe(ch), `${user} subscribes ${ch}`).rejects.toThrow(/NOPERM/);
      await expect(sub.subscribe(keys.knobChanges())).resolves.toBe(1);
      const pub = as(user);
      await expect(pub.publish(keys.knobChanges(), '{}'), `${user} publishes`).rejects.toThrow(
        /NOPERM/,
      );
    }
    // The loop's knob scripts publish changes, so it may.
    await expect(as('loop').publish(keys.knobChanges(), 'hello')).resolves.toBeTypeOf('number');
  });

  it('checks keys touched inside Lua scripts against the caller', async () => {
    const c = as('scheduler');
    const other = realKeys(keys).files;
    // A declared key of another family: refused before the script runs.
    await expect(c.eval("return redis.call('EXISTS', KEYS[1])", 1, other)).rejects.toThrow(
      /NOPERM/,
    );
    // A declared key of its own family it may use.
    const own = probeKey(keys, 'sched');
    await expect(c.eval("return redis.call('GET', KEYS[1])", 1, own)).resolves.toBe('seeded');
    // A declared key it may only read: EVAL counts declared keys as written.
    await expect(
      c.eval("return redis.call('GET', KEYS[1])", 1, keys.knobRow('scheduler.policy')),
    ).rejects.toThrow(/NOPERM/);
    if (backend === 'single') {
      // An undeclared key of another family, reached from inside the script (one node only:
      // a cluster would refuse it for its slot first).
      await expect(
        c.eval("return redis.call('SET', ARGV[1], 'x')", 1, own, probeKey(keys, 'files')),
      ).rejects.toThrow(/can't access at least one of the keys/);
      expect(await admin.get(probeKey(keys, 'files'))).toBe('seeded');
    }
  });

  it('the scheduler runs tasks under its own user', async () => {
    const redisUser = as('scheduler');
    const table = new KnobTable(redisUser, { keys });
    const knobs = await KnobClient.start({ table, names: SCHEDULER_KNOBS, resyncIntervalMs: 0 });
    closers.push(() => knobs.close());
    const service = SchedulerService.start({
      redis: redisUser,
      knobs,
      keys,
      log: quiet,
      idleWaitMs: 100,
      traceSampleRate: { arrivals: 1, durations: 1, decisions: 1, jobs: 1 },
      telemetryIntervalMs: 100,
    });
    closers.push(() => service.stop());
    const worker = await WorkerRuntime.start({
      redis: redisUser,
      keys,
      id: 'acl-w',
      concurrency: 2,
      handlers: { echo: async (t) => ({ got: t.payload }) },
      log: quiet,
      traceSampleRate: { durations: 1, jobs: 1 },
    });
    closers.push(() => worker.stop({ drain: false }));
    await service.client.submitMany(
      Array.from({ length: 10 }, (_, i) => ({ type: 'echo', payload: { i }, jobId: 'j' })),
    );
    await eventually(async () => (await service.queries.counts()).done === 10, '10 done');
    await eventually(
      async () => (await admin.xlen(keys.telemetry('scheduler'))) > 0,
      'scheduler telemetry written',
    );
    await eventually(
      async () => (await admin.xlen(keys.trace('scheduler', 'arrivals'))) > 0,
      'scheduler arrivals traced',
    );
  });

  it('messaging publishes and consumes under its own user', async () => {
    const redisUser = as('messaging');
    const mkeys = new MessagingKeys(keys, '0');
    const knobs = await KnobClient.start({
      table: new KnobTable(redisUser, { keys }),
      names: ['messaging.batch_size', 'messaging.linger_ms', 'messaging.partitions'],
      resyncIntervalMs: 0,
    });
    closers.push(() => knobs.close());
    const topics = new Topics(redisUser, mkeys, { knobs });
    await topics.ensure('acl-orders');
    const producer = new Producer({ redis: redisUser, keys: mkeys, knobs });
    closers.push(() => producer.close());
    await Promise.all(
      Array.from({ length: 40 }, (_, i) => producer.publish('acl-orders', `m${i}`)),
    );
    const consumer = await Consumer.start({
      redis: redisUser,
      keys: mkeys,
      knobs,
      topic: 'acl-orders',
      group: 'g',
      handler: (_m, out) => {
        out.incr('total');
      },
    });
    closers.push(() => consumer.stop());
    const total = async () => {
      let n = 0;
      for (let p = 0; p < 4; p++)
        n += Number(await admin.get(mkeys.output('acl-orders', p, 'total')));
      return n;
    };
    await eventually(async () => (await total()) === 40, 'every message applied once');
  });

  it('files write and read under its own user', async () => {
    const redisUser = as('files');
    const knobs = await KnobClient.start({
      table: new KnobTable(redisUser, { keys }),
      names: FILE_KNOBS,
      resyncIntervalMs: 0,
    });
    closers.push(() => knobs.close());
    const fs = await FileService.start({ redis: redisUser, keys, knobs, traceSampleRate: 1 });
    closers.push(() => fs.close());
    await fs.mkdir(ROOT, '/tenants/a', { parents: true });
    await fs.create(ROOT, '/tenants/a/f');
    await fs.write(ROOT, '/tenants/a/f', 0, 'hello acl');
    expect((await fs.read(ROOT, '/tenants/a/f')).toString()).toBe('hello acl');
    expect((await fs.stat(ROOT, '/tenants/a/f')).sizeBytes).toBe(9);
    await fs.flush();
    expect(await admin.xlen(keys.telemetry('files'))).toBeGreaterThan(0);
  });

  it('the loop proposes and promotes; a learner proposes but may not promote', async () => {
    const clock = new ManualClock(Date.now());
    const loop = new KnobTable(as('loop'), { keys, clock });
    const learner = new KnobTable(as('learner'), { keys, clock });
    const proposal = await new ProposalTable(learner).create({
      learner: 'acl-test',
      changes: [{ name: 'scheduler.policy', value: 'sjf', baseVersion: 1 }],
      reason: 'a learner proposes',
    });
    expect(proposal.status).toBe('proposed');
    const row = await learner.get('scheduler.policy');
    await expect(
      learner.promote({
        name: 'scheduler.policy',
        value: 'sjf',
        baseVersion: row.version,
        actor: 'learner',
        reason: 'not its job',
      }),
    ).rejects.toThrow(/NOPERM|can't access/);
    expect((await loop.get('scheduler.policy')).version).toBe(row.version);
    const promoted = await loop.promote({
      name: 'scheduler.policy',
      value: 'sjf',
      baseVersion: row.version,
      actor: 'loop',
      reason: 'the loop promotes',
    });
    expect(promoted.version).toBe(row.version + 1);
  });

  it('the API serves under its own user', async () => {
    const apiUser = as('api');
    const app = await buildServer({
      redis: apiUser,
      knobs: new KnobTable(apiUser, { keys }),
      auth: { mode: 'off' },
    });
    closers.push(() => app.close());
    for (const url of [
      '/api/knobs',
      '/api/services/scheduler',
      '/api/services/messaging/topics',
      '/api/telemetry',
      '/api/audit',
      '/api/tokens',
    ]) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.statusCode, `${url}: ${res.body}`).toBe(200);
    }
    const created = await app.inject({
      method: 'POST',
      url: '/api/tokens',
      payload: { name: 'acl-viewer', role: 'viewer', tenant: 'a' },
    });
    expect(created.statusCode, created.body).toBe(201);
  });
  it('a placement change migrates a tenant under the scheduler and loop users', async () => {
    const sched = as('scheduler');
    const clock = new ManualClock(Date.now());
    const knobs = await KnobClient.start({
      table: new KnobTable(sched, { keys, clock }),
      names: [...SCHEDULER_KNOBS, PLACEMENT_KNOB],
      resyncIntervalMs: 200,
    });
    closers.push(() => knobs.close());
    const shards = await shardNamesOnPrimaries(sched, 3, 'm');
    const services = startShardServices(shards, { redis: sched, knobs, keys, log: quiet });
    for (const svc of services) closers.push(() => svc.stop());
    const migrator = await PlacementMigrator.start({
      redis: sched,
      knobs,
      keys,
      shards,
      log: quiet,
      graceMs: 100,
      sweepMs: 500,
    });
    closers.push(() => migrator.close());
    const router = new SchedulerRouter({ redis: sched, knobs, keys, shards });
    closers.push(async () => router.close());
    const mover = 'acl-mover';
    const home = router.placement.indexOf(mover);
    const target = (home + 1) % shards.length;
    // Queued before the move, with no worker yet: the rows must travel.
    await router.submitMany(
      Array.from({ length: 20 }, (_, i) => ({ id: `mv${i}`, type: 't', tenant: mover })),
    );
    // The loop promotes the new map; the scheduler's migrator carries it out.
    const loopKnobs = new KnobTable(as('loop'), { keys, clock });
    const row = await loopKnobs.get(PLACEMENT_KNOB);
    await loopKnobs.promote({
      name: PLACEMENT_KNOB,
      value: { [mover]: target },
      baseVersion: row.version,
      actor: 'loop',
      reason: 'move under ACL users',
    });
    await eventually(
      async () => (await readMigration(sched, keys, mover))?.phase === 'done',
      'migration done',
      30_000,
    );
    const worker = await WorkerRuntime.start({
      redis: sched,
      keys,
      shard: shards[target],
      concurrency: 4,
      handlers: { t: async () => null },
      log: quiet,
    });
    closers.push(() => worker.stop({ drain: false }));
    await eventually(
      async () => (await services[target]!.queries.counts()).done === 20,
      'every moved task ran on the new shard',
      30_000,
    );
  }, 90_000);

  // Cluster only (one node has no replica to promote); declared only there, so nothing is skipped.
  if (backend === 'cluster')
    it('keeps the users through a failover: the promoted replica refuses and serves the same', async () => {
      const cluster = redis.cluster!;
      const c = as('files');
      const mine = probeKey(keys, 'files');
      const slot = Number(await admin.call('CLUSTER', 'KEYSLOT', mine));
      await expect(c.set(mine, 'before')).resolves.toBe('OK');
      const killed = await cluster.killPrimaryForSlot(slot);
      // What is tested is the promoted node, not the election: one that stalls (it did once in
      // CI, under load) is explained on stderr and ended by a takeover.
      const promoted = await cluster.waitFailover(slot, {
        takeoverAfterMs: 30_000,
        onStall: (why) => console.warn(why),
      });
      expect(promoted.port).not.toBe(killed.port);
      // The files user logs in on the promoted node and writes its own family ...
      await eventually(
        async () => (await c.set(mine, 'after').catch(() => null)) === 'OK',
        'files user writes after failover',
        30_000,
      );
      // ... and is still refused another service's keys there.
      await expect(c.get(probeKey(keys, 'sched'))).rejects.toThrow(/NOPERM/);
      // On the promoted node itself: the files user's login works and is not an admin.
      const direct = connect({ url: promoted.url }, aclLogin(keys, passwords, 'files'));
      direct.on('error', () => {});
      conns.push(direct);
      await expect(direct.call('ACL', 'WHOAMI')).rejects.toThrow(/NOPERM/);
      expect(await direct.ping()).toBe('PONG');
    }, 90_000);
});
