// The batching simulator given the same knobs again at every window boundary (as the
// messaging-v1 env does) runs as one whole run: a batch whose linger deadline falls exactly on
// a boundary stays open for a message arriving at that instant (it was sealed early).
import { describe, expect, it } from 'vitest';
import { createRng } from '../envs/core/index.ts';
import { BatchingSim, type CostModel, type Messages } from '../envs/messaging/index.ts';

const HAND: CostModel = { batchOverheadMs: 1, perMessageMs: 0.5, perKTokenMs: 0 };
const msgs = (t: number[]): Messages => ({
  tMs: Float64Array.from(t),
  tokens: new Float64Array(t.length),
});

describe('the batching simulator with unchanged knobs set at each window', () => {
  it('equals the whole run (worked out by hand)', () => {
    const knobs = { batchSize: 2, lingerMs: 10 };
    // Whole run: {0, 10} sealed at 10 (full: 10 joins, its deadline 10 is not before it), runs
    // 10..12: latencies 12 and 2; {15} sealed at 25 (linger), runs 25..26.5: 11.5.
    const whole = new BatchingSim(msgs([0, 10, 15]), HAND, 1, knobs, createRng(1));
    const all = whole.advance(Infinity).latenciesMs;
    expect(all).toEqual([12, 2, 11.5]);
    const win = new BatchingSim(msgs([0, 10, 15]), HAND, 1, knobs, createRng(1));
    const lat: number[] = [];
    for (let now = 0; now < 50; now += 10) {
      win.setKnobs(knobs, now);
      lat.push(...win.advance(now + 10).latenciesMs);
    }
    lat.push(...win.advance(Infinity).latenciesMs);
    expect(lat).toEqual(all);
  });
});
