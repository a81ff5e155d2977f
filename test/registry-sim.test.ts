// The registry's simulation side without Redis: evaluation against the live policy and the
// heuristics, shadow divergence, the verdict rule, the spec's bounds, and the evaluator's
// worker thread (same numbers as inline, typed errors across the thread, a bounded queue).
import { afterAll, describe, expect, it } from 'vitest';
import {
  checkArtifact,
  checkEvalSpec,
  EvaluationFailedError,
  Evaluator,
  judge,
  RegistryBusyError,
  RegistryInputError,
  RegistryUnsupportedError,
  schedulingPolicyOf,
  SchedulingSims,
  VERDICT_MARGIN,
  type SimReport,
} from '../controlplane/registry/index.ts';
import { fromWire, toWire } from '../controlplane/registry/jobs.ts';
import { linearScorerArtifact, tinyTpchTrace } from './helpers/registry-fixtures.ts';

const trace = tinyTpchTrace();
afterAll(() => trace.remove());

const SPEC = checkEvalSpec({ seeds: [1, 2], jobs: 20, workers: 4 });
const SRPT = { name: 'scheduler@1', artifact: { heuristic: 'srpt' } };
const FIFO = { name: 'live:fifo', artifact: { heuristic: 'fifo' } };
/** A learned kind this build has no factory for. */
const UNKNOWN_LEARNED = { kind: 'policy.other', version: 1, config: {}, state: { w: [1] } };

describe('evaluation spec', () => {
  it('defaults to the experiments’ TPC-H setting and checks every bound', () => {
    expect(checkEvalSpec()).toMatchObject({ seeds: [1, 2, 3], jobs: 60, workers: 25, load: 0.85 });
    const refuse = (p: object, field: string, rule: string) => {
      const err = (() => {
        try {
          checkEvalSpec(p);
        } catch (e) {
          return e;
        }
      })();
      expect(err, field).toBeInstanceOf(RegistryInputError);
      expect((err as RegistryInputError).details).toMatchObject({ field, rule });
    };
    refuse({ seeds: [] }, 'seeds', 'count');
    refuse({ seeds: [1, 2, 3, 4, 5, 6] }, 'seeds', 'count');
    refuse({ seeds: [1, 1] }, 'seeds', 'unique');
    refuse({ seeds: [0] }, 'seeds[0]', 'range');
    refuse({ jobs: 1 }, 'jobs', 'range');
    refuse({ load: 1.5 }, 'load', 'range');
    refuse({ workers: 2.5 }, 'workers', 'type');
    refuse({ heuristics: ['lru'] }, 'heuristics[0]', 'enum');
  });
});

describe('verdicts', () => {
  it('calls better only past the margin with half the seeds, worse past the margin', () => {
    const m = VERDICT_MARGIN;
    expect(judge(100 * (1 - 2 * m), 100, 2, 3, 'live').verdict).toBe('better');
    expect(judge(100 * (1 - 2 * m), 100, 1, 3, 'live').verdict).toBe('comparable');
    expect(judge(100 * (1 - m / 2), 100, 3, 3, 'live').verdict).toBe('comparable');
    expect(judge(100 * (1 + 2 * m), 100, 0, 3, 'live').verdict).toBe('worse');
  });
});

describe('simulation on a TPC-H trace', () => {
  const sims = new SchedulingSims(trace);

  it('scores the candidate, the live policy and the heuristics on the same workloads', () => {
    const r = sims.evaluate(SRPT, FIFO, SPEC);
    const base = (n: string) => r.baselines.find((b) => b.name === n);
    expect(r.baselines.map((b) => b.name)).toEqual(SPEC.heuristics);
    // The same policy on the same seeds gives the same runs, whatever it is called.
    expect(r.candidate.perSeed).toEqual(base('srpt')?.perSeed);
    expect(r.incumbent.perSeed).toEqual(base('fifo')?.perSeed);
    const all = [r.candidate, r.incumbent, ...r.baselines];
    expect(r.rank).toBe(1 + all.filter((s) => s.mean < r.candidate.mean).length);
    expect(r.best.mean).toBe(Math.min(...all.map((s) => s.mean)));
    expect(r.improvementVsIncumbent).toBeCloseTo(
      (r.incumbent.mean - r.candidate.mean) / r.incumbent.mean,
      12,
    );
    expect(r.verdict).toBe(
      judge(r.candidate.mean, r.incumbent.mean, r.winsVsIncumbent, 2, 'live:fifo').verdict,
    );
    expect(r.workload).toMatchObject({ trace: 'tpch', jobs: 20, workers: 4, load: 0.85 });
  });

  it('shadows a candidate beside the live policy: its decisions compared, never acting', () => {
    const same = sims.shadow({ name: 'c', artifact: { heuristic: 'fifo' } }, FIFO, SPEC);
    expect(same.decisions).toBeGreaterThan(0);
    expect(same).toMatchObject({ divergentDecisions: 0, divergenceRate: 0, taskAgreement: 1 });
    expect(same.predicted.improvement).toBe(0);
    expect(same.verdict).toBe('comparable');

    const other = sims.shadow(SRPT, FIFO, SPEC);
    expect(other.divergentDecisions).toBeGreaterThan(0);
    expect(other.divergenceRate).toBeLessThanOrEqual(1);
    expect(other.taskAgreement).toBeLessThan(1);
    // The live policy acted in the shadow runs: their outcome is fifo's own.
    const evaluated = sims.evaluate(SRPT, FIFO, SPEC);
    expect(other.predicted.incumbentMean).toBeCloseTo(evaluated.incumbent.mean, 12);
    expect(other.predicted.candidateMean).toBeCloseTo(evaluated.candidate.mean, 12);
  });

  it("runs a learned task scorer through the learners' factory, like the heuristic it learned", () => {
    // Scoring by least remaining job work is SRPT's ranking: the same schedule, the same runs.
    const { artifact } = checkArtifact('scheduling', linearScorerArtifact());
    const r = sims.evaluate({ name: 'scheduler@9', artifact }, FIFO, SPEC);
    expect(r.candidate.name).toBe('scheduler@9');
    expect(r.candidate.perSeed).toEqual(r.baselines.find((b) => b.name === 'srpt')?.perSeed);
    const s = sims.shadow(
      { name: 'scheduler@9', artifact },
      { name: 'srpt', artifact: { heuristic: 'srpt' } },
      SPEC,
    );
    expect(s.decisions).toBeGreaterThan(0);
    expect(s.predicted.improvement).toBe(0);
  });

  it('refuses to run a learned kind it has no factory for, as unsupported', () => {
    const { artifact } = checkArtifact('scheduling', UNKNOWN_LEARNED);
    expect(() => schedulingPolicyOf(artifact)).toThrow(RegistryUnsupportedError);
    expect(() => sims.evaluate({ name: 'l', artifact }, FIFO, SPEC)).toThrow(
      RegistryUnsupportedError,
    );
  });
});

