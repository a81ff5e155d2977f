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

/** The shard a name lives on under a map: its entry if listed, else its hash shard. */
export function shardOf(map: Readonly<PlacementMap>, name: string, shards: number): number {
  const listed = map[name];
  return listed !== undefined ? listed : hashShard(name, shards);
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
