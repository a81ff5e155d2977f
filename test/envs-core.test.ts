import { describe, expect, it } from 'vitest';
import {
  box,
  checkEnv,
  cloneGraph,
  contains,
  createRng,
  discrete,
  maskedDiscrete,
  multiDiscrete,
  sample,
  type Env,
} from '../envs/core/index.ts';

/** A tiny env: walk on a line to a goal; its best policy is known (always step right). */
class LineWalk implements Env<number[], number> {
  readonly id = 'line-walk-v0';
  readonly observationSpace = box([1], 0, 10);
  readonly actionSpace = discrete(2);
  private pos = 0;
  private t = 0;
  private rng = createRng(0);
  reset(opts: { seed?: number } = {}) {
    this.rng = createRng(opts.seed ?? 0);
    this.pos = this.rng.int(3);
    this.t = 0;
    return { obs: [this.pos], info: {} };
  }
  step(a: number) {
    this.pos = Math.max(0, Math.min(10, this.pos + (a === 1 ? 1 : -1)));
    this.t++;
    return {
      obs: [this.pos],
      reward: this.pos === 10 ? 1 : -0.01,
      terminated: this.pos === 10,
      truncated: this.t >= 50,
      info: {},
    };
  }
}

describe('rng', () => {
  it('replays from its seed and differs across seeds', () => {
    const a = createRng(42);
    const b = createRng(42);
    const c = createRng(43);
    const xa = Array.from({ length: 100 }, () => a.next());
    expect(Array.from({ length: 100 }, () => b.next())).toEqual(xa);
    expect(Array.from({ length: 100 }, () => c.next())).not.toEqual(xa);
  });

  it('draws uniform numbers with the right mean and range', () => {
    const r = createRng(1);
    const xs = Array.from({ length: 100_000 }, () => r.next());
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(xs.reduce((a, b) => a + b, 0) / xs.length).toBeCloseTo(0.5, 2);
  });

  it('draws normals with the right moments', () => {
    const r = createRng(2);
    const xs = Array.from({ length: 50_000 }, () => r.normal(3, 2));
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length);
    expect(mean).toBeCloseTo(3, 1);
    expect(sd).toBeCloseTo(2, 1);
  });
});

describe('spaces', () => {
  it('checks membership', () => {
    expect(contains(box([2], 0, 1), [0.5, 1])).toBe(true);
    expect(contains(box([2], 0, 1), [0.5, 1.5])).toBe(false);
    expect(contains(box([2], 0, 1), [0.5])).toBe(false);
    expect(contains(discrete(3), 2)).toBe(true);
    expect(contains(discrete(3), 3)).toBe(false);
    expect(contains(multiDiscrete([2, 3]), [1, 2])).toBe(true);
    expect(contains(multiDiscrete([2, 3]), [2, 2])).toBe(false);
    expect(contains(maskedDiscrete(3), 1, [true, false, true])).toBe(false);
    expect(contains(maskedDiscrete(3), 2, [true, false, true])).toBe(true);
  });

  it('samples inside a box bounded on one side, or on none', () => {
    const r = createRng(4);
    for (const space of [box([50], 5), box([50], -Infinity, -5), box([50]), box([50], -2, 3)]) {
      const x = sample(space, r) as number[];
      expect(contains(space, x)).toBe(true);
      // Spread, not one value: an exponential step off the bound, or a normal.
      expect(new Set(x).size).toBe(50);
    }
  });

  it('samples only legal actions under a mask', () => {
    const r = createRng(3);
    for (let i = 0; i < 200; i++)
      expect(sample(maskedDiscrete(4), r, [false, true, false, true])).toSatisfy(
        (a: number) => a === 1 || a === 3,
      );
  });
});

describe('checkEnv', () => {
  it('passes a deterministic env', () => {
    expect(checkEnv(() => new LineWalk())).toBeGreaterThan(0);
  });

  it('catches an env that ignores its seed', () => {
    let calls = 0;
    class Unseeded extends LineWalk {
      override reset() {
        calls++;
        return { obs: [calls % 3], info: {} };
      }
    }
    expect(() => checkEnv(() => new Unseeded())).toThrow(/trajectories|replay/);
  });

  it('catches NaN rewards and observations outside the space', () => {
    class NaNReward extends LineWalk {
      override step(a: number) {
        return { ...super.step(a), reward: Number.NaN };
      }
    }
    expect(() => checkEnv(() => new NaNReward())).toThrow(/reward/);
    class OutOfSpace extends LineWalk {
      override step(a: number) {
        return { ...super.step(a), obs: [11] };
      }
    }
    expect(() => checkEnv(() => new OutOfSpace())).toThrow(/observationSpace/);
  });
});

