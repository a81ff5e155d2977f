// Hash placement: a name's home shard is FNV-1a (32-bit, over the name's UTF-8 bytes) mod the
// shard count. FNV-1a is stated (not "some hash") because the live service and the simulator
// must agree bit for bit on where an unlisted name lives, in any language.
import type { Move, PlacementMap, PlacementPolicy, PlacementView } from './types.ts';

const FNV_OFFSET_32 = 0x811c9dc5;
const FNV_PRIME_32 = 0x01000193;
const encoder = new TextEncoder();

/** FNV-1a 32-bit of the UTF-8 bytes of s, as an unsigned integer. */
export function fnv1a32(s: string): number {
  let h = FNV_OFFSET_32;
  for (const byte of encoder.encode(s)) {
    h ^= byte;
    h = Math.imul(h, FNV_PRIME_32);
  }
  return h >>> 0;
}

/** The shard a name lives on when the map does not list it. */
export function hashShard(name: string, shards: number): number {
  if (!Number.isInteger(shards) || shards < 1) {
    throw new RangeError(`hashShard: shards must be a positive integer, got ${shards}`);
  }
  return fnv1a32(name) % shards;
}

/**
 * The shard a name lives on under a map: its entry if listed, else its hash shard. Only the
 * map's own entries count: a map read from JSON inherits Object.prototype, and a tenant named
 * `constructor` or `toString` (valid names) read a function as its shard.
 */
export function shardOf(map: Readonly<PlacementMap>, name: string, shards: number): number {
  const listed = Object.hasOwn(map, name) ? map[name] : undefined;
  return listed !== undefined ? listed : hashShard(name, shards);
}

/**
 * A copy of `map` with `moves` applied in order. Entries are defined, not assigned: assigning
 * `map['__proto__'] = 2` sets no entry (it calls Object.prototype's setter), and the move of a
 * group of that name was lost.
 */
export function withMoves(map: Readonly<PlacementMap>, moves: readonly Move[]): PlacementMap {
  const next: PlacementMap = { ...map };
  for (const m of moves)
    Object.defineProperty(next, m.group, {
      value: m.to,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  return next;
}

/** The hash placement of these names, as an explicit map. */
export function hashPlacement(names: readonly string[], shards: number): PlacementMap {
  return Object.fromEntries(names.map((n) => [n, hashShard(n, shards)]));
}

/**
 * The static baseline: every group on its hash shard, whatever the load. It moves a group only
 * to undo an earlier move (back to its hash shard), at most view.maxMoves at a time.
 */
export function hashPolicy(): PlacementPolicy {
  return {
    name: 'hash',
    decide(view: PlacementView): Move[] {
      const moves: Move[] = [];
      for (const g of view.groups) {
        if (moves.length >= view.maxMoves) break;
        const home = hashShard(g.name, view.shards);
        if (shardOf(view.map, g.name, view.shards) !== home)
          moves.push({ group: g.name, to: home });
      }
      return moves;
    },
  };
}
