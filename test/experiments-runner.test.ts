// The experiment runner: the same seeds give the same result; the result and the CLI's --json
// line have the documented shape; the files (result.json, result.md, SVG plots) are written
// and the SVGs are well-formed XML. Runs the quick variants on a small trace in a temp dir.
import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { runExpCommand } from '../experiments/command.ts';
import { renderMarkdown } from '../experiments/markdown.ts';
import { RESULTS_DIR, cliSummary, defaultOutDir, writeOutputs } from '../experiments/output.ts';
import type { ExperimentResult } from '../experiments/results.ts';
import { runExperiment } from '../experiments/runner.ts';
import { titleOf, type ExperimentSpec } from '../experiments/spec.ts';
import { cacheExperiment } from '../experiments/specs/cache.ts';
import { placementExperiment } from '../experiments/specs/placement.ts';
import { schedulerExperiment } from '../experiments/specs/scheduler.ts';
import { writeResultsIndex } from '../experiments/summary.ts';

const dir = mkdtempSync(join(tmpdir(), 'knobos-exp-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A small cache trace with sizes: a skewed key stream, so policies and sizes differ. */
function writeCacheCsv(file: string, requests: number): string {
  const lines = ['time,obj_id,obj_size'];
  let x = 12345;
  for (let i = 0; i < requests; i++) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    const key = Math.floor(Math.pow((x % 10_000) / 10_000, 3) * 400);
    lines.push(`${i},k${key},${4096 * (1 + (key % 4))}`);
  }
  writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

/** Checks that an SVG is well-formed XML: balanced tags, quoted attributes, escaped text. */
function checkWellFormedSvg(svg: string): void {
  const body = svg.trim().replace(/^<\?xml[^>]*\?>\s*/, '');
  expect(body.startsWith('<svg')).toBe(true);
  const tag = /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>/g;
  const stack: string[] = [];
  let at = 0;
  let roots = 0;
  for (const m of body.matchAll(tag)) {
    const text = body.slice(at, m.index);
    expect(text, `stray markup before offset ${m.index}`).not.toMatch(/[<>]/);
    expect(text).not.toMatch(/&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/);
    at = (m.index ?? 0) + m[0].length;
    const [, close, name, , selfClose] = m;
    if (close) {
      expect(stack.pop(), `closing </${name}>`).toBe(name);
    } else if (!selfClose) {
      if (stack.length === 0) roots++;
      stack.push(name as string);
    }
  }
  expect(body.slice(at).trim()).toBe('');
  expect(stack).toEqual([]);
  expect(roots).toBe(1);
}

/**
 * Runs the exp command with the system temp dir at `tmp` (where a run without --out writes)
 * and its output captured; returns the exit code and the stdout.
 */
async function runIn(tmp: string, argv: string[]): Promise<{ code: number; stdout: string }> {
  const out: string[] = [];
  const stdout = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    out.push(String(chunk));
    return true;
  });
  const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  const saved = process.env['TMPDIR'];
  process.env['TMPDIR'] = tmp;
  try {
    return { code: await runExpCommand(argv), stdout: out.join('') };
  } finally {
    stdout.mockRestore();
    stderr.mockRestore();
    if (saved === undefined) delete process.env['TMPDIR'];
    else process.env['TMPDIR'] = saved;
  }
}

const trace = writeCacheCsv(join(dir, 'small.csv'), 3000);
const opts = { quick: true, seeds: 2, budget: 8, trace: { path: trace, format: 'csv' } };

