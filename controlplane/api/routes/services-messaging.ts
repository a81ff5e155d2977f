// The messaging service's state, read from its tables: topics, and per partition the stream's
// length and each consumer group's lag (entries not yet delivered) and pending (delivered, not
// acknowledged), from XINFO GROUPS. Tenant views: a topic named `<tenant>.<name>` belongs to
// that tenant (tenant names have no '.'); a tenant-scoped token sees its own topics and the
// shared ones (names without '.'), and another tenant's topic is reported missing.
import type { FastifyInstance } from 'fastify';
import { MessagingKeys } from '../../messaging/keys.ts';
import { Topics, type TopicInfo } from '../../messaging/topics.ts';
import type { RedisClient } from '../../redis/connect.ts';
import { TopicNotFoundError } from '../../messaging/errors.ts';
import { canSee, type ApiDeps, type RequestAuth } from '../context.ts';
import { errors, headers } from '../schemas.ts';
import { closed, pickShard, shardChoice } from './params.ts';
import type { ServiceViewOptions } from './services-options.ts';

const TAGS = ['services: messaging'];
/** Topics listed at most, and partitions inspected at most per call (then `truncated`). */
export const TOPICS_MAX = 100;
export const PARTITIONS_READ_MAX = 1_024;

export interface GroupLag {
  group: string;
  consumers: number;
  /** Entries not yet delivered to the group; null when Redis cannot tell (after trims). */
  lag: number | null;
  pending: number;
}

export interface PartitionState {
  partition: number;
  length: number;
  groups: GroupLag[];
}

async function partitionState(
  redis: RedisClient,
  mkeys: MessagingKeys,
  topic: string,
  partition: number,
): Promise<PartitionState> {
  const stream = mkeys.stream(topic, partition);
  const [length, raw] = await Promise.all([
    redis.xlen(stream),
    (redis.call('XINFO', 'GROUPS', stream) as Promise<unknown[][]>).catch((err: Error) => {
      if (/no such key/i.test(err.message)) return [];
      throw err;
    }),
  ]);
  const groups = raw.map((g) => {
    const f = new Map<string, unknown>();
    for (let i = 0; i + 1 < g.length; i += 2) f.set(String(g[i]), g[i + 1]);
    const lag = f.get('lag');
    return {
      group: String(f.get('name')),
      consumers: Number(f.get('consumers') ?? 0),
      lag: lag === null || lag === undefined ? null : Number(lag),
      pending: Number(f.get('pending') ?? 0),
    };
  });
  return { partition, length, groups };
}

/** Per group over all partitions: lag summed (null if any partition's is unknown). */
function totals(parts: readonly PartitionState[]): { messages: number; groups: GroupLag[] } {
  const by = new Map<string, GroupLag>();
  for (const p of parts)
    for (const g of p.groups) {
      const t = by.get(g.group) ?? { group: g.group, consumers: 0, lag: 0, pending: 0 };
      t.consumers = Math.max(t.consumers, g.consumers);
      t.lag = t.lag === null || g.lag === null ? null : t.lag + g.lag;
      t.pending += g.pending;
      by.set(g.group, t);
    }
  return { messages: parts.reduce((s, p) => s + p.length, 0), groups: [...by.values()] };
}

/** The tenant owning a topic: the part before the first '.', or null for a shared topic. */
function topicTenant(topic: string): string | null {
  const dot = topic.indexOf('.');
  return dot > 0 ? topic.slice(0, dot) : null;
}

function topicVisible(auth: RequestAuth, topic: string): boolean {
  const owner = topicTenant(topic);
  return owner === null || canSee(auth, owner);
}

/** Topic names read at most per call while looking for the caller's (then `truncated`). */
export const TOPICS_SCANNED_MAX = 20_000;

/**
 * The oldest `max` topics the caller may see. Pages past the ones it may not, so a tenant
 * whose topics come after other tenants' still sees its own; reads at most `scanMax` names.
 * `truncated`: more visible topics than `max`, or the scan stopped before the list ended.
 */
export async function visibleTopics(
  topics: Topics,
  auth: RequestAuth,
  max: number,
  opts: { page?: number; scanMax?: number } = {},
): Promise<{ names: string[]; truncated: boolean }> {
  const page = opts.page ?? 1_000;
  const scanMax = opts.scanMax ?? TOPICS_SCANNED_MAX;
  const out: string[] = [];
  for (let offset = 0; out.length <= max; offset += page) {
    if (offset >= scanMax) return { names: out.slice(0, max), truncated: true };
    const want = Math.min(page, scanMax - offset);
    const names = await topics.list(want, offset);
    out.push(...names.filter((n) => topicVisible(auth, n)));
    if (names.length < want) break;
  }
  return { names: out.slice(0, max), truncated: out.length > max };
}

