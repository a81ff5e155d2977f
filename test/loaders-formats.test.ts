// The trace loaders on variants of the formats in ../shared/traces/README.md: files that are
// the same trace written differently (another name, gzipped, columns reordered, epoch times)
// load the same, and rows that break a rule the README states are refused with the file, the
// line and the rule. Every fixture is generated here, in a temp dir.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCacheCsv } from '../envs/loaders/cache-csv.ts';
import { loadCacheKeys } from '../envs/loaders/cache-keys.ts';
import { defaultCacheFormat, loadCacheTrace } from '../envs/loaders/cache-load.ts';
import { CacheTraceBuilder, type CacheTrace } from '../envs/loaders/cache-trace.ts';
import { TraceFormatError } from '../envs/loaders/errors.ts';
import { loadAlibabaGpu } from '../envs/loaders/jobs-alibaba.ts';
import { loadJobsCsv } from '../envs/loaders/jobs-csv.ts';
import { loadTpchDags, loadTpchDurations } from '../envs/loaders/jobs-tpch.ts';
import { loadAzureRequests, parseAzureRequests } from '../envs/loaders/requests-azure.ts';
import type { Workload } from '../envs/scheduler/types.ts';
import { TPCH_DURATIONS, TPCH_STAGES } from './helpers/tpch-fixture.ts';