describe('checkEnv: the reset and the last observation', () => {
  /** Three steps; the last observation and the reset one as the test makes them. */
  const env = (id: string, last: number, first: () => number): Env<number[], number> => {
    let t = 0;
    return {
      id,
      observationSpace: box([1], 0, 1),
      actionSpace: discrete(2),
      reset: () => {
        t = 0;
        return { obs: [first()], info: {} };
      },
      step: () => {
        t++;
        const done = t >= 3;
        return {
          obs: [done ? last : 0.5],
          reward: 0,
          terminated: done,
          truncated: false,
          info: {},
        };
      },
    };
  };

  it('checks the observation the episode ends with (it passed NaN)', () => {
    expect(() => checkEnv(() => env('bad-last-v0', Number.NaN, () => 0))).toThrow(
      /observation at step 3 is outside observationSpace/,
    );
    expect(() => checkEnv(() => env('out-last-v0', 2, () => 0))).toThrow(/observation at step 3/);
    expect(checkEnv(() => env('good-v0', 1, () => 0))).toBe(6);
  });

  it('compares the reset observation of two runs with one seed', () => {
    let resets = 0;
    expect(() => checkEnv(() => env('reset-v0', 1, () => (++resets % 7) / 7))).toThrow(
      /different trajectories \(first difference at reset\)/,
    );
  });
});

describe('cloneGraph', () => {
  class Node {
    next: Node | null = null;
    constructor(public value: number) {}
    double(): number {
      return this.value * 2;
    }
  }

  it('keeps classes, shared references, cycles and non-enumerable properties', () => {
    const a = new Node(1);
    const b = new Node(2);
    a.next = b;
    b.next = a; // a cycle
    const hidden = {};
    Object.defineProperty(hidden, 'owner', { value: a, enumerable: false });
    const root = {
      a,
      again: a,
      hidden,
      map: new Map([[a, b]]),
      set: new Set([b]),
      times: Float64Array.from([1, 2]),
      frozen: Object.freeze([3]),
    };
    const c = cloneGraph(root);
    expect(c.a).not.toBe(a);
    expect(c.a).toBeInstanceOf(Node);
    expect(c.a.double()).toBe(2);
    expect(c.again).toBe(c.a);
    expect(c.a.next?.next).toBe(c.a);
    const owner = Object.getOwnPropertyDescriptor(c.hidden, 'owner');
    expect(owner?.value).toBe(c.a);
    expect(owner?.enumerable).toBe(false);
    expect([...c.map]).toEqual([[c.a, c.a.next]]);
    expect([...c.set][0]).toBe(c.a.next);
    expect(c.frozen).toBe(root.frozen); // immutable: shared
    // The copy is independent.
    c.a.value = 10;
    (c.times as Float64Array)[0] = 9;
    expect(a.value).toBe(1);
    expect(root.times[0]).toBe(1);
  });

  it('copies a frozen Map, Set or Date: freezing leaves their contents mutable', () => {
    const root = {
      m: Object.freeze(new Map([['k', 1]])),
      s: Object.freeze(new Set([1])),
      d: Object.freeze(new Date(1000)),
      inner: Object.freeze({ m: Object.freeze(new Map([['k', 1]])) }),
    };
    const c = cloneGraph(root);
    c.m.set('k', 2);
    c.s.add(2);
    c.d.setTime(5000);
    c.inner.m.set('k', 3);
    expect([root.m.get('k'), root.s.size, root.d.getTime(), root.inner.m.get('k')]).toEqual([
      1, 1, 1000, 1,
    ]);
    expect([c.m.get('k'), c.s.size, c.d.getTime(), c.inner.m.get('k')]).toEqual([2, 2, 5000, 3]);
  });

  it('copies a long chain without overflowing the stack', () => {
    const head = new Node(0);
    let tail = head;
    for (let i = 1; i < 200_000; i++) tail = tail.next = new Node(i);
    let n = cloneGraph(head) as Node | null;
    let count = 0;
    while (n) [n, count] = [n.next, count + 1];
    expect(count).toBe(200_000);
  });

  it('copies a shallowly frozen object, keeps own __proto__ keys, and shadows no setter', () => {
    const inner = { n: 1 };
    const root = { f: Object.freeze({ inner }) };
    const c = cloneGraph(root);
    c.f.inner.n = 5;
    expect(inner.n).toBe(1);
    const parsed = JSON.parse('{"__proto__": {"x": 1}, "a": 2}') as Record<string, unknown>;
    const p = cloneGraph(parsed);
    expect(Object.keys(p)).toEqual(['__proto__', 'a']);
    expect(Object.getPrototypeOf(p)).toBe(Object.prototype);
    class WithSetter {
      set v(_x: number) {
        throw new Error('setter ran');
      }
    }
    const w = new WithSetter();
    Object.defineProperty(w, 'v', {
      value: 3,
      writable: true,
      enumerable: true,
      configurable: true,
    });
    expect(cloneGraph(w).v).toBe(3);
  });

  it('refuses what it cannot copy faithfully', () => {
    expect(() => cloneGraph({ v: new DataView(new ArrayBuffer(4)) })).toThrow(/DataView/);
    expect(() => cloneGraph({ [Symbol('s')]: 1 })).toThrow(/symbol/);
    expect(() => cloneGraph({ r: /x/g })).toThrow(/RegExp/);
    expect(() => cloneGraph({ w: new WeakMap() })).toThrow(/WeakMap/);
    expect(() => cloneGraph({ b: new ArrayBuffer(8) })).toThrow(/ArrayBuffer/);
    const buf = new Float64Array(4);
    expect(() => cloneGraph({ part: buf.subarray(1) })).toThrow(/part of a buffer/);
    class Bag extends Map<string, number> {}
    expect(() => cloneGraph({ m: new Bag() })).toThrow(/subclass of Bag/);
    const tagged = Object.assign(new Map(), { label: 'x' });
    expect(() => cloneGraph({ tagged })).toThrow(/own properties/);
  });
});
