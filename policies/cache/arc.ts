// ARC (Megiddo and Modha, FAST'03): two resident LRU lists, T1 (seen once recently) and T2
// (seen at least twice), each with a ghost list of recently evicted keys (B1, B2); a ghost hit
// moves the target size p of T1 toward the list that would have hit. Follows libCacheSim's
// ARC.c: p is a real number, REPLACE runs only when the cache is full, and sizes are summed
// per entry so byte mode works the same way. Two departures, both in byte mode: after each
// miss the ghosts are trimmed to the paper's bounds in the cache's unit (T1 + B1 <= c, B1 + B2
// <= c; count mode keeps them anyway, ARC.c in byte mode does not, see trimGhosts), and a
// ghost hit moves p by the paper's step in objects of the ghost's size (ARC.c moves it by the
// step in bytes: with uniform sizes S, byte mode at c * S then differed from count mode at c).
import { CacheBase } from './base.ts';
import { NIL, SlotList } from './slots.ts';
import type { CachePolicyOptions } from './types.ts';

const T1 = 1;
const T2 = 2;
const B1 = 3;
const B2 = 4;

export class ArcCache<K> extends CacheBase<K> {
  readonly name = 'arc' as const;
  private readonly t1 = new SlotList(this.pool);
  private readonly t2 = new SlotList(this.pool);
  private readonly b1 = new SlotList(this.pool);
  private readonly b2 = new SlotList(this.pool);
  /** Target size of T1, in the cache's unit. */
  private p = 0;

  constructor(capacity: number, opts?: CachePolicyOptions) {
    super(capacity, opts);
  }

  get used(): number {
    return this.t1.used + this.t2.used;
  }
  get count(): number {
    return this.t1.length + this.t2.length;
  }
  /** What the ghost lists B1 and B2 hold, in the cache's unit (at most the capacity). */
  get ghostUsed(): number {
    return this.b1.used + this.b2.used;
  }
  /** The adaptive target size of T1 (for tests and telemetry). */
  get target(): number {
    return this.p;
  }

  access(key: K, sizeBytes?: number): boolean {
    const s = this.index.get(key);
    let ghost = 0;
    if (s !== NIL) {
      const tag = this.pool.tag[s]!;
      if (tag === T1) {
        this.t1.remove(s);
        this.pool.tag[s] = T2;
        this.t2.pushFront(s);
        return true;
      }
      if (tag === T2) {
        this.t2.moveToFront(s);
        return true;
      }
      // A ghost hit: adapt p, then forget the ghost; the key comes back into T2. The paper's
      // step is max(|B2|/|B1|, 1) pages: in byte mode, that many of the ghost's own size (a
      // step of 1 left p within bytes of 0, and ARC unadapted; count mode: a size of 1).
      const unit = this.pool.size[s]!;
      if (tag === B1) {
        const step = Math.max(this.b2.used / this.b1.used, 1) * unit;
        this.p = Math.min(this.p + step, this.capacity);
        this.b1.remove(s);
      } else {
        const step = Math.max(this.b1.used / this.b2.used, 1) * unit;
        this.p = Math.max(this.p - step, 0);
        this.b2.remove(s);
      }
      this.drop(s);
      ghost = tag;
    }
    const size = this.sizeOf(sizeBytes);
    if (size > this.capacity) return false;
    while (this.t1.used + this.t2.used + size > this.capacity) {
      if (ghost !== 0) this.replace(ghost === B2);
      else this.evictOnFullMiss(size);
    }
    const slot = this.admit(key, size);
    this.pool.tag[slot] = ghost !== 0 ? T2 : T1;
    (ghost !== 0 ? this.t2 : this.t1).pushFront(slot);
    this.trimGhosts();
    return false;
  }

  /**
   * The paper's bounds on the ghosts, by the cache's unit: T1 + B1 <= c and B1 + B2 <= c. In
   * count mode each eviction step moves one entry in and drops one, so they hold already and
   * this drops nothing (unless delete() shrank the resident lists). In byte mode a step may
   * demote a large entry and drop one small ghost, so without this the ghosts grew without
   * bound (dozens of times the capacity on a mixed-size trace), each one a slot in memory.
   */
  private trimGhosts(): void {
    while (this.b1.length > 0 && this.t1.used + this.b1.used > this.capacity) {
      this.dropTail(this.b1);
    }
    while (this.b1.used + this.b2.used > this.capacity) {
      this.dropTail(this.b2.length > 0 ? this.b2 : this.b1);
    }
  }

  /**
   * The paper's REPLACE: demote the LRU end of T1 or T2 to its ghost list. p is a sum of
   * fractional steps (|B2|/|B1|), so it carries rounding error: |T1| == p (the paper's tie, on
   * a B2 hit) is judged within a tolerance below a quarter of a unit (held exactly,
   * 1.0000000000000007 missed the tie at p = 1 and demoted from T2).
   */
  private replace(hitInB2: boolean): void {
    const t1 = this.t1;
    // p's error grows with its magnitude (bounded by the capacity); sizes are whole units, so
    // a tolerance under half a unit never takes a real difference of one unit for a tie.
    const eps = Math.min(0.25, 1e-9 * Math.max(1, this.capacity));
    const tie = Math.abs(t1.used - this.p) <= eps;
    const fromT1 =
      (t1.length > 0 && ((t1.used > this.p && !tie) || (tie && hitInB2))) || this.t2.length === 0;
    if (fromT1) this.demote(t1, this.b1, B1);
    else this.demote(this.t2, this.b2, B2);
  }

  private demote(from: SlotList, to: SlotList, tag: number): void {
    const s = from.tail;
    from.remove(s);
    this.pool.tag[s] = tag;
    to.pushFront(s);
  }

  /** The paper's case IV: a miss in all four lists. */
  private evictOnFullMiss(size: number): void {
    if (this.t1.used + this.b1.used + size > this.capacity) {
      if (this.b1.length > 0) {
        this.dropTail(this.b1);
        this.replace(false);
      } else {
        // T1 alone fills the cache: evict its LRU end without keeping a ghost.
        this.dropTail(this.t1);
      }
      return;
    }
    const total = this.t1.used + this.t2.used + this.b1.used + this.b2.used;
    if (total >= 2 * this.capacity && this.b2.length > 0) this.dropTail(this.b2);
    this.replace(false);
  }

  private dropTail(list: SlotList): void {
    const s = list.tail;
    list.remove(s);
    this.drop(s);
  }

  private listOf(s: number): SlotList {
    switch (this.pool.tag[s]) {
      case T1:
        return this.t1;
      case T2:
        return this.t2;
      case B1:
        return this.b1;
      default:
        return this.b2;
    }
  }

  protected isResident(s: number): boolean {
    const tag = this.pool.tag[s];
    return tag === T1 || tag === T2;
  }
  protected unlink(s: number): void {
    this.listOf(s).remove(s);
  }
  protected reset(): void {
    for (const l of [this.t1, this.t2, this.b1, this.b2]) l.clear();
    this.p = 0;
  }
}
