// The shape of a shard-placement decision, shared by the placement simulator (envs/placement)
// and the live placement service. policies/ imports nothing of ours, so the map type is
// declared here; it is the same shape as the `placement.map` knob value.

/** Tenant or key-group name -> shard index (0..shards-1). Unlisted names hash to a shard. */
export type PlacementMap = Record<string, number>;

export interface GroupView {
  name: string;
  /** Load the group puts on its shard in the last interval (any consistent unit, e.g. req/s). */
  load: number;
  /** Bytes of state that move with the group when it changes shard. */
  stateBytes: number;
}

export interface PlacementView {
  shards: number;
  groups: readonly GroupView[];
  /** The current placement; groups it does not list sit on their hash shard. */
  map: Readonly<PlacementMap>;
  /** Most moves a policy may return from one decision. */
  maxMoves: number;
  /** Cost of moving one byte of state, in units of imbalance (the exchange rate of the reward). */
  moveCostPerByte: number;
}

export interface Move {
  group: string;
  to: number;
}

export interface PlacementPolicy {
  readonly name: string;
  /** At most view.maxMoves moves, applied in order; empty means leave the placement alone. */
  decide(view: PlacementView): Move[];
}
