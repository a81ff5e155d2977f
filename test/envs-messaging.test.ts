import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { checkEnv, createRng } from '../envs/core/index.ts';
import { CATALOG, findKnob } from '../knobs/index.ts';
import {
  AZURE_CODE_TRACE,
  TraceFormatError,
  loadAzureRequests,
  parseAzureRequests,
} from '../envs/loaders/requests-azure.ts';
import { parseDatetime, diffMs } from '../envs/loaders/requests-timestamp.ts';
import {
  BATCH_SIZE_LEVELS,
  BatchingSim,
  LINGER_MS_LEVELS,
  MessagingConfigError,
  MessagingEnv,
  fixedSource,
  generatedSource,
  messagesFromTrace,
  messagingObjective,
  percentile,
  simulateMessaging,
  traceSource,
  type CostModel,
  type Messages,
} from '../envs/messaging/index.ts';
import {
  burstyArrivals,
  burstyMeanRatePerS,
  poissonArrivals,
  poissonCount,
} from '../envs/workload/index.ts';

const TRACE = resolve(import.meta.dirname, '..', AZURE_CODE_TRACE);
/** A cost model simple enough to compute by hand: 1 ms per batch, 0.5 ms per message. */
const HAND: CostModel = { batchOverheadMs: 1, perMessageMs: 0.5, perKTokenMs: 0 };
const msgs = (t: number[]): Messages => ({
  tMs: Float64Array.from(t),
  tokens: new Float64Array(t.length),
});
const noPrices = { partitionCostMs: 0, bufferSlotCostMs: 0 };

describe('batching simulator, by hand', () => {
  it('seals on size or linger and queues batches at the consumer', () => {
    // batch 2, linger 3, one partition; arrivals 0, 1, 2, 10, 10.5:
    //   {0,1} sealed at 1 (full), runs 1..3        -> latencies 3, 2
    //   {2}   sealed at 5 (linger), runs 5..6.5    -> latency 4.5
    //   {10, 10.5} sealed at 10.5, runs 10.5..12.5 -> latencies 2.5, 2
    const m = simulateMessaging(
      fixedSource('hand', msgs([0, 1, 2, 10, 10.5])),
      { batchSize: 2, lingerMs: 3, partitions: 1 },
      1,
      HAND,
      noPrices,
    );
    expect(m['batches']).toBe(3);
    expect(m['mean_latency_ms']).toBeCloseTo(14 / 5, 12);
    expect(m['p99_latency_ms']).toBeCloseTo(4.5, 12);
    expect(m['max_latency_ms']).toBeCloseTo(4.5, 12);
    expect(m['throughput_per_s']).toBeCloseTo(5000 / 12.5, 9);
    expect(m['offered_rate_per_s']).toBeCloseTo(4000 / 10.5, 9); // 5 arrivals, 4 gaps
    expect(m['consumer_utilisation']).toBeCloseTo(5.5 / 12.5, 12);
  });

  it('queues unbatched messages behind the per-batch overhead', () => {
    // batch 1: each message alone costs 1.5 ms; arrivals every 0.5 ms queue up.
    const sim = new BatchingSim(
      msgs([0, 0.5, 1]),
      HAND,
      1,
      { batchSize: 1, lingerMs: 0 },
      createRng(1),
    );
    expect(sim.advance(Infinity).latenciesMs).toEqual([1.5, 2.5, 3.5]);
  });

  it('batches simultaneous arrivals even with linger 0', () => {
    const sim = new BatchingSim(msgs([0, 0]), HAND, 1, { batchSize: 8, lingerMs: 0 }, createRng(1));
    const w = sim.advance(Infinity);
    expect(w.batches).toBe(1);
    expect(w.latenciesMs).toEqual([2, 2]);
  });

  it('seals an open batch at once when new knobs make it due', () => {
    const sim = new BatchingSim(
      msgs([0, 1, 2]),
      HAND,
      1,
      { batchSize: 8, lingerMs: 100 },
      createRng(1),
    );
    expect(sim.advance(2.5).latenciesMs).toEqual([]);
    sim.setKnobs({ batchSize: 2, lingerMs: 100 }, 2.5);
    // Sealed at 2.5 with 3 messages: runs 2.5..5.
    expect(sim.advance(3).latenciesMs).toEqual([5, 4, 3]);
    expect(sim.done).toBe(true);
  });

  it('takes nearest-rank percentiles', () => {
    expect(percentile([5, 1, 3, 2, 4], 50)).toBe(3);
    expect(percentile([5, 1, 3, 2, 4], 99)).toBe(5);
    expect(percentile([], 99)).toBe(0);
  });
});