describe('experiment runner', () => {
  let first: ExperimentResult;

  it('gives identical results for the same seeds', async () => {
    first = await runExperiment(cacheExperiment, opts);
    const again = await runExperiment(cacheExperiment, opts);
    expect(JSON.stringify(again)).toBe(JSON.stringify(first));
  });

  it('reports mean, spread and per-seed values, trajectories for tuners, and the oracle gap', () => {
    expect(first.seeds).toEqual([1, 2]);
    expect(first.studies.map((s) => s.name)).toEqual([
      'cache-memory',
      'cache-policies-1pct',
      'cache-policies-10pct',
    ]);
    const tuning = first.studies[0]!;
    expect(first.results).toBe(tuning.results);
    const kinds = new Set(tuning.results.map((e) => e.kind));
    expect(kinds).toEqual(new Set(['oracle', 'baseline', 'learner']));
    for (const e of tuning.results) {
      expect(e.seeds.map((s) => s.seed)).toEqual([1, 2]);
      const values = e.seeds.map((s) => s.value);
      expect(e.mean).toBeCloseTo((values[0]! + values[1]!) / 2, 12);
      expect(e.std).toBeCloseTo(Math.abs(values[0]! - values[1]!) / Math.SQRT2, 12);
      if (e.kind === 'learner') {
        expect(e.trajectories).toHaveLength(2);
        for (const t of e.trajectories!) {
          expect(t.length).toBeLessThanOrEqual(8);
          // Best so far never gets worse (cost is minimised), and ends at the run's value.
          t.forEach((v, i) => i > 0 && expect(v).toBeLessThanOrEqual(t[i - 1]!));
        }
        expect(e.trajectories!.map((t) => t[t.length - 1])).toEqual(values);
      }
    }
    // Every gap is measured against the grid optimum's mean, in the metric's units.
    const oracle = tuning.results.find((e) => e.kind === 'oracle')!;
    for (const e of tuning.results.filter((x) => x.kind === 'baseline')) {
      expect(e.gap_to_oracle_abs).toBeCloseTo(e.mean - oracle.mean, 12);
    }
    const policies = first.studies[1]!;
    expect(policies.oracle).toBe('belady');
    for (const e of policies.results.filter((x) => x.kind !== 'oracle')) {
      // Belady's MIN is optimal: no online policy has fewer misses.
      expect(e.gap_to_oracle_abs).toBeGreaterThanOrEqual(0);
    }
    // The claim at 30 evaluations is not judged on runs of 8.
    const claim = tuning.comparisons.find((c) => c.type === 'within')!;
    expect(claim.evaluations).toBe(30);
    expect(claim).toMatchObject({ verdict: 'not judged', holds: false });
    expect(claim.text).toContain('runs have 8 evaluations, fewer than the 30 asked');
  });

  it('records the evaluations a tuner spent, not its budget, when it runs out of points', async () => {
    // The grid tuner has 5 sizes x 6 policies = 30 points on the cache study.
    const r = await runExperiment(cacheExperiment, { ...opts, seeds: 1, budget: 40 });
    const tuners = r.studies[0]!.results.filter((e) => e.kind === 'learner');
    const grid = tuners.find((e) => e.name === 'grid')!;
    expect(grid.trajectories![0]).toHaveLength(30);
    expect(grid.evaluations).toBe(30);
    for (const e of tuners.filter((x) => x.name !== 'grid')) expect(e.evaluations).toBe(40);
    const md = renderMarkdown(r, new Map(), 'npx knobos exp cache --quick --budget 40');
    expect(md).toContain('grid stopped after 30: it ran out of points');
  });

  it('writes result.json, result.md and well-formed SVG plots', async () => {
    const out = join(dir, 'out');
    const files = await writeOutputs(first, out, 'npx knobos exp cache --quick');
    const json = JSON.parse(readFileSync(files.json, 'utf8')) as Record<string, unknown>;
    expect(json['name']).toBe('cache');
    expect(json['machine']).toBeDefined();
    expect(json['studies']).toEqual(JSON.parse(JSON.stringify(first.studies)));
    const md = readFileSync(files.markdown, 'utf8');
    expect(md).toContain('| entry | kind | mean | std |');
    expect(md).toContain('cache-memory-curve.svg');
    // A tuner ran: the header says with what budget.
    expect(md).toContain('Seeds 1, 2; tuner budget 8 evaluations (quick run).');
    const svgs = readdirSync(out).filter((f) => f.endsWith('.svg'));
    expect(svgs.sort()).toEqual([
      'cache-memory-bars.svg',
      'cache-memory-curve.svg',
      'cache-policies-10pct-bars.svg',
      'cache-policies-1pct-bars.svg',
    ]);
    for (const f of svgs) {
      const svg = readFileSync(join(out, f), 'utf8');
      checkWellFormedSvg(svg);
      // The plot has marks (paths), not just axes.
      expect(svg.match(/<path/g)?.length ?? 0).toBeGreaterThan(5);
    }
  });

  it('indexes the result folders, skipping reports of other writers', async () => {
    const results = join(dir, 'results');
    await writeOutputs(first, join(results, 'cache'), 'npx knobos exp cache --quick');
    mkdirSync(join(results, 'foreign'));
    writeFileSync(join(results, 'foreign', 'result.json'), '{"name": "training report"}\n');
    const index = readFileSync(writeResultsIndex(results), 'utf8');
    expect(index).toContain(`## ${first.title}`);
    expect(index).toContain('(cache/result.md)');
    expect(index).not.toContain('foreign');
    // A quick run is marked as one, and its claims are not listed as results.
    expect(index).toContain(`## ${first.title} (QUICK RUN: not a result)`);
    expect(index).not.toContain(first.studies[0]!.comparisons[0]!.text);
  });

  it('refuses --quick with an --out inside the committed results, naming --out', async () => {
    // A folder that does not exist (removed below, should the refusal ever fail), two levels
    // down so that even a run let through would not rebuild the results index.
    const scratch = join(RESULTS_DIR, `quick-refusal-${process.pid}`);
    const out = join(scratch, 'cache');
    const err: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
      err.push(String(chunk));
      return true;
    });
    try {
      expect(await runExpCommand(['cache', '--quick', '--out', out])).toBe(2);
      expect(await runExpCommand(['placement', '--out', `${out}/../x`, '--quick'])).toBe(2);
    } finally {
      spy.mockRestore();
      rmSync(scratch, { recursive: true, force: true });
    }
    expect(err.join('')).toContain(`--out ${out} is inside ${RESULTS_DIR}`);
    expect(err.join('')).toContain('--quick runs may not write there');
  });

  it('rejects a well-formedness violation (the checker itself can fail)', () => {
    expect(() => checkWellFormedSvg('<svg><g></svg>')).toThrow();
    expect(() => checkWellFormedSvg('<svg><text>a & b</text></svg>')).toThrow();
  });

  it('prints one JSON object of the documented shape as the last stdout line', async () => {
    const out: string[] = [];
    const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      out.push(String(chunk));
      return true;
    });
    const level = process.env['KNOBOS_LOG_LEVEL'];
    process.env['KNOBOS_LOG_LEVEL'] = 'silent';
    let code: number;
    try {
      code = await runExpCommand([
        'placement',
        '--quick',
        '--seeds',
        '3',
        '--out',
        join(dir, 'placement'),
        '--json',
      ]);
    } finally {
      write.mockRestore();
      if (level === undefined) delete process.env['KNOBOS_LOG_LEVEL'];
      else process.env['KNOBOS_LOG_LEVEL'] = level;
    }
    expect(code).toBe(0);
    // result.md names the command that reproduces the run, --out included.
    expect(readFileSync(join(dir, 'placement', 'result.md'), 'utf8')).toContain(
      `\`npx knobos exp placement --seeds 3 --quick --out ${join(dir, 'placement')}\``,
    );
    const last = out.join('').trimEnd().split('\n').pop()!;
    const r = JSON.parse(last) as Record<string, unknown>;
    expect(r['experiment']).toBe('placement');
    expect(r['metric']).toBe('objective');
    expect(r['direction']).toBe('min');
    const results = r['results'] as Record<string, unknown>[];
    expect(results.map((e) => e['name'])).toEqual([
      'hash',
      'greedy',
      'greedy-payback2',
      'greedy-payback4',
      'greedy-payback8',
      'learned',
    ]);
    for (const e of results) {
      expect(Object.keys(e).sort()).toEqual(['kind', 'mean', 'name', 'seeds', 'std']);
      expect(['baseline', 'learner', 'oracle']).toContain(e['kind']);
      expect(e['seeds']).toHaveLength(3);
    }
    const best = r['best'] as { name: string; mean: number };
    expect(best.mean).toBe(Math.min(...results.map((e) => e['mean'] as number)));
    // The same run through the library gives the same numbers.
    const lib = await runExperiment(placementExperiment, { quick: true, seeds: 3 });
    expect(results.map((e) => e['mean'])).toEqual(lib.results.map((e) => e.mean));
  });

  it('refuses bad options with a usage error', async () => {
    const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    // --quick and --out: should a check fail, the run it let through writes to a temp dir.
    const safe = ['--quick', '--out', join(dir, 'never')];
    try {
      expect(await runExpCommand(['nosuch'])).toBe(2);
      expect(await runExpCommand(['cache', '--seeds', '0'])).toBe(2);
      expect(await runExpCommand(['placement', '--format', 'csv'])).toBe(2);
      expect(await runExpCommand(['scheduler', '--trace', trace])).toBe(2);
      // Object.prototype's members are no experiments.
      for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
        expect(await runExpCommand([name, ...safe]), name).toBe(2);
      }
      // Counts are plain decimal digits: no hex, exponent, sign, fraction or spaces.
      for (const v of ['0x10', '1e1', ' 3', '3 ', '+3', '-1', '1.0', '0']) {
        expect(await runExpCommand(['cache', `--seeds=${v}`, ...safe]), v).toBe(2);
        expect(await runExpCommand(['cache', `--budget=${v}`, ...safe]), v).toBe(2);
      }
      // --load: a decimal number in (0, 10), and only where a jobs trace is replayed.
      for (const v of ['0x1', '1e-1', ' 0.5', '-0.5', '0', '10']) {
        expect(await runExpCommand(['scheduler', `--load=${v}`, ...safe]), v).toBe(2);
      }
      expect(await runExpCommand(['cache', '--load', '0.5', ...safe])).toBe(2);
      // Placement replays a jobs trace only when given one: without, --load was ignored (exit 0).
      expect(await runExpCommand(['placement', '--load', '0.5', ...safe])).toBe(2);
      expect(existsSync(join(dir, 'never'))).toBe(false);
    } finally {
      err.mockRestore();
    }
  });

  it('records the offered load of a jobs trace: result, --json, command line, titles, folder', async () => {
    const jobs = join(dir, 'jobs.csv');
    writeFileSync(
      jobs,
      ['arrival_s,duration_s,cpu', ...Array.from({ length: 30 }, (_, i) => `${i},${1 + (i % 4)},1`)]
        .join('\n')
        .concat('\n'),
    );
    const tmp = mkdtempSync(join(dir, 'tmp-'));
    const argv = ['scheduler', '--quick', '--seeds', '1', '--budget', '2'];
    const { code, stdout } = await runIn(tmp, [
      ...argv,
      ...['--trace', jobs, '--format', 'csv', '--load', '0.5', '--json'],
    ]);
    expect(code).toBe(0);
    expect(JSON.parse(stdout.trimEnd().split('\n').pop()!)).toMatchObject({
      experiment: 'scheduler',
      load: 0.5,
    });
    // Its own folder: not the one of a run at the default load.
    const out = join(tmp, 'knobos-exp', 'scheduler-jobs-load0.5-quick');
    const r = JSON.parse(readFileSync(join(out, 'result.json'), 'utf8')) as ExperimentResult;
    expect(r.load).toBe(0.5);
    expect(r.title).toBe(
      'Scheduler: knob tuning on TPC-H at 50% load; heuristic and learned policies',
    );
    expect(r.studies.map((s) => s.title).filter((t) => t.includes('% load'))).toEqual([
      'Scheduler knobs on TPC-H at 50% load (30-job draws)',
      'Heuristic and learned scheduling policies on TPC-H at 50% load, one workload per seed',
    ]);
    const md = readFileSync(join(out, 'result.md'), 'utf8');
    expect(md).toContain(
      `\`npx knobos exp scheduler --trace ${jobs} --format csv --seeds 1 --budget 2 --quick --load 0.5\``,
    );
    // A workload that is no jobs trace has no load to record.
    expect(first.load).toBeUndefined();

    // At the default load, the committed results' folder and titles stay as they are.
    expect(defaultOutDir('scheduler', false)).toBe(join(RESULTS_DIR, 'scheduler'));
    expect(defaultOutDir('scheduler', false, undefined, 0.85)).toBe(join(RESULTS_DIR, 'scheduler'));
    expect(defaultOutDir('scheduler', false, undefined, 0.5)).toBe(
      join(RESULTS_DIR, 'scheduler-load0.5'),
    );
    expect(defaultOutDir('scheduler', false, '/x/jobs.csv', 2)).toBe(
      join(RESULTS_DIR, 'scheduler-jobs-load2'),
    );
    const ctx = { quick: false, load: 0.85 };
    expect(titleOf(schedulerExperiment.title, ctx)).toBe(
      'Scheduler: knob tuning on TPC-H at 85% load; heuristic and learned policies',
    );
    expect(schedulerExperiment.studies.slice(0, 2).map((s) => titleOf(s.title, ctx))).toEqual([
      'Scheduler knobs on TPC-H at 85% load (30-job draws)',
      'Heuristic and learned scheduling policies on TPC-H at 85% load, one workload per seed',
    ]);
  });

  it('names the folder of a trace whose name is only an extension by the whole name', async () => {
    const keys = join(dir, '.keys');
    writeFileSync(keys, Array.from({ length: 500 }, (_, i) => `k${(i * 7) % 50}`).join('\n'));
    const tmp = mkdtempSync(join(dir, 'tmp-'));
    const { code } = await runIn(tmp, [
      'cache',
      '--quick',
      '--seeds',
      '1',
      '--budget',
      '2',
      '--trace',
      keys,
    ]);
    expect(code).toBe(0);
    expect(readdirSync(join(tmp, 'knobos-exp'))).toEqual(['cache-.keys-quick']);
    expect(defaultOutDir('cache', false, keys)).toBe(join(RESULTS_DIR, 'cache-.keys'));
    expect(defaultOutDir('cache', false, '/x/my trace.csv.gz')).toBe(
      join(RESULTS_DIR, 'cache-my_trace.csv'),
    );
  });
});

