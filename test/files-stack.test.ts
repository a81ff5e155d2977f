// The file service stack `npm start` runs (controlplane/run/files-stack.ts), on one Redis, its
// workload replaced by a stand-in: stop() runs every step even when one fails (the file
// service and the knob client stop after a workload whose stop failed), and a start that fails
// part way stops what it had started.
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../controlplane/log.ts';
import { startFilesStack } from '../controlplane/run/files-stack.ts';
import { FilesWorkload } from '../controlplane/workload/files.ts';
import { clientCount, nothingLeft, stackSetup } from './helpers/leftovers.ts';
import { startTestRedis, type TestRedis } from './helpers/redis.ts';

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

  const setup = () => stackSetup(redis);

  it('stop() runs every step even when one fails, then rejects with that failure', async () => {
    const { client, knobs, baseline } = await setup();
    vi.spyOn(FilesWorkload, 'start').mockResolvedValue({
      stop: () => Promise.reject(new Error('injected: workload stop failed')),
    } as unknown as FilesWorkload);
    const s = await startFilesStack(knobs, log, { seed: 1, ratePerS: 10 });
    const close = vi.spyOn(s.files, 'close');
    expect(await clientCount(client)).toBeGreaterThan(baseline.clients); // the knob client's
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