describe('request trace loader (Azure format)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'knobos-requests-'));
  const file = (name: string, text: string): string => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };

  it('reads columns by name, relative times, CRLF, a BOM and extra columns', async () => {
    const p = file(
      'ok.csv',
      '\uFEFFGeneratedTokens,Extra,TIMESTAMP,ContextTokens\r\n' +
        '10,x,2023-11-16 18:17:03.9799600,4808\r\n' +
        '8,y,2023-11-16 18:17:04.0319600,3180\r\n' +
        '\r\n',
    );
    const t = await loadAzureRequests(p);
    expect(Array.from(t.tMs)).toEqual([0, expect.closeTo(52, 9)]);
    expect(Array.from(t.contextTokens)).toEqual([4808, 3180]);
    expect(Array.from(t.generatedTokens)).toEqual([10, 8]);
    expect(t.outOfOrderRows).toBe(0);
  });

  it('sorts and counts rows out of time order', () => {
    const t = parseAzureRequests(
      'TIMESTAMP,ContextTokens,GeneratedTokens\n2023-01-01 00:00:02,1,1\n2023-01-01 00:00:01,2,2\n2023-01-01 00:00:03,3,3\n',
      'mem.csv',
    );
    expect(t.outOfOrderRows).toBe(1);
    expect(Array.from(t.tMs)).toEqual([0, 1000, 2000]);
    expect(Array.from(t.contextTokens)).toEqual([2, 1, 3]);
  });

  it('parses datetimes exactly, with zones and any fraction length', () => {
    const a = parseDatetime('2023-01-01T00:00:00Z');
    const b = parseDatetime('2023-01-01 01:00:00.000000125+01:00');
    if (typeof a === 'string' || typeof b === 'string') throw new Error('parse failed');
    // 125 ns is 0.000125 ms.
    expect(diffMs(a, b)).toBeCloseTo(0.000125, 12);
    expect(parseDatetime('2023-02-30 00:00:00')).toMatch(/no such date/);
    expect(parseDatetime('yesterday')).toMatch(/not a datetime/);
  });

  const bad: [string, string, number, RegExp][] = [
    [
      'bad timestamp',
      'TIMESTAMP,ContextTokens,GeneratedTokens\n2023-01-01 00:00:00,1,1\n2023-13-01 00:00:00,1,1\n',
      3,
      /TIMESTAMP/,
    ],
    [
      'negative tokens',
      'TIMESTAMP,ContextTokens,GeneratedTokens\n2023-01-01 00:00:00,-4,1\n',
      2,
      /ContextTokens.*non-negative integer/,
    ],
    [
      'fractional tokens',
      'TIMESTAMP,ContextTokens,GeneratedTokens\n2023-01-01 00:00:00,4,1.5\n',
      2,
      /GeneratedTokens/,
    ],
    [
      'missing field',
      'TIMESTAMP,ContextTokens,GeneratedTokens\n2023-01-01 00:00:00,4\n',
      2,
      /fields/,
    ],
    [
      'missing column',
      'TIMESTAMP,ContextTokens\n2023-01-01 00:00:00,4\n',
      1,
      /header lacks column GeneratedTokens/,
    ],
    ['no rows', 'TIMESTAMP,ContextTokens,GeneratedTokens\n', 2, /no data rows/],
    ['empty file', '', 1, /empty file/],
  ];
  for (const [what, text, line, reason] of bad) {
    it(`rejects a file with ${what}, naming file and line`, async () => {
      const p = file(`${what.replace(/ /g, '-')}.csv`, text);
      const err = await loadAzureRequests(p).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TraceFormatError);
      const e = err as TraceFormatError;
      expect(e.file).toBe(p);
      expect(e.line).toBe(line);
      expect(e.message).toMatch(reason);
      expect(e.message.startsWith(`${p}:${line}: `)).toBe(true);
    });
  }

  it('reads just the first rows of the shared trace', async () => {
    const t = await loadAzureRequests(TRACE, { maxRows: 5 });
    expect(t.tMs.length).toBe(5);
    expect(t.tMs[1]).toBeCloseTo(52, 6);
    expect(t.contextTokens[0]).toBe(4808);
  });
});