describe('a study with its own seeds', () => {
  // Two comparison studies of one seed-dependent entry; the second asks for 4 seeds.
  const spec: ExperimentSpec<null> = {
    name: 'own-seeds',
    title: 'own seeds',
    workload: { kind: 'generated', description: 'none', load: () => null },
    defaults: { seeds: 2, budget: 1 },
    quick: { seeds: 1, budget: 1 },
    studies: (['shared', 'own'] as const).map((name) => ({
      type: 'comparison' as const,
      name,
      title: name,
      metric: 'x',
      direction: 'min' as const,
      entries: [
        { name: 'seed', kind: 'baseline' as const, run: (_w: null, seed: number) => ({ x: seed }) },
      ],
      comparisons: [],
      ...(name === 'own' ? { seeds: 4 } : {}),
    })),
  };
  const seedsOf = (r: ExperimentResult, i: number) =>
    r.studies[i]!.results[0]!.seeds.map((s) => s.seed);

  it('runs on them in a full run without --seeds, and says so in the result', async () => {
    const r = await runExperiment(spec);
    expect(seedsOf(r, 0)).toEqual([1, 2]);
    expect(seedsOf(r, 1)).toEqual([1, 2, 3, 4]);
    expect(r.studies[1]!.results[0]!.mean).toBe(2.5);
    expect(r.studies[1]!.seeds).toEqual([1, 2, 3, 4]);
    expect(r.studies[0]!.seeds).toBeUndefined();
    const md = renderMarkdown(r, new Map(), 'cmd');
    expect(md.match(/runs on its own workload seeds: 1 to 4\./g)).toHaveLength(1);
    const json = cliSummary(r);
    expect(json.studies.map((s) => 'seeds' in s && s.seeds)).toEqual([false, [1, 2, 3, 4]]);
  });

  it('gives way to --seeds and to --quick', async () => {
    expect(seedsOf(await runExperiment(spec, { seeds: 3 }), 1)).toEqual([1, 2, 3]);
    expect(seedsOf(await runExperiment(spec, { quick: true }), 1)).toEqual([1]);
  });
});

