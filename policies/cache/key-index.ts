// Key -> slot lookup for the cache policies. Two implementations behind one small interface:
// a Map for arbitrary keys (the live file service's string keys, ghost caches) and a flat
// Int32Array for the dense integer ids that trace loaders hand out, which is what makes replay
// run at millions of requests per second (no hashing, no per-request allocation).

/** Slot number of a key, or -1 when the key is not tracked. */
export interface KeyIndex<K> {
  get(key: K): number;
  set(key: K, slot: number): void;
  delete(key: K): void;
  clear(): void;
}

export class MapKeyIndex<K> implements KeyIndex<K> {
  private readonly map = new Map<K, number>();

  get(key: K): number {
    return this.map.get(key) ?? -1;
  }
  set(key: K, slot: number): void {
    this.map.set(key, slot);
  }
  delete(key: K): void {
    this.map.delete(key);
  }
  clear(): void {
    this.map.clear();
  }
}

/**
 * Keys are non-negative integers below 2^31 (dense ids). Memory is one int per id up to the
 * largest id seen, so use it only for ids handed out densely (trace loaders do).
 */
export class DenseKeyIndex implements KeyIndex<number> {
  private slotOf: Int32Array;

  constructor(initialKeys = 1024) {
    this.slotOf = new Int32Array(Math.max(16, initialKeys)).fill(-1);
  }

  get(key: number): number {
    // A negative or fractional key reads no element (undefined): a miss, never a phantom hit.
    return this.slotOf[key] ?? -1;
  }
  set(key: number, slot: number): void {
    if (!(key < this.slotOf.length && Number.isInteger(key) && key >= 0)) this.grow(key);
    this.slotOf[key] = slot;
  }
  delete(key: number): void {
    if (key < this.slotOf.length) this.slotOf[key] = -1;
  }
  clear(): void {
    this.slotOf.fill(-1);
  }

  private grow(key: number): void {
    if (!Number.isInteger(key) || key < 0 || key > 0x7fffffff) {
      throw new RangeError(`dense cache key must be an integer in [0, 2^31), got ${key}`);
    }
    let n = this.slotOf.length;
    while (n <= key) n *= 2;
    const next = new Int32Array(n).fill(-1);
    next.set(this.slotOf);
    this.slotOf = next;
  }
}
