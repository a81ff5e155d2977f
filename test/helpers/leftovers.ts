// What a stopped (or failed) stack may leave behind, and the check that it left nothing: Redis
// connections, timers of this process, commands still sent.
import { expect } from 'vitest';
import { KnobTable } from '../../controlplane/knobs/table.ts';
import type { RedisClient } from '../../controlplane/redis/connect.ts';
import { eventually, uniqueKeys, type TestRedis } from './redis.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Baseline {
  clients: number;
  timers: number;
}

/** Connections the server has open. */
export async function clientCount(c: RedisClient): Promise<number> {
  return String(await c.call('CLIENT', 'LIST'))
    .split('\n')
    .filter(Boolean).length;
}

/** Timers this process has pending. */
export function timerCount(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}

/** The counts before anything started. */
export async function baselineOf(c: RedisClient): Promise<Baseline> {
  return { clients: await clientCount(c), timers: timerCount() };
}

/** Nothing of the stack is left: no connection, no timer, no command sent any more. */
export async function nothingLeft(client: RedisClient, baseline: Baseline): Promise<void> {
  await eventually(
    async () => (await clientCount(client)) === baseline.clients || (await sleep(100), false),
    'the stack’s connections closed',
    10_000,
  );
  await eventually(() => timerCount() <= baseline.timers, 'the stack’s timers cleared', 10_000);
  const commands = async () =>
    Number(/total_commands_processed:(\d+)/.exec(await client.info('stats'))?.[1]);
  const before = await commands();
  await sleep(1_000);
  // Only this check's own INFO commands.
  expect((await commands()) - before).toBeLessThanOrEqual(2);
}

/** A client, a seeded knobs table of its own keys, and what the server and process hold now. */
export async function stackSetup(redis: TestRedis) {
  const client = redis.client();
  const knobs = new KnobTable(client, { keys: uniqueKeys() });
  await knobs.seed();
  return { client, knobs, baseline: await baselineOf(client) };
}
