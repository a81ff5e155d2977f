// The simulator's retries as the live scheduler does them (review): a copy that fails while the
// task's other copy runs on is no spent attempt (shard.lua failCopy -> dropCopy leaves the
// attempt count; an attempt is a dispatch, its copies included), and no backoff exceeds 1 h
// (shard.lua MAX_BACKOFF_MS). The simulator counted the copy's failure (a retry early given up,
// backoffs doubled) and capped doublings at 16 instead (65,536 s at a 1 s base).
import { describe, expect, it } from 'vitest';
import {
  drawUniform,
  STREAM_FAIL,
  STREAM_FAIL_POINT,
  STREAM_SLOWDOWN,
} from '../envs/scheduler/draws.ts';
import { simulate, uniformWorkers, type SimConfig } from '../envs/scheduler/index.ts';
import {
  createSchedulingPolicy,
  type Assignment,
  type SchedulingPolicy,
} from '../policies/scheduling/index.ts';

/** FIFO, recording when it assigned which task. */
function recorded(): SchedulingPolicy & { log: [number, string][] } {
  const inner = createSchedulingPolicy('fifo');
  const log: [number, string][] = [];
  return {
    name: 'fifo',
    log,
    pick(r, f, now): Assignment[] {
      const out = inner.pick(r, f, now);
      for (const a of out) log.push([now, a.taskId]);
      return out;
    },
  };
}

const oneTask = (id: string, estimateMs?: number) => ({
  name: 't',
  jobs: [
    {
      id,
      arrivalMs: 0,
      tenant: 't',
      priority: 0,
      stages: [
        {
          numTasks: 1,
          parents: [],
          demand: { cpu: 1, memMb: 0, gpu: 0 },
          durationsMs: [1_000],
          ...(estimateMs !== undefined ? { estimateMs } : {}),
        },
      ],
    },
  ],
});

describe('simulated retries', () => {
  const P = 0.999999;

  it('counts the original and its failed copy as one attempt', () => {
    // Every attempt straggles (Pareto alpha 1: slowdown 1/(1-u)) and fails part way.
    const run = (seed: number, k: number) =>
      Math.round(1_000 * Math.min(50, 1 / (1 - drawUniform(seed, 0, 0, 0, k, STREAM_SLOWDOWN))));
    const failAt = (seed: number, k: number) =>
      Math.floor(drawUniform(seed, 0, 0, 0, k, STREAM_FAIL_POINT) * run(seed, k));
    const fails = (seed: number, k: number) => drawUniform(seed, 0, 0, 0, k, STREAM_FAIL) < P;
    // The original still runs at the straggler check (1.5 x the 1 s estimate), so a copy
    // starts on the other worker at 1,500 ms; then both fail.
    let seed = 0;
    while (!(fails(seed, 0) && fails(seed, 1) && failAt(seed, 0) > 1_500)) seed++;
    const T = Math.max(failAt(seed, 0), 1_500 + failAt(seed, 1));
    const cfg: Partial<SimConfig> = {
      seed,
      stragglerProb: 1,
      stragglerAlpha: 1,
      failureProb: P,
      refailProb: 0,
      failureTransientMs: 0,
      speculative: true,
      stragglerThreshold: 1.5,
      retryLimit: 1,
      retryBackoffMs: 1_000,
    };
    const p = recorded();
    const m = simulate(oneTask('T', 1_000), p, {
      workers: uniformWorkers(2, { cpu: 1, memMb: 1024, gpu: 0 }),
      config: cfg,
    });
    expect(m['speculative_copies']).toBeGreaterThanOrEqual(1);
    // One attempt spent (1 <= retry_limit 1): retried after 1,000 x 2^0 ms.
    expect(p.log.slice(0, 2)).toEqual([
      [0, 'T/0/0'],
      [T + 1_000, 'T/0/0'],
    ]);
  });

  it('never backs off more than 1 h (base 300 s: 300, 600, 1,200, 2,400, 3,600 s)', () => {
    const seed = 1;
    const [B, CAP] = [300_000, 3_600_000];
    const p = recorded();
    simulate(oneTask('A'), p, {
      workers: uniformWorkers(1, { cpu: 1, memMb: 1024, gpu: 0 }),
      config: {
        seed,
        failureProb: P,
        refailProb: 0,
        failureTransientMs: 0,
        retryLimit: 5,
        retryBackoffMs: B,
      },
    });
    // Attempt k (a 1 s run) fails at floor(u_k x 1,000) after it starts; attempt k+1 follows
    // after min(CAP, B x 2^k).
    const expected: number[] = [0];
    for (let k = 0; k < 5; k++) {
      expect(drawUniform(seed, 0, 0, 0, k, STREAM_FAIL)).toBeLessThan(P);
      const failAt = Math.floor(drawUniform(seed, 0, 0, 0, k, STREAM_FAIL_POINT) * 1_000);
      expected.push((expected[k] as number) + failAt + Math.min(CAP, B * 2 ** k));
    }
    expect(p.log.map(([t]) => t)).toEqual(expected);
  });
});
