// The policies table against real redis-server processes, on one node and on a 3-node cluster:
// versions assigned atomically under concurrency, malformed registrations refused with nothing
// written, listing, lineage, status moves with audit entries.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../controlplane/knobs/clock.ts';
import { KnobTable } from '../controlplane/knobs/table.ts';
import {
  ArtifactInvalidError,
  PolicyRegistry,
  RegistryInputError,
  RegistryKeys,
  type NewPolicy,
} from '../controlplane/registry/index.ts';
import { StateError } from '../controlplane/store/errors.ts';
import { linearScorerArtifact } from './helpers/registry-fixtures.ts';
import { startTestRedis, uniqueKeys, type Backend, type TestRedis } from './helpers/redis.ts';

const SRPT = { heuristic: 'srpt' };

describe.each<Backend>(['single', 'cluster'])('policies table on %s redis', (backend) => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis(backend);
  });
  afterAll(async () => {
    await redis?.stop();
  });

  async function setup() {
    const clock = new ManualClock();
    const knobs = new KnobTable(redis.client(), { keys: uniqueKeys(), clock });
    await knobs.seed();
    const registry = new PolicyRegistry({ knobs, evaluator: { mode: 'inline' } });
    return { knobs, registry, table: registry.table, clock };
  }

  it('builds row keys from one prefix, as the register script does', async () => {
    const { registry } = await setup();
    const rk = new RegistryKeys(registry.knobs.keys);
    expect(rk.rowPrefix() + 'scheduler@7').toBe(rk.row('scheduler@7'));
    expect(rk.row('scheduler@7')).toContain('{policies}');
  });

  it('gives 10 concurrent registers of one name distinct consecutive versions', async () => {
    const { table, knobs } = await setup();
    // Separate connections, so the registers really race on the server.
    const tables = Array.from(
      { length: 5 },
      () =>
        new PolicyRegistry({ knobs: new KnobTable(redis.client(), { keys: knobs.keys }) }).table,
    );
    const rows = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        (tables[i % tables.length] ?? table).register(
          { name: 'scheduler', kind: 'scheduling', artifact: SRPT, reason: `run ${i}` },
          `learner-${i}`,
        ),
      ),
    );
    expect(rows.map((r) => r.version).sort((a, b) => a - b)).toEqual([
      1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
    ]);
    expect(new Set(rows.map((r) => r.seq)).size).toBe(10);
    expect(await table.latest('scheduler')).toBe(10);
    for (const r of rows) {
      const { row } = await table.get('scheduler', r.version);
      expect(row).toMatchObject({
        id: `scheduler@${r.version}`,
        status: 'draft',
        createdBy: r.createdBy,
        artifactSummary: 'heuristic:srpt',
      });
    }
    const audit = await table.audit({ limit: 100 });
    expect(audit.filter((a) => a.action === 'policy.register')).toHaveLength(10);
    expect(new Set(audit.map((a) => a.target)).size).toBe(10);
  });

  it.each<[string, unknown, string, string]>([
    ['not an object', [1, 2], 'artifact', 'type'],
    ['neither heuristic nor learned', { meta: {} }, 'artifact', 'one_of'],
    ['both heuristic and learned', { heuristic: 'srpt', kind: 'x' }, 'artifact', 'one_of'],
    ['an unknown heuristic', { heuristic: 'round_robin' }, 'artifact.heuristic', 'enum'],
    ['a cache heuristic for scheduling', { heuristic: 'lru' }, 'artifact.heuristic', 'enum'],
    ['an unknown field', { heuristic: 'srpt', weights: [1] }, 'artifact.weights', 'unknown_field'],
    [
      'a learned one without state',
      { kind: 'policy.x', version: 1, config: {} },
      'artifact.state',
      'type',
    ],
    [
      'a bad learned version',
      { kind: 'policy.x', version: 0, config: {}, state: {} },
      'artifact.version',
      'integer',
    ],
    [
      'a non-finite number',
      { kind: 'policy.x', version: 1, config: {}, state: { w: [1, Infinity] } },
      'artifact.state.w[1]',
      'finite',
    ],
    [
      'too large',
      { kind: 'policy.x', version: 1, config: {}, state: { w: new Array(80_000).fill(0.5) } },
      'artifact',
      'max_bytes',
    ],
  ])(
    'refuses an artifact that is %s, naming field and rule, and writes nothing',
    async (_, artifact, field, rule) => {
      const { table, registry } = await setup();
      const err = await table
        .register({ name: 'scheduler', kind: 'scheduling', artifact }, 'op')
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ArtifactInvalidError);
      expect(err).toMatchObject({ code: 'KNOBOS_REGISTRY_INVALID_ARTIFACT', status: 400 });
      expect((err as ArtifactInvalidError).details).toMatchObject({ field, rule });
      expect(await table.latest('scheduler')).toBe(0);
      expect(await table.names()).toEqual([]);
      expect(await table.audit()).toEqual([]);
      const rk = new RegistryKeys(registry.knobs.keys);
      expect(await redis.client().exists(rk.row('scheduler@1'), rk.versions(), rk.audit())).toBe(0);
    },
  );

  it('registers once per request id: a repeated call answers the first version', async () => {
    const { table } = await setup();
    const p = { name: 'scheduler', kind: 'scheduling' as const, artifact: SRPT };
    // The same request run twice, as a client resending it after a lost reply does.
    const [a, b] = await Promise.all([
      table.register(p, 'learner', 'req-1'),
      table.register(p, 'learner', 'req-1'),
    ]);
    expect([a.version, b.version]).toEqual([1, 1]);
    expect(b).toEqual(a);
    expect(await table.latest('scheduler')).toBe(1);
    expect((await table.audit({ limit: 10 })).map((e) => e.action)).toEqual(['policy.register']);
    // The same id for another registration (another name, or another artifact) is refused.
    for (const other of [
      { ...p, name: 'other' },
      { ...p, artifact: { heuristic: 'fifo' } },
    ])
      await expect(table.register(other, 'learner', 'req-1')).rejects.toMatchObject({
        details: { field: 'requestId', rule: 'same_request' },
      });
    expect(await table.latest('other')).toBe(0);
    // Another request registers the next version; a malformed id is refused, writing nothing.
    expect((await table.register(p, 'learner', 'req-2')).version).toBe(2);
    expect((await table.register(p, 'learner')).version).toBe(3);
    await expect(table.register(p, 'learner', 'has space')).rejects.toMatchObject({
      details: { field: 'requestId', rule: 'format' },
    });
    expect(await table.latest('scheduler')).toBe(3);
  });

  it('checks a learned task scorer as its learner would, before writing', async () => {
    const { table } = await setup();
    const bad = linearScorerArtifact(['estimate_log_s']);
    const err = await table
      .register({ name: 'scheduler', kind: 'scheduling', artifact: bad }, 'op')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ArtifactInvalidError);
    expect((err as ArtifactInvalidError).details).toMatchObject({
      field: 'artifact.state.featureNames',
      rule: 'learned_check',
    });
    expect(await table.latest('scheduler')).toBe(0);
    const ok = await table.register(
      { name: 'scheduler', kind: 'scheduling', artifact: linearScorerArtifact() },
      'ppo#run-7',
    );
    expect(ok.artifactSummary).toBe('policy.task-scorer@1');
  });

  it('checks name, kind, decision point and lineage before writing', async () => {
    const { table } = await setup();
    const base: NewPolicy = { name: 'scheduler', kind: 'scheduling', artifact: SRPT };
    const refuse = async (p: Partial<NewPolicy>, field: string, rule: string) => {
      const err = await table.register({ ...base, ...p }, 'op').catch((e: unknown) => e);
      expect(err, `${field} ${rule}`).toBeInstanceOf(RegistryInputError);
      expect((err as RegistryInputError).details).toMatchObject({ field, rule });
    };
    await refuse({ name: 'Bad Name' }, 'name', 'pattern');
    await refuse({ kind: 'oracle' as never }, 'kind', 'enum');
    await refuse({ decisionPoint: 'files.read_cache' }, 'decisionPoint', 'enum');
    await refuse({ lineage: { parent: 1 } }, 'lineage.parent', 'exists');
    await refuse({ lineage: { learner: 'x'.repeat(300) } }, 'lineage.learner', 'pattern');
    expect(await table.latest('scheduler')).toBe(0);

    await table.register(base, 'op');
    await refuse({ kind: 'cache', artifact: { heuristic: 'lru' } }, 'kind', 'same_kind');
    await refuse({ lineage: { parent: 2 } }, 'lineage.parent', 'exists');
    expect(await table.latest('scheduler')).toBe(1);
    expect((await table.audit()).length).toBe(1);
  });

  it('keeps lineage: the parent chain up and the versions derived from one', async () => {
    const { table } = await setup();
    const reg = (lineage = {}) =>
      table.register({ name: 'scheduler', kind: 'scheduling', artifact: SRPT, lineage }, 'op');
    await reg({ learner: 'ppo', run: 'run-1' }); // 1
    await reg({ parent: 1, learner: 'ppo', run: 'run-2' }); // 2
    await reg({ parent: 2, learner: 'ppo', run: 'run-3' }); // 3
    await reg({ parent: 1, learner: 'dqn' }); // 4
    const l2 = await table.lineage('scheduler', 2);
    expect(l2.ancestors.map((r) => r.version)).toEqual([1]);
    expect(l2.children.map((r) => r.version)).toEqual([3]);
    const l3 = await table.lineage('scheduler', 3);
    expect(l3.ancestors.map((r) => r.version)).toEqual([2, 1]);
    expect(l3.policy.lineage).toEqual({ parent: 2, learner: 'ppo', run: 'run-3' });
    expect((await table.lineage('scheduler', 1)).children.map((r) => r.version)).toEqual([2, 4]);
  });

  it('lists newest first, by name and status, in pages that continue where they stopped', async () => {
    const { table, registry } = await setup();
    for (let i = 0; i < 5; i++)
      await table.register({ name: 'scheduler', kind: 'scheduling', artifact: SRPT }, 'op');
    await table.register({ name: 'cache', kind: 'cache', artifact: { heuristic: 'arc' } }, 'op');
    await registry.retire('scheduler', 2, { actor: 'op', reason: 'superseded' });

    const all = await table.list({ limit: 100 });
    expect(all.policies.map((r) => r.id)).toEqual([
      'cache@1',
      'scheduler@5',
      'scheduler@4',
      'scheduler@3',
      'scheduler@2',
      'scheduler@1',
    ]);
    expect(all.next).toBeNull();
    const p1 = await table.list({ name: 'scheduler', limit: 2 });
    expect(p1.policies.map((r) => r.version)).toEqual([5, 4]);
    const p2 = await table.list({ name: 'scheduler', limit: 2, cursor: p1.next as number });
    expect(p2.policies.map((r) => r.version)).toEqual([3, 2]);
    const retired = await table.list({ status: 'retired' });
    expect(retired.policies.map((r) => r.id)).toEqual(['scheduler@2']);
    expect((await table.names()).sort((a, b) => a.name.localeCompare(b.name))).toEqual([
      { name: 'cache', latest: 1 },
      { name: 'scheduler', latest: 5 },
    ]);
  });

  it('moves statuses only forward, each move audited with who and why', async () => {
    const { table, registry } = await setup();
    await table.register({ name: 'scheduler', kind: 'scheduling', artifact: SRPT }, 'op');
    const err = await registry
      .shadow('scheduler', 1, { actor: 'op', reason: 'try' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StateError);
    expect((err as StateError).details).toMatchObject({ field: 'status', rule: 'candidate' });
    const retired = await registry.retire('scheduler', 1, { actor: 'alice#t1', reason: 'unused' });
    expect(retired).toMatchObject({ status: 'retired', updatedBy: 'alice#t1', reason: 'unused' });
    const again = await registry
      .retire('scheduler', 1, { actor: 'op', reason: 'twice' })
      .catch((e: unknown) => e);
    expect(again).toBeInstanceOf(StateError);
    const [last] = await table.audit({ limit: 1 });
    expect(last).toMatchObject({
      actor: 'alice#t1',
      action: 'policy.retire',
      target: 'scheduler@1',
      detail: { from: 'draft', to: 'retired', reason: 'unused' },
    });
  });
});
