// Fixtures for the policy registry's tests: a tiny TPC-H trace in the loaders' format (three
// query DAGs with a few duration samples per stage) in a temp directory, so evaluations run in
// milliseconds instead of loading the shared 1.6 M-row durations file; and an API server whose
// registry simulates on it inline (attached before the server is built).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll } from 'vitest';
import type { Role } from '../../controlplane/api/auth/roles.ts';
import { TokenStore } from '../../controlplane/api/auth/tokens.ts';
import { attachRegistry } from '../../controlplane/api/routes/policies.ts';
import { buildServer } from '../../controlplane/api/server.ts';
import { ManualClock } from '../../controlplane/knobs/clock.ts';
import { KnobTable } from '../../controlplane/knobs/table.ts';
import type { RedisClient } from '../../controlplane/redis/connect.ts';
import { PolicyRegistry } from '../../controlplane/registry/registry.ts';
import { TASK_FEATURE_NAMES } from '../../policies/scheduling/features.ts';
import type { TraceFiles } from '../../controlplane/registry/sim.ts';
import { ADMIN_TOKEN, HOUR_MS, TestClock } from './api-server.ts';
import { startTestRedis, uniqueKeys, type Backend, type TestRedis } from './redis.ts';

/** query -> stages: [num_tasks, parents (';'-separated), durations ms] */
const DAGS: Record<string, [number, string, number[]][]> = {
  '1': [
    [4, '', [900, 1100, 1000, 950]],
    [8, '0', [120, 140, 400, 90]],
    [2, '1', [300, 280]],
  ],
  '2': [
    [2, '', [5000, 5200]],
    [3, '', [200, 250, 220]],
    [6, '0;1', [700, 650, 800]],
  ],
  '3': [
    [1, '', [60, 70]],
    [12, '0', [30, 45, 2500, 40]],
  ],
};

export function tinyTpchTrace(): TraceFiles & { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'knobos-tpch-'));
  const stages = ['scale,query,stage,num_tasks,parents,children'];
  const durations = ['scale,query,stage,num_executors,wave,duration_ms'];
  for (const [query, list] of Object.entries(DAGS)) {
    list.forEach(([tasks, parents, samples], stage) => {
      const children = list
        .map(([, p], i) => (p.split(';').includes(String(stage)) ? i : -1))
        .filter((i) => i >= 0)
        .join(';');
      stages.push(`2g,${query},${stage},${tasks},${parents},${children}`);
      for (const ms of samples) durations.push(`2g,${query},${stage},2,first_wave,${ms}`);
    });
  }
  const stagesFile = join(dir, 'tpch_stages.csv');
  const durationsFile = join(dir, 'tpch_task_durations.csv');
  writeFileSync(stagesFile, stages.join('\n') + '\n');
  writeFileSync(durationsFile, durations.join('\n') + '\n');
  return {
    dir,
    stagesFile,
    durationsFile,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** An API server whose policy routes use a registry on the tiny trace, simulating inline. */
export interface RegistryApi {
  app: FastifyInstance;
  knobs: KnobTable;
  registry: PolicyRegistry;
  redis: RedisClient;
  clock: TestClock;
  token(role: Role, tenant?: string): Promise<string>;
  bearer(token: string): { authorization: string };
  close(): Promise<void>;
}

export async function startRegistryApi(
  redis: TestRedis,
  opts: { knobs?: KnobTable; trace?: TraceFiles; listen?: boolean; clock?: TestClock } = {},
): Promise<RegistryApi & { url: string }> {
  const client = redis.client();
  const clock = opts.clock ?? new TestClock(Date.now() - 2 * HOUR_MS);
  const knobs = opts.knobs ?? new KnobTable(client, { keys: uniqueKeys(), clock });
  await knobs.seed();
  const registry = new PolicyRegistry({
    knobs,
    evaluator: { mode: 'inline', ...(opts.trace ? { trace: opts.trace } : {}) },
  });
  attachRegistry(registry);
  const app = await buildServer({
    redis: client,
    knobs,
    clock,
    auth: { mode: 'tokens', adminToken: ADMIN_TOKEN },
  });
  let url = '';
  if (opts.listen) {
    await app.listen({ port: 0, host: '127.0.0.1' });
    const addr = app.server.address();
    url = `http://127.0.0.1:${addr && typeof addr === 'object' ? addr.port : 0}`;
  }
  const tokens = new TokenStore(client, knobs.keys, clock);
  return {
    app,
    knobs,
    registry,
    redis: client,
    clock,
    url,
    token: async (role, tenant) =>
      (await tokens.create({ name: `test-${role}`, role, tenant: tenant ?? null, actor: 'test' }))
        .token,
    bearer: (token) => ({ authorization: `Bearer ${token}` }),
    close: async () => {
      await app.close();
      await registry.close();
    },
  };
}

/**
 * A learned task-scorer artifact (learners/scheduling's format) whose net is linear: score =
 * -remaining job work, so it runs the task of the job with the least work left first (an
 * SRPT-like ranking). `featureNames` may be changed to make a malformed one.
 */
export function linearScorerArtifact(
  featureNames: readonly string[] = TASK_FEATURE_NAMES,
): Record<string, unknown> {
  const d = TASK_FEATURE_NAMES.length;
  const skip = TASK_FEATURE_NAMES.map((n) => (n === 'job_remaining_work_log_s' ? -1 : 0));
  return {
    kind: 'policy.task-scorer',
    version: 1,
    config: { note: 'a fixture, not trained' },
    state: {
      featureNames: [...featureNames],
      net: {
        inputSize: d,
        hiddenSizes: [],
        activation: 'relu',
        inputMean: new Array(d).fill(0),
        inputStd: new Array(d).fill(1),
        skip,
        shapes: [[d, 1], [1]],
        weights: [new Array(d).fill(0), [0]],
      },
    },
    meta: { run: 'fixture' },
  };
}

/**
 * Inside a describe: a Redis of `backend` and the tiny TPC-H trace for the suite; each `setup()`
 * gives a fresh knobs table (seeded, its clock past every cooldown) and a registry simulating
 * inline on the trace.
 */
export function registrySuite(backend: Backend): {
  setup(): Promise<{ knobs: KnobTable; registry: PolicyRegistry; clock: ManualClock }>;
} {
  let redis: TestRedis;
  const trace = tinyTpchTrace();
  beforeAll(async () => {
    redis = await startTestRedis(backend);
  });
  afterAll(async () => {
    await redis?.stop();
    trace.remove();
  });
  return {
    async setup() {
      const clock = new ManualClock();
      const knobs = new KnobTable(redis.client(), { keys: uniqueKeys(), clock });
      await knobs.seed();
      clock.advance(HOUR_MS);
      const registry = new PolicyRegistry({ knobs, evaluator: { mode: 'inline', trace } });
      return { knobs, registry, clock };
    },
  };
}
