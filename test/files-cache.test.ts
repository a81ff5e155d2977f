// The read cache: knob changes (policy, capacity, chunk size of new files) take effect in a
// running instance; a write through one instance is seen by another's next read (versions
// checked in the read's one round trip); telemetry and the access trace in the simulator's shape.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCacheCsv } from '../envs/loaders/cache-csv.ts';
import {
  accessRecords,
  accessTraceCsv,
  ChunkCache,
  ROOT,
  type FileService,
} from '../controlplane/files/index.ts';
import { telemetryEntries } from '../controlplane/telemetry/read.ts';
import { filesFixture, type FilesFixture } from './helpers/files-env.ts';
import { eventually, startTestRedis, type TestRedis } from './helpers/redis.ts';

const CHUNK = 65_536; // the knob's default

describe('chunk cache (no redis)', () => {
  it('holds at most ~1.25x its capacity in memory although the policy has no eviction hook', () => {
    const cache = new ChunkCache('lru', 100_000);
    for (let i = 0; i < 10_000; i++) cache.miss(ChunkCache.key(1, i), 1, Buffer.alloc(1_000));
    const s = cache.stats();
    expect(s.usedBytes).toBeLessThanOrEqual(100_000);
    expect(cache.memoryBytes).toBeLessThanOrEqual(125_000 + 65 * 1_000);
    // The newest chunks are served; long-evicted ones are not.
    expect(cache.versionOf(ChunkCache.key(1, 9_999))).toBe(1);
    expect(cache.versionOf(ChunkCache.key(1, 0))).toBe(0);
    expect(cache.hit(ChunkCache.key(1, 9_999), 2)).toBeUndefined(); // another version: no
  });

  it('offers a resized or swapped policy its chunks least recently used first', () => {
    // Re-offered in first-fetch order, an LRU shrink kept the cold chunk and dropped the one
    // just read; a swap made the new policy's history fetch order too.
    const c = new ChunkCache('lru', 3_000);
    for (const k of ['1:0', '2:0', '3:0']) c.miss(k, 1, Buffer.alloc(1_000));
    expect(c.hit('1:0', 1)?.policyHit).toBe(true);
    c.reconfigure('lru', 2_000);
    expect(['1:0', '2:0', '3:0'].map((k) => c.versionOf(k))).toEqual([1, 0, 1]);
    // Grown and swapped: 3:0 is now the least recently used, so the next miss evicts it.
    c.reconfigure('lru', 2_000);
    c.miss('4:0', 1, Buffer.alloc(1_000));
    expect(['1:0', '3:0', '4:0'].map((k) => c.versionOf(k))).toEqual([1, 0, 1]);
  });
});

