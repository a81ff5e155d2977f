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
// reported as not durable rather than guessed (a write answered through an ASK redirect, which
// only a slot migration causes and knobos does not do, would be checked against the slot's
// owner). One WAIT covers every write its connection ran before it, so writes whose replies
// arrive together share one (group commit): one blocking WAIT per connection per burst, not per
// write. With the knob at 0 (the default) the runners take no extra step at all.
import type { Cluster, Redis } from 'ioredis';
import { keySlot } from '../redis/slots.ts';
import type { RedisClient } from '../redis/connect.ts';
import { ReplicaAckError, ValidationError } from './errors.ts';

export interface ReplicaAckPolicy {
  /** Replicas that must acknowledge each write; 0 = none. */
  replicas: number;
  /** Bound on the wait (WAIT's timeout); must be positive, since WAIT 0 would block forever. */
  timeoutMs: number;
}

/** The knobs a service follows to set its client's policy (see followReplicaAcks). */
export const REPLICA_ACK_KNOBS = ['store.replica_acks', 'store.replica_ack_timeout_ms'] as const;

const policies = new WeakMap<object, ReplicaAckPolicy>();

/** Sets how many replica acknowledgements the writes of this client wait for. */
export function setReplicaAcks(client: RedisClient, policy: ReplicaAckPolicy): void {
  if (!Number.isInteger(policy.replicas) || policy.replicas < 0)
    throw new ValidationError(
      `replicas: must be an integer >= 0, got ${policy.replicas}`,
      'replicas',
      'min',
    );
  if (!Number.isInteger(policy.timeoutMs) || policy.timeoutMs < 1)
    throw new ValidationError(
      `timeoutMs: must be an integer >= 1 (WAIT 0 blocks forever), got ${policy.timeoutMs}`,
      'timeoutMs',
      'min',
    );
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

/**
 * The next WAIT of a connection, not sent yet: every write whose reply is back before it leaves
 * (replies read in the same turn of the event loop) shares it. A WAIT sent after a write's reply
 * is sure to cover that write, even one that ioredis resent after TRYAGAIN or CLUSTERDOWN.
 */
interface NextWait {
  stream: unknown;
  replicas: number;
  timeoutMs: number;
  acks: Promise<number>;
}

const nextWaits = new WeakMap<object, NextWait>();

function sharedWait(route: Route, replicas: number, timeoutMs: number): Promise<number> {
  const next = nextWaits.get(route.conn);
  if (next && next.stream === route.stream) {
    next.replicas = Math.max(next.replicas, replicas);
    next.timeoutMs = Math.max(next.timeoutMs, timeoutMs);
    return next.acks;
  }
  const wait: NextWait = { stream: route.stream, replicas, timeoutMs, acks: Promise.resolve(0) };
  wait.acks = new Promise<number>((resolve, reject) =>
    setImmediate(() => {
      if (nextWaits.get(route.conn) === wait) nextWaits.delete(route.conn);
      route.conn.wait(wait.replicas, wait.timeoutMs).then(resolve, reject);
    }),
  );
  nextWaits.set(route.conn, wait);
  return wait.acks;
}

/** What a write notes before it is sent, to be checked by `confirmWrite` after its reply. */
interface PendingWrite {
  policy: ReplicaAckPolicy;
  slot: number;
  before: Route | undefined;
}

/**
 * Call just before sending a write on `client` for `key`; undefined when the client's writes
 * wait for no replica (the hot path: one WeakMap lookup).
 */
function beginWrite(client: RedisClient, key: string): PendingWrite | undefined {
  const policy = policies.get(client);
  if (!policy) return undefined;
  const slot = isCluster(client) ? keySlot(key) : 0;
  return { policy, slot, before: routeOf(client, slot) };
}

/**
 * Call after the write's reply: resolves when enough replicas acknowledged it, throws
 * ReplicaAckError otherwise.
 */
async function confirmWrite(client: RedisClient, w: PendingWrite): Promise<void> {
  const { replicas, timeoutMs } = w.policy;
  const now = routeOf(client, w.slot);
  if (!now || (w.before && (w.before.conn !== now.conn || w.before.stream !== now.stream))) {
    throw new ReplicaAckError(
      `write not confirmed durable: its node connection changed while it ran (failover, redirect or reconnect); 0 of ${replicas} replica acknowledgements known`,
      { replicas, acked: 0, reason: 'route_changed' },
    );
  }
  let acked: number;
  try {
    acked = await sharedWait(now, replicas, timeoutMs);
  } catch (err) {
    throw new ReplicaAckError(
      `write not confirmed durable: WAIT failed: ${(err as Error).message}`,
      {
        replicas,
        acked: 0,
        reason: 'wait_failed',
      },
    );
  }
  if (acked < replicas) {
    throw new ReplicaAckError(
      `write not confirmed durable: ${acked} of ${replicas} replicas acknowledged it within ${timeoutMs} ms`,
      { replicas, acked, reason: 'timeout' },
    );
  }
}

/**
 * Sends a write (`go`) for `key` and returns its reply once the replicas the client asks for
 * have it; with no key, or a client that waits for none, it is just `go()`.
 */
export function durableWrite<T>(
  client: RedisClient,
  key: string | undefined,
  go: () => Promise<T>,
): Promise<T> {
  const pending = key === undefined ? undefined : beginWrite(client, key);
  // Not async: with no replica to wait for, the write's own promise goes back as it is.
  if (!pending) return go();
  return go().then(async (reply) => {
    await confirmWrite(client, pending);
    return reply;
  });
}
