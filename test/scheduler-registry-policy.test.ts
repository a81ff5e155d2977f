// The live dispatcher follows scheduler.policy_version: version N of the registry's scheduler
// policy replaces the heuristic once loaded, and 0 brings the heuristic back. A registry
// version that throws when it picks (a learned scorer whose finite weights overflow to NaN on
// an input its evaluation never met) gives way to the heuristic for the round (it stopped
// every dispatch round); and a registry scorer never sees the simulator-only jobFreeWorkers,
// in the simulator either (it was judged on inputs live never gives it).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { schedulingPolicyOf } from '../controlplane/registry/policy-factory.ts';
import { PolicyTable } from '../controlplane/registry/table.ts';
import { TASK_FEATURE_NAMES } from '../policies/scheduling/features.ts';
import type { TaskView } from '../policies/scheduling/types.ts';
import { eventually, startTestRedis, type TestRedis } from './helpers/redis.ts';
import { startScheduler } from './helpers/scheduler-harness.ts';

describe('dispatcher and the policy registry', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('dispatches with the registry version the knob names, and falls back to the heuristic', async () => {
    const h = await startScheduler(redis);
    try {
      const registry = new PolicyTable(h.redis, h.keys, h.knobClock);
      const row = await registry.register(
        { name: 'scheduler', kind: 'scheduling', artifact: { heuristic: 'srpt' } },
        'op',
      );
      expect(row.version).toBe(1);
      expect(h.service.dispatcher.currentPolicy().name).toBe('fifo');
      await h.setKnob('scheduler.policy_version', 1);
      await eventually(
        () => h.service.dispatcher.currentPolicy().name === 'srpt',
        'the dispatcher loads version 1',
      );
      // A version the registry does not have keeps the heuristic.
      await h.setKnob('scheduler.policy_version', 7);
      await new Promise((r) => setTimeout(r, 300));
      expect(h.service.dispatcher.currentPolicy().name).toBe('fifo');
      await h.setKnob('scheduler.policy_version', 0);
      expect(h.service.dispatcher.currentPolicy().name).toBe('fifo');
    } finally {
      await h.stop();
    }
  });

  /** A scorer of finite weights whose `feature` input overflows a hidden unit: NaN scores. */
  function overflowing(feature: string): Record<string, unknown> {
    const d = TASK_FEATURE_NAMES.length;
    const at = TASK_FEATURE_NAMES.indexOf(feature as (typeof TASK_FEATURE_NAMES)[number]);
    if (at < 0) throw new Error(`no feature ${feature}`);
    const w0 = new Array(d * 2).fill(0);
    w0[at * 2] = 1e303;
    const inputStd = new Array(d).fill(1);
    inputStd[at] = 1e-6;
    return {
      kind: 'policy.task-scorer',
      version: 1,
      config: {},
      state: {
        featureNames: [...TASK_FEATURE_NAMES],
        net: {
          inputSize: d,
          hiddenSizes: [2],
          activation: 'relu',
          inputMean: new Array(d).fill(0),
          inputStd,
          skip: new Array(d).fill(0),
          shapes: [[d, 2], [2], [2, 1], [1]],
          weights: [w0, [0, 1], [0, 1], [0]],
        },
      },
    };
  }

  it('dispatches with the heuristic while the registry version throws', async () => {
    const h = await startScheduler(redis);
    try {
      const registry = new PolicyTable(h.redis, h.keys, h.knobClock);
      await registry.register(
        { name: 'scheduler', kind: 'scheduling', artifact: overflowing('cpu_log') },
        'op',
      );
      await h.setKnob('scheduler.policy_version', 1);
      await eventually(
        () => h.service.dispatcher.currentPolicy().name !== 'fifo',
        'the dispatcher loads version 1',
      );
      await h.worker({ concurrency: 2, handlers: { work: () => 'ok' } });
      const c = h.service.client;
      await c.submit({ id: 't1', type: 'work' });
      await eventually(async () => (await c.get('t1'))?.state === 'done', 't1 done');
    } finally {
      await h.stop();
    }
  });

  it('gives a registry scorer no jobFreeWorkers, in the simulator either', () => {
    const policy = schedulingPolicyOf(overflowing('job_free_workers_log') as never, 'v');
    const view: TaskView = {
      id: 'a',
      jobId: 'j',
      tenant: 't',
      priority: 0,
      demand: { cpu: 1, memMb: 100, gpu: 0 },
      estimateMs: 1000,
      jobRemainingWorkMs: 5000,
      criticalPathMs: 2000,
      submittedAt: 0,
      readyAt: 0,
      attempts: 0,
      stageDepth: 0,
      tenantRunning: 0,
      tenantServedMs: 0,
      jobFreeWorkers: 3,
    };
    const worker = {
      id: 'w',
      free: { cpu: 4, memMb: 10_000, gpu: 0 },
      capacity: { cpu: 4, memMb: 10_000, gpu: 0 },
    };
    // With the feature it would overflow (NaN: the scorer throws); without it, it picks.
    expect(policy.pick([view], [worker], 10_000)).toEqual([{ taskId: 'a', workerId: 'w' }]);
  });
});
