// The live drivers' bounded catch-up: the Timeline both drivers share skips (and counts) the
// backlog of an operation more than maxLagMs late instead of replaying it at once, and the
// paced driver, stalled by a blocked event loop, resumes at its rate rather than bursting.
// Real timers; the margins are wide enough for a loaded machine.
import { describe, expect, it } from 'vitest';
import { Paced } from '../controlplane/workload/paced.ts';
import { Timeline } from '../controlplane/workload/timeline.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const block = (ms: number) => {
  const from = performance.now();
  while (performance.now() - from < ms);
  return performance.now();
};

describe('Timeline', () => {
  /** Operations every 10 ms from 10 ms, the clock's 0 at 1000. */
  const every10 = function* () {
    for (let t = 10; ; t += 10) yield t;
  };

  it('catches up lag within the bound and reports it', () => {
    const tl = new Timeline(every10(), 1000, 100);
    expect(tl.next()).toEqual({ index: 0, dueMs: 1010 });
    tl.started(1010, 1090); // 80 ms late: within the bound
    expect(tl.lagMs).toBe(80);
    expect(tl.next()).toEqual({ index: 1, dueMs: 1020 }); // overdue, still started
    expect(tl.skipped).toBe(0);
  });

  it('skips and counts the backlog of an operation later than the bound', () => {
    const tl = new Timeline(every10(), 1000, 100);
    const op = tl.next() as { dueMs: number };
    tl.started(op.dueMs, 1505); // 495 ms late
    expect(tl.lagMs).toBe(495);
    // 1020..1500 were due by 1505: skipped; the schedule resumes at 1510.
    expect(tl.next()).toEqual({ index: 50, dueMs: 1510 });
    expect(tl.skipped).toBe(49);
    tl.started(1510, 1511);
    expect(tl.lagMs).toBe(1);
    expect(tl.next()).toEqual({ index: 51, dueMs: 1520 });
    expect(tl.skipped).toBe(49);
  });

  it('ends with its plan', () => {
    const tl = new Timeline([5, 10][Symbol.iterator](), 0, 0);
    tl.started((tl.next() as { dueMs: number }).dueMs, 50);
    expect(tl.next()).toBeUndefined();
    expect(tl.skipped).toBe(1);
  });
});

describe('Paced', () => {
  it('resumes at its rate after a blocked event loop, counting what it skipped', async () => {
    const starts: number[] = [];
    const lags: number[] = [];
    const box: { p?: Paced } = {};
    const p = (box.p = new Paced(
      { ratePerS: 100, concurrency: 4, seed: 1, maxLagMs: 200 },
      async () => {
        starts.push(performance.now());
        lags.push(box.p?.stats.lagMs ?? 0);
      },
    ));
    await sleep(200);
    const before = starts.length;
    const resumed = block(1_000); // ~100 operations fall due meanwhile
    await sleep(300);
    const stats = await p.stop();
    // At 100/s about 5 start in 50 ms (plus the one re-anchored); the old driver started the
    // whole backlog (~100) at once.
    const burst = starts.filter((t) => t >= resumed && t < resumed + 50).length;
    expect(burst).toBeLessThanOrEqual(30);
    expect(stats.skipped).toBeGreaterThanOrEqual(50);
    expect(stats.skipped).toBeLessThanOrEqual(150);
    // The first operation after the stall says how late the driver was.
    expect(lags[before]).toBeGreaterThanOrEqual(500);
    expect(stats.started).toBe(starts.length);
  });

  it('catches up a stall shorter than maxLagMs without skipping', async () => {
    const p = new Paced(
      { ratePerS: 200, concurrency: 4, seed: 2, maxLagMs: 5_000 },
      async () => {},
    );
    await sleep(100);
    block(300);
    await sleep(200);
    const stats = await p.stop();
    expect(stats.skipped).toBe(0);
    // ~120 due over ~0.6 s: the stall's ~60 were started, not dropped.
    expect(stats.started).toBeGreaterThanOrEqual(60);
  });

  it('stops at once while it waits for its next arrival', async () => {
    // At 0.1/s the gaps are seconds long (the old driver slept out the rest of the gap).
    const p = new Paced({ ratePerS: 0.1, concurrency: 1, seed: 3 }, async () => {});
    await sleep(50);
    const from = performance.now();
    const stopped = await Promise.race([p.stop().then(() => 'stopped'), sleep(1_000)]);
    expect(stopped).toBe('stopped');
    expect(performance.now() - from).toBeLessThan(500);
    expect(p.stats.started).toBe(0);
  });

  it('refuses a negative maxLagMs', () => {
    expect(
      () => new Paced({ ratePerS: 1, concurrency: 1, seed: 1, maxLagMs: -1 }, async () => {}),
    ).toThrow(/maxLagMs/);
  });
});
