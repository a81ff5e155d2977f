// How messages and batches travel to and from the scripts: stream entries as Message
// objects, and the flat argument lists of publish.lua and commit.lua (flat lists instead of
// JSON, because decoding JSON in Lua would cost more than the writes themselves).
import type { Write } from './output.ts';

export interface Message {
  topic: string;
  partition: number;
  /** The stream id: unique within the partition. */
  id: string;
  data: string;
  /** The producer's idempotency key, when it gave one. */
  key?: string;
  /** When the producer was asked to publish it (ms, producer clock). */
  publishedAt: number;
  /** Deliveries so far, this one included. */
  deliveries: number;
}

/** The identity the consumer dedup table records: the idempotency key, else the stream id. */
export function identityOf(m: Pick<Message, 'id' | 'key'>): string {
  return m.key !== undefined ? `k:${m.key}` : m.id;
}

export function decodeEntry(
  topic: string,
  partition: number,
  id: string,
  flat: readonly string[],
  deliveries: number,
): Message {
  let data = '';
  let key: string | undefined;
  let t = 0;
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const f = flat[i];
    const v = flat[i + 1] as string;
    if (f === 'd') data = v;
    else if (f === 't') t = Number(v);
    else if (f === 'k' && v !== '') key = v;
  }
  return {
    topic,
    partition,
    id,
    data,
    ...(key !== undefined ? { key } : {}),
    publishedAt: t,
    deliveries,
  };
}

export interface Outgoing {
  key: string | undefined;
  enqueuedAt: number;
  data: string;
}

export interface PublishArgs {
  now: number;
  maxLen: number;
  /** Stream ids below this are trimmed; undefined = no age bound. */
  minIdMs: number | undefined;
  dedupCutoffMs: number;
  dedupMax: number;
  seqKey: string;
  seq: number;
}

export function publishArgv(a: PublishArgs, batch: readonly Outgoing[]): (string | number)[] {
  const argv: (string | number)[] = [
    a.now,
    a.maxLen,
    a.minIdMs === undefined ? '' : `${Math.max(0, Math.floor(a.minIdMs))}-0`,
    a.dedupCutoffMs,
    a.dedupMax,
    a.seqKey,
    a.seq,
    batch.length,
  ];
  for (const m of batch) argv.push(m.key ?? '', m.enqueuedAt, m.data);
  return argv;
}

export interface Published {
  id: string;
  duplicate: boolean;
}

export function parsePublishReply(reply: readonly unknown[], n: number): Published[] {
  const out: Published[] = [];
  for (let i = 0; i < n; i++) {
    const id = reply[2 + i * 2];
    if (typeof id !== 'string') throw new Error(`publish.lua: reply too short for ${n} messages`);
    out.push({ id, duplicate: Number(reply[3 + i * 2]) === 1 });
  }
  return out;
}

/** A message to apply (with its writes) or to dead-letter. */
export type CommitItem =
  | { kind: 'apply'; message: Message; writes: readonly Write[] }
  | { kind: 'dead'; message: Message; reason: string };

export const COMMIT_RESULT = { applied: 1, duplicate: 2, stale: 3, dead: 4 } as const;

/**
 * KEYS and ARGV of commit.lua. `outputKey` maps a write's name to its key in the partition
 * family; each distinct key is passed once.
 */
export function commitCall(
  fixedKeys: readonly [stream: string, done: string, dead: string],
  head: { group: string; now: number; dedupCutoffMs: number; dedupMax: number; deadMaxLen: number },
  items: readonly CommitItem[],
  outputKey: (name: string) => string,
): { keys: string[]; argv: (string | number)[] } {
  const keys = [...fixedKeys];
  const keyNo = new Map<string, number>();
  const argv: (string | number)[] = [
    head.group,
    head.now,
    head.dedupCutoffMs,
    head.dedupMax,
    head.deadMaxLen,
    items.length,
  ];
  for (const it of items) {
    const m = it.message;
    if (it.kind === 'dead') {
      argv.push('x', m.id, it.reason, m.deliveries, m.key ?? '', m.data, m.publishedAt);
      continue;
    }
    argv.push('a', m.id, identityOf(m), it.writes.length);
    for (const w of it.writes) {
      let k = keyNo.get(w.name);
      if (k === undefined) {
        keys.push(outputKey(w.name));
        keyNo.set(w.name, (k = keys.length));
      }
      argv.push(w.command, k, w.args.length, ...w.args);
    }
  }
  return { keys, argv };
}
