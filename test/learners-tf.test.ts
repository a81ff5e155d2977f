// The shared pieces of the deep learners: the backend loader, seeded networks, encodings,
// masks, buffers, GAE and the artifact envelope.
import { describe, expect, it } from 'vitest';
import { box, checkEnv, createRng, discrete, multiDiscrete } from '../envs/core/index.ts';
import { ReplayBuffer } from '../learners/buffers/replay.ts';
import { computeGae, minibatchIndices, minibatchesOfSize } from '../learners/buffers/rollout.ts';
import {
  ArtifactError,
  LearnerInputError,
  Mlp,
  TfBackendError,
  argmaxRows,
  checkArtifact,
  encodeBatch,
  loadTfBackend,
  maskFromInfo,
  maskScores,
  obsSize,
  parseBackendOverride,
  sampleCategorical,
  spaceFromJson,
  spaceToJson,
  tf,
} from '../learners/tf/index.ts';
import { ChainEnv, MaskedBanditEnv } from '../learners/tf/sanity-envs.ts';

describe('tf backend loader', () => {
  it('picks one backend, reports it, and answers the same on every call', async () => {
    const a = await loadTfBackend();
    const b = await loadTfBackend();
    expect(b).toBe(a);
    expect(['node', 'wasm', 'cpu']).toContain(a.name);
    expect(tf.getBackend()).toBe(a.engineName);
    // The optional native package is normally absent here; then wasm must have loaded.
    if (a.name !== 'node') expect(a.name).toBe(process.env['KNOBOS_TF_BACKEND'] || 'wasm');
  });

  it('reads KNOBOS_TF_BACKEND and rejects unknown values by name', () => {
    expect(parseBackendOverride(undefined)).toBeUndefined();
    expect(parseBackendOverride('')).toBeUndefined();
    expect(parseBackendOverride('cpu')).toBe('cpu');
    expect(() => parseBackendOverride('gpu')).toThrow(TfBackendError);
    expect(() => parseBackendOverride('gpu')).toThrow(
      /KNOBOS_TF_BACKEND must be one of node, wasm, cpu/,
    );
  });
});

describe('Mlp', () => {
  const spec = {
    inputSize: 3,
    hiddenSizes: [5],
    outputSize: 2,
    activation: 'tanh',
    outputGain: 1,
  } as const;

  it('is initialised identically from one seed and differently from another', async () => {
    await loadTfBackend();
    const [a, b, c] = [new Mlp(spec, 42), new Mlp(spec, 42), new Mlp(spec, 43)];
    expect(a.getWeights()).toEqual(b.getWeights());
    expect(a.getWeights().weights[0]).not.toEqual(c.getWeights().weights[0]);
    expect(a.getWeights().shapes).toEqual([[3, 5], [5], [5, 2], [2]]);
    [a, b, c].forEach((m) => m.dispose());
  });

  it('round-trips its weights through JSON exactly and refuses a wrong shape', async () => {
    await loadTfBackend();
    const a = new Mlp(spec, 1);
    const b = new Mlp(spec, 2);
    b.setWeights(JSON.parse(JSON.stringify(a.getWeights())));
    const x = tf.tensor2d([[0.1, -2, 3]]);
    expect(Array.from(b.apply(x).dataSync())).toEqual(Array.from(a.apply(x).dataSync()));
    const bad = a.getWeights();
    bad.shapes[0] = [5, 3];
    expect(() => b.setWeights(bad)).toThrow(ArtifactError);
    // A bad last tensor refuses the whole set: the earlier ones are not assigned either.
    const c = new Mlp(spec, 3);
    const lateBad = c.getWeights();
    lateBad.weights[3] = [1];
    expect(() => b.setWeights(lateBad)).toThrow(/weights\[3\]/);
    expect(b.getWeights()).toEqual(a.getWeights());
    [a, b, c].forEach((m) => m.dispose());
  });

  it('copyFrom makes an exact copy (the target-network sync)', async () => {
    await loadTfBackend();
    const a = new Mlp(spec, 1);
    const b = new Mlp(spec, 2);
    b.copyFrom(a);
    expect(b.getWeights()).toEqual(a.getWeights());
    [a, b].forEach((m) => m.dispose());
  });
});

describe('encoding', () => {
  it('one-hot encodes discrete parts and passes boxes through', () => {
    expect(obsSize(multiDiscrete([2, 3]))).toBe(5);
    expect(Array.from(encodeBatch(multiDiscrete([2, 3]), [[1, 2]]))).toEqual([0, 1, 0, 0, 1]);
    expect(Array.from(encodeBatch(discrete(3), [2, 0]))).toEqual([0, 0, 1, 1, 0, 0]);
    expect(Array.from(encodeBatch(box([2, 1]), [[[0.5], [-1]]]))).toEqual([0.5, -1]);
    expect(() => encodeBatch(discrete(3), [3])).toThrow(LearnerInputError);
    expect(() => encodeBatch(box([2]), [[1, 2, 3]])).toThrow(/2 numbers/);
  });

  it('checks action masks: length, type, at least one legal action', () => {
    expect(maskFromInfo({}, 3)).toBeUndefined();
    expect(maskFromInfo({ actionMask: [true, false, true] }, 3)).toEqual([true, false, true]);
    expect(() => maskFromInfo({ actionMask: [true] }, 3)).toThrow(/3 booleans/);
    expect(() => maskFromInfo({ actionMask: [false, false, false] }, 3)).toThrow(/no action/);
  });

  it('round-trips a box with infinite bounds through JSON', () => {
    const s = box([4]);
    expect(spaceFromJson(JSON.parse(JSON.stringify(spaceToJson(s))), 'x')).toEqual(s);
  });
});

