// Decisions among candidates, as the scorer learners record them: each decision is a few
// feature rows (one per legal candidate), the candidate taken and its probability then. An
// episode of the scheduler has tens of thousands of decisions, so a rollout keeps a uniform
// sample of bounded size (reservoir sampling) and packs it into padded tensors for the update.
import type { Rng } from '../../envs/core/index.ts';

export interface Decision {
  /** [count, rowSize] flat. */
  rows: Float32Array;
  count: number;
  action: number;
  /** log pi_old(action) when it was taken (0 for a teacher's label). */
  logProb: number;
  /** A teacher's acceptable candidates (1 = any of its tied first choices); else just `action`. */
  targets?: Uint8Array;
  /** The decision's step in its episode (to find its return afterwards). */
  step: number;
}

/** A uniform sample of at most `capacity` of the decisions offered (Vitter's algorithm R). */
export class DecisionReservoir {
  readonly kept: Decision[] = [];
  private seen = 0;

  constructor(
    readonly capacity: number,
    private readonly rng: Rng,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`reservoir capacity must be an integer >= 1, got ${capacity}`);
    }
  }

  /** Whether the next offered decision will be kept: ask first, so rows are copied only then. */
  admit(): number {
    this.seen++;
    if (this.kept.length < this.capacity) return this.kept.length;
    const j = this.rng.int(this.seen);
    return j < this.capacity ? j : -1;
  }

  put(slot: number, d: Decision): void {
    this.kept[slot] = d;
  }
}

/**
 * Decisions packed for batched passes. Candidate rows are stored ragged (decision i owns rows
 * rowStart[i] .. rowStart[i + 1]), so a forward pass scores only real candidates; the logits
 * are then laid out [size, width] with padding masked (see `minibatchRows`).
 */
export interface PackedDecisions {
  size: number;
  /** The most candidates of any decision. */
  width: number;
  rowSize: number;
  /** [rowStart[size], rowSize] flat. */
  features: Float32Array;
  rowStart: Int32Array;
  /** [size, width] 1 = legal candidate. */
  masks: Uint8Array;
  actions: Int32Array;
  logProbs: Float32Array;
  /** [size, width] 1 = an acceptable choice (the teacher's ties, or the action alone). */
  targets: Uint8Array;
}

export function packDecisions(ds: readonly Decision[], rowSize: number): PackedDecisions {
  const n = ds.length;
  const width = ds.reduce((w, d) => Math.max(w, d.count), 1);
  const rowStart = new Int32Array(n + 1);
  ds.forEach((d, i) => {
    if (d.count < 1 || d.action < 0 || d.action >= d.count) {
      throw new RangeError(`decision ${i}: ${d.count} candidates, action ${d.action}`);
    }
    rowStart[i + 1] = (rowStart[i] as number) + d.count;
  });
  const features = new Float32Array((rowStart[n] as number) * rowSize);
  const masks = new Uint8Array(n * width);
  const targets = new Uint8Array(n * width);
  ds.forEach((d, i) => {
    features.set(d.rows.subarray(0, d.count * rowSize), (rowStart[i] as number) * rowSize);
    masks.fill(1, i * width, i * width + d.count);
    if (d.targets) targets.set(d.targets.subarray(0, d.count), i * width);
    else targets[i * width + d.action] = 1;
  });
  return {
    size: n,
    width,
    rowSize,
    features,
    rowStart,
    masks,
    actions: Int32Array.from(ds, (d) => d.action),
    logProbs: Float32Array.from(ds, (d) => d.logProb),
    targets,
  };
}

/**
 * The candidate rows of decisions `idx`, followed by one zero row, and for each [decision, slot]
 * the index of its row (the zero row for padding): a gather of the scores by `slots` gives the
 * [idx.length, width] logits.
 */
export function minibatchRows(
  p: PackedDecisions,
  idx: Int32Array,
): { rows: Float32Array; count: number; slots: Int32Array } {
  let count = 0;
  for (const i of idx) count += (p.rowStart[i + 1] as number) - (p.rowStart[i] as number);
  const rows = new Float32Array((count + 1) * p.rowSize);
  const slots = new Int32Array(idx.length * p.width).fill(count);
  let at = 0;
  idx.forEach((i, k) => {
    const [from, to] = [p.rowStart[i] as number, p.rowStart[i + 1] as number];
    rows.set(p.features.subarray(from * p.rowSize, to * p.rowSize), at * p.rowSize);
    for (let j = 0; j < to - from; j++) slots[k * p.width + j] = at + j;
    at += to - from;
  });
  return { rows, count: count + 1, slots };
}

/** Softmax sampling over scores: returns the choice and its log-probability. */
export function sampleSoftmax(
  scores: ArrayLike<number>,
  count: number,
  rng: Rng,
): { action: number; logProb: number } {
  let max = -Infinity;
  for (let i = 0; i < count; i++) max = Math.max(max, scores[i] as number);
  let total = 0;
  for (let i = 0; i < count; i++) total += Math.exp((scores[i] as number) - max);
  const u = rng.next() * total;
  let acc = 0;
  let action = count - 1;
  for (let i = 0; i < count; i++) {
    acc += Math.exp((scores[i] as number) - max);
    if (u < acc) {
      action = i;
      break;
    }
  }
  return { action, logProb: (scores[action] as number) - max - Math.log(total) };
}

/** Index of the highest score; ties go to the lowest index. */
export function argmaxScore(scores: ArrayLike<number>, count: number): number {
  let best = 0;
  for (let i = 1; i < count; i++) if ((scores[i] as number) > (scores[best] as number)) best = i;
  return best;
}
