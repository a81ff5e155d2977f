// The simulator's event queue: earliest time first, ties in insertion order, across growth of its
// typed arrays and interleaved pushes and pops (the order a run replays from).
import { describe, expect, it } from 'vitest';
import { EventQueue } from '../envs/scheduler/heap.ts';
import { createRng } from '../envs/core/rng.ts';

describe('EventQueue', () => {
  it('pops by time, then insertion order, through growth and interleaving', () => {
    const rng = createRng(7);
    const q = new EventQueue<number>();
    // The reference: every pending (time, seq) pair, popped by a full sort.
    const pending: { t: number; s: number }[] = [];
    let seq = 0;
    const popped: number[] = [];
    const expected: number[] = [];
    for (let round = 0; round < 2000; round++) {
      const pushes = rng.int(4);
      for (let k = 0; k < pushes; k++) {
        // Few distinct times, so ties are common.
        const t = rng.int(50);
        pending.push({ t, s: seq });
        q.push(t, seq++);
      }
      if (rng.int(3) === 0) {
        pending.sort((a, b) => a.t - b.t || a.s - b.s);
        const head = pending.shift();
        if (head !== undefined) expected.push(head.s);
        const got = q.pop();
        if (got !== undefined) popped.push(got);
      }
    }
    pending.sort((a, b) => a.t - b.t || a.s - b.s);
    expect(q.size).toBe(pending.length);
    expect(pending.length).toBeGreaterThan(64); // the arrays grew past their first size
    while (q.size > 0) {
      expect(q.peekTime()).toBe(pending[0]?.t);
      expect(q.peek()).toBe(pending[0]?.s); // the head, left in place
      popped.push(q.pop() as number);
      expected.push((pending.shift() as { s: number }).s);
    }
    expect(popped).toEqual(expected);
    expect(q.pop()).toBeUndefined();
    expect(q.peekTime()).toBe(Infinity);
    expect(q.peek()).toBeUndefined();
  });

  it('refuses a NaN time and more events than its bound, and stays usable', () => {
    const q = new EventQueue<string>(2);
    expect(() => q.push(Number.NaN, 'x')).toThrow(/NaN time/);
    q.push(2, 'b');
    q.push(1, 'a');
    expect(() => q.push(3, 'c')).toThrow(/more than 2 events/);
    expect(q.size).toBe(2);
    expect([q.pop(), q.pop()]).toEqual(['a', 'b']);
  });
});