describe('the knobos command line', () => {
  const bin = resolve(import.meta.dirname, '..', 'bin', 'knobos.mjs');

  /** Runs `knobos args` in a child process; code null when it had to be killed (it hung). */
  function knobos(
    args: string[],
    timeoutMs = 20_000,
  ): Promise<{ code: number | null; err: string }> {
    return new Promise((done) => {
      const child = spawn(process.execPath, [bin, ...args], {
        env: { ...process.env, KNOBOS_HOME: dir, KNOBOS_LOG_LEVEL: 'silent' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.on('close', (code) => {
        clearTimeout(timer);
        done({ code, err });
      });
    });
  }

  it('answers a name that is an Object.prototype member as an unknown command', async () => {
    const runs = await Promise.all(
      [['toString'], ['constructor'], ['__proto__'], ['exp', 'constructor']].map((a) => knobos(a)),
    );
    for (const [i, c] of ['toString', 'constructor', '__proto__'].entries()) {
      expect(runs[i]!.code, c).toBe(2);
      expect(runs[i]!.err).toContain(`knobos: unknown command '${c}'`);
    }
    expect(runs[3]!.code).toBe(2);
    expect(runs[3]!.err).toContain('knobos exp: unknown experiment constructor');
  }, 60_000);

  it('checks knobs options before it connects to Redis, and exits', async () => {
    // Nothing listens on port 1: a client opened before the check would retry forever.
    const redis = ['--redis', 'redis://127.0.0.1:1'];
    // Bad usage exits 2; a direct set the registry must make is refused (1), before connecting.
    const cases: [string[], string, number][] = [
      [['audit', '--limit', 'abc'], '--limit must be an integer >= 1 in decimal digits', 2],
      [
        ['history', 'scheduler.policy', '--limit=0'],
        "--limit must be an integer >= 1 in decimal digits, got '0'",
        2,
      ],
      [['audit', '--limit=-2'], "--limit must be an integer >= 1 in decimal digits, got '-2'", 2],
      [['list', '--limit', '5'], 'knobs list: --limit applies only to knobs history, audit', 2],
      [['nosuch'], "knobs: unknown command 'nosuch'", 2],
      // A learned policy version goes live through the registry's checks, not a direct set.
      [
        ['set', 'scheduler.policy_version', '3', '--base', '1', '--reason', 'x'],
        'scheduler.policy_version selects the live scheduler policy version',
        1,
      ],
    ];
    const runs = await Promise.all(cases.map(([a]) => knobos(['knobs', ...a, ...redis])));
    runs.forEach((r, i) => {
      expect(r.code, cases[i]![0].join(' ')).toBe(cases[i]![2]);
      expect(r.err).toContain(cases[i]![1]);
    });
  }, 60_000);
});
