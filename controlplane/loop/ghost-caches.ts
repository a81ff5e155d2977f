// Ghost caches for shadow mode: caches that hold keys and sizes but no data, fed the live
// access stream, one per candidate configuration. They run the very policy objects the live
// file service runs, so fed the same accesses a ghost of the live configuration counts exactly
// what the live cache counts, and a ghost of another size or policy tells what that
// configuration would have hit. A live cache is warm when shadow begins: the ghosts are warmed
// first (warm(): the stream of a window before shadow, offered but not counted), or a bigger
// cache would be charged its memory without its hits. A warm-up window shorter than the live
// cache's history (or a live cache resized within it) leaves the ghosts' starting contents an
// approximation of the live one's; what they count from then on is exact for that start.
import { createCachePolicy, type CachePolicy } from '../../policies/cache/index.ts';

export interface CacheConfig {
  policy: string;
  /** Capacity in bytes. */
  cacheBytes: number;
}

export interface GhostStats {
  config: CacheConfig;
  requests: number;
  hits: number;
  hitRatio: number;
  bytesRequested: number;
  bytesHit: number;
  byteHitRatio: number;
}

export class GhostCaches {
  private readonly ghosts: {
    config: CacheConfig;
    cache: CachePolicy<string>;
    stats: Omit<GhostStats, 'config' | 'hitRatio' | 'byteHitRatio'>;
  }[];

  constructor(configs: readonly CacheConfig[]) {
    if (configs.length === 0 || configs.length > 64)
      throw new Error(`ghost caches: 1..64 configurations, got ${configs.length}`);
    this.ghosts = configs.map((config) => ({
      config,
      cache: createCachePolicy<string>(config.policy, config.cacheBytes, { unit: 'bytes' }),
      stats: { requests: 0, hits: 0, bytesRequested: 0, bytesHit: 0 },
    }));
  }

  /** One access of the live stream, offered to every ghost. */
  access(key: string, sizeBytes: number): void {
    for (const g of this.ghosts) {
      const hit = g.cache.access(key, sizeBytes);
      g.stats.requests++;
      g.stats.bytesRequested += sizeBytes;
      if (hit) {
        g.stats.hits++;
        g.stats.bytesHit += sizeBytes;
      }
    }
  }

  /** One access before the measured period: changes the ghosts' contents, counts nothing. */
  warm(key: string, sizeBytes: number): void {
    for (const g of this.ghosts) g.cache.access(key, sizeBytes);
  }

  /** Drops a key from every ghost (a write invalidated it in the live caches too). */
  invalidate(key: string): void {
    // As the live cache does: the resident copy goes, the policy's ghost history stays.
    for (const g of this.ghosts) if (g.cache.has(key)) g.cache.delete(key);
  }

  stats(): GhostStats[] {
    return this.ghosts.map(({ config, stats }) => ({
      config,
      ...stats,
      hitRatio: stats.requests ? stats.hits / stats.requests : 0,
      byteHitRatio: stats.bytesRequested ? stats.bytesHit / stats.bytesRequested : 0,
    }));
  }
}
