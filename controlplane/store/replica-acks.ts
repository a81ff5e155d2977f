// Durable writes: when a client is told to (the store.replica_acks knob), a state change counts
// as done only after that many replicas of the primary that ran it have acknowledged it (Redis
// WAIT), so a primary killed right after its reply cannot take the change with it: the replica
// promoted in its place has it. Every state change is one script, so the wait sits in the two
// script runners (ScriptSet.run and the file scripts' runner) and nowhere else.
//
// WAIT counts the writes of the connection it is sent on, so it must go to the very node
// connection that ran the script: on a cluster, the connection of the primary that serves the
// key's slot. The route is read before the script is sent and again when its reply is back; if
// it changed (a redirect, a failover, a reconnect) the write may have run elsewhere, and it is
// reported as not durable rather than guessed. One WAIT covers every write sent on its
// connection before it, so writes whose replies arrive together share one (group commit): the
// cost is one blocking WAIT per connection per burst, not per write. With the knob at 0 (the
// default) the runners take no extra step at all.
import { Command, type Cluster, type Redis } from 'ioredis';
import type { RedisClient } from '../redis/connect.ts';
import { KnobosError } from './errors.ts';

export interface ReplicaAckPolicy {
  /** Replicas that must acknowledge each write; 0 = none. */
  replicas: number;
  /** Bound on the wait (WAIT's timeout); must be positive, since WAIT 0 would block forever. */
  timeoutMs: number;
}

/** The knobs a service follows to set its client's policy (see followReplicaAcks). */
export const REPLICA_ACK_KNOBS = ['store.replica_acks', 'store.replica_ack_timeout_ms'] as const;

/**
 * The write ran on the primary, but fewer replicas than required acknowledged it in time (or
 * its route changed under it): it may be lost if that primary fails now. The outcome is not
 * known either way, so callers retry only operations that are safe to repeat (idempotency keys,
 * versioned writes) and report the rest.
 */
export class ReplicaAckError extends KnobosError {
  readonly code = 'KNOBOS_NOT_DURABLE';
  readonly status = 503;
}

const policies = new WeakMap<object, ReplicaAckPolicy>();

/** Sets how many replica acknowledgements the writes of this client wait for. */
export function setReplicaAcks(client: RedisClient, policy: ReplicaAckPolicy): void {
  if (!Number.isInteger(policy.replicas) || policy.replicas < 0)
    throw new RangeError(`replicas: must be an integer >= 0, got ${policy.replicas}`);
  if (!Number.isInteger(policy.timeoutMs) || policy.timeoutMs < 1)
    throw new RangeError(`timeoutMs: must be an integer >= 1, got ${policy.timeoutMs}`);
  if (policy.replicas === 0) policies.delete(client);
  else policies.set(client, { ...policy });
}

/** The policy of a client's writes; undefined when they wait for no replica. */
export function replicaAcks(client: RedisClient): ReplicaAckPolicy | undefined {
  return policies.get(client);
}

/** The part of a KnobClient this module needs (kept structural: knobs/ imports the store). */
export interface ReplicaAckKnobs {
  get(name: string): unknown;
  on(event: 'change', fn: (e: { name: string }) => void): unknown;
  off(event: 'change', fn: (e: { name: string }) => void): unknown;
}

/**
 * Makes a client's writes follow the store.replica_* knobs live. The knob client must follow
 * REPLICA_ACK_KNOBS. Returns a function that stops following.
 */
export function followReplicaAcks(client: RedisClient, knobs: ReplicaAckKnobs): () => void {
  const apply = () =>
    setReplicaAcks(client, {
      replicas: Number(knobs.get('store.replica_acks')),
      timeoutMs: Number(knobs.get('store.replica_ack_timeout_ms')),
    });
  const onChange = (e: { name: string }) => {
    if ((REPLICA_ACK_KNOBS as readonly string[]).includes(e.name)) apply();
  };
  apply();
  knobs.on('change', onChange);
  return () => knobs.off('change', onChange);
}