describe('masked choice', () => {
  it('never picks a masked action, even when it scores highest', async () => {
    await loadTfBackend();
    const scores = tf.tensor2d([
      [9, 1, 2],
      [1, 9, 2],
    ]);
    const mask = tf.tensor2d([
      [0, 1, 1],
      [1, 0, 0],
    ]);
    const masked = maskScores(scores, mask, -Infinity).dataSync();
    expect(argmaxRows(masked, 2, 3)).toEqual([2, 0]);
  });

  it('samples a categorical by its probabilities and never a zero-probability entry', () => {
    const rng = createRng(3);
    const counts = [0, 0, 0];
    for (let i = 0; i < 4000; i++) counts[sampleCategorical([0.25, 0, 0.75], rng)]! += 1;
    expect(counts[1]).toBe(0);
    expect(counts[0]! / 4000).toBeCloseTo(0.25, 1);
  });
});

describe('buffers', () => {
  it('the replay buffer is bounded: it overwrites the oldest transition', () => {
    const buf = new ReplayBuffer(3, 1, 2);
    for (let i = 0; i < 5; i++) {
      const o = Float32Array.of(i);
      buf.add({
        obs: o,
        action: 0,
        reward: i,
        nextObs: o,
        terminated: false,
        nextMask: [true, i % 2 === 0],
      });
    }
    expect(buf.size).toBe(3);
    const b = buf.sample(200, createRng(1));
    expect(new Set(b.rewards)).toEqual(new Set([2, 3, 4]));
    // The mask of a sample matches its reward's parity.
    b.rewards.forEach((r, k) => expect(b.nextMasks[2 * k + 1]).toBe(r % 2 === 0 ? 1 : 0));
    expect(() => new ReplayBuffer(0, 1, 2)).toThrow(/capacity/);
  });

  it('GAE matches a hand computation, with no bootstrap across an episode end', () => {
    // gamma 0.5, lambda 0.5; steps: r = [1, 2, 3], V = [1, 1, 1], episode ends after step 1.
    // t=2: delta = 3 + 0.5*4 - 1 = 4 (lastValue 4);        A2 = 4
    // t=1: delta = 2 + 0 - 1 = 1 (end: no bootstrap);        A1 = 1
    // t=0: delta = 1 + 0.5*1 - 1 = 0.5;  A0 = 0.5 + 0.25*1 = 0.75
    const { advantages, returns } = computeGae(
      [1, 2, 3],
      [1, 1, 1],
      [false, true, false],
      4,
      0.5,
      0.5,
    );
    expect(Array.from(advantages)).toEqual([0.75, 1, 4]);
    expect(Array.from(returns)).toEqual([1.75, 2, 5]);
  });

  it('minibatches cover every row exactly once', () => {
    const parts = minibatchIndices(10, 3, createRng(2));
    expect(parts.length).toBe(3);
    expect(parts.flatMap((p) => Array.from(p)).sort((a, b) => a - b)).toEqual([
      ...Array(10).keys(),
    ]);
  });

  it('makes as many minibatches as asked, their sizes within one of each other', () => {
    // PPO accepts any numMinibatches <= nSteps: 6 rows in 4 made 3, 10 in 4 made [3, 3, 3, 1].
    for (const [size, count] of [
      [6, 4],
      [10, 4],
      [128, 4],
      [7, 7],
    ] as const) {
      const sizes = minibatchIndices(size, count, createRng(1)).map((p) => p.length);
      expect(sizes.length).toBe(count);
      expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(size);
    }
    expect(minibatchIndices(2, 4, createRng(1)).map((p) => p.length)).toEqual([1, 1]);
  });

  it('cuts minibatches of a set size, the last smaller, in the shuffled order', () => {
    // The scheduling learner's partition, as its committed training results were made.
    const parts = minibatchesOfSize(10, 3, createRng(2));
    expect(parts.map((p) => p.length)).toEqual([3, 3, 3, 1]);
    const order = createRng(2).shuffle([...Array(10).keys()]);
    expect(parts.flatMap((p) => Array.from(p))).toEqual(order);
  });
});

describe('artifact envelope', () => {
  it('rejects a wrong kind, version or weight list, naming the field', () => {
    const good = {
      kind: 'dqn',
      version: 1,
      config: {},
      spaces: { observation: { kind: 'discrete', n: 2 }, action: { kind: 'discrete', n: 2 } },
      shapes: [[1]],
      weights: [[0]],
      meta: {},
    };
    expect(checkArtifact(good, 'dqn', 1).kind).toBe('dqn');
    expect(() => checkArtifact({ ...good, kind: 'ppo' }, 'dqn', 1)).toThrow(/kind must be 'dqn'/);
    expect(() => checkArtifact({ ...good, version: 2 }, 'dqn', 1)).toThrow(/version must be 1/);
    expect(() => checkArtifact({ ...good, weights: [['x']] }, 'dqn', 1)).toThrow(ArtifactError);
    expect(() => checkArtifact(null, 'dqn', 1)).toThrow(/must be an object/);
  });
});

describe('sanity envs', () => {
  it('pass the env checker', () => {
    expect(checkEnv(() => new ChainEnv())).toBeGreaterThan(0);
    expect(checkEnv(() => new MaskedBanditEnv())).toBeGreaterThan(0);
    expect(MaskedBanditEnv.optimalReturn(4)).toBe(0.75);
  });
});
