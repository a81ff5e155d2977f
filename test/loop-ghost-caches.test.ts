// Shadow mode's ghost caches give exact hit ratios: fed one live access stream, a ghost of
// each configuration counts exactly the hits a real file-service cache of that configuration
// counts on the same stream.
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
});
