// Writes in cache traces: in the file service a write drops the writer's cached chunk
// (reader.ts wrote()), so a write is an invalidation, not a request. Replay, Belady, the env,
// the objective, the CSV loader and the loop's calibration all see it that way (hit ratios are
// over reads), and the one-pass LRU curve, which cannot, refuses such a trace.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CacheEvictionEnv,
  cacheKnobObjective,
  lruMissRatioCurve,
  NEVER,
  nextUseTimes,
  replayTrace,
  SIM_POLICIES,
  simulateCache,
} from '../envs/cache/index.ts';
import { loadCacheCsv } from '../envs/loaders/cache-csv.ts';
import {
  CacheTraceBuilder,
  CacheTraceError,
  requestCount,
  type CacheTrace,
} from '../envs/loaders/cache-trace.ts';
import { createCachePolicy } from '../policies/cache/index.ts';
import { accessTraceCsv, ChunkCache, type AccessRecord } from '../controlplane/files/index.ts';
import { FileService } from '../controlplane/files/service.ts';
import { ROOT } from '../controlplane/files/types.ts';
import { KnobClient } from '../controlplane/knobs/client.ts';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { cacheCost, FilesCacheTarget } from '../controlplane/loop/targets/files-cache.ts';
import { startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

const ONLINE = SIM_POLICIES.filter((p) => p !== 'belady');

type Op = ['r' | 'w', string, number?];

function traceOf(ops: readonly Op[], withSizes = true): CacheTrace {
  const b = new CacheTraceBuilder('memory', withSizes);
  for (const [op, key, size = 4096] of ops) {
    if (op === 'w') b.invalidate(key, size);
    else b.push(key, size);
  }
  return b.build(ops.length);
}

/** Per chunk: read, write, read. The live reader never hits here (the write dropped it). */
function readWriteRead(chunks: number): Op[] {
  return Array.from({ length: chunks }, (_, i): Op[] => [
    ['r', `v:1:${i}`],
    ['w', `v:1:${i}`],
    ['r', `v:1:${i}`],
  ]).flat();
}

/** A seeded skewed stream over n keys with a share of writes, a fixed size per key. */
function mixedOps(n: number, count: number, seed: number, writeShare: number): Op[] {
  let s = seed >>> 0;
  const next = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
  return Array.from({ length: count }, (): Op => {
    const k = Math.floor(n * next() ** 2.5);
    return [next() < writeShare ? 'w' : 'r', `k${k}`, 100 + ((k * 7919) % 13) * 250];
  });
}

describe('replay of a trace with writes', () => {
  const ops = readWriteRead(100);

  it('read/write/read per chunk: no policy and not Belady hits, as the live reader', () => {
    const trace = traceOf(ops);
    expect(requestCount(trace)).toBe(200);
    for (const policy of SIM_POLICIES) {
      for (const unit of ['objects', 'bytes'] as const) {
        const r = simulateCache(trace, policy, unit === 'bytes' ? 10 * 2 ** 20 : 1000, { unit });
        expect([policy, unit, r.requests, r.hits, r.hit_ratio]).toEqual([policy, unit, 200, 0, 0]);
        expect(r.bytes_requested).toBe(200 * 4096);
      }
    }
    // The same reads without the writes: every second read hits.
    const readsOnly = traceOf(ops.filter(([op]) => op === 'r'));
    expect(readsOnly.invalidations).toBeUndefined();
    expect(simulateCache(readsOnly, 'lru', 1000).hit_ratio).toBe(0.5);
  });

  it('counts exactly what the live read cache (ChunkCache) counts, every policy', () => {
    const stream = mixedOps(400, 6000, 3, 0.2);
    const trace = traceOf(stream);
    for (const policy of ONLINE) {
      const live = new ChunkCache(policy, 60_000);
      const version = new Map<string, number>();
      for (const [op, key, size] of stream) {
        const v = version.get(key) ?? 1;
        if (op === 'w') {
          live.invalidate(key);
          version.set(key, v + 1);
        } else if (live.versionOf(key) === v) {
          expect(live.hit(key, v)?.policyHit).toBe(true);
        } else {
          live.miss(key, v, Buffer.alloc(size!));
        }
      }
      const s = live.stats();
      const r = simulateCache(trace, policy, 60_000, { unit: 'bytes' });
      expect([policy, r.requests, r.hits]).toEqual([policy, s.hits + s.misses, s.hits]);
      expect(r.hits).toBeGreaterThan(0);
    }
  });

  it('a segment counts only its reads; replayTrace takes a policy object', () => {
    const trace = traceOf([
      ['r', 'a'],
      ['r', 'a'],
      ['w', 'a'],
      ['r', 'a'],
      ['r', 'a'],
      ['w', 'b'],
    ]);
    const lru = () => createCachePolicy<number>('lru', 10, { denseKeys: true });
    const whole = replayTrace(trace, lru());
    expect([whole.requests, whole.hits]).toEqual([4, 2]);
    const seg = replayTrace(trace, lru(), { start: 1, end: 4 });
    expect([seg.requests, seg.hits]).toEqual([2, 0]);
  });
});

describe("Belady's MIN with writes", () => {
  it('a write ends the reuse: next use is NEVER before it, and the write drops the key', () => {
    const trace = traceOf([
      ['r', 'a'],
      ['r', 'b'],
      ['w', 'a'],
      ['r', 'a'],
      ['r', 'b'],
    ]);
    expect([...nextUseTimes(trace)]).toEqual([NEVER, 4, NEVER, NEVER, NEVER]);
    // One slot: MIN always admits, so a's reread displaces b: no hit. Two: the write drops a,
    // a's reread takes the freed slot and b's reread hits.
    expect(simulateCache(trace, 'belady', 1).hits).toBe(0);
    expect(simulateCache(trace, 'belady', 2).hits).toBe(1);
  });

  it('equals MIN on the trace where each write renames its key, and beats every policy', () => {
    for (const seed of [1, 2, 3]) {
      const stream = mixedOps(300, 5000, seed, 0.15);
      const trace = traceOf(stream);
      const generation = new Map<string, number>();
      const renamed: Op[] = [];
      for (const [op, key, size] of stream) {
        if (op === 'w') generation.set(key, (generation.get(key) ?? 0) + 1);
        else renamed.push(['r', `${key}#${generation.get(key) ?? 0}`, size]);
      }
      const ref = traceOf(renamed);
      for (const [unit, capacity] of [
        ['objects', 40],
        ['bytes', 40_000],
      ] as const) {
        const min = simulateCache(trace, 'belady', capacity, { unit });
        expect(min.requests).toBe(renamed.length);
        expect(min.hits).toBe(simulateCache(ref, 'belady', capacity, { unit }).hits);
        if (unit === 'objects') {
          for (const p of ONLINE) {
            expect(min.hits).toBeGreaterThanOrEqual(
              simulateCache(trace, p, capacity, { unit }).hits,
            );
          }
        }
      }
    }
  });
});

describe('other consumers of a trace with writes', () => {
  let trace: CacheTrace;
  beforeAll(() => {
    trace = traceOf(mixedOps(500, 6000, 7, 0.2));
  });

  it('the one-pass LRU curve refuses it, naming the rule', () => {
    expect(() => lruMissRatioCurve(trace, [10, 100])).toThrow(
      /does not take invalidations \(writes\).*inclusion property/,
    );
    // A segment without writes is fine.
    const clean = traceOf([
      ['r', 'a'],
      ['r', 'a'],
      ['w', 'a'],
    ]);
    expect(lruMissRatioCurve(clean, [1], { end: 2 })[0]?.hits).toBe(1);
  });

  it('the eviction env applies writes: one expert replays that expert exactly', () => {
    for (const [experts, action, policy] of [
      [['lru'], 0, 'lru'],
      [['lru', 'lfu'], 1, 'lfu'],
    ] as const) {
      const env = new CacheEvictionEnv({
        trace,
        capacity: 50,
        experts: [...experts],
        episodeRequests: 3000,
      });
      const { info } = env.reset({ seed: 2 });
      let total = info['hits'] as number;
      let last = info;
      for (let t = 0; t < 10_000; t++) {
        const r = env.step(action);
        total += r.reward;
        last = r.info;
        if (r.terminated || r.truncated) break;
      }
      const start = last['episode_start'] as number;
      const ref = simulateCache(trace, policy, 50, { start, end: start + 3000 });
      expect([last['requests'], last['hits'], total]).toEqual([ref.requests, ref.hits, ref.hits]);
      expect(ref.requests).toBe(requestCount(trace, start, start + 3000));
      expect(ref.requests).toBeLessThan(3000);
    }
  });

  it('the knob objective: read/write/read per chunk has hit ratio 0', async () => {
    const objective = cacheKnobObjective({ trace: traceOf(readWriteRead(50)) });
    const m = await objective.evaluate(
      { 'files.cache_policy': 'lru', 'files.cache_bytes': 64 * 2 ** 20 },
      1,
    );
    expect([m['requests'], m['hits'], m['hit_ratio'], m['miss_ratio']]).toEqual([100, 0, 0, 1]);
  });
});

describe('CSV traces with an op column', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'knobos-cache-writes-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, text: string): string => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };

  it("the file service's access trace round-trips its writes as invalidations", () => {
    const records: AccessRecord[] = readWriteRead(20).map(([op, key], i) => ({
      timeMs: 1_700_000_000_000 + i,
      key,
      sizeBytes: 4096,
      op: op === 'w' ? 'write' : 'read',
    }));
    const trace = loadCacheCsv(file('access.csv', accessTraceCsv(records)));
    expect(trace.keys.length).toBe(60);
    expect([...trace.invalidations!]).toEqual(records.map((r) => (r.op === 'write' ? 1 : 0)));
    expect(simulateCache(trace, 'lru', 2 ** 20, { unit: 'bytes' }).hit_ratio).toBe(0);
    // maxRequests counts requests; the writes among them are kept.
    const first = loadCacheCsv(file('access.csv', accessTraceCsv(records)), { maxRequests: 3 });
    expect([...first.invalidations!]).toEqual([0, 1, 0, 0]);
    // Asked to, the loader replays writes as requests (the old reading).
    const asReads = loadCacheCsv(file('access.csv', accessTraceCsv(records)), {
      invalidatingOps: [],
    });
    expect(asReads.invalidations).toBeUndefined();
  });

  it('a CSV without an op column, or in the block I/O format, loads as before', () => {
    const plain = loadCacheCsv(file('plain.csv', 'time,key,size\n1,a,10\n2,a,10\n'));
    expect(plain.invalidations).toBeUndefined();
    const gets = loadCacheCsv(file('kv.csv', 'key,op\na,get\na,set\na,WRITE\n'));
    expect([...gets.invalidations!]).toEqual([0, 0, 1]);
    // Block I/O: a write (2a) is a request, as libCacheSim replays it; unless asked otherwise.
    const block = 'version,time,op,size,lbn\n1,1,28,512,7\n1,2,2a,512,7\n1,3,28,512,7\n';
    expect(loadCacheCsv(file('block.csv', block)).invalidations).toBeUndefined();
    const inv = loadCacheCsv(file('block.csv', block), { invalidatingOps: ['2A'] });
    expect([...inv.invalidations!]).toEqual([0, 1, 0]);
    expect(() => loadCacheCsv(file('plain.csv', 'key\na\n'), { invalidatingOps: ['w'] })).toThrow(
      /needs an op column/,
    );
    expect(() => loadCacheCsv(file('w.csv', 'key,op\na,write\n'))).toThrow(CacheTraceError);
  });
});

