// The env checker every env passes in the tests (after Gymnasium's check_env): the same seed
// gives the same trajectory, observations and actions stay in their spaces, nothing is NaN,
// and a terminated or truncated episode can be reset.
import { createRng } from './rng.ts';
import { contains, flatten, sample } from './spaces.ts';
import type { Env, Info } from './env.ts';

export interface CheckOptions {
  seed?: number;
  /** Bound on steps per episode checked. */
  maxSteps?: number;
  episodes?: number;
}

function maskOf(info: Info): boolean[] | undefined {
  const m = info['actionMask'];
  return Array.isArray(m) ? (m as boolean[]) : undefined;
}

function assertFinite(what: string, x: unknown): void {
  const flat = flatten(x);
  if (flat === null) throw new Error(`${what} is not numeric`);
  const bad = flat.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new Error(`${what}[${bad}] is ${flat[bad]}`);
}

function rollout(env: Env, seed: number, maxSteps: number): string[] {
  const rng = createRng(seed ^ 0x5eed);
  let { obs, info } = env.reset({ seed });
  // The reset observation is part of the trajectory too (two resets with one seed that start
  // differently are not the same episode).
  const trace: string[] = [JSON.stringify(flatten(obs))];
  const check = (t: number, o: unknown): void => {
    if (!contains(env.observationSpace, o)) {
      throw new Error(`${env.id}: observation at step ${t} is outside observationSpace`);
    }
    assertFinite(`${env.id}: observation at step ${t}`, o);
  };
  for (let t = 0; t <= maxSteps; t++) {
    check(t, obs);
    if (t === maxSteps) break;
    const mask = maskOf(info);
    if (mask && !mask.some(Boolean))
      throw new Error(`${env.id}: action mask at step ${t} allows nothing`);
    const action = sample(env.actionSpace, rng, mask);
    const r = env.step(action);
    if (!Number.isFinite(r.reward))
      throw new Error(`${env.id}: reward at step ${t} is ${r.reward}`);
    if (typeof r.terminated !== 'boolean' || typeof r.truncated !== 'boolean') {
      throw new Error(`${env.id}: terminated and truncated must be booleans`);
    }
    trace.push(JSON.stringify([action, flatten(r.obs), r.reward, r.terminated, r.truncated]));
    obs = r.obs;
    info = r.info;
    // The last observation is checked too (JSON in the trace turns NaN into null).
    if (r.terminated || r.truncated) {
      check(t + 1, obs);
      break;
    }
  }
  return trace;
}

/** Throws with a message naming the env and the broken rule; returns the steps checked. */
export function checkEnv(makeEnv: () => Env, opts: CheckOptions = {}): number {
  const seed = opts.seed ?? 7;
  const maxSteps = opts.maxSteps ?? 500;
  const env = makeEnv();
  let steps = 0;
  for (let e = 0; e < (opts.episodes ?? 2); e++) {
    const a = rollout(env, seed + e, maxSteps);
    const b = rollout(makeEnv(), seed + e, maxSteps);
    if (a.length !== b.length || a.some((s, i) => s !== b[i])) {
      const at = a.findIndex((s, i) => s !== b[i]);
      throw new Error(
        `${env.id}: seed ${seed + e} gave two different trajectories (first difference ${at === 0 ? 'at reset' : `at step ${at - 1}`})`,
      );
    }
    // The same env object, reset again with the same seed, replays too.
    const c = rollout(env, seed + e, maxSteps);
    if (c.length !== a.length || c.some((s, i) => s !== a[i])) {
      throw new Error(
        `${env.id}: reset({seed: ${seed + e}}) on a used env did not replay the trajectory`,
      );
    }
    if (a.length === 1) throw new Error(`${env.id}: episode ended before its first step`);
    steps += a.length - 1;
  }
  env.close?.();
  return steps;
}
