// A stack's knob client: its service's knobs plus the durability knobs, which every stack's
// writes follow (store.replica_acks), so each stack starts its knobs the same way.
import { KnobClient } from '../knobs/client.ts';
import type { KnobTable } from '../knobs/table.ts';
import type { RedisClient } from '../redis/connect.ts';
import { followReplicaAcks, REPLICA_ACK_KNOBS } from '../store/replica-acks.ts';

export async function startStackKnobs(
  table: KnobTable,
  names: readonly string[],
  redis: RedisClient = table.redis,
): Promise<KnobClient> {
  const client = await KnobClient.start({ table, names: [...names, ...REPLICA_ACK_KNOBS] });
  followReplicaAcks(redis, client);
  return client;
}