/** The node connection a write to `slot` goes to now, and its socket. */
interface Route {
  conn: Redis;
  stream: unknown;
}

function isCluster(client: RedisClient): client is Cluster {
  return (client as { isCluster?: boolean }).isCluster === true;
}

function routeOf(client: RedisClient, slot: number): Route | undefined {
  if (!isCluster(client)) {
    return client.status === 'ready' ? { conn: client, stream: client.stream } : undefined;
  }
  if (client.status !== 'ready') return undefined;
  const nodeKey = client.slots[slot]?.[0];
  if (!nodeKey) return undefined;
  const conn = client
    .nodes('master')
    .find((n) => `${n.options.host}:${n.options.port}` === nodeKey);
  return conn && conn.status === 'ready' ? { conn, stream: conn.stream } : undefined;
}

/** One WAIT in flight on a connection; writes sent before it was sent may share it. */
interface SharedWait {
  stream: unknown;
  /** How many WAITs this connection had sent before this one (its ticket). */
  ticket: number;
  replicas: number;
  acks: Promise<number>;
}

interface ConnState {
  sent: number;
  last?: SharedWait;
}

const connStates = new WeakMap<object, ConnState>();

function connState(conn: object): ConnState {
  let s = connStates.get(conn);
  if (!s) connStates.set(conn, (s = { sent: 0 }));
  return s;
}

/** What a write notes before it is sent, to be checked by `confirm` after its reply. */
export interface PendingWrite {
  policy: ReplicaAckPolicy;
  slot: number;
  before: Route | undefined;
  /** WAITs its connection had sent when the write was sent; a later one covers it. */
  ticket: number;
}

/**
 * Call just before sending a write on `client` for `key`; undefined when the client's writes
 * wait for no replica (the hot path: one WeakMap lookup).
 */
export function beginWrite(client: RedisClient, key: string): PendingWrite | undefined {
  const policy = policies.get(client);
  if (!policy) return undefined;
  // ioredis's own slot function (hash tags included), reached through a Command.
  const slot = isCluster(client) ? (new Command('exists', [key]).getSlot() ?? 0) : 0;
  const before = routeOf(client, slot);
  // Without a ready route the write waits in an offline queue: it may be sent after any WAIT
  // sent now, so it must not share one (Infinity never matches a ticket).
  return { policy, slot, before, ticket: before ? connState(before.conn).sent : Infinity };
}

/**
 * Call after the write's reply: resolves when enough replicas acknowledged it, throws
 * ReplicaAckError otherwise.
 */
export async function confirmWrite(client: RedisClient, w: PendingWrite): Promise<void> {
  const { replicas, timeoutMs } = w.policy;
  const now = routeOf(client, w.slot);
  if (!now || (w.before && (w.before.conn !== now.conn || w.before.stream !== now.stream))) {
    throw new ReplicaAckError(
      `write not confirmed durable: its node connection changed while it ran (failover, redirect or reconnect); 0 of ${replicas} replica acknowledgements known`,
      { replicas, acked: 0, reason: 'route_changed' },
    );
  }
  const state = connState(now.conn);
  const last = state.last;
  let acks: Promise<number>;
  if (last && last.ticket >= w.ticket && last.stream === now.stream && last.replicas >= replicas) {
    acks = last.acks;
  } else {
    const ticket = state.sent++;
    acks = now.conn.wait(replicas, timeoutMs);
    state.last = { stream: now.stream, ticket, replicas, acks };
  }
  let acked: number;
  try {
    acked = await acks;
  } catch (err) {
    throw new ReplicaAckError(
      `write not confirmed durable: WAIT failed: ${(err as Error).message}`,
      { replicas, acked: 0, reason: 'wait_failed' },
    );
  }
  if (acked < replicas) {
    throw new ReplicaAckError(
      `write not confirmed durable: ${acked} of ${replicas} replicas acknowledged it within ${timeoutMs} ms`,
      { replicas, acked, reason: 'timeout' },
    );
  }
}