describe('file read cache on one redis node', () => {
  let redis: TestRedis;
  let fx: FilesFixture;
  let a: FileService;
  let b: FileService;
  beforeAll(async () => {
    redis = await startTestRedis('single');
    fx = await filesFixture(redis);
    a = await fx.instance();
    b = await fx.instance();
    await a.mkdir(ROOT, '/c');
  });
  afterAll(async () => {
    await fx?.close();
    await redis?.stop();
  });

  const fill = (n: number, v: number) => Buffer.alloc(n, v);

  it('serves unchanged chunks from the cache and sees other instances’ writes at once', async () => {
    await a.create(ROOT, '/c/shared');
    await a.write(ROOT, '/c/shared', 0, fill(3 * CHUNK, 1));
    const s0 = a.cacheStats();
    expect((await a.read(ROOT, '/c/shared')).equals(fill(3 * CHUNK, 1))).toBe(true);
    expect(a.cacheStats().misses - s0.misses).toBe(3);
    await a.read(ROOT, '/c/shared');
    expect(a.cacheStats().hits - s0.hits).toBe(3);
    // Another instance rewrites the middle chunk: a's next read fetches that one only.
    await b.write(ROOT, '/c/shared', CHUNK + 10, fill(5, 9));
    const s1 = a.cacheStats();
    const got = await a.read(ROOT, '/c/shared');
    expect([...got.subarray(CHUNK + 8, CHUNK + 17)]).toEqual([1, 1, 9, 9, 9, 9, 9, 1, 1]);
    expect(a.cacheStats().misses - s1.misses).toBe(1);
    expect(a.cacheStats().hits - s1.hits).toBe(2);
    // Truncate and regrow elsewhere: the cut chunk must read as zeros past the cut.
    await b.truncate(ROOT, '/c/shared', CHUNK + 5);
    await b.truncate(ROOT, '/c/shared', 2 * CHUNK);
    const cut = await a.read(ROOT, '/c/shared', { offset: CHUNK, length: CHUNK });
    expect([...cut.subarray(0, 5)]).toEqual([1, 1, 1, 1, 1]);
    expect(cut.subarray(5).equals(Buffer.alloc(CHUNK - 5))).toBe(true);
    // Replaced by a new file at the same path: the old inode's chunks are not used.
    await b.unlink(ROOT, '/c/shared');
    await b.create(ROOT, '/c/shared');
    await b.write(ROOT, '/c/shared', 0, fill(100, 7));
    expect((await a.read(ROOT, '/c/shared')).equals(fill(100, 7))).toBe(true);
  });

  it('applies cache knob changes to a running instance without a restart', async () => {
    await a.create(ROOT, '/c/k');
    await a.write(ROOT, '/c/k', 0, fill(2 * CHUNK, 3));
    await a.read(ROOT, '/c/k');
    expect(a.cacheStats()).toMatchObject({ policy: 'lru', capacityBytes: 67_108_864 });
    await fx.setKnob('files.cache_policy', 's3fifo');
    await eventually(() => a.cacheStats().policy === 's3fifo', 'policy swapped');
    expect(b.cacheStats().policy).toBe('s3fifo');
    // The chunks it held survive the swap: the next read is all hits.
    const h = a.cacheStats().hits;
    await a.read(ROOT, '/c/k');
    expect(a.cacheStats().hits - h).toBe(2);
    // Shrink in the knob's 4x steps to 256 KiB, then read 10 files of one chunk each.
    for (const bytes of [16_777_216, 4_194_304, 1_048_576, 262_144]) {
      await fx.setKnob('files.cache_bytes', bytes);
    }
    await eventually(() => a.cacheStats().capacityBytes === 262_144, 'cache resized');
    for (let i = 0; i < 10; i++) {
      await a.create(ROOT, `/c/small${i}`);
      await a.write(ROOT, `/c/small${i}`, 0, fill(CHUNK, i));
      expect((await a.read(ROOT, `/c/small${i}`)).equals(fill(CHUNK, i))).toBe(true);
    }
    const s = a.cacheStats();
    expect(s.usedBytes).toBeLessThanOrEqual(262_144);
    expect(s.entries).toBeLessThanOrEqual(4);
    expect(s.entries).toBeGreaterThan(0);
  });

  it('gives new files the chunk size the knob has now, and keeps old files at theirs', async () => {
    await a.create(ROOT, '/c/before');
    await fx.setKnob('files.chunk_bytes', 16_384);
    const after = await a.create(ROOT, '/c/after');
    expect(after.chunkBytes).toBe(16_384);
    expect((await a.stat(ROOT, '/c/before')).chunkBytes).toBe(CHUNK);
    for (const p of ['/c/before', '/c/after']) {
      await a.write(ROOT, p, 16_380, 'boundary');
      expect((await b.read(ROOT, p, { offset: 16_378, length: 12 })).toString('latin1')).toBe(
        '\0\0boundary',
      );
    }
  });

  it('writes telemetry and an access trace the cache simulator loads', async () => {
    await a.flush();
    const entries = await telemetryEntries(redis.client(), fx.keys, 'files', 0, Date.now() + 1);
    const sum = (f: string) => entries.reduce((s, e) => s + Number(e.fields[f] ?? 0), 0);
    expect(sum('ops_read')).toBeGreaterThan(10);
    expect(sum('bytes_read')).toBeGreaterThan(10 * CHUNK);
    expect(sum('cache_hits')).toBeGreaterThan(0);
    expect(entries.some((e) => e.fields['ops_read_per_s'] !== undefined)).toBe(true);
    const ratio = Number(entries.at(-1)?.fields['cache_hit_ratio']);
    expect(ratio).toBeGreaterThan(0);
    expect(ratio).toBeLessThan(1);

    await b.flush();
    const records = await accessRecords(redis.client(), fx.keys);
    expect(records.length).toBeGreaterThan(20);
    expect(records[0]).toMatchObject({ op: expect.stringMatching(/read|write/) });
    expect(records.every((r) => /^default:\d+:\d+$/.test(r.key) && r.sizeBytes > 0)).toBe(true);
    const dir = mkdtempSync(join(tmpdir(), 'knobos-files-trace-'));
    try {
      const file = join(dir, 'access.csv');
      writeFileSync(file, accessTraceCsv(records));
      const trace = loadCacheCsv(file);
      expect(trace.keys.length).toBe(records.length);
      expect(trace.keyCount).toBe(new Set(records.map((r) => r.key)).size);
      expect(trace.sizes?.[0]).toBe(records[0]?.sizeBytes);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('traces each chunk read at the length it is cached at, not the chunk size', async () => {
    // A 10,000-byte file is one short chunk; a file one chunk and 100 bytes long ends in one.
    const { chunkBytes } = await a.stat(ROOT, '/c/after'); // the knob's value for new files
    expect(chunkBytes).toBeGreaterThan(10_000);
    const sizes = { '/c/short': 10_000, '/c/tail': chunkBytes + 100 };
    const inos: Record<string, number> = {};
    for (const [p, n] of Object.entries(sizes)) {
      const made = await a.create(ROOT, p);
      expect(made.chunkBytes).toBe(chunkBytes);
      inos[p] = made.ino;
      await a.write(ROOT, p, 0, fill(n, 5));
      const h = a.cacheStats().hits;
      await a.read(ROOT, p); // fetched
      await a.read(ROOT, p); // held by the cache
      expect(a.cacheStats().hits).toBeGreaterThan(h);
    }
    await a.flush();
    const reads = (await accessRecords(redis.client(), fx.keys)).filter((r) => r.op === 'read');
    const sizesOf = (p: string, index: number) =>
      reads.filter((r) => r.key === `default:${inos[p]}:${index}`).map((r) => r.sizeBytes);
    expect(sizesOf('/c/short', 0)).toEqual([10_000, 10_000]);
    expect(sizesOf('/c/tail', 0)).toEqual([chunkBytes, chunkBytes]);
    expect(sizesOf('/c/tail', 1)).toEqual([100, 100]);
  });
});