describe('workload generators', () => {
  it('Poisson arrivals have the asked rate and replay from the seed', () => {
    const a = poissonArrivals(createRng(1), { ratePerS: 10_000, durationMs: 1_000 });
    expect(a.length).toBeGreaterThan(9_600);
    expect(a.length).toBeLessThan(10_400);
    expect(poissonArrivals(createRng(1), { ratePerS: 10_000, durationMs: 1_000 })).toEqual(a);
    expect(() =>
      poissonArrivals(createRng(1), { ratePerS: 1000, durationMs: 1000, maxArrivals: 10 }),
    ).toThrow(/maxArrivals/);
  });

  it('Poisson counts have the asked mean', () => {
    const r = createRng(2);
    for (const mean of [3, 200]) {
      const xs = Array.from({ length: 20_000 }, () => poissonCount(r, mean));
      expect(xs.reduce((a, b) => a + b) / xs.length).toBeCloseTo(mean, mean > 100 ? 0 : 1);
    }
  });

  it('bursty arrivals have the modulated mean rate and are burstier than Poisson', () => {
    const cfg = {
      calmRatePerS: 1_000,
      burstRatePerS: 20_000,
      meanCalmMs: 50,
      meanBurstMs: 5,
      durationMs: 20_000,
    };
    const a = burstyArrivals(createRng(3), cfg);
    const rate = (a.length / cfg.durationMs) * 1000;
    expect(Math.abs(rate / burstyMeanRatePerS(cfg) - 1)).toBeLessThan(0.1);
    const perMs = (xs: Float64Array): number[] => {
      const c = new Array<number>(cfg.durationMs).fill(0);
      for (const t of xs) c[Math.floor(t)]! += 1;
      return c;
    };
    const dispersion = (c: number[]): number => {
      const m = c.reduce((x, y) => x + y) / c.length;
      return c.reduce((s, x) => s + (x - m) ** 2, 0) / c.length / m;
    };
    const p = poissonArrivals(createRng(3), { ratePerS: rate, durationMs: cfg.durationMs });
    expect(dispersion(perMs(a))).toBeGreaterThan(3 * dispersion(perMs(p)));
  });
});

describe('messaging objective', () => {
  it('declares the catalog knobs and validates values', async () => {
    const obj = messagingObjective(fixedSource('tiny', msgs([0, 1, 2])));
    expect(obj.knobs.map((k) => k.name)).toEqual([
      'messaging.batch_size',
      'messaging.linger_ms',
      'messaging.partitions',
    ]);
    expect(obj.knobs[0]).toBe(findKnob(CATALOG, 'messaging.batch_size'));
    const bad = await obj.evaluate({ 'messaging.batch_size': 0 }, 1).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(MessagingConfigError);
    expect((bad as MessagingConfigError).message).toMatch(
      /messaging.batch_size value must be >= 1/,
    );
    const m = await obj.evaluate({}, 1);
    expect(m['messages']).toBe(3);
  });

  it('replays from its seed; the seed changes how messages spread over partitions', async () => {
    const src = generatedSource({
      durationMs: 300,
      arrivals: { kind: 'poisson', ratePerS: 5_000 },
      tokensPerMessage: 2000,
    });
    const obj = messagingObjective(src);
    const a = await obj.evaluate({}, 4);
    expect(await obj.evaluate({}, 4)).toEqual(a);
    expect(await obj.evaluate({}, 5)).not.toEqual(a);
  });

  it('has an interior optimum on the shared trace', async () => {
    const src = await traceSource(TRACE);
    const obj = messagingObjective(src);
    // Batch size alone, other knobs at their defaults: a middle size beats 1 and 4096, on p99
    // alone and on the objective.
    const sizes = [1, 4, 16, 64, 256, 4096];
    const runs = await Promise.all(
      sizes.map((b) => obj.evaluate({ 'messaging.batch_size': b }, 1)),
    );
    const p99 = runs.map((m) => m['p99_latency_ms']!);
    const objective = runs.map((m) => m['objective_ms']!);
    const middleBest = (xs: number[]): boolean =>
      Math.min(...xs.slice(1, -1)) < Math.min(xs[0]!, xs.at(-1)!);
    expect(middleBest(p99)).toBe(true);
    expect(middleBest(objective)).toBe(true);
    // Jointly over a coarse grid, the best point sits at no knob's extreme.
    let best = { score: Infinity, at: [0, 0, 0] };
    for (const b of [1, 64, 4096])
      for (const l of [0, 2, 1000])
        for (const p of [1, 3, 256]) {
          const m = await obj.evaluate(
            { 'messaging.batch_size': b, 'messaging.linger_ms': l, 'messaging.partitions': p },
            1,
          );
          if (m['objective_ms']! < best.score) best = { score: m['objective_ms']!, at: [b, l, p] };
        }
    expect(best.at).toEqual([64, 2, 3]);
  });
});

