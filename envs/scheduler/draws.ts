// Randomness by address instead of by sequence: the straggler and failure draws of attempt k of
// task i of stage s of job j are a hash of (seed, j, s, i, k, stream). The same task therefore
// straggles the same way under every policy and knob setting (common random numbers, which
// makes comparisons between configurations far less noisy), and the run still replays exactly
// from its seed.

function mix(h: number, x: number): number {
  h = Math.imul(h ^ x, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** Uniform in [0, 1), a pure function of its arguments (integers). */
export function drawUniform(
  seed: number,
  job: number,
  stage: number,
  task: number,
  attempt: number,
  stream: number,
): number {
  let h = mix(0x9e3779b9, seed);
  h = mix(h, job);
  h = mix(h, stage);
  h = mix(h, task);
  h = mix(h, attempt);
  h = mix(h, stream);
  h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
  h ^= h >>> 12;
  return (h >>> 0) / 4294967296;
}

export const STREAM_STRAGGLE = 1;
export const STREAM_SLOWDOWN = 2;
export const STREAM_FAIL = 3;
export const STREAM_FAIL_POINT = 4;
export const STREAM_FAULT_LENGTH = 5;
