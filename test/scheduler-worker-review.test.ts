// Worker runtime review fixes, against a real redis-server: any thrown value fails its copy
// (a null-prototype object, an Error whose message getter throws) without killing the fetch
// loop or holding the slot; handlers are looked up as own properties only ('constructor',
// 'toString'); a result over the size limit fails at once (no retries); failure messages are
// cut to ERROR_BYTES_MAX; a cancelled copy that ignores its abort neither speeds the beat up
// nor counts as a free slot; a worker clock skewed against Redis's is warned of at start.
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../controlplane/redis/connect.ts';
import {
  describeError,
  ERROR_BYTES_MAX,
  PermanentTaskError,
  WorkerRuntime,
} from '../controlplane/scheduler/worker.ts';
import { eventually, startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';
import { claim, startScheduler, type SchedulerHarness } from './helpers/scheduler-harness.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A pino logger whose entries land in `lines`. */
function capturingLog(lines: Record<string, unknown>[]) {
  return pino(
    { level: 'info' },
    { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) },
  );
}

describe('worker runtime review fixes', () => {
  let redis: TestRedis;
  const harnesses: SchedulerHarness[] = [];
  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterAll(async () => {
    await Promise.all(harnesses.map((h) => h.stop()));
    await redis?.stop();
  });
  async function harness(opts: Parameters<typeof startScheduler>[1] = {}) {
    const h = await startScheduler(redis, opts);
    harnesses.push(h);
    return h;
  }
  const state = async (h: SchedulerHarness, id: string) => (await h.service.client.get(id))?.state;

  it('fails a copy on any thrown value, keeps fetching, and stop() deregisters', async () => {
    const h = await harness({ knobs: { 'scheduler.retry_limit': 0 } });
    const badMessage = new Error('x');
    Object.defineProperty(badMessage, 'message', {
      get() {
        throw new Error('message getter');
      },
    });
    const w = await h.worker({
      concurrency: 1,
      handlers: {
        // String() of it throws (no toString, no Symbol.toPrimitive).
        nullProto: () => {
          throw Object.create(null);
        },
        badMessage: async () => {
          await sleep(1);
          throw badMessage;
        },
        ok: () => 'fine',
      },
    });
    await h.service.client.submitMany([
      { id: 'n', type: 'nullProto' },
      { id: 'b', type: 'badMessage' },
    ]);
    await eventually(async () => (await state(h, 'n')) === 'dead', 'n dead');
    await eventually(async () => (await state(h, 'b')) === 'dead', 'b dead');
    expect((await h.service.client.mustGet('n')).error).toBe('[object Object]');
    expect((await h.service.client.mustGet('b')).error).toBe('[object Error]');
    // The one slot is free again and the fetch loop lives: the next task runs.
    await h.service.client.submit({ id: 'k', type: 'ok' });
    await eventually(async () => (await state(h, 'k')) === 'done', 'k done');
    expect(w.busy).toBe(0);
    await w.stop({ drain: false });
    expect(await h.redis.exists(h.service.shard.k.worker(w.id))).toBe(0);
  });

  it("routes no task to a worker without its handler, and runs no inherited method as one ('constructor', 'toString')", async () => {
    const h = await harness({ knobs: { 'scheduler.retry_limit': 0 } });
    // Beats far apart: the test rewrites the row's types below, and a beat would restore them.
    const w = await h.worker({ concurrency: 2, heartbeatMs: 60_000, handlers: { ok: () => 1 } });
    await h.service.client.submitMany([
      { id: 'c', type: 'constructor' },
      { id: 's', type: 'toString' },
      { id: 'k', type: 'ok' },
    ]);
    await eventually(async () => (await state(h, 'k')) === 'done', 'k done');
    await sleep(200);
    for (const id of ['c', 's']) {
      const row = await h.service.client.mustGet(id);
      expect(row.state).toBe('runnable');
      expect(row.attempts).toBe(0);
    }
    // A worker row from before types were kept (every type): the copies reach the runtime,
    // whose own lookup must still find no handler in Object's methods.
    const shard = h.service.shard;
    await h.redis.hset(shard.k.worker(w.id), 'types', '*');
    await h.redis.lpush(shard.k.doorbell(), '1');
    for (const id of ['c', 's']) {
      await eventually(async () => (await state(h, id)) === 'dead', `${id} dead`);
      const row = await h.service.client.mustGet(id);
      expect(row.error).toMatch(/^no handler for task type /);
      // Above all, no serialized context (its lease token) as a result.
      expect(JSON.stringify(row)).not.toContain('token');
    }
  });

  it('fails an oversized result at once, without running the handler again', async () => {
    const h = await harness({ knobs: { 'scheduler.retry_limit': 2 } });
    let calls = 0;
    await h.worker({
      concurrency: 1,
      handlers: { big: () => (calls++, 'x'.repeat(70_000)) },
    });
    await h.service.client.submit({ id: 'big', type: 'big' });
    await eventually(async () => (await state(h, 'big')) === 'dead', 'big dead');
    await sleep(200); // a retry would have run by now (backoff 10 ms)
    expect(calls).toBe(1);
    const row = await h.service.client.mustGet('big');
    expect(row.attempts).toBe(1);
    expect(row.error).toMatch(/is not JSON of at most 65536 bytes/);
  });

  it('cuts long failure messages in the task row and the dead letter', async () => {
    const h = await harness({ knobs: { 'scheduler.retry_limit': 0 } });
    const long = 'x'.repeat(1_000_000);
    const wide = 'é'.repeat(10_000); // 2 bytes each: a cut may fall inside one
    await h.worker({
      concurrency: 2,
      handlers: {
        long: () => {
          throw new PermanentTaskError(long);
        },
        wide: async () => {
          throw new Error(wide);
        },
      },
    });
    await h.service.client.submitMany([
      { id: 'l', type: 'long' },
      { id: 'w', type: 'wide' },
    ]);
    for (const [id, bytes, ch] of [
      ['l', 1_000_000, 'x'],
      ['w', 20_000, 'é'],
    ] as const) {
      await eventually(async () => (await state(h, id)) === 'dead', `${id} dead`);
      const error = (await h.service.client.mustGet(id)).error!;
      const marker = `... [truncated: ${bytes} bytes]`;
      expect(error.endsWith(marker)).toBe(true);
      const head = error.slice(0, -marker.length);
      expect(Buffer.byteLength(head)).toBeLessThanOrEqual(ERROR_BYTES_MAX);
      expect(Buffer.byteLength(head)).toBeGreaterThan(ERROR_BYTES_MAX - 4);
      expect(head).toBe(ch.repeat(head.length)); // no half character (U+FFFD)
    }
    const dead = await h.service.queries.deadLetters();
    for (const d of dead)
      expect(Buffer.byteLength(d.error ?? '')).toBeLessThan(ERROR_BYTES_MAX + 64);
    expect(dead).toHaveLength(2);
  });

  it('neither speeds up beats for nor offers the slot of a cancelled copy that ignores its abort', async () => {
    const h = await harness({ service: { background: false } });
    const shard = h.service.shard;
    let aborted = false;
    let started = false;
    const w = await h.worker({
      concurrency: 2,
      heartbeatMs: 1_000,
      handlers: {
        // Hears the abort and runs on regardless.
        hang: (t) => {
          started = true;
          t.signal.addEventListener('abort', () => (aborted = true));
          return new Promise(() => {});
        },
      },
    });
    let beats = 0;
    const beat = w.heartbeat.bind(w);
    w.heartbeat = () => (beats++, beat());
    await h.service.client.submit({ id: 'h', type: 'hang' });
    await claim(shard, 'h', w.id, Date.now(), 300);
    await eventually(() => started, 'hang started');
    // Its lease runs out (the worker's row lives 3 beats): requeued; the worker's next renewal
    // finds it lost and cancels the copy.
    const reap = { max: 100, jobTtlMs: 1, retryLimit: 3, backoffMs: 100 };
    expect((await shard.reap(reap, Date.now() + 1_000)).expired).toBe(1);
    await eventually(() => aborted, 'copy aborted');
    const from = beats;
    await sleep(1_200);
    // One beat a second, as with no copy: not one every MIN_BEAT_GAP_MS (50 ms).
    expect(beats - from).toBeLessThanOrEqual(2);
    expect(w.busy).toBe(1); // still running: it holds one of the 2 slots
    expect(await h.redis.hget(shard.k.worker(w.id), 'slots')).toBe('1');
  });

  describe('clock skew against Redis at start', () => {
    const start = async (
      lines: Record<string, unknown>[],
      skewMs: number,
      client = redis.client(),
    ) =>
      WorkerRuntime.start({
        redis: client,
        keys: uniqueKeys(),
        concurrency: 1,
        handlers: {},
        heartbeatMs: 1_000,
        clock: { now: () => Date.now() + skewMs },
        log: capturingLog(lines),
      });
    const skewWarnings = (lines: Record<string, unknown>[]) =>
      lines.filter((l) => l['skewMs'] !== undefined);

    it('warns of a worker clock behind by more than a beat, not of one in sync', async () => {
      const lines: Record<string, unknown>[] = [];
      const w = await start(lines, -4_000);
      await w.stop({ drain: false });
      const [warn, ...more] = skewWarnings(lines);
      expect(more).toEqual([]);
      expect(warn).toMatchObject({ level: 40, heartbeatMs: 1_000 });
      expect(warn!['skewMs']).toBeGreaterThan(-4_500);
      expect(warn!['skewMs']).toBeLessThan(-3_500);
      expect(String(warn!['msg'])).toMatch(/behind Redis's.*synchronize clocks/);

      const inSync: Record<string, unknown>[] = [];
      const v = await start(inSync, 0);
      await v.stop({ drain: false });
      expect(skewWarnings(inSync)).toEqual([]);
    });

    it('measures it also as a user refused TIME (the service ACL users are)', async () => {
      const admin = redis.client();
      await admin.call('ACL', 'SETUSER', 'notime', 'on', '>pw', '~*', '&*', '+@all', '-time');
      const client = connect(redis.target, { username: 'notime', password: 'pw' });
      client.on('error', () => {});
      try {
        await expect(client.time()).rejects.toThrow(/NOPERM/);
        const lines: Record<string, unknown>[] = [];
        const w = await start(lines, 5_000, client);
        await w.stop({ drain: false });
        const [warn] = skewWarnings(lines);
        expect(warn!['skewMs']).toBeGreaterThan(4_500);
        expect(String(warn!['msg'])).toMatch(/ahead of Redis's/);
      } finally {
        client.disconnect();
        await admin.call('ACL', 'DELUSER', 'notime');
      }
    });
  });

  // Not Redis-bound: the two helpers' edge cases, checked directly.
  it('describes any thrown value without throwing', () => {
    const hostile = new Proxy(
      {},
      {
        get() {
          throw new Error('get');
        },
        getPrototypeOf() {
          throw new Error('proto');
        },
      },
    );
    expect(describeError(hostile)).toBe('unprintable thrown value');
    expect(describeError(Object.create(null))).toBe('[object Object]');
    expect(describeError(new Error('m'))).toBe('m');
    expect(describeError(undefined)).toBe('undefined');
  });
});
