// The storage every cache policy shares: a pool of slots in typed arrays (links, size, a tag
// and a counter per slot) plus intrusive doubly-linked lists over those slots. Slots are
// recycled through a free list, so a replay allocates nothing per request once the pool has
// grown to the cache's population.

/** "No slot": the end of a list, or a key that is not tracked. */
export const NIL = -1;

export class SlotPool<K> {
  prev: Int32Array;
  next: Int32Array;
  /** Size of the entry in the cache's unit (1 in object mode, bytes in byte mode). */
  size: Float64Array;
  /** Which list or queue the slot is on; meaning is the policy's. */
  tag: Int32Array;
  /** A per-slot counter: frequency, reference bits, bucket number; meaning is the policy's. */
  count: Int32Array;
  keys: (K | undefined)[] = [];
  private freeHead = NIL;
  private top = 0;

  constructor(initialSlots = 64) {
    const n = Math.max(16, initialSlots);
    this.prev = new Int32Array(n);
    this.next = new Int32Array(n);
    this.size = new Float64Array(n);
    this.tag = new Int32Array(n);
    this.count = new Int32Array(n);
  }

  alloc(key: K, size: number): number {
    let s = this.freeHead;
    if (s !== NIL) {
      this.freeHead = this.next[s]!;
    } else {
      if (this.top === this.prev.length) this.grow();
      s = this.top++;
    }
    this.prev[s] = NIL;
    this.next[s] = NIL;
    this.size[s] = size;
    this.tag[s] = 0;
    this.count[s] = 0;
    this.keys[s] = key;
    return s;
  }

  free(s: number): void {
    this.keys[s] = undefined;
    this.next[s] = this.freeHead;
    this.freeHead = s;
  }

  key(s: number): K {
    return this.keys[s] as K;
  }

  clear(): void {
    this.freeHead = NIL;
    this.top = 0;
    this.keys = [];
  }

  private grow(): void {
    const n = this.prev.length * 2;
    const widen = <T extends Int32Array | Float64Array>(a: T, make: (n: number) => T): T => {
      const b = make(n);
      b.set(a);
      return b;
    };
    this.prev = widen(this.prev, (m) => new Int32Array(m));
    this.next = widen(this.next, (m) => new Int32Array(m));
    this.size = widen(this.size, (m) => new Float64Array(m));
    this.tag = widen(this.tag, (m) => new Int32Array(m));
    this.count = widen(this.count, (m) => new Int32Array(m));
  }
}

/**
 * A doubly-linked list of pool slots. Head is the newest end (most recently inserted or
 * promoted), tail the oldest end (the next victim of LRU/FIFO-like queues). `used` sums the
 * sizes of the slots on the list.
 */
export class SlotList {
  head = NIL;
  tail = NIL;
  length = 0;
  used = 0;

  constructor(private readonly pool: SlotPool<unknown>) {}

  pushFront(s: number): void {
    const p = this.pool;
    p.prev[s] = NIL;
    p.next[s] = this.head;
    if (this.head !== NIL) p.prev[this.head] = s;
    else this.tail = s;
    this.head = s;
    this.length++;
    this.used += p.size[s]!;
  }

  remove(s: number): void {
    const p = this.pool;
    const a = p.prev[s]!;
    const b = p.next[s]!;
    if (a !== NIL) p.next[a] = b;
    else this.head = b;
    if (b !== NIL) p.prev[b] = a;
    else this.tail = a;
    this.length--;
    this.used -= p.size[s]!;
  }

  moveToFront(s: number): void {
    if (this.head === s) return;
    const p = this.pool;
    // s is not the head, so it has a predecessor.
    const a = p.prev[s]!;
    const b = p.next[s]!;
    p.next[a] = b;
    if (b !== NIL) p.prev[b] = a;
    else this.tail = a;
    p.prev[s] = NIL;
    p.next[s] = this.head;
    p.prev[this.head] = s;
    this.head = s;
  }

  clear(): void {
    this.head = NIL;
    this.tail = NIL;
    this.length = 0;
    this.used = 0;
  }
}
