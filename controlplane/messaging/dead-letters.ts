// The dead-letter streams: messages that ran out of deliveries, one stream per partition
// (in the partition's family, so dead-lettering is atomic with the XACK), bounded by MAXLEN ~.
import type { RedisClient } from '../redis/connect.ts';
import { Log } from '../store/log.ts';
import type { MessagingKeys } from './keys.ts';

export interface DeadLetter {
  /** The dead-letter entry's own id. */
  deadId: string;
  group: string;
  /** The message's id in the partition stream. */
  id: string;
  reason: string;
  deliveries: number;
  data: string;
  key?: string;
  publishedAt: number;
  at: number;
}

export async function readDeadLetters(
  redis: RedisClient,
  keys: MessagingKeys,
  topic: string,
  partition: number,
  opts: { count?: number; start?: string } = {},
): Promise<DeadLetter[]> {
  const entries = await new Log(redis, keys.dead(topic, partition), 1).range({
    count: opts.count ?? 1000,
    ...(opts.start ? { start: opts.start } : {}),
  });
  return entries.map((e) => {
    const f = e.fields;
    const key = f['k'];
    return {
      deadId: e.id,
      group: f['group'] ?? '',
      id: f['id'] ?? '',
      reason: f['reason'] ?? '',
      deliveries: Number(f['deliveries'] ?? 0),
      data: f['d'] ?? '',
      ...(key ? { key } : {}),
      publishedAt: Number(f['t'] ?? 0),
      at: Number(f['at'] ?? e.ms),
    };
  });
}
