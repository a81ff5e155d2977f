// A handler's result is made JSON (and checked: at most 64 KiB) when the handler returns, and
// that JSON is what the settle sends. It was serialized again when the settle call was built (a
// later turn, and every retry): a result changed after the return (here made circular) threw
// there, was taken for a failed settle and retried for ever, and every later completion on the
// worker waited behind it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRedis, type TestRedis } from './helpers/redis.ts';
import { startScheduler, type SchedulerHarness } from './helpers/scheduler-harness.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a worker settles the result as it was returned', () => {
  let redis: TestRedis;
  let h: SchedulerHarness;
  beforeAll(async () => {
    redis = await startTestRedis('single');
    h = await startScheduler(redis, { knobs: { 'scheduler.retry_limit': 0 } });
  });
  afterAll(async () => {
    await h?.stop();
    await redis?.stop();
  });

  it('a result mutated after return does not wedge the settle queue', async () => {
    const w = await h.worker({
      concurrency: 4,
      handlers: {
        mut: () => {
          const r: Record<string, unknown> = { ok: true };
          // After the return (and its JSON check), before the settle is built.
          queueMicrotask(() => {
            r.self = r;
          });
          return r;
        },
        plain: () => 'fine',
      },
    });
    await h.service.client.submit({ id: 'm', type: 'mut' });
    await sleep(300);
    await h.service.client.submit({ id: 'p', type: 'plain' });
    const deadline = Date.now() + 4_000;
    let p: string | undefined;
    while (Date.now() < deadline) {
      p = (await h.service.client.get('p'))?.state;
      if (p === 'done') break;
      await sleep(50);
    }
    const m = (await h.service.client.get('m'))?.state;
    expect({ p, busy: w.busy }).toEqual({ p: 'done', busy: 0 });
    // Done with the result as it was when the handler returned.
    expect(m).toBe('done');
    expect((await h.service.client.get('m'))?.result).toBe('{"ok":true}');
  }, 15_000);
});
