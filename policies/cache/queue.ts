// LRU and FIFO: one queue, newest at the head, victim at the tail. They differ only in
// whether a hit moves the entry to the head, so they share this class.
import { CacheBase } from './base.ts';
import { NIL, SlotList } from './slots.ts';
import type { CachePolicyOptions, VictimPolicy } from './types.ts';

abstract class QueueCache<K> extends CacheBase<K> implements VictimPolicy<K> {
  protected readonly queue = new SlotList(this.pool);
  protected abstract readonly promoteOnHit: boolean;

  get used(): number {
    return this.queue.used;
  }
  get count(): number {
    return this.queue.length;
  }

  access(key: K, sizeBytes?: number): boolean {
    const s = this.index.get(key);
    if (s !== NIL) {
      if (this.promoteOnHit) this.queue.moveToFront(s);
      return true;
    }
    const size = this.sizeOf(sizeBytes);
    if (size > this.capacity) return false;
    const q = this.queue;
    while (q.used + size > this.capacity) {
      const t = q.tail;
      q.remove(t);
      this.drop(t);
    }
    q.pushFront(this.admit(key, size));
    return false;
  }

  victim(): K | undefined {
    return this.queue.tail === NIL ? undefined : this.pool.key(this.queue.tail);
  }

  protected isResident(): boolean {
    return true;
  }
  protected unlink(s: number): void {
    this.queue.remove(s);
  }
  protected reset(): void {
    this.queue.clear();
  }
}

/** Least recently used: a hit moves the entry to the head. */
export class LruCache<K> extends QueueCache<K> {
  readonly name = 'lru' as const;
  protected readonly promoteOnHit = true;
  constructor(capacity: number, opts?: CachePolicyOptions) {
    super(capacity, opts);
  }
}

/** First in, first out: hits change nothing. */
export class FifoCache<K> extends QueueCache<K> {
  readonly name = 'fifo' as const;
  protected readonly promoteOnHit = false;
  constructor(capacity: number, opts?: CachePolicyOptions) {
    super(capacity, opts);
  }
}