describe('calibration of the files cache target from a live trace with writes', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('predicts the live hit ratio of read/write/read per chunk: 0, not a hit per reread', async () => {
    const keys = uniqueKeys();
    const table = new KnobTable(redis.client(), { keys });
    await table.seed();
    const knobs = await KnobClient.start({ table, resyncIntervalMs: 0 });
    const files = await FileService.start({
      redis: redis.client(),
      keys,
      knobs,
      traceSampleRate: 1,
    });
    try {
      await files.mkdir(ROOT, '/w');
      const paths = Array.from({ length: 40 }, (_, i) => `/w/f${i}`);
      for (const p of paths) {
        await files.create(ROOT, p);
        await files.write(ROOT, p, 0, Buffer.alloc(1000, 1));
      }
      for (let round = 0; round < 3; round++) {
        for (const p of paths) {
          await files.read(ROOT, p);
          await files.write(ROOT, p, 0, Buffer.alloc(1000, round));
        }
      }
      for (const p of paths) await files.read(ROOT, p);
      expect(files.cacheStats().hits).toBe(0);
      await files.flush();
      const target = new FilesCacheTarget({
        knobs: table,
        memoryPricePerGiB: 1,
        windowMs: 60_000,
        minRecords: 100,
        maxRecords: 10_000,
        budget: 4,
        shadowMs: 1_000,
        shadowMinRequests: 100,
      });
      const got = await target.calibrate();
      if (!got || 'why' in got) throw new Error(`no calibration: ${JSON.stringify(got)}`);
      const cal = got;
      expect(cal!.fit).toMatchObject({ predicted: 0, observed: 0 });
      const trace = cal!.data as CacheTrace;
      expect(trace.keys.length).toBe(320);
      expect(trace.invalidations?.reduce((a, b) => a + b, 0)).toBe(160);
      expect(cal!.records).toBe(320);
      // The gate's cost of the live configuration: every read a miss.
      const live = { 'files.cache_bytes': 64 * 2 ** 20, 'files.cache_policy': 'lru' };
      expect(await target.evaluate(cal!, live, 1, 0)).toBeCloseTo(cacheCost(1, 64 * 2 ** 20, 1));
    } finally {
      await files.close();
      await knobs.close();
    }
  });
});