describe('messaging offered rate', () => {
  it('is the rate a trace is replayed at (n arrivals over n - 1 gaps)', () => {
    const trace = {
      file: 'mem',
      tMs: Float64Array.from([0, 10, 40, 60]),
      contextTokens: new Float64Array(4).fill(100),
      generatedTokens: new Float64Array(4).fill(10),
      outOfOrderRows: 0,
    };
    const messages = messagesFromTrace(trace, 1_000);
    expect(messages.tMs.at(-1)! - messages.tMs[0]!).toBeCloseTo(3, 9);
    const m = simulateMessaging(
      fixedSource('four', messages),
      { batchSize: 1, lingerMs: 0, partitions: 1 },
      1,
    );
    expect(m['offered_rate_per_s']).toBeCloseTo(1_000, 6); // it read 1,333 (4 over 3 ms)
  });
});

describe('messaging env', () => {
  const poisson = generatedSource({
    durationMs: 400,
    arrivals: { kind: 'poisson', ratePerS: 5_000 },
    tokensPerMessage: 2000,
  });

  it('passes checkEnv on generated and on trace arrivals', async () => {
    expect(checkEnv(() => new MessagingEnv({ source: poisson }))).toBeGreaterThan(0);
    const head = await loadAzureRequests(TRACE, { maxRows: 800 });
    const trace = fixedSource('head', messagesFromTrace(head, 5_000));
    expect(checkEnv(() => new MessagingEnv({ source: trace, partitions: 2 }))).toBeGreaterThan(0);
  });

  it('prefers, in its return, the linger the objective prefers', () => {
    // A window that sealed nothing scored a p99 of 0: at batch 4096 a 1 s linger hid latency
    // in a few windows and out-returned 50 ms (-285 against -364) while the objective was 16x
    // worse for it.
    const source = generatedSource({
      durationMs: 2000,
      arrivals: { kind: 'poisson', ratePerS: 5_000 },
      tokensPerMessage: 2000,
    });
    const episodeReturn = (action: number[]): number => {
      const env = new MessagingEnv({ source, partitions: 4 });
      env.reset({ seed: 1 });
      let total = 0;
      for (let t = 0; t < 100_000; t++) {
        const r = env.step(action);
        total += r.reward;
        if (r.terminated || r.truncated) break;
      }
      return total;
    };
    const b = BATCH_SIZE_LEVELS.indexOf(4096);
    const objective = (lingerMs: number): number =>
      simulateMessaging(source, { batchSize: 4096, lingerMs, partitions: 4 }, 1)['objective_ms']!;
    const returns = [50, 200, 1000].map((l) => episodeReturn([b, LINGER_MS_LEVELS.indexOf(l)]));
    const objectives = [50, 200, 1000].map(objective);
    expect(objectives[0]).toBeLessThan(objectives[1]!);
    expect(objectives[1]).toBeLessThan(objectives[2]!);
    expect(returns[0]).toBeGreaterThan(returns[1]!);
    expect(returns[1]).toBeGreaterThan(returns[2]!);
  });

  it('delivers every message once by the end of an episode', () => {
    const env = new MessagingEnv({ source: poisson, windowMs: 10 });
    env.reset({ seed: 3 });
    let delivered = 0;
    for (let t = 0; t < 1000; t++) {
      const r = env.step([4, 2]);
      delivered += r.info['delivered'] as number;
      if (r.terminated || r.truncated) {
        expect(r.terminated).toBe(true);
        break;
      }
    }
    expect(delivered).toBe(poisson.messages(createRng(3).int(2 ** 31)).tMs.length);
  });

  it('punishes unbatched delivery under load', () => {
    const run = (action: number[]): number => {
      const env = new MessagingEnv({ source: poisson, partitions: 1 });
      env.reset({ seed: 1 });
      let total = 0;
      for (let t = 0; t < 1000; t++) {
        const r = env.step(action);
        total += r.reward;
        if (r.terminated || r.truncated) break;
      }
      return total;
    };
    expect(run([5, 2])).toBeGreaterThan(run([0, 0]));
  });
});
