// Experiments run on any trace of a supported format, not only the shared ones: each format is
// written as a small file to a temp dir and run through the quick variant of its experiment.
// A bad file or format fails with a message naming the file, the line or the rule.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { messagingObjective, traceSource } from '../envs/messaging/index.ts';
import { schedulerObjective } from '../envs/scheduler/index.ts';
import { runPolicy } from '../learners/scheduling/evaluate.ts';
import { createSchedulingPolicy } from '../policies/scheduling/index.ts';
import { runExpCommand } from '../experiments/command.ts';
import type { ExperimentResult } from '../experiments/results.ts';
import { runExperiment } from '../experiments/runner.ts';
import { EXPERIMENTS } from '../experiments/specs/index.ts';
import { TRACE_FORMATS, TraceOptionError, loadTrace } from '../experiments/workloads.ts';

const dir = mkdtempSync(join(tmpdir(), 'knobos-exp-traces-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, lines: string[]): string {
  const file = join(dir, name);
  writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

/** Runs the exp command with its stdout and stderr swallowed; returns its exit code. */
async function quietly(argv: string[]): Promise<number> {
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    return await runExpCommand(argv);
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

/** A deterministic pseudo-random stream for the fixtures. */
function lcg(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x / 2 ** 31;
  };
}

const rand = lcg(7);
const keys = Array.from({ length: 1500 }, () => `blk${Math.floor(rand() ** 2 * 300)}`);
const files = {
  cacheCsv: write('cache.csv', [
    'version,time,op,size,lbn',
    // lbn is a block address: the key's number.
    ...keys.map((k, i) => `1,${i},28,${512 * (1 + (k.length % 8))},${k.slice(3)}`),
  ]),
  cacheKeys: write('cache.keys', keys),
  jobsCsv: write('jobs.csv', [
    'arrival_s,duration_s,cpu,tenant,priority',
    ...Array.from(
      { length: 40 },
      (_, i) => `${(i * 0.7).toFixed(2)},${(0.2 + rand() * 3).toFixed(2)},1,t${i % 3},${i % 2}`,
    ),
  ]),
  tpchStages: write('tpch_stages.csv', [
    'scale,query,stage,num_tasks,parents,children',
    '2g,1,0,3,,1',
    '2g,1,1,2,0,',
    '2g,2,0,4,,2',
    '2g,2,1,2,,2',
    '2g,2,2,1,0;1,',
  ]),
  tpchDurations: write('tpch_task_durations.csv', [
    'scale,query,stage,num_executors,wave,duration_ms',
    ...['1,0', '1,1', '2,0', '2,1', '2,2'].flatMap((qs) =>
      [120, 300, 80].map((ms) => `2g,${qs},2,first_wave,${ms}`),
    ),
  ]),
  alibabaPods: write('mini_pods.csv', [
    'name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time',
    ...Array.from({ length: 30 }, (_, i) => {
      const gpu = i % 3 === 0 ? '1,500' : '0,0';
      return `pod-${i},2000,1024,${gpu},,LS,Succeeded,${i * 10},${i * 10 + 40 + (i % 7) * 5},${i * 10 + 1}`;
    }),
  ]),
  alibabaNodes: write('mini_nodes.csv', [
    'sn,cpu_milli,memory_mib,gpu,model',
    'n0,8000,16384,1,T4',
    'n1,8000,16384,0,',
  ]),
  azure: write('requests.csv', [
    'TIMESTAMP,ContextTokens,GeneratedTokens',
    ...Array.from({ length: 400 }, (_, i) => {
      const ms = Math.floor(i * 37 + rand() * 30);
      const t = new Date(Date.UTC(2024, 0, 1, 0, 0, 0, ms)).toISOString().replace('T', ' ');
      return `${t.slice(0, -1)},${100 + Math.floor(rand() * 900)},${1 + Math.floor(rand() * 50)}`;
    }),
  ]),
};

const cases: { experiment: string; file: string; format: string }[] = [
  { experiment: 'cache', file: files.cacheCsv, format: 'csv' },
  { experiment: 'cache', file: files.cacheKeys, format: 'keys' },
  { experiment: 'scheduler', file: files.jobsCsv, format: 'csv' },
  { experiment: 'scheduler', file: files.tpchStages, format: 'tpch' },
  { experiment: 'scheduler', file: files.alibabaPods, format: 'alibaba' },
  { experiment: 'messaging', file: files.azure, format: 'azure' },
  { experiment: 'placement', file: files.jobsCsv, format: 'csv' },
];

function finite(r: ExperimentResult): void {
  for (const s of r.studies) {
    expect(s.results.length).toBeGreaterThan(0);
    for (const e of s.results) {
      expect(Number.isFinite(e.mean), `${s.name}/${e.name}`).toBe(true);
      expect(e.seeds).toHaveLength(2);
    }
  }
}

describe('experiments on traces outside the repository', () => {
  it('covers every supported format', () => {
    const covered = new Set(cases.map((c) => c.format));
    for (const formats of Object.values(TRACE_FORMATS)) {
      for (const f of formats) expect(covered).toContain(f);
    }
  });

  it.each(cases)('$experiment runs on a $format trace', async ({ experiment, file, format }) => {
    const spec = EXPERIMENTS[experiment]!;
    const r = await runExperiment(spec, {
      quick: true,
      seeds: 2,
      // Under BO's initial design: the formats are under test here, not the tuners.
      budget: 4,
      trace: { path: file, format },
    });
    expect(r.workload.trace).toEqual({ path: file, format });
    finite(r);
  });

  it('reports tuners in the metric itself when they tune on its log', async () => {
    const trace = { path: files.azure, format: 'azure' };
    const r = await runExperiment(EXPERIMENTS['messaging']!, {
      quick: true,
      seeds: 2,
      budget: 6,
      trace,
    });
    const study = r.studies[0]!;
    expect(study.tuner_scale).toBe('log');
    // Re-evaluate each run's final configuration on the training seed: the reported value is
    // objective_ms there, not its log.
    const objective = messagingObjective(
      await traceSource(files.azure, undefined, { maxRows: 1_000 }),
    );
    for (const e of study.results.filter((x) => x.kind === 'learner')) {
      for (const [i, config] of (e.configs ?? []).entries()) {
        const m = await objective.evaluate(config, study.train_seeds![0]!);
        expect(e.seeds[i]!.value).toBeCloseTo(m['objective_ms']!, 9);
      }
    }
  });

  it('scores a policy object in the world the knob objective scores a policy name in', async () => {
    // The policy studies run policy objects through runPolicy; in the 'objective' world that
    // must be exactly the knob objective's world (what the knob study scores a policy name in).
    const t = await loadTrace('jobs', { path: files.jobsCsv, format: 'csv' }, files.jobsCsv, {
      quick: true,
      load: 0.85,
    });
    if (t.kind !== 'jobs') throw new Error('expected a jobs trace');
    const objective = schedulerObjective({ scenario: t.jobs.scenario });
    for (const p of ['fifo', 'srpt', 'fair']) {
      const byObject = runPolicy(createSchedulingPolicy(p), t.jobs.scenario, 3, 'objective');
      expect(byObject).toEqual(await objective.evaluate({ 'scheduler.policy': p }, 3));
    }
  });

  it('replays a fixed jobs trace at the offered load asked for', async () => {
    const spec = EXPERIMENTS['scheduler']!;
    const run = (load: number) =>
      runExperiment(spec, {
        quick: true,
        seeds: 2,
        budget: 2,
        load,
        trace: { path: files.jobsCsv, format: 'csv' },
      });
    const [light, heavy] = [await run(0.3), await run(0.95)];
    // More load, more queueing: every policy's mean completion time grows. (The lower bound
    // need not: a job's critical path does not depend on the load.)
    const policies = (r: ExperimentResult) =>
      r.studies[1]!.results.filter((e) => e.kind !== 'oracle');
    policies(heavy).forEach((e, i) => expect(e.mean).toBeGreaterThan(policies(light)[i]!.mean));
    // At either load no policy beats the bound.
    for (const r of [light, heavy]) {
      const bound = r.studies[1]!.results.find((e) => e.kind === 'oracle')!.mean;
      for (const e of policies(r)) expect(e.mean, e.name).toBeGreaterThanOrEqual(bound);
    }
  });

  it('reads a gzipped cache CSV (*.csv.gz) as CSV when no --format is given', async () => {
    const gz = join(dir, 'cache.csv.gz');
    writeFileSync(gz, gzipSync(readFileSync(files.cacheCsv)));
    const out = join(dir, 'gz-out');
    const argv = ['cache', '--quick', '--seeds', '2', '--budget', '4', '--trace', gz];
    expect(await quietly([...argv, '--out', out])).toBe(0);
    const r = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as ExperimentResult;
    expect(r.workload.trace).toEqual({ path: gz, format: 'csv' });
    // The same numbers as the plain CSV.
    const plain = await runExperiment(EXPERIMENTS['cache']!, {
      quick: true,
      seeds: 2,
      budget: 4,
      trace: { path: files.cacheCsv, format: 'csv' },
    });
    expect(r.studies[1]!.results.map((e) => e.mean)).toEqual(
      plain.studies[1]!.results.map((e) => e.mean),
    );
  });

  it('refuses a jobs trace it cannot replay at a load, naming the file and the rule', async () => {
    const pods = readFileSync(files.alibabaPods, 'utf8');
    const [podsHeader, ...podRows] = pods.trim().split('\n');
    const alibaba = (name: string, podsText: string, nodes: string[]) => {
      write(`${name}_nodes.csv`, ['sn,cpu_milli,memory_mib,gpu,model', ...nodes]);
      writeFileSync(join(dir, `${name}_pods.csv`), podsText);
      return join(dir, `${name}_pods.csv`);
    };
    const pendingPod = podRows[0]!.replace(/Succeeded,(\d+),(\d+),\d+$/, 'Pending,$1,$2,');
    const cases: [string, string, RegExp][] = [
      [write('one.csv', ['arrival_s,duration_s', '0,5']), 'csv', /:0: .* two or more .*one job/],
      [
        write('same.csv', ['arrival_s,duration_s', '3,5', '3,1']),
        'csv',
        /:0: .* two or more different times; all 2 of its jobs arrive at once/,
      ],
      [
        write('idle.csv', ['arrival_s,duration_s', '0,0', '1,0']),
        'csv',
        /:0: .* needs work: every job's duration is 0/,
      ],
      [alibaba('nonodes', pods, []), 'alibaba', /nonodes_nodes\.csv:2: no nodes/],
      [
        alibaba('pending', `${podsHeader}\n${pendingPod}\n`, ['n0,8000,16384,1,T4']),
        'alibaba',
        /pending_pods\.csv:0: no scheduled pods/,
      ],
      [
        alibaba('nogpu', pods, ['n0,8000,16384,0,']),
        'alibaba',
        /nogpu_pods\.csv:0: .* a cluster with each resource its jobs ask for/,
      ],
    ];
    for (const [file, format, want] of cases) {
      const run = runExperiment(EXPERIMENTS['scheduler']!, {
        quick: true,
        seeds: 1,
        budget: 1,
        trace: { path: file, format },
      });
      await expect(run, file).rejects.toThrow(want);
      await expect(run, file).rejects.toHaveProperty('name', 'TraceFormatError');
      // The CLI: a message and exit code 1, not a stack trace; nothing written.
      const out = join(dir, 'never');
      const argv = ['scheduler', '--quick', '--trace', file, '--format', format, '--out', out];
      expect(await quietly(argv)).toBe(1);
      expect(existsSync(out)).toBe(false);
    }
  });

  it('fails with the file and line of a malformed trace, and names a wrong format', async () => {
    const bad = write('bad.csv', ['obj_id,obj_size', 'a,10', 'b,ten']);
    const spec = EXPERIMENTS['cache']!;
    await expect(
      runExperiment(spec, { quick: true, trace: { path: bad, format: 'csv' } }),
    ).rejects.toThrow(`${bad}:3:`);
    await expect(
      runExperiment(spec, { quick: true, trace: { path: bad, format: 'parquet' } }),
    ).rejects.toThrow(TraceOptionError);
    // A stages file with no durations file next to it (the temp dir's root has one).
    const sub = mkdtempSync(join(dir, 'sub-'));
    const moved = join(sub, 'stages.csv');
    writeFileSync(moved, 'scale,query,stage,num_tasks,parents\n');
    await expect(
      runExperiment(EXPERIMENTS['scheduler']!, {
        quick: true,
        trace: { path: moved, format: 'tpch' },
      }),
    ).rejects.toThrow(/task durations/);
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(
        await runExpCommand(['cache', '--quick', '--trace', bad, '--out', join(dir, 'o')]),
      ).toBe(1);
    } finally {
      err.mockRestore();
    }
  });
});