const dir = mkdtempSync(join(tmpdir(), 'knobos-loaders-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let made = 0;
/** A fresh file (a new name each time: the durations loader caches per file). */
function tmp(name: string, text: string | Buffer): string {
  const file = join(dir, `${made++}-${name}`);
  writeFileSync(file, text);
  return file;
}

/** The TraceFormatError `fn` throws. */
function traceError(fn: () => unknown): TraceFormatError {
  try {
    fn();
  } catch (err) {
    if (err instanceof TraceFormatError) return err;
    throw err;
  }
  throw new Error('expected a TraceFormatError');
}

/** Expects `fn` to refuse `file` at `line` for `reason`. */
function refuses(fn: () => unknown, file: string, line: number, reason: RegExp): void {
  const err = traceError(fn);
  expect([err.file, err.line]).toEqual([file, line]);
  expect(err.reason).toMatch(reason);
  expect(err.message).toContain(`${file}:${line}: `);
}

/** Rows of a CSV with one column rewritten by `f` (header untouched). */
function mapColumn(csv: string, col: number, f: (v: string) => string): string {
  return csv
    .split('\n')
    .map((l, i) => {
      if (i === 0 || l === '') return l;
      const fields = l.split(',');
      fields[col] = f(fields[col] as string);
      return fields.join(',');
    })
    .join('\n');
}

/** Columns of a CSV in a new order (`order[k]` is the old index of new column k). */
function reorder(csv: string, order: number[]): string {
  return csv
    .split('\n')
    .map((l) => (l === '' ? l : order.map((k) => l.split(',')[k]).join(',')))
    .join('\n');
}

const summary = (t: CacheTrace) => ({
  keys: Array.from(t.keys),
  sizes: t.sizes && Array.from(t.sizes),
  keyCount: t.keyCount,
});

describe('cache traces (CSV version,time,op,size,lbn, or one key per line)', () => {
  // 12 requests over 5 blocks, as the shared trace writes them.
  const lbns = [7, 8, 7, 9, 10, 7, 8, 11, 9, 7, 12, 8];
  const CSV =
    'version,time,op,size,lbn\n' +
    lbns
      .map((b, i) => `1,${100 + i},${i % 3 ? '28' : '2a'},${512 * (1 + (b % 3))},${b}`)
      .join('\n') +
    '\n';

  it('read a CSV as CSV whatever its name, gzipped or not (the header says so)', () => {
    const want = summary(loadCacheTrace(tmp('c.csv', CSV)));
    expect(want.keys.length).toBe(12);
    expect(want.keyCount).toBe(6);
    for (const [name, text] of [
      ['c.trace', CSV],
      ['c_gz_trace', gzipSync(CSV)],
      ['c.txt.gz', gzipSync(CSV)],
      ['c.csv.gz', gzipSync(CSV)],
      ['c.log', '\uFEFF\r\n' + CSV.replace(/\n/g, '\r\n')],
    ] as const) {
      const file = tmp(name, text);
      expect(defaultCacheFormat(file)).toBe('csv');
      expect(summary(loadCacheTrace(file))).toEqual(want);
    }
    // A key column named in the header, alone, is a header too; so is one whose separator is
    // not a comma (it was read as keys: the header a request, each row one key). Loading it
    // then names the columns it found, and the delimiter reads it.
    expect(defaultCacheFormat(tmp('one.dat', 'lbn\n5\n6\n'))).toBe('csv');
    const semi = tmp('semi.csv', 'time;obj_id;obj_size\n1;a;5\n2;a;5\n');
    expect(defaultCacheFormat(semi)).toBe('csv');
    refuses(() => loadCacheTrace(semi), semi, 1, /no key column.*time;obj_id;obj_size/);
    expect(loadCacheTrace(semi, { delimiter: ';' }).keyCount).toBe(1);
    expect(Array.from(loadCacheTrace(tmp('one.dat', 'lbn\n5\n6\n5\n')).keys)).toEqual([0, 1, 0]);
  });

  it("refuse an lbn that is no block address, and read '042' and '42' as one block", () => {
    const head = 'version,time,op,size,lbn\n1,0,28,512,42\n';
    for (const bad of ['abc', '-5', '1.5']) {
      const f = tmp('b.csv', `${head}1,1,28,512,${bad}\n`);
      refuses(() => loadCacheTrace(f), f, 3, /lbn must be a block address, an integer >= 0/);
    }
    const t = loadCacheTrace(tmp('b.csv', `${head}1,1,28,512,042\n1,2,28,512,0\n1,3,28,512,000\n`));
    expect(Array.from(t.keys)).toEqual([0, 0, 1, 1]);
  });

  it('read one key per line as keys whatever its name', () => {
    for (const name of ['k.txt', 'k.csv', 'k.keys.gz']) {
      const text = 'a\nb\na\n';
      const file = tmp(name, name.endsWith('.gz') ? gzipSync(text) : text);
      expect(defaultCacheFormat(file)).toBe('keys');
      expect(Array.from(loadCacheTrace(file).keys)).toEqual([0, 1, 0]);
    }
  });

  it('refuse a CSV line read as one key per line, naming file and line', () => {
    const file = tmp('c.trace', CSV);
    refuses(() => loadCacheKeys(file), file, 1, /one key per line, got a ','/);
    refuses(() => loadCacheTrace(file, { format: 'keys' }), file, 1, /one key per line/);
    const late = tmp('k.txt', 'a\nb\nc,d\n');
    refuses(() => loadCacheTrace(late), late, 3, /one key per line, got a ','/);
  });

  it('check the columns the README defines but the simulator does not replay', () => {
    /** The CSV with line `i + 1` changed by `f`. */
    const row = (i: number, f: (fields: string[]) => void): string => {
      const lines = CSV.split('\n');
      const fields = (lines[i] as string).split(',');
      f(fields);
      lines[i] = fields.join(',');
      return lines.join('\n');
    };
    const cases: [string, string, RegExp][] = [
      [
        'time abc',
        row(3, (f) => (f[1] = 'abc')),
        /time must be a time, a decimal number >= 0, got "abc"/,
      ],
      ['time -1', row(3, (f) => (f[1] = '-1')), /time must be .*>= 0, got "-1"/],
      ['time 0x10', row(3, (f) => (f[1] = '0x10')), /time must be .*got "0x10"/],
      ['op zz', row(3, (f) => (f[2] = 'zz')), /op must be one of 2a, 28 .*got "zz"/],
      ['op empty', row(3, (f) => (f[2] = '')), /op must be one of 2a, 28/],
    ];
    for (const [, text, reason] of cases) {
      const file = tmp('bad.csv', text);
      refuses(() => loadCacheTrace(file), file, 4, reason);
    }
    // Either case of the op code, and fractional times, are fine; so is a file without them.
    expect(
      loadCacheTrace(
        tmp(
          'ok.csv',
          row(3, (f) => ((f[1] = '1.5'), (f[2] = '2A'))),
        ),
      ).keyCount,
    ).toBe(6);
    expect(loadCacheCsv(tmp('ok.csv', 'key\na\nb\n')).keyCount).toBe(2);
    // Another CSV (the file service's access trace) names its ops its own way; its time is
    // still a number.
    const access =
      'time,key,size,op\n1700000000123,v:1:0,4096,read\n1700000000200,v:1:1,10,write\n';
    expect(loadCacheTrace(tmp('access.csv', access)).keyCount).toBe(2);
    const badTime = tmp('access.csv', access.replace('1700000000200', 'soon'));
    refuses(
      () => loadCacheTrace(badTime),
      badTime,
      3,
      /time must be a time, a decimal number >= 0/,
    );
  });

  it('refuse a header naming the key or size column twice', () => {
    for (const header of ['lbn,lbn,size', 'LBN,size,lbn', 'lbn,size,size']) {
      const file = tmp('dup.csv', `${header}\n1,2,3\n`);
      refuses(() => loadCacheTrace(file), file, 1, /column \w+ appears twice in the header/);
    }
  });

  it('refuse a maxRequests that is not an integer >= 1', () => {
    const file = tmp('c.csv', CSV);
    for (const m of [0, -1, 2.5, Number.NaN]) {
      expect(() => loadCacheTrace(file, { maxRequests: m })).toThrow(
        /maxRequests must be an integer >= 1/,
      );
    }
    expect(loadCacheTrace(file, { maxRequests: 3 }).keys.length).toBe(3);
  });
});

describe('cache key interning past one map', () => {
  it('gives the same dense ids when the keys fill several maps', () => {
    // A V8 Map holds 2^24 entries; traces with more distinct keys fill several maps. Three keys
    // per map here cross maps as 2^23 do, without building them.
    const trace = 'a b c d a e f g h c i a j k b l'.split(' ');
    const one = new CacheTraceBuilder('mem', false);
    const many = new CacheTraceBuilder('mem', false, 3);
    for (const k of trace) {
      one.push(k);
      many.push(k);
    }
    const [x, y] = [one.build(trace.length), many.build(trace.length)];
    expect(Array.from(y.keys)).toEqual(Array.from(x.keys));
    expect(y.keyCount).toBe(12);
    expect(Array.from(y.keys).slice(0, 6)).toEqual([0, 1, 2, 3, 0, 4]);
  });
});

describe('Alibaba pods (times in seconds)', () => {
  const NODES = 'sn,cpu_milli,memory_mib,gpu,model\nn0,8000,65536,2,T4\nn1,4000,16384,0,\n';
  const PODS = [
    'name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time',
    'p0,1000,1024,1,500,,LS,Succeeded,0,100,10',
    'p1,2000,1024,0,0,,BE,Running,5,200,5',
    'p2,1000,1024,1,1000,T4|A10,LS,Pending,7,9,',
    'p3,1000,1024,1,1000,T4,BE,Failed,8,20.5,8',
    'p4,1000,1024,0,0,,BE,Succeeded,30,31,30',
  ].join('\n');
  const nodes = () => tmp('nodes.csv', NODES);
  const load = (pods: string, maxPods?: number): Workload =>
    loadAlibabaGpu({ podsFile: tmp('pods.csv', pods), nodesFile: nodes(), maxPods });
  const shift = (text: string, by: number) =>
    [8, 9, 10].reduce(
      (t, c) => mapColumn(t, c, (v) => (v === '' ? v : String(Number(v) + by))),
      text,
    );

  it('replay a trace in epoch seconds as the same trace starting at 0', () => {
    const base = load(PODS);
    expect(base.jobs.map((j) => j.arrivalMs)).toEqual([0, 5000, 8000, 30_000]);
    for (const by of [1_700_000_000, 1_700_000_000.25, 12_345]) {
      const w = load(shift(PODS, by));
      expect(w).toEqual(base);
    }
    // A trace whose first pod arrives later starts at that pod.
    const later = load(shift(PODS, 50));
    expect(later.jobs.map((j) => j.arrivalMs)).toEqual([0, 5000, 8000, 30_000]);
  });

  it('bound spans, not absolute times', () => {
    const long = PODS.replace('Succeeded,0,100,10', 'Succeeded,0,1000000001,10');
    const f = tmp('pods.csv', long);
    refuses(
      () => loadAlibabaGpu({ podsFile: f, nodesFile: nodes() }),
      f,
      2,
      /deletion_time - creation_time must be <= 1000000000 s/,
    );
    const wide = shift(PODS, 1_700_000_000).replace(
      'p4,1000,1024,0,0,,BE,Succeeded,1700000030,1700000031,1700000030',
      'p4,1000,1024,0,0,,BE,Succeeded,2800000030,2800000031,2800000030',
    );
    const g = tmp('pods.csv', wide);
    refuses(
      () => loadAlibabaGpu({ podsFile: g, nodesFile: nodes() }),
      g,
      6,
      /creation_time 2800000030 is more than 1000000000 s after the trace's earliest \(1700000000, line 2\)/,
    );
    // Milliseconds in a seconds column are out of range.
    const ms = mapColumn(shift(PODS, 1_700_000_000), 8, (v) => `${v}000`);
    const h = tmp('pods.csv', ms);
    refuses(
      () => loadAlibabaGpu({ podsFile: h, nodesFile: nodes() }),
      h,
      2,
      /creation_time must be <= 100000000000/,
    );
  });

  it('refuse rows whose fields contradict each other (review: they loaded as other pods)', () => {
    for (const [from, to, line, reason] of [
      // A GPU share on a pod that asks for no GPU: it loaded as a CPU-only pod.
      ['p1,2000,1024,0,0,', 'p1,2000,1024,0,500,', 3, /gpu_milli must be 0 when num_gpu is 0/],
      // A Running pod with no schedule: it was dropped as never scheduled.
      ['Running,5,200,5', 'Running,5,200,', 3, /scheduled_time must be set for a Running pod/],
      // A Pending pod with a schedule: it was replayed as scheduled.
      ['Pending,7,9,', 'Pending,7,9,8', 4, /scheduled_time must be empty for a Pending pod/],
    ] as const) {
      const f = tmp('pods.csv', PODS.replace(from, to));
      refuses(() => loadAlibabaGpu({ podsFile: f, nodesFile: nodes() }), f, line, reason);
    }
  });

  it('read only maxPods rows, streaming: a bad row after them is not read', () => {
    const bad = `${PODS}\np5,oops,1,2\n`;
    const w = load(bad, 2);
    expect(w.jobs.map((j) => j.id)).toEqual(['p0', 'p1']);
    expect(w.notes?.['pods']).toBe(2);
    expect(load(bad, 3).notes).toEqual({
      pods: 3,
      never_scheduled_dropped: 1,
      running_censored: 1,
    });
    const f = tmp('pods.csv', bad);
    refuses(() => loadAlibabaGpu({ podsFile: f, nodesFile: nodes() }), f, 7, /expected 11 fields/);
  });

  it('refuse a maxPods that is not an integer >= 1', () => {
    for (const m of [-1, 0, 2.5, Number.NaN]) {
      expect(() => load(PODS, m)).toThrow(/maxPods must be an integer >= 1/);
    }
  });

  it('refuse numbers that are not decimal', () => {
    for (const v of ['0x3e8', '1e', 'Infinity', '0b1']) {
      const f = tmp('pods.csv', PODS.replace('p0,1000,', `p0,${v},`));
      refuses(
        () => loadAlibabaGpu({ podsFile: f, nodesFile: nodes() }),
        f,
        2,
        /cpu_milli must be a decimal number/,
      );
    }
  });
});

describe('generic jobs CSV (arrival_s, duration_s)', () => {
  const JOBS = 'arrival_s,duration_s,tenant\n0,2,a\n1.5,3,b\n4,1,a\n';

  it('replay a trace in epoch seconds as the same trace starting at 0', () => {
    const base = loadJobsCsv(tmp('jobs.csv', JOBS));
    expect(base.jobs.map((j) => j.arrivalMs)).toEqual([0, 1500, 4000]);
    const epoch = mapColumn(JOBS, 0, (v) => String(Number(v) + 1_700_000_000));
    const w = loadJobsCsv(tmp('jobs.csv', epoch));
    expect({ ...w, name: '' }).toEqual({ ...base, name: '' });
  });

  it('bound durations and spans, and refuse hex', () => {
    const cases: [string, number, RegExp][] = [
      ['arrival_s,duration_s\n1,2\n2,1000000001\n', 3, /duration_s must be <= 1000000000/],
      [
        'arrival_s,duration_s\n10,2\n1000000011,2\n',
        3,
        /arrival_s 1000000011 is more than 1000000000 s after/,
      ],
      ['arrival_s,duration_s\n170000000000000,2\n', 2, /arrival_s must be <= 100000000000/],
      ['arrival_s,duration_s\n0x10,2\n', 2, /arrival_s must be a decimal number, got "0x10"/],
      ['arrival_s,duration_s\n1,2e-\n', 2, /duration_s must be a decimal number, got "2e-"/],
      ['arrival_s,duration_s\n1,2e10\n', 2, /duration_s must be <= 1000000000/],
    ];
    for (const [text, line, reason] of cases) {
      const f = tmp('jobs.csv', text);
      refuses(() => loadJobsCsv(f), f, line, reason);
    }
  });
});

describe('TPC-H stages and task durations', () => {
  const STAGES = TPCH_STAGES;
  // A second sample of one stage's wave too.
  const DURATIONS = TPCH_DURATIONS.replace(
    '1g,7,2,2,first_wave,70',
    '1g,7,2,2,first_wave,70\n1g,7,2,2,first_wave,75',
  );
  const samples = (m: Map<string, Float64Array>) =>
    Object.fromEntries([...m].map(([k, v]) => [k, Array.from(v)]));

  it('find the durations columns by name, in any order', () => {
    const want = samples(loadTpchDurations(tmp('d.csv', DURATIONS)));
    expect(want['1g,7,2']).toEqual([70, 75]);
    for (const order of [
      [5, 4, 3, 2, 1, 0],
      [4, 5, 0, 1, 2, 3],
      [0, 1, 3, 2, 5, 4],
      [2, 1, 0, 5],
    ]) {
      const text = reorder(DURATIONS, order);
      expect(samples(loadTpchDurations(tmp('d.csv', text)))).toEqual(want);
      expect(samples(loadTpchDurations(tmp('d.csv.gz', gzipSync(text))))).toEqual(want);
    }
    const f = tmp('d.csv', reorder(DURATIONS, [0, 1, 3, 4]));
    refuses(() => loadTpchDurations(f), f, 1, /header lacks column\(s\) stage, duration_ms/);
  });

  it('check num_executors when present, and decimal numbers', () => {
    const row5 = (from: string, to: string) =>
      DURATIONS.replace(
        `1g,7,2,2,first_wave,75`,
        `1g,7,2,${from === 'ex' ? to : '2'},first_wave,${from === 'dur' ? to : '75'}`,
      );
    const cases: [string, RegExp][] = [
      [row5('ex', 'xx'), /num_executors must be an integer >= 1, got "xx"/],
      [row5('ex', '0'), /num_executors must be an integer >= 1, got "0"/],
      [row5('ex', '1.5'), /num_executors must be an integer >= 1/],
      [row5('dur', '0x10'), /duration_ms must be a decimal number >= 0, got "0x10"/],
      [row5('dur', '-1e3'), /duration_ms must be .*got "-1e3"/],
      [
        DURATIONS.replace('1g,7,2,2,first_wave,75', '1g,7,0x2,2,first_wave,75'),
        /stage must be an integer in 0..2\^53 - 1, got "0x2"/,
      ],
    ];
    for (const [text, reason] of cases) {
      for (const variant of [text, reorder(text, [5, 4, 3, 2, 1, 0])]) {
        const f = tmp('d.csv', variant);
        refuses(() => loadTpchDurations(f), f, 6, reason);
      }
    }
  });

  it('refuse a cycle in a DAG, naming its stages, file and line', () => {
    const durations = tmp('d.csv', DURATIONS);
    // 0 -> 2 -> 1 -> 0, every link mirrored.
    const cycle = [
      'scale,query,stage,num_tasks,parents,children',
      '2g,9,0,1,,',
      '1g,7,0,2,1,2',
      '1g,7,1,1,2,0',
      '1g,7,2,3,0,1',
    ].join('\n');
    const f = tmp('s.csv', cycle);
    refuses(() => loadTpchDags(f, durations), f, 3, /stages 0 -> 2 -> 1 -> 0 of 1g,7 form a cycle/);
    // Without a children column too.
    const g = tmp('s.csv', reorder(cycle, [0, 1, 2, 3, 4]));
    refuses(() => loadTpchDags(g, durations), g, 3, /form a cycle/);
  });

  it('refuse a parent link its parent does not mirror among its children', () => {
    const durations = tmp('d.csv', DURATIONS);
    const f = tmp('s.csv', STAGES.replace('1g,7,1,1,,2,10', '1g,7,1,1,,,10'));
    refuses(
      () => loadTpchDags(f, durations),
      f,
      4,
      /parent 1 does not list stage 2 among its children \(line 3\)/,
    );
    const g = tmp('s.csv', STAGES.replace('1g,7,2,3,0;1,,10', '1g,7,2,3,0;0x1,,10'));
    refuses(() => loadTpchDags(g, durations), g, 4, /parents must be ;-separated stage ids/);
    // Ids past 2^53 round onto their neighbours: parent 9007199254740993 (no such stage) read
    // as stage 9007199254740992 and the DAG loaded with a made-up edge. Refused now.
    const big = tmp(
      's.csv',
      'scale,query,stage,num_tasks,parents\n2g,1,9007199254740992,1,\n2g,1,0,1,9007199254740993\n',
    );
    const bigDurations = tmp(
      'bd.csv',
      'scale,query,stage,duration_ms\n2g,1,9007199254740992,10\n2g,1,0,20\n',
    );
    refuses(
      () => loadTpchDags(big, bigDurations),
      bigDurations,
      2,
      /stage must be an integer in 0..2\^53 - 1/,
    );
    const parent = tmp(
      's.csv',
      STAGES.replace('1g,7,2,3,0;1,,10', '1g,7,2,3,0;9007199254740993,,10'),
    );
    refuses(
      () => loadTpchDags(parent, durations),
      parent,
      4,
      /parents must be ;-separated stage ids/,
    );
    // The good file loads.
    expect(loadTpchDags(tmp('s.csv', STAGES), durations)[0]?.stages[2]?.parents).toEqual([0, 1]);
  });
});

describe('Azure requests (TIMESTAMP,ContextTokens,GeneratedTokens)', () => {
  const rows = (n: number) =>
    'TIMESTAMP,ContextTokens,GeneratedTokens\n' +
    Array.from({ length: n }, (_, i) => `2023-11-16 18:17:0${i}.5,${10 + i},${i}`).join('\n') +
    '\n';

  it('refuse a maxRows that is not an integer >= 1', async () => {
    const f = tmp('r.csv', rows(4));
    for (const m of [0, -1, 2.5, Number.NaN]) {
      await expect(loadAzureRequests(f, { maxRows: m })).rejects.toThrow(
        /maxRows must be an integer >= 1/,
      );
      expect(() => parseAzureRequests(rows(4), 'mem.csv', { maxRows: m })).toThrow(RangeError);
    }
    expect((await loadAzureRequests(f, { maxRows: 2 })).tMs.length).toBe(2);
  });

  it('refuse a trace longer than the default bound instead of cutting it', () => {
    // The bound (DEFAULT_MAX_REQUEST_ROWS) lowered to 3 for the test.
    expect(parseAzureRequests(rows(3), 'mem.csv', {}, 3).tMs.length).toBe(3);
    refuses(
      () => parseAzureRequests(rows(4), 'mem.csv', {}, 3),
      'mem.csv',
      5,
      /more than 3 data rows; pass maxRows/,
    );
    // Asking for the first rows is not an error.
    expect(parseAzureRequests(rows(4), 'mem.csv', { maxRows: 3 }, 3).tMs.length).toBe(3);
  });

  it('read numbers in exponent form, as pandas and NumPy write large or small floats', () => {
    const r = parseAzureRequests(
      rows(2).replace(',11,', ',1.1e1,').replace(',10,', ',1E+3,'),
      'mem.csv',
    );
    expect(Array.from(r.contextTokens)).toEqual([1000, 11]);
    const w = loadJobsCsv(tmp('jobs.csv', 'arrival_s,duration_s\n0,1.5e1\n2.5e-1,2\n'));
    expect(w.jobs.map((j) => j.arrivalMs)).toEqual([0, 250]);
    expect(w.jobs[0]?.stages[0]?.durationsMs).toEqual([15_000]);
  });

  it('refuse tokens that are no decimal integers, and a column named twice', () => {
    for (const v of ['0x10', '1.5e0', '+Infinity']) {
      refuses(
        () => parseAzureRequests(rows(2).replace(',11,', `,${v},`), 'mem.csv'),
        'mem.csv',
        3,
        /ContextTokens: must be a non-negative integer/,
      );
    }
    refuses(
      () =>
        parseAzureRequests(
          'TIMESTAMP,ContextTokens,GeneratedTokens,contexttokens\n2023-11-16 18:17:03,1,1,2\n',
          'mem.csv',
        ),
      'mem.csv',
      1,
      /column ContextTokens appears twice/,
    );
  });
});