const topicName = { type: 'string', pattern: '^[A-Za-z0-9._-]{1,100}$' } as const;
const groupSchema = {
  type: 'object',
  properties: {
    group: { type: 'string' },
    consumers: { type: 'integer' },
    lag: { type: ['integer', 'null'] },
    pending: { type: 'integer' },
  },
} as const;
const topicSchema = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    partitions: { type: 'integer' },
    maxLen: { type: 'number' },
    maxAgeMs: { type: 'number' },
    createdAt: { type: 'number' },
    messages: { type: ['integer', 'null'] },
    groups: { type: ['array', 'null'], items: groupSchema },
  },
} as const;

export function messagingRoutes(
  app: FastifyInstance,
  deps: ApiDeps,
  opts: Required<Pick<ServiceViewOptions, 'messagingShards'>>,
): void {
  const { redis, keys } = deps;
  const shardQuery = closed({ shard: shardChoice('messaging shard', opts.messagingShards) });
  const open = (shard?: string) => {
    const mkeys = new MessagingKeys(keys, pickShard(opts.messagingShards, shard));
    return { mkeys, topics: new Topics(redis, mkeys) };
  };
  const states = (mkeys: MessagingKeys, t: TopicInfo) =>
    Promise.all(
      Array.from({ length: t.partitions }, (_, p) => partitionState(redis, mkeys, t.name, p)),
    );
  const info = (t: TopicInfo) => ({
    name: t.name,
    partitions: t.partitions,
    maxLen: t.maxLen,
    maxAgeMs: t.maxAgeMs,
    createdAt: t.createdAt,
  });

  app.get<{ Querystring: { shard?: string } }>(
    '/api/services/messaging/topics',
    {
      schema: {
        tags: TAGS,
        summary: 'Topics with their message counts and each consumer group lag, oldest first',
        description: `At most ${TOPICS_MAX} of the topics the caller may see, looked for among the oldest ${TOPICS_SCANNED_MAX}; partitions are inspected up to ${PARTITIONS_READ_MAX} per call, later topics then have messages and groups null. \`truncated\` says a list or a count was cut.`,
        headers,
        querystring: shardQuery,
        response: {
          200: {
            type: 'object',
            properties: {
              topics: { type: 'array', items: topicSchema },
              truncated: { type: 'boolean' },
            },
          },
          ...errors(),
        },
      },
    },
    async (request) => {
      const { mkeys, topics } = open(request.query.shard);
      const listed = await visibleTopics(topics, request.auth, TOPICS_MAX);
      const names = listed.names;
      const rows = (await Promise.all(names.map((n) => topics.find(n)))).flatMap((t) =>
        t ? [t] : [],
      );
      let budget = PARTITIONS_READ_MAX;
      let truncated = listed.truncated;
      const out = [];
      for (const t of rows) {
        if (t.partitions > budget) {
          truncated = true;
          out.push({ ...info(t), messages: null, groups: null });
          continue;
        }
        budget -= t.partitions;
        out.push({ ...info(t), ...totals(await states(mkeys, t)) });
      }
      return { topics: out, truncated };
    },
  );

  app.get<{ Params: { topic: string }; Querystring: { shard?: string } }>(
    '/api/services/messaging/topics/:topic',
    {
      schema: {
        tags: TAGS,
        summary: "A topic's partitions: stream length and each group's lag and pending",
        headers,
        params: closed({ topic: topicName }, ['topic']),
        querystring: shardQuery,
        response: {
          200: {
            type: 'object',
            properties: {
              ...topicSchema.properties,
              partitionStates: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    partition: { type: 'integer' },
                    length: { type: 'integer' },
                    groups: { type: 'array', items: groupSchema },
                  },
                },
              },
            },
          },
          ...errors(404),
        },
      },
    },
    async (request) => {
      const { mkeys, topics } = open(request.query.shard);
      const name = request.params.topic;
      if (!topicVisible(request.auth, name)) throw new TopicNotFoundError(name);
      const t = await topics.get(name);
      const parts = await states(mkeys, t);
      return { ...info(t), ...totals(parts), partitionStates: parts };
    },
  );
}