describe('evaluator', () => {
  it('gives the same report from its worker thread as inline, and typed errors across it', async () => {
    const thread = new Evaluator({ trace });
    const inline = new Evaluator({ trace, mode: 'inline' });
    try {
      const job = { type: 'evaluate' as const, candidate: SRPT, incumbent: FIFO, spec: SPEC };
      const [a, b] = (await Promise.all([thread.run(job), inline.run(job)])) as SimReport[];
      expect(a?.candidate).toEqual(b?.candidate);
      expect(a?.baselines).toEqual(b?.baselines);
      const learned = checkArtifact('scheduling', UNKNOWN_LEARNED).artifact;
      const err = await thread
        .run({ ...job, candidate: { name: 'l', artifact: learned } })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RegistryUnsupportedError);
      expect((err as RegistryUnsupportedError).details).toMatchObject({ rule: 'runnable' });
    } finally {
      await thread.close();
      await inline.close();
    }
  });

  it('runs the job queued behind one that timed out on a new thread, untouched by the old one exiting', async () => {
    const e = new Evaluator({ trace, timeoutMs: 120_000 });
    const small = { type: 'evaluate' as const, candidate: SRPT, incumbent: FIFO, spec: SPEC };
    const big = {
      ...small,
      spec: checkEvalSpec({ seeds: [1, 2, 3, 4, 5], jobs: 200, workers: 1, load: 0.99 }),
    };
    try {
      await e.run(small); // the thread is up: the limit below times the job, not the boot
      const opts = (e as unknown as { opts: { timeoutMs: number } }).opts;
      // Far below what the largest evaluation takes (at 100 ms it finished in time, now and
      // then, on a fast VM).
      opts.timeoutMs = 5;
      // The limit goes back up before the next job starts: it must finish, on a new thread.
      const timedOut = e.run(big).catch((err: unknown) => {
        opts.timeoutMs = 120_000;
        return err;
      });
      const next = e.run(small);
      const err = await timedOut;
      // A typed 503 naming the limit (before, a plain Error: the API answered 500 internal).
      expect(err).toBeInstanceOf(EvaluationFailedError);
      expect(err).toMatchObject({ status: 503, details: { rule: 'time_limit', limitMs: 5 } });
      expect(String(err)).toMatch(/exceeded its time limit of 5 ms/);
      // The old thread exits while the next job runs on its successor; before, that exit
      // failed every pending job ('simulation thread exited with code 1').
      await expect(next).resolves.toMatchObject({ kind: 'scheduling-sim' });
    } finally {
      await e.close();
    }
  });

  it('starts no job queued before close(), and no thread for it', async () => {
    const e = new Evaluator({ trace });
    const job = { type: 'evaluate' as const, candidate: SRPT, incumbent: FIFO, spec: SPEC };
    const first = e.run(job);
    const queued = e.run(job).catch((err: unknown) => err);
    await first;
    await e.close();
    // Before, the queued job started a new thread after close() and ran to its end.
    expect(await queued).toBeInstanceOf(EvaluationFailedError);
    expect((e as unknown as { worker: unknown }).worker).toBeUndefined();
  });

  it('bounds its queue: past it a job is refused as busy', async () => {
    const e = new Evaluator({ trace, mode: 'inline', queueMax: 0 });
    const job = { type: 'evaluate' as const, candidate: SRPT, incumbent: FIFO, spec: SPEC };
    const [first, second] = await Promise.allSettled([e.run(job), e.run(job)]);
    expect(first.status).toBe('fulfilled');
    expect(second.status === 'rejected' && second.reason).toBeInstanceOf(RegistryBusyError);
    await expect(e.run(job)).resolves.toMatchObject({ kind: 'scheduling-sim' });
  });

  it('carries typed errors over the wire and untyped ones as plain errors', () => {
    const typed = fromWire(toWire(new RegistryInputError('jobs bad', 'jobs', 'range')));
    expect(typed).toBeInstanceOf(RegistryInputError);
    expect((typed as RegistryInputError).details).toMatchObject({ field: 'jobs', rule: 'range' });
    const plain = fromWire(toWire(new TypeError('boom')));
    expect(plain).not.toBeInstanceOf(RegistryInputError);
    expect(plain.message).toContain('boom');
  });
});
