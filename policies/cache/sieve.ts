// SIEVE (Zhang et al., NSDI'24): a FIFO queue with one visited bit per entry and a hand that
// walks from the tail toward the head, clearing bits until it finds an unvisited entry to
// evict; new entries go in at the head and survivors stay where they are. Follows
// libCacheSim's Sieve.c step for step.
import { CacheBase } from './base.ts';
import { NIL, SlotList } from './slots.ts';
import type { CachePolicyOptions } from './types.ts';

export class SieveCache<K> extends CacheBase<K> {
  readonly name = 'sieve' as const;
  private readonly queue = new SlotList(this.pool);
  /** The next entry the hand looks at; NIL means start again from the tail. */
  private hand = NIL;

  constructor(capacity: number, opts?: CachePolicyOptions) {
    super(capacity, opts);
  }

  get used(): number {
    return this.queue.used;
  }
  get count(): number {
    return this.queue.length;
  }

  access(key: K, sizeBytes?: number): boolean {
    const s = this.index.get(key);
    if (s !== NIL) {
      this.pool.count[s] = 1;
      return true;
    }
    const size = this.sizeOf(sizeBytes);
    if (size > this.capacity) return false;
    while (this.queue.used + size > this.capacity) this.evict();
    this.queue.pushFront(this.admit(key, size));
    return false;
  }

  private evict(): void {
    const p = this.pool;
    const q = this.queue;
    // Terminates: each step clears a bit, so within one lap an unvisited entry turns up.
    let s = this.hand === NIL ? q.tail : this.hand;
    while (p.count[s] !== 0) {
      p.count[s] = 0;
      const prev = p.prev[s]!;
      s = prev === NIL ? q.tail : prev;
    }
    this.hand = p.prev[s]!;
    q.remove(s);
    this.drop(s);
  }

  protected isResident(): boolean {
    return true;
  }
  protected unlink(s: number): void {
    if (s === this.hand) this.hand = this.pool.prev[s]!;
    this.queue.remove(s);
  }
  protected reset(): void {
    this.queue.clear();
    this.hand = NIL;
  }
}
