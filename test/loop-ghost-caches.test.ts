// Shadow mode's ghost caches give exact hit ratios: fed one live access stream, a ghost of
// each configuration counts exactly the hits a real file-service cache of that configuration
// counts on the same stream. A shadow run warms its ghosts on the stream before shadow began
// and gives no verdict before it has read up to the stream's present.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CATALOG, type KnobSpec } from '../knobs/index.ts';
import { FileService } from '../controlplane/files/service.ts';
import { ROOT } from '../controlplane/files/types.ts';
import { KnobClient } from '../controlplane/knobs/client.ts';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { ShadowCacheRun } from '../controlplane/loop/targets/files-cache.ts';
import { eventually, startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';
import { zipfSampler } from './helpers/zipf-reader.ts';

const KIB = 1024;
const CONFIGS = [
  { policy: 'lru', cacheBytes: 640 * KIB },
  { policy: 'fifo', cacheBytes: 2048 * KIB },
  { policy: 'arc', cacheBytes: 1280 * KIB },
];

function catalogWith(policy: string, cacheBytes: number): KnobSpec[] {
  return CATALOG.map((k): KnobSpec => {
    if (k.name === 'files.cache_bytes' && k.type === 'int') return { ...k, default: cacheBytes };
    if (k.name === 'files.cache_policy' && k.type === 'enum') return { ...k, default: policy };
    if (k.name === 'files.chunk_bytes' && k.type === 'int') return { ...k, default: 16 * KIB };
    return k;
  });
}

describe('ghost caches', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('count exactly the hits of real caches of those configurations on the same stream', async () => {
    // One file service per configuration, each on its own keys, each read in the same order.
    const services = await Promise.all(
      CONFIGS.map(async (c) => {
        const keys = uniqueKeys();
        const catalog = catalogWith(c.policy, c.cacheBytes);
        const table = new KnobTable(redis.client(), { keys, catalog });
        await table.seed();
        const knobs = await KnobClient.start({ table, resyncIntervalMs: 0 });
        const files = await FileService.start({
          redis: redis.client(),
          keys,
          knobs,
          traceSampleRate: 1,
        });
        return { keys, knobs, files };
      }),
    );
    const paths = Array.from({ length: 200 }, (_, i) => `/f${i}`);
    const data = Buffer.alloc(32 * KIB, 1); // two full chunks per file
    for (const s of services) {
      for (const p of paths) {
        await s.files.create(ROOT, p);
        await s.files.write(ROOT, p, 0, data);
      }
      await s.files.flush();
    }
    const first = services[0]!;
    const shadow = await ShadowCacheRun.start(
      redis.client(),
      first.keys.trace('files', 'access'),
      CONFIGS,
      Date.now(),
      { price: 0, minRequests: 1, minEffect: 0 },
    );
    const hitsBefore = services.map((s) => s.files.cacheStats().hits);
    const missesBefore = services.map((s) => s.files.cacheStats().misses);
    const next = zipfSampler(paths.length, 0.8, 21);
    const order = Array.from({ length: 3000 }, () => paths[next()] as string);
    for (const s of services) for (const p of order) await s.files.read(ROOT, p);
    await first.files.flush();
    await eventually(
      () => shadow.ghosts.stats()[0]!.requests >= 6000,
      'ghosts saw the whole stream',
    );
    const ghosts = shadow.ghosts.stats();
    services.forEach((s, i) => {
      const live = s.files.cacheStats();
      const hits = live.hits - (hitsBefore[i] as number);
      const requests = hits + live.misses - (missesBefore[i] as number);
      expect(ghosts[i]!.requests).toBe(requests);
      expect(ghosts[i]!.hits).toBe(hits);
    });
    // And the configurations do differ, so equality is not a coincidence.
    expect(new Set(ghosts.map((g) => g.hits)).size).toBe(3);
    await shadow.stop();
    for (const s of services) {
      await s.files.close();
      await s.knobs.close();
    }
  }, 120_000);

  /** Appends read records at the given stream ids (ms), in batches. */
  async function append(stream: string, at: (i: number) => number, keys: string[]) {
    for (let i = 0; i < keys.length; i += 1000) {
      const pipe = redis.client().pipeline();
      keys.slice(i, i + 1000).forEach((key, j) => {
        pipe.xadd(stream, `${at(i + j)}-0`, 'op', 'read', 'key', key, 'size', '1000');
      });
      await pipe.exec();
    }
  }
  const SMALL = { policy: 'lru', cacheBytes: 10_000 };
  const BIG = { policy: 'lru', cacheBytes: 100_000 };
  const SINCE = 1_000_000;

  it('gives no verdict on the part of the stream a rebuilt run has read so far', async () => {
    const stream = uniqueKeys().trace('files', 'access');
    // All of shadow's traffic is already in the stream, as when a daemon rebuilds the run.
    const total = 30_000;
    const keys = Array.from({ length: total }, (_, i) => `k${i % 50}`);
    await append(stream, (i) => SINCE + 1 + i, keys);
    const opts = { price: 0, minRequests: total, minEffect: 0.01 };
    // Waiting for the reader: the verdict counts every request in the stream.
    const patient = await ShadowCacheRun.start(redis.client(), stream, [SMALL, BIG], SINCE, {
      ...opts,
      catchUpWaitMs: 60_000,
    });
    const r = await patient.report();
    await patient.stop();
    expect(r.verdict).toBe('better');
    expect(r.catchingUp).toBeUndefined();
    expect((r.details['candidate'] as { requests: number }).requests).toBe(total);
    // Not waiting: behind the stream, it says it is catching up rather than undecided.
    const hasty = await ShadowCacheRun.start(redis.client(), stream, [SMALL, BIG], SINCE, {
      ...opts,
      catchUpWaitMs: 0,
    });
    const early = await hasty.report();
    await hasty.stop();
    const seen = (early.details['candidate'] as { requests: number }).requests;
    if (early.verdict === 'pending') {
      expect(early.catchingUp).toBe(true);
      expect(seen).toBeLessThan(total);
    } else expect(seen).toBe(total);
  });

  it('warms the ghosts on the window before shadow began, counting from its start', async () => {
    const stream = uniqueKeys().trace('files', 'access');
    const w = (from: number, n: number) => Array.from({ length: n }, (_, i) => `w${from + i}`);
    await append(stream, (i) => SINCE - 5_000 + i, w(0, 10)); // before the warm-up window
    await append(stream, (i) => SINCE - 500 + i, w(10, 10)); // inside it
    await append(stream, (i) => SINCE + 1 + i, w(0, 20)); // shadow
    const opts = { price: 0, minRequests: 1, minEffect: 0.01, catchUpWaitMs: 10_000 };
    const hits = async (extra: { warmupMs?: number; warmupMaxEntries?: number }) => {
      const run = await ShadowCacheRun.start(redis.client(), stream, [BIG, SMALL], SINCE, {
        ...opts,
        ...extra,
      });
      await eventually(() => run.ghosts.stats()[0]!.requests >= 20, 'shadow read');
      await run.report();
      const [big, small] = run.ghosts.stats();
      await run.stop();
      expect(big!.requests).toBe(20); // warm-up accesses are not counted
      expect(small!.hits).toBe(0); // 10 entries of LRU cycling 20 keys
      return big!.hits;
    };
    // Warm: the window's 10 keys are resident when shadow begins, as in the live cache.
    expect(await hits({ warmupMs: 1_000 })).toBe(10);
    // Bounded: only the newest 5 entries of the window.
    expect(await hits({ warmupMs: 1_000, warmupMaxEntries: 5 })).toBe(5);
    // No window: cold.
    expect(await hits({})).toBe(0);
  });
});
