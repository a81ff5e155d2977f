// S3-FIFO (Yang et al., SOSP'23): a small FIFO (10% of the space) filters one-hit wonders, a
// main FIFO with a 2-bit clock counter keeps the rest, and a ghost FIFO of keys evicted from
// the small queue sends returning keys straight to main. Follows libCacheSim's S3FIFOv0.c, the
// original algorithm: a new key always enters the small queue (the newer S3FIFO.c sends new
// keys to main until the first eviction). One departure: the small queue holds at least one
// object, so caches under 10 objects still cache something (libCacheSim would admit nothing).
import { CacheBase } from './base.ts';
import { NIL, SlotList } from './slots.ts';
import { CachePolicyError, type CachePolicyOptions } from './types.ts';

const SMALL = 1;
const MAIN = 2;
const GHOST = 3;
/** Counters saturate here; only comparisons against small thresholds matter. */
const FREQ_CAP = 1 << 20;

function ratio(field: string, v: number): number {
  if (!(v >= 0 && v <= 1)) {
    throw new CachePolicyError(field, 'range', `${field} must be in [0, 1], got ${v}`);
  }
  return v;
}

export class S3FifoCache<K> extends CacheBase<K> {
  readonly name = 's3fifo' as const;
  private readonly small = new SlotList(this.pool);
  private readonly main = new SlotList(this.pool);
  private readonly ghost = new SlotList(this.pool);
  private readonly smallCapacity: number;
  private readonly mainCapacity: number;
  private readonly ghostCapacity: number;
  private readonly threshold: number;

  constructor(capacity: number, opts: CachePolicyOptions = {}) {
    super(capacity, opts);
    const smallRatio = ratio('smallRatio', opts.smallRatio ?? 0.1);
    const ghostRatio = ratio('ghostRatio', opts.ghostRatio ?? 0.9);
    const floorIfObjects = (x: number): number => (this.unit === 'objects' ? Math.floor(x) : x);
    let small = floorIfObjects(capacity * smallRatio);
    if (this.unit === 'objects' && capacity > 0) small = Math.max(1, small);
    this.smallCapacity = small;
    this.mainCapacity = capacity - small;
    this.ghostCapacity = floorIfObjects(capacity * ghostRatio);
    this.threshold = opts.moveToMainThreshold ?? 2;
    if (!Number.isInteger(this.threshold) || this.threshold < 1) {
      throw new CachePolicyError(
        'moveToMainThreshold',
        'range',
        `moveToMainThreshold must be an integer >= 1, got ${this.threshold}`,
      );
    }
  }

  get used(): number {
    return this.small.used + this.main.used;
  }
  get count(): number {
    return this.small.length + this.main.length;
  }

  access(key: K, sizeBytes?: number): boolean {
    const p = this.pool;
    const s = this.index.get(key);
    let fromGhost = false;
    if (s !== NIL) {
      if (p.tag[s] !== GHOST) {
        if (p.count[s]! < FREQ_CAP) p.count[s]!++;
        return true;
      }
      this.ghost.remove(s);
      this.drop(s);
      fromGhost = true;
    }
    const size = this.sizeOf(sizeBytes);
    // An entry must fit in the small queue (libCacheSim's can_insert).
    if (size > this.smallCapacity || size > this.capacity) return false;
    while (this.small.used + this.main.used + size > this.capacity) this.evict();
    const slot = this.admit(key, size);
    p.tag[slot] = fromGhost ? MAIN : SMALL;
    (fromGhost ? this.main : this.small).pushFront(slot);
    return false;
  }

  private evict(): void {
    if (this.main.used > this.mainCapacity || this.small.length === 0) this.evictMain();
    else this.evictSmall();
  }

  /** Oldest small entries seen often enough move to main; the first that is not becomes a ghost. */
  private evictSmall(): void {
    const p = this.pool;
    while (this.small.length > 0) {
      const s = this.small.tail;
      this.small.remove(s);
      if (p.count[s]! >= this.threshold) {
        p.count[s] = 0;
        p.tag[s] = MAIN;
        this.main.pushFront(s);
        continue;
      }
      this.toGhost(s);
      return;
    }
  }

  /** Main is a clock: a used entry is reinserted with its counter decremented (2 bits: max 3). */
  private evictMain(): void {
    const p = this.pool;
    while (this.main.length > 0) {
      const s = this.main.tail;
      const f = p.count[s]!;
      this.main.remove(s);
      if (f >= 1) {
        p.count[s] = Math.min(f, 3) - 1;
        this.main.pushFront(s);
        continue;
      }
      this.drop(s);
      return;
    }
  }

  private toGhost(s: number): void {
    const size = this.pool.size[s]!;
    if (size > this.ghostCapacity) {
      this.drop(s);
      return;
    }
    while (this.ghost.used + size > this.ghostCapacity) {
      const g = this.ghost.tail;
      this.ghost.remove(g);
      this.drop(g);
    }
    this.pool.tag[s] = GHOST;
    this.pool.count[s] = 0;
    this.ghost.pushFront(s);
  }

  private listOf(s: number): SlotList {
    const tag = this.pool.tag[s];
    return tag === SMALL ? this.small : tag === MAIN ? this.main : this.ghost;
  }

  protected isResident(s: number): boolean {
    return this.pool.tag[s] !== GHOST;
  }
  protected unlink(s: number): void {
    this.listOf(s).remove(s);
  }
  protected reset(): void {
    this.small.clear();
    this.main.clear();
    this.ghost.clear();
  }
}
