// Regression tests for bugs a review of envs/ found: each fails on the code before its fix.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { csvFields, readCsv, splitCsvLine } from '../envs/loaders/csv.ts';
import { TraceFormatError } from '../envs/loaders/errors.ts';
import { loadAlibabaGpu } from '../envs/loaders/jobs-alibaba.ts';
import { loadJobsCsv } from '../envs/loaders/jobs-csv.ts';
import { loadTpchDags, tpchWorkloadFrom } from '../envs/loaders/jobs-tpch.ts';
import { MAX_PLACEMENT_STEPS, binGroupEvents } from '../envs/placement/index.ts';
import { drawUniform, STREAM_FAIL, STREAM_FAIL_POINT } from '../envs/scheduler/draws.ts';
import {
  WorkloadError,
  simulate,
  uniformWorkers,
  type JobSpec,
  type SimConfig,
} from '../envs/scheduler/index.ts';
import { WorkloadConfigError } from '../envs/workload/index.ts';
import { createSchedulingPolicy } from '../policies/scheduling/index.ts';
import { TPCH_DURATIONS, TPCH_STAGES } from './helpers/tpch-fixture.ts';

const dir = mkdtempSync(join(tmpdir(), 'knobos-review-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let made = 0;
function tmp(name: string, text: string): string {
  const file = join(dir, `${made++}-${name}`);
  writeFileSync(file, text);
  return file;
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected an error');
}

/** Expects `fn` to throw a TraceFormatError for `file` at `line` matching `reason`. */
function refuses(fn: () => unknown, file: string, line: number, reason: RegExp): void {
  const err = thrown(fn);
  expect(err).toBeInstanceOf(TraceFormatError);
  const e = err as TraceFormatError;
  expect([e.file, e.line]).toEqual([file, line]);
  expect(e.reason).toMatch(reason);
}

describe('binGroupEvents refuses what it would otherwise bin wrongly', () => {
  const bytes = () => 1;

  it('refuses an event more than MAX_PLACEMENT_STEPS steps after the first, instead of cutting', () => {
    const events = [
      { tMs: 0, group: 'a' },
      { tMs: 100_000_005, group: 'b', weight: 1e9 },
    ];
    const err = thrown(() => binGroupEvents(events, 1000, bytes));
    expect(err).toBeInstanceOf(WorkloadConfigError);
    expect((err as WorkloadConfigError).field).toBe('events[1].tMs');
    expect((err as WorkloadConfigError).rule).toMatch(
      new RegExp(`more than ${MAX_PLACEMENT_STEPS} steps of 1000 ms.*step of at least 1001 ms`),
    );
    // The step it suggests holds the whole trace, both groups included.
    const loads = binGroupEvents(events, 1001, bytes);
    expect(loads.names).toEqual(['a', 'b']);
    expect(loads.loads.length).toBe(Math.floor(100_000_005 / 1001) + 1);
    expect(loads.loads.length).toBeLessThanOrEqual(MAX_PLACEMENT_STEPS);
  });

  it('refuses any event out of time order, naming it, not only one before the first', () => {
    const at = (times: number[]) =>
      thrown(() =>
        binGroupEvents(
          times.map((tMs) => ({ tMs, group: 'a' })),
          1000,
          bytes,
        ),
      ) as WorkloadConfigError;
    for (const [times, k] of [
      [[5000, 1000], 1],
      [[0, 5000, 2000], 2],
      [[0, 5000, 5000, 4999], 3],
    ] as const) {
      const err = at([...times]);
      expect(err).toBeInstanceOf(WorkloadConfigError);
      expect(err.field).toBe(`events[${k}].tMs`);
      expect(err.rule).toMatch(/time order/);
    }
    // Equal times are in order.
    expect(
      binGroupEvents(
        [0, 0, 1500].map((tMs) => ({ tMs, group: 'a' })),
        1000,
        bytes,
      ).loads,
    ).toHaveLength(2);
  });

  it('refuses a time or a weight that is not a finite number (>= 0 for a weight)', () => {
    const field = (events: { tMs: number; group: string; weight?: number }[]) =>
      (thrown(() => binGroupEvents(events, 1000, bytes)) as WorkloadConfigError).field;
    expect(
      field([
        { tMs: 0, group: 'a' },
        { tMs: Number.NaN, group: 'a' },
      ]),
    ).toBe('events[1].tMs');
    expect(field([{ tMs: 0, group: 'a', weight: -1 }])).toBe('events[0].weight');
    expect(field([{ tMs: 0, group: 'a', weight: Number.NaN }])).toBe('events[0].weight');
  });
});

describe('a CPU demand that rounds to 0 millicores is refused', () => {
  it('jobs CSV: cpu 0.0004 without a GPU, naming the line and the rule', () => {
    const rows = Array.from({ length: 50 }, () => '0,1,0.0004').join('\n');
    const f = tmp('jobs.csv', `arrival_s,duration_s,cpu\n${rows}\n`);
    refuses(() => loadJobsCsv(f), f, 2, /cpu must be at least 0\.001.*got 0\.0004/);
    // 0.001 is one millicore; with a GPU the CPU share may round to 0.
    expect(loadJobsCsv(tmp('jobs.csv', 'arrival_s,duration_s,cpu\n0,1,0.001\n')).jobs).toHaveLength(
      1,
    );
    const gpu = loadJobsCsv(tmp('jobs.csv', 'arrival_s,duration_s,cpu,gpu\n0,1,0.0004,1\n'));
    expect(gpu.jobs[0]?.stages[0]?.demand.gpu).toBe(1);
  });

  it('the simulator: a task of cpu 0.0004 and no GPU, naming demand.cpu', () => {
    const jobs: JobSpec[] = Array.from({ length: 50 }, (_, k) => ({
      id: `j${k}`,
      arrivalMs: 0,
      tenant: 't',
      priority: 0,
      stages: [
        {
          numTasks: 1,
          parents: [],
          demand: { cpu: 0.0004, memMb: 0, gpu: 0 },
          durationsMs: [1000],
        },
      ],
    }));
    const err = thrown(() =>
      simulate({ name: 'tiny', jobs }, createSchedulingPolicy('fifo'), {
        workers: uniformWorkers(1, { cpu: 1, memMb: 1024, gpu: 0 }),
      }),
    );
    expect(err).toBeInstanceOf(WorkloadError);
    expect((err as WorkloadError).field).toBe('demand.cpu');
    expect((err as WorkloadError).rule).toMatch(/at least 0\.001.*got 0\.0004/);
  });

  it('TPC-H: a cpuPerTask that rounds to 0 millicores', () => {
    const dags = loadTpchDags(tmp('s.csv', TPCH_STAGES), tmp('d.csv', TPCH_DURATIONS));
    const workers = uniformWorkers(2, { cpu: 4, memMb: 1024, gpu: 0 });
    for (const cpuPerTask of [0.0004, 0, -1, Number.NaN]) {
      expect(() => tpchWorkloadFrom(dags, { workers, jobs: 4, cpuPerTask })).toThrow(
        /cpuPerTask must be at least 0\.001/,
      );
    }
    expect(tpchWorkloadFrom(dags, { workers, jobs: 4, cpuPerTask: 0.5 }).jobs).toHaveLength(4);
  });
});

describe('speculation after a failure', () => {
  it('a retry may get a copy when the original failed with its copy request still queued', () => {
    // Two 1-core workers. B (job 0) holds one for 6 s; T (job 1) runs 5 s on the other, with an
    // estimate of 1 s, so it is a straggler at 1.5 s, but no worker is free for its copy. It
    // fails after that (before B ends), is retried 1 s later, and the retry is a straggler in
    // its turn: it must get the copy its original could not. Find a seed whose declared draws
    // give exactly that: B and the retry do not fail, T's first attempt fails after 1.6 s.
    const p = 0.5;
    const fails = (seed: number, job: number, attempt: number) =>
      drawUniform(seed, job, 0, 0, attempt, STREAM_FAIL) < p;
    const failAt = (seed: number) =>
      Math.floor(drawUniform(seed, 1, 0, 0, 0, STREAM_FAIL_POINT) * 5000);
    let seed = 0;
    while (!(!fails(seed, 0, 0) && fails(seed, 1, 0) && failAt(seed) > 1600 && !fails(seed, 1, 1)))
      seed++;
    const cfg: Partial<SimConfig> = {
      seed,
      failureProb: p,
      refailProb: p,
      retryBackoffMs: 1000,
      speculative: true,
      stragglerThreshold: 1.5,
    };
    const one = (id: string, arrivalMs: number, ms: number, estimateMs: number): JobSpec => ({
      id,
      arrivalMs,
      tenant: 't',
      priority: 0,
      stages: [
        {
          numTasks: 1,
          parents: [],
          demand: { cpu: 1, memMb: 0, gpu: 0 },
          durationsMs: [ms],
          estimateMs,
        },
      ],
    });
    const m = simulate(
      { name: 'spec-retry', jobs: [one('B', 0, 6000, 6000), one('T', 1, 5000, 1000)] },
      createSchedulingPolicy('fifo'),
      { workers: uniformWorkers(2, { cpu: 1, memMb: 1024, gpu: 0 }), config: cfg },
    );
    expect(m['retries']).toBe(1);
    expect(m['speculative_copies']).toBe(1);
  });
});

describe('alibaba pods: a pod never scheduled may have no deletion time', () => {
  const HEADER =
    'name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time';
  const nodes = () => tmp('nodes.csv', 'sn,cpu_milli,memory_mib,gpu,model\nn0,8000,65536,2,T4\n');

  it('drops and counts one still Pending at the trace end; a scheduled one still needs it', () => {
    const pods = [
      HEADER,
      'p0,1000,1024,0,0,,LS,Succeeded,0,100,10',
      'p1,1000,1024,1,1000,,BE,Pending,7,,',
      'p2,1000,1024,0,0,,BE,Pending,8,9,',
    ].join('\n');
    const w = loadAlibabaGpu({ podsFile: tmp('pods.csv', pods), nodesFile: nodes() });
    expect(w.jobs.map((j) => j.id)).toEqual(['p0']);
    expect(w.notes).toMatchObject({ pods: 3, never_scheduled_dropped: 2 });
    // A deletion time given is still checked, and a scheduled pod must have one.
    const bad = tmp('pods.csv', [HEADER, 'p0,1000,1024,0,0,,LS,Pending,10,5,'].join('\n'));
    refuses(
      () => loadAlibabaGpu({ podsFile: bad, nodesFile: nodes() }),
      bad,
      2,
      /before creation_time/,
    );
    const run = tmp('pods.csv', [HEADER, 'p0,1000,1024,0,0,,LS,Running,10,,10'].join('\n'));
    refuses(() => loadAlibabaGpu({ podsFile: run, nodesFile: nodes() }), run, 2, /deletion_time/);
  });
});

describe('CSV: text after a closing quote', () => {
  it('is refused, naming the line and the field, not joined into the field', () => {
    expect(splitCsvLine('"a"b,c')).toBeNull();
    expect(() => csvFields('f.csv', 7, 'x,"a"b,c')).toThrow(
      /^f\.csv:7: text after the closing quote of field 2/,
    );
    const f = tmp('q.csv', 'key,size\n1,2\n"a"b,3\n');
    refuses(() => readCsv(f), f, 3, /text after the closing quote of field 1/);
  });

  it('still reads quoted fields, "" inside them and blanks around them', () => {
    expect(splitCsvLine('"a,b" , "say ""hi""",c')).toEqual(['a,b', 'say "hi"', 'c']);
    expect(splitCsvLine(' "a"\t;b', ';')).toEqual(['a', 'b']);
    expect(splitCsvLine('ab"c,d')).toEqual(['ab"c', 'd']);
    expect(splitCsvLine('"a')).toBeNull();
    expect(() => csvFields('f.csv', 2, '"a')).toThrow(/^f\.csv:2: unterminated quoted field/);
  });
});
