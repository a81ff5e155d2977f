// Every key name of the messaging service, built only on Keys.key(). A topic's metadata lives
// in the shard's family; each partition is a family of its own (`msg:<shard>:<topic>:<p>`),
// so partitions spread over cluster slots while everything one atomic step of a partition
// touches (its stream, dead letters, dedup tables and the handlers' output) shares one slot.
import type { Keys } from '../store/keys.ts';
import { MessagingOptionError } from './errors.ts';

/** Topic, group and shard names: short, and safe inside a key and a hash tag. */
const NAME = /^[A-Za-z0-9._-]{1,100}$/;

export function checkName(field: string, value: string): void {
  // typeof first: test() would accept 5 as '5'.
  if (typeof value !== 'string' || !NAME.test(value)) {
    throw new MessagingOptionError(field, `must match ${NAME.source}, got '${String(value)}'`);
  }
}

export class MessagingKeys {
  constructor(
    readonly keys: Keys,
    readonly shard = '0',
  ) {
    checkName('shard', shard);
  }

  /** The family of the topics table of this shard. */
  topicsFamily(): string {
    return `msg:${this.shard}`;
  }

  partitionFamily(topic: string, partition: number): string {
    checkName('topic', topic);
    if (!Number.isInteger(partition) || partition < 0) {
      throw new MessagingOptionError('partition', `must be an integer >= 0, got ${partition}`);
    }
    return `msg:${this.shard}:${topic}:${partition}`;
  }

  /** The partition's message stream. */
  stream(topic: string, partition: number): string {
    return this.keys.key(this.partitionFamily(topic, partition), 'stream');
  }

  /** Messages that ran out of deliveries, with the group and the reason. */
  dead(topic: string, partition: number): string {
    return this.keys.key(this.partitionFamily(topic, partition), 'dead');
  }

  /** Producer dedup: idempotency key (or producer sequence) -> the stream id it got. */
  publishIds(topic: string, partition: number): string {
    return this.keys.key(this.partitionFamily(topic, partition), 'pub', 'ids');
  }

  /** Producer dedup retention index: idempotency key -> when it was recorded. */
  publishAt(topic: string, partition: number): string {
    return this.keys.key(this.partitionFamily(topic, partition), 'pub', 'at');
  }

  /** Consumer dedup of a group: message identity -> when its effects were applied. */
  done(topic: string, partition: number, group: string): string {
    checkName('group', group);
    return this.keys.key(this.partitionFamily(topic, partition), 'done', group);
  }

  /**
   * The results of one commit of a group (its attempts share `commit`, a unique id), kept
   * briefly so a retry after a lost reply reports exactly what the attempt that ran did.
   */
  commitResults(topic: string, partition: number, group: string, commit: string): string {
    checkName('group', group);
    return this.keys.key(this.partitionFamily(topic, partition), 'commit', group, commit);
  }

  /** A key a handler writes through the output API, in the partition's family. */
  output(topic: string, partition: number, name: string): string {
    return this.keys.key(this.partitionFamily(topic, partition), 'out', name);
  }
}
