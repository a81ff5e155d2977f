// A seeded random number generator (sfc32, seeded through splitmix32) with the draws the
// simulators need. Every source of randomness in envs/ and learners/ takes one of these, so a
// run replays exactly from its seed.

export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Integer uniform in [0, n). */
  int(n: number): number;
  uniform(lo: number, hi: number): number;
  normal(mean?: number, std?: number): number;
  exponential(rate: number): number;
  /** Pareto with scale xm and shape alpha (heavy-tailed slowdowns). */
  pareto(xm: number, alpha: number): number;
  /** Picks one element; the array must not be empty. */
  pick<T>(items: readonly T[]): T;
  shuffle<T>(items: T[]): T[];
  /** A child generator with its own stream, derived deterministically. */
  fork(): Rng;
  /** The seed this generator was made from. */
  readonly seed: number;
}

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

export function createRng(seed: number): Rng {
  const sm = splitmix32(seed);
  let a = sm();
  let b = sm();
  let c = sm();
  let d = sm();
  let spare: number | undefined;
  const next = (): number => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t / 4294967296;
  };
  for (let i = 0; i < 12; i++) next();
  const rng: Rng = {
    seed,
    next,
    int: (n) => Math.floor(next() * n),
    uniform: (lo, hi) => lo + (hi - lo) * next(),
    normal: (mean = 0, std = 1) => {
      if (spare !== undefined) {
        const s = spare;
        spare = undefined;
        return mean + std * s;
      }
      let u = 0;
      while (u === 0) u = next();
      const v = next();
      const r = Math.sqrt(-2 * Math.log(u));
      spare = r * Math.sin(2 * Math.PI * v);
      return mean + std * r * Math.cos(2 * Math.PI * v);
    },
    exponential: (rate) => -Math.log(1 - next()) / rate,
    pareto: (xm, alpha) => xm / Math.pow(1 - next(), 1 / alpha),
    pick: (items) => {
      if (items.length === 0) throw new Error('rng.pick: empty array');
      return items[Math.floor(next() * items.length)] as (typeof items)[number];
    },
    shuffle: (items) => {
      for (let i = items.length - 1; i > 0; i--) {
        const j = Math.floor(next() * (i + 1));
        [items[i], items[j]] = [
          items[j] as (typeof items)[number],
          items[i] as (typeof items)[number],
        ];
      }
      return items;
    },
    fork: () => createRng((next() * 4294967296) >>> 0),
  };
  return rng;
}

/**
 * The seed of the episode after one seeded `seed`: an env's reset() without a seed draws it
 * from the last episode's (Gymnasium: an unseeded reset continues the env's own stream), so
 * runs seeded differently do not share their later episodes. A plain number, kept by value
 * in an env's fields (a forked env continues its own stream).
 */
export function nextSeed(seed: number): number {
  return createRng(seed).int(2 ** 31);
}
