// A benchmark's development run (a size or setting changed through its environment) writes
// its result file to the temp directory, never over the headline file the README quotes.
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { benchResultPath } from '../experiments/report.ts';

describe('benchResultPath', () => {
  afterEach(() => vi.unstubAllEnvs());
  const headline = join('bench', 'results', 'sim.json');

  it('is the headline file when no development setting is set', () => {
    vi.stubEnv('BENCH_SIM_JOBS', undefined);
    expect(benchResultPath(headline, ['BENCH_SIM_JOBS'])).toBe(headline);
  });

  it('is a file in the temp directory when one is set', () => {
    vi.stubEnv('BENCH_SIM_JOBS', '50');
    expect(benchResultPath(headline, ['BENCH_SIM_MIN_MS', 'BENCH_SIM_JOBS'])).toBe(
      join(tmpdir(), 'dev-sim.json'),
    );
  });
});
