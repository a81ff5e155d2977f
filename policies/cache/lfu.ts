// LFU in O(1) per request: entries sit in per-frequency buckets kept in a list ordered by
// frequency; the victim is the oldest entry of the lowest bucket. Ties between equal
// frequencies are broken first-in-first-out by the time an entry reached its bucket, as in
// libCacheSim's LFU.c. Frequencies start at 1 on admission and are forgotten on eviction.
import { CacheBase } from './base.ts';
import { NIL, SlotList } from './slots.ts';
import type { CachePolicyOptions, VictimPolicy } from './types.ts';

interface Bucket {
  id: number;
  freq: number;
  list: SlotList;
  /** Neighbouring buckets by frequency; NIL at the ends. */
  lower: number;
  higher: number;
}

export class LfuCache<K> extends CacheBase<K> implements VictimPolicy<K> {
  readonly name = 'lfu' as const;
  private buckets: Bucket[] = [];
  private freeBuckets: number[] = [];
  /** The lowest-frequency bucket (holds the next victim). */
  private lowest = NIL;
  private usedUnits = 0;
  private entries = 0;

  constructor(capacity: number, opts?: CachePolicyOptions) {
    super(capacity, opts);
  }

  get used(): number {
    return this.usedUnits;
  }
  get count(): number {
    return this.entries;
  }

  access(key: K, sizeBytes?: number): boolean {
    return this.accessFrom(key, sizeBytes, 1);
  }

  /**
   * As access, but a missing key is admitted with frequency startFreq instead of 1: LeCaR
   * readmits a key from its eviction history with the count it had.
   */
  accessFrom(key: K, sizeBytes: number | undefined, startFreq: number): boolean {
    const s = this.index.get(key);
    if (s !== NIL) {
      this.bump(s);
      return true;
    }
    const size = this.sizeOf(sizeBytes);
    if (size > this.capacity) return false;
    while (this.usedUnits + size > this.capacity) this.evict();
    const slot = this.admit(key, size);
    // Walk up from the lowest bucket to startFreq's place: at once for startFreq 1, else at
    // most one step per distinct resident frequency.
    const f = Math.max(1, Math.floor(startFreq));
    let lower = NIL;
    let higher = this.lowest;
    while (higher !== NIL && this.buckets[higher]!.freq < f) {
      lower = higher;
      higher = this.buckets[higher]!.higher;
    }
    const at = higher === NIL ? undefined : this.buckets[higher];
    this.link(slot, at && at.freq === f ? at : this.newBucket(f, lower, higher));
    return false;
  }

  victim(): K | undefined {
    if (this.lowest === NIL) return undefined;
    return this.pool.key(this.buckets[this.lowest]!.list.tail);
  }

  /** The access count of a resident key (0 when absent); for observation features. */
  frequency(key: K): number {
    const s = this.index.get(key);
    return s === NIL ? 0 : this.buckets[this.pool.count[s]!]!.freq;
  }

  private bump(s: number): void {
    const b = this.buckets[this.pool.count[s]!]!;
    const f = b.freq + 1;
    let up = b.higher === NIL ? undefined : this.buckets[b.higher];
    if (!up || up.freq !== f) up = this.newBucket(f, b.id, b.higher);
    this.unlink(s);
    this.link(s, up);
  }

  private evict(): void {
    const b = this.buckets[this.lowest]!;
    const s = b.list.tail;
    this.unlink(s);
    this.drop(s);
  }

  private link(s: number, b: Bucket): void {
    b.list.pushFront(s);
    this.pool.count[s] = b.id;
    this.usedUnits += this.pool.size[s]!;
    this.entries++;
  }

  protected unlink(s: number): void {
    const b = this.buckets[this.pool.count[s]!]!;
    b.list.remove(s);
    this.usedUnits -= this.pool.size[s]!;
    this.entries--;
    if (b.list.length === 0) this.freeBucket(b);
  }

  private newBucket(freq: number, lower: number, higher: number): Bucket {
    const reuse = this.freeBuckets.pop();
    let b: Bucket;
    if (reuse === undefined) {
      b = { id: this.buckets.length, freq, list: new SlotList(this.pool), lower, higher };
      this.buckets.push(b);
    } else {
      b = this.buckets[reuse]!;
      b.freq = freq;
      b.lower = lower;
      b.higher = higher;
    }
    if (lower !== NIL) this.buckets[lower]!.higher = b.id;
    else this.lowest = b.id;
    if (higher !== NIL) this.buckets[higher]!.lower = b.id;
    return b;
  }

  private freeBucket(b: Bucket): void {
    if (b.lower !== NIL) this.buckets[b.lower]!.higher = b.higher;
    else this.lowest = b.higher;
    if (b.higher !== NIL) this.buckets[b.higher]!.lower = b.lower;
    b.list.clear();
    this.freeBuckets.push(b.id);
  }

  protected isResident(): boolean {
    return true;
  }
  protected reset(): void {
    this.buckets = [];
    this.freeBuckets = [];
    this.lowest = NIL;
    this.usedUnits = 0;
    this.entries = 0;
  }
}
