// Redis killed with SIGKILL mid-workload and restarted from its AOF (appendfsync always):
// every file write, create and rename the service acknowledged is there afterwards, and the
// indexes and directory sizes still agree with a brute-force scan.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, type FileService } from '../controlplane/files/index.ts';
import { filesFixture, type FilesFixture } from './helpers/files-env.ts';
import { expectIndexesMatchScan } from './helpers/files-scan.ts';
import { startTestRedis, type TestRedis } from './helpers/redis.ts';

const WRITERS = 4;
const BLOCK_BYTES = 3_000; // blocks straddle the 4 KiB chunks
const KILL_AFTER_ACKS = 120;
const ACKS_AFTER_RESTART = 60;
const OPS_MAX = 2_000; // per writer, a bound on the loop

/** Block j of writer w's file k: bytes nobody else writes. */
const block = (w: number, k: number, j: number) =>
  Buffer.alloc(BLOCK_BYTES, (w * 31 + k * 7 + j * 13) % 251 || 1);

describe('file writes across a SIGKILL of redis', () => {
  let redis: TestRedis;
  let fx: FilesFixture;
  let fs: FileService;
  beforeAll(async () => {
    redis = await startTestRedis('single', { appendfsync: 'always' });
    fx = await filesFixture(redis);
    await fx.setKnob('files.chunk_bytes', 16_384);
    await fx.setKnob('files.chunk_bytes', 4_096);
    fs = await fx.instance();
  });
  afterAll(async () => {
    await fx?.close();
    await redis?.stop();
  });

  it('loses no acknowledged write, create or rename', async () => {
    const acked: { path: string; offset: number; data: Buffer }[] = [];
    const created: string[] = [];
    let acks = 0;
    let restarted = false;
    let acksAtRestart = 0;
    let failures = 0;
    const writer = async (w: number) => {
      await fs.mkdir(ROOT, `/w${w}`);
      for (let op = 0, k = 0, j = 0; op < OPS_MAX; op++) {
        if (restarted && acks - acksAtRestart >= ACKS_AFTER_RESTART) return;
        const path = `/w${w}/f${k}`;
        try {
          if (j === 0) {
            await fs.create(ROOT, `/w${w}/tmp${k}`);
            await fs.rename(ROOT, `/w${w}/tmp${k}`, path); // acked only when both are
            created.push(path);
          }
          const data = block(w, k, j);
          await fs.write(ROOT, path, j * BLOCK_BYTES, data);
          acked.push({ path, offset: j * BLOCK_BYTES, data });
          acks++;
          j++;
          if (j === 6) [k, j] = [k + 1, 0];
        } catch {
          // Not acknowledged (the connection died under it, or a retried create found its own
          // earlier success). Move to a fresh file so no later ack depends on this one.
          failures++;
          [k, j] = [k + 1, 0];
        }
      }
    };
    const running = Array.from({ length: WRITERS }, (_, w) => writer(w));
    const server = redis.single!;
    while (acks < KILL_AFTER_ACKS) await new Promise((r) => setTimeout(r, 5));
    await server.kill();
    await new Promise((r) => setTimeout(r, 300));
    acksAtRestart = acks;
    await server.restart();
    restarted = true;
    await Promise.all(running);
    expect(acksAtRestart).toBeGreaterThanOrEqual(KILL_AFTER_ACKS);
    expect(acks - acksAtRestart).toBeGreaterThanOrEqual(ACKS_AFTER_RESTART);

    // A fresh instance (empty cache) and the old one (its cache from before the kill) agree.
    const fresh = await fx.instance();
    for (const reader of [fresh, fs]) {
      for (const a of acked) {
        const got = await reader.read(ROOT, a.path, { offset: a.offset, length: BLOCK_BYTES });
        expect(got.equals(a.data), `${a.path} @${a.offset}`).toBe(true);
      }
      for (const p of created) expect((await reader.stat(ROOT, p)).type).toBe('file');
    }
    await expectIndexesMatchScan(fresh, redis.client());
    expect(failures).toBeLessThan(WRITERS * 4);
  });
});
