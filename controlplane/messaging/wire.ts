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

/**
 * publish.lua's reply is { 0, batch duplicate, id_1, duplicate_1, ... }; read in place by the
 * producer (one object per message less on the hot path). Checks it covers the batch.
 */
export function checkPublishReply(reply: readonly unknown[], n: number): void {
  if (reply.length !== 2 + 2 * n || typeof reply[2 + 2 * (n - 1)] !== 'string')
    throw new Error(`publish.lua: reply of ${reply.length} values for ${n} messages`);
}

/** A message to apply (with its writes) or to dead-letter. */
export type CommitItem =
  | { kind: 'apply'; message: Message; writes: readonly Write[]; reason?: never }
  | { kind: 'dead'; message: Message; reason: string; writes?: never };

export const COMMIT_RESULT = {
  applied: 1,
  duplicate: 2,
  stale: 3,
  dead: 4,
  /** Applied, but one of its writes failed (e.g. INCRBY on a non-number). */
  writeFailed: 5,
} as const;

/** commit.lua's code for a write whose key holds another type (nothing was done). */
export const COMMIT_OUTPUT_TYPE = -10;

/**
 * KEYS and ARGV of commit.lua, and the order its results come back in (messages to apply
 * first, then messages to dead-letter). `outputKey` maps a write's name to its key in the
 * partition family; each distinct key is passed once.
 */
export function commitCall(
  fixedKeys: readonly [stream: string, done: string, dead: string, results: string],
  head: {
    group: string;
    now: number;
    dedupCutoffMs: number;
    dedupMax: number;
    deadMaxLen: number;
    /** How long the first attempt that runs keeps its results for a retry (ms). */
    resultsTtlMs: number;
  },
  items: readonly CommitItem[],
  outputKey: (name: string) => string,
): { keys: string[]; argv: (string | number)[]; order: CommitItem[] } {
  const keys = [...fixedKeys];
  const keyNo = new Map<string, number>();
  const apply = items.filter((it) => it.kind === 'apply');
  const dead = items.filter((it) => it.kind === 'dead');
  const argv: (string | number)[] = [
    head.group,
    head.now,
    head.dedupCutoffMs,
    head.dedupMax,
    head.deadMaxLen,
    apply.length,
    dead.length,
    head.resultsTtlMs,
  ];
  for (const it of apply) {
    const m = it.message;
    argv.push(m.id, m.key !== undefined ? identityOf(m) : '', it.writes.length);
    for (const w of it.writes) {
      let k = keyNo.get(w.name);
      if (k === undefined) {
        keys.push(outputKey(w.name));
        keyNo.set(w.name, (k = keys.length));
      }
      argv.push(w.command, k, w.args.length, ...w.args);
    }
  }
  for (const it of dead) {
    const m = it.message;
    argv.push(m.id, it.reason, m.deliveries, m.key ?? '', m.data, m.publishedAt);
  }
  return { keys, argv, order: [...apply, ...dead] };
}
