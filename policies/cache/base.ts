// What every policy shares: capacity and unit checks, the key index and slot pool, and the
// generic has/delete/clear built on three hooks each policy supplies.
import { DenseKeyIndex, MapKeyIndex, type KeyIndex } from './key-index.ts';
import { NIL, SlotPool } from './slots.ts';
import {
  CachePolicyError,
  type CachePolicy,
  type AnyCachePolicyName,
  type CachePolicyOptions,
  type CacheUnit,
} from './types.ts';

export abstract class CacheBase<K> implements CachePolicy<K> {
  abstract readonly name: AnyCachePolicyName;
  readonly capacity: number;
  readonly unit: CacheUnit;
  protected readonly pool: SlotPool<K>;
  protected readonly index: KeyIndex<K>;
  private readonly bytesMode: boolean;

  constructor(capacity: number, opts: CachePolicyOptions = {}) {
    const unit = opts.unit ?? 'objects';
    if (unit !== 'objects' && unit !== 'bytes') {
      throw new CachePolicyError('unit', 'enum', `unit must be 'objects' or 'bytes', got ${unit}`);
    }
    if (
      !Number.isFinite(capacity) ||
      capacity < 0 ||
      (unit === 'objects' && !Number.isInteger(capacity))
    ) {
      throw new CachePolicyError(
        'capacity',
        'range',
        `capacity must be a finite number >= 0 (an integer in object mode), got ${capacity}`,
      );
    }
    this.capacity = capacity;
    this.unit = unit;
    this.bytesMode = unit === 'bytes';
    // Object mode knows its population up front; byte mode grows the pool as needed.
    this.pool = new SlotPool<K>(unit === 'objects' ? Math.min(capacity + 1, 1 << 20) : 1024);
    this.index = opts.denseKeys
      ? (new DenseKeyIndex() as unknown as KeyIndex<K>)
      : new MapKeyIndex<K>();
  }

  abstract readonly used: number;
  abstract readonly count: number;
  abstract access(key: K, sizeBytes?: number): boolean;
  /** Whether the slot holds a resident entry (not a ghost). */
  protected abstract isResident(slot: number): boolean;
  /** Unlinks the slot from whatever list holds it; the base frees it. */
  protected abstract unlink(slot: number): void;
  /** Resets the policy's own lists and state; the base resets pool and index. */
  protected abstract reset(): void;

  has(key: K): boolean {
    const s = this.index.get(key);
    return s !== NIL && this.isResident(s);
  }

  residentSize(key: K): number | undefined {
    const s = this.index.get(key);
    return s !== NIL && this.isResident(s) ? this.pool.size[s] : undefined;
  }

  delete(key: K): boolean {
    const s = this.index.get(key);
    if (s === NIL) return false;
    this.unlink(s);
    this.drop(s);
    return true;
  }

  clear(): void {
    this.reset();
    this.pool.clear();
    this.index.clear();
  }

  /** What an entry counts toward capacity (entryUnits), with sizeBytes checked. */
  protected sizeOf(sizeBytes: number | undefined): number {
    if (!this.bytesMode) return 1;
    const s = sizeBytes ?? 1;
    if (!(s >= 0) || !Number.isFinite(s)) {
      throw new CachePolicyError(
        'sizeBytes',
        'range',
        `sizeBytes must be finite and >= 0, got ${s}`,
      );
    }
    return s < 1 ? 1 : s;
  }

  /** A new slot for key, registered in the index; the caller links it into a list. */
  protected admit(key: K, size: number): number {
    const s = this.pool.alloc(key, size);
    this.index.set(key, s);
    return s;
  }

  /** Forgets a slot already unlinked from its list. */
  protected drop(s: number): void {
    this.index.delete(this.pool.key(s));
    this.pool.free(s);
  }
}
