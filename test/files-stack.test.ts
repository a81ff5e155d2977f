// The file service stack `npm start` runs (controlplane/run/files-stack.ts), on one Redis, its
// workload replaced by a stand-in: stop() runs every step even when one fails (the file
// service and the knob client stop after a workload whose stop failed), and a start that fails
// part way stops what it had started.
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { createLogger } from '../controlplane/log.ts';
import type { RedisClient } from '../controlplane/redis/connect.ts';
import { startFilesStack } from '../controlplane/run/files-stack.ts';
import { FilesWorkload } from '../controlplane/workload/files.ts';
import { eventually, startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = createLogger('files-stack-test', 'silent');

describe('files stack start and stop', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis('single');
  }, 30_000);
  afterEach(() => {
    vi.restoreAllMocks();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  const clients = async (c: RedisClient) =>
    String(await c.call('CLIENT', 'LIST'))
      .split('\n')
      .filter(Boolean).length;
  const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  const commands = async (c: RedisClient) =>
    Number(/total_commands_processed:(\d+)/.exec(await c.info('stats'))?.[1]);
  /** Nothing of the stack is left: no connection, no timer, no command sent any more. */
  async function nothingLeft(client: RedisClient, baseline: { clients: number; timers: number }) {
    await eventually(
      async () => (await clients(client)) === baseline.clients || (await sleep(100), false),
      'the stack’s connections closed',
      10_000,
    );
    await eventually(() => timers() <= baseline.timers, 'the stack’s timers cleared', 10_000);
    const before = await commands(client);
    await sleep(1_000);
    expect((await commands(client)) - before).toBeLessThanOrEqual(2); // this check's own
  }

  async function setup() {
    const client = redis.client();
    const knobs = new KnobTable(client, { keys: uniqueKeys() });
    await knobs.seed();
    return { client, knobs, baseline: { clients: await clients(client), timers: timers() } };
  }

  it('stop() runs every step even when one fails, then rejects with that failure', async () => {
    const { client, knobs, baseline } = await setup();
    vi.spyOn(FilesWorkload, 'start').mockResolvedValue({
      stop: () => Promise.reject(new Error('injected: workload stop failed')),
    } as unknown as FilesWorkload);
    const s = await startFilesStack(knobs, log, { seed: 1, ratePerS: 10 });
    const close = vi.spyOn(s.files, 'close');
    expect(await clients(client)).toBeGreaterThan(baseline.clients); // the knob client's
    await expect(s.stop()).rejects.toThrow('injected: workload stop failed');
    // The steps after it ran all the same.
    expect(close).toHaveBeenCalledTimes(1);
    await nothingLeft(client, baseline);
    await s.stop(); // again: nothing left to stop
    expect(close).toHaveBeenCalledTimes(1);
  }, 30_000);

  it('a start that fails part way (the workload) stops what it had started', async () => {
    const { client, knobs, baseline } = await setup();
    vi.spyOn(FilesWorkload, 'start').mockRejectedValue(new Error('injected: no data set'));
    await expect(startFilesStack(knobs, log, { seed: 1, ratePerS: 10 })).rejects.toThrow(
      'injected: no data set',
    );
    await nothingLeft(client, baseline);
  }, 30_000);
});
