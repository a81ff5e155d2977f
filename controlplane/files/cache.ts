// The read cache of one file-service instance: chunk bytes in a Map, and beside it one of the
// eviction policies of policies/cache (the same objects the simulator replays) deciding what
// stays, in bytes. The policy has no eviction callback, so the Map can hold chunks the policy
// already evicted: they are never served (every lookup asks policy.has first) and a sweep drops
// them once they add up to a quarter of the cache, which keeps memory within ~1.25x of the
// capacity at O(1) amortised cost per eviction.
//
// Coherence is not this class's job: every read asks Redis for the chunks' current versions
// (in the same round trip that checks permissions), and a held chunk is used only when its
// version matches. Keys are '<ino>:<chunk index>'; inode numbers are never reused.
import { createCachePolicy, type CachePolicy } from '../../policies/cache/index.ts';

interface Held {
  version: number;
  bytes: Buffer;
}

export interface CacheStats {
  policy: string;
  capacityBytes: number;
  usedBytes: number;
  entries: number;
  hits: number;
  misses: number;
}

const SWEEP_ENTRIES_MIN = 64;

export class ChunkCache {
  private policy: CachePolicy<string>;
  private readonly held = new Map<string, Held>();
  private heldBytes = 0;
  hits = 0;
  misses = 0;

  constructor(policyName: string, capacityBytes: number) {
    this.policy = createCachePolicy<string>(policyName, capacityBytes, { unit: 'bytes' });
  }

  static key(ino: number, index: number): string {
    return `${ino}:${index}`;
  }

  /** The version of a chunk this cache can serve, or 0. */
  versionOf(key: string): number {
    if (!this.policy.has(key)) return 0;
    return this.held.get(key)?.version ?? 0;
  }

  /**
   * A chunk Redis confirmed is still at `version`: returns its bytes, or undefined when this
   * cache no longer holds them (dropped since the request was sent). `policyHit` is false when
   * the policy evicted the chunk while the read was in flight (an earlier chunk of the same
   * read was admitted): the bytes are still in memory and are served, but to the policy this
   * access is a miss, and it is counted as one, so live hit ratios stay equal to what the
   * simulator and shadow mode's ghost caches count for the same stream.
   */
  hit(key: string, version: number): { bytes: Buffer; policyHit: boolean } | undefined {
    const h = this.held.get(key);
    if (!h || h.version !== version) return undefined;
    const policyHit = this.policy.has(key);
    if (policyHit) this.hits++;
    else this.misses++;
    this.policy.access(key, h.bytes.length);
    if (!this.policy.has(key)) this.drop(key);
    else {
      // To the end of the Map, which thus runs least recently used first: the order a resize
      // or a policy swap offers the held chunks in (fetch order kept cold chunks over hot).
      this.held.delete(key);
      this.held.set(key, h);
    }
    return { bytes: h.bytes, policyHit };
  }

  /** A chunk fetched from Redis: counts a miss and offers it to the policy. */
  miss(key: string, version: number, bytes: Buffer): void {
    this.misses++;
    this.drop(key);
    this.policy.access(key, bytes.length);
    if (this.policy.has(key)) {
      this.held.set(key, { version, bytes });
      this.heldBytes += bytes.length;
    }
    this.maybeSweep();
  }

  /** Forgets a chunk (this instance wrote it, so its bytes are stale). */
  invalidate(key: string): void {
    this.drop(key);
  }

  /**
   * A new policy or capacity (the files.cache_* knobs changed): builds the new policy and
   * offers it every held chunk, least recently used first, keeping those it admits. No restart,
   * no refetch.
   */
  reconfigure(policyName: string, capacityBytes: number): void {
    const next = createCachePolicy<string>(policyName, capacityBytes, { unit: 'bytes' });
    const previous = [...this.held].filter(([k]) => this.policy.has(k));
    this.policy = next;
    this.held.clear();
    this.heldBytes = 0;
    for (const [k, h] of previous) {
      next.access(k, h.bytes.length);
      if (next.has(k)) {
        this.held.set(k, h);
        this.heldBytes += h.bytes.length;
      }
    }
    this.sweep();
  }

  stats(): CacheStats {
    return {
      policy: this.policy.name,
      capacityBytes: this.policy.capacity,
      usedBytes: this.policy.used,
      entries: this.policy.count,
      hits: this.hits,
      misses: this.misses,
    };
  }

  /** Bytes held in memory, evicted-but-unswept chunks included (for the memory bound). */
  get memoryBytes(): number {
    return this.heldBytes;
  }

  private drop(key: string): void {
    const h = this.held.get(key);
    if (h) {
      this.held.delete(key);
      this.heldBytes -= h.bytes.length;
    }
    // Only a resident entry goes: a ghost entry (ARC's B1/B2, S3-FIFO's ghost queue) is access
    // history the policy learns from on the next miss, so it must survive.
    if (this.policy.has(key)) this.policy.delete(key);
  }

  private maybeSweep(): void {
    const staleEntries = this.held.size - this.policy.count;
    const staleBytes = this.heldBytes - this.policy.used;
    if (
      staleEntries > SWEEP_ENTRIES_MIN + this.policy.count / 4 ||
      staleBytes > this.policy.capacity / 4
    ) {
      this.sweep();
    }
  }

  private sweep(): void {
    for (const [k, h] of this.held) {
      if (!this.policy.has(k)) {
        this.held.delete(k);
        this.heldBytes -= h.bytes.length;
      }
    }
  }
}
