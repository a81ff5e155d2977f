// learners/scheduling/headroom.ts, run as a user runs it: one JSON object as the last stdout
// line, result files written, no entry below the lower bound, SRPT its own reference.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'knobos-headroom-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Entry {
  name: string;
  mean: number;
  values: number[];
  vsSrpt: { mean: number; wins: number };
  vsReference?: { mean: number; stdErr: number; wins: number };
}

describe('learned scheduler headroom script', () => {
  it('reports every policy against SRPT and the bound, as JSON and markdown', async () => {
    const { stdout } = await run(
      process.execPath,
      [
        '--import',
        'tsx',
        'learners/scheduling/headroom.ts',
        '--eval-seeds',
        '1',
        '--json',
        '--results',
        dir,
      ],
      { maxBuffer: 16 << 20 },
    );
    const result = JSON.parse(stdout.trimEnd().split('\n').pop()!) as {
      seeds: number[];
      lowerBound: { mean: number };
      srptAboveBound: { mean: number };
      entries: Entry[];
    };
    expect(result.seeds).toEqual([1]);
    const names = result.entries.map((e) => e.name);
    expect(names).toEqual(expect.arrayContaining(['srpt', 'fifo', 'learned (committed)']));
    expect(names.filter((n) => n.startsWith('srpt, '))).toHaveLength(5);
    for (const e of result.entries) expect(e.mean, e.name).toBeGreaterThan(result.lowerBound.mean);
    const srpt = result.entries.find((e) => e.name === 'srpt')!;
    expect(srpt.vsSrpt).toMatchObject({ mean: 0, wins: 0 });
    expect(result.srptAboveBound.mean).toBeCloseTo(srpt.mean / result.lowerBound.mean - 1, 9);
    expect(existsSync(join(dir, 'result.json'))).toBe(true);
    expect(readFileSync(join(dir, 'result.md'), 'utf8')).toMatch(/\| srpt, shortest task first \|/);
  }, 120_000);

  it("in the moving world, a move-aware SRPT beats SRPT: moves cost what Decima's world says", async () => {
    const out = join(dir, 'moving');
    const { stdout } = await run(
      process.execPath,
      [
        '--import',
        'tsx',
        'learners/scheduling/headroom.ts',
        '--world',
        'moving',
        '--eval-seeds',
        '1',
        '--json',
        '--results',
        out,
      ],
      { maxBuffer: 16 << 20 },
    );
    const result = JSON.parse(stdout.trimEnd().split('\n').pop()!) as {
      world: string;
      lowerBound: { mean: number };
      entries: Entry[];
    };
    expect(result.world).toBe('moving');
    const byName = new Map(result.entries.map((e) => [e.name, e]));
    const srpt = byName.get('srpt')!;
    // Measured on workload 1: 154.0 s against SRPT's 217.0 s.
    expect(byName.get('srpt, jobs a free worker is on first')!.mean).toBeLessThan(0.9 * srpt.mean);
    const warm = byName.get('srpt, jobs a free worker is on first')!;
    const learned = byName.get('learned (committed, trained in this world)')!;
    // Each entry against the one-liner, per seed: the difference of their values.
    expect(learned.vsReference!.mean).toBeCloseTo(learned.values[0]! - warm.values[0]!, 9);
    expect(warm.vsReference).toEqual({ mean: 0, stdErr: 0, wins: 0 });
    for (const e of result.entries) expect(e.mean, e.name).toBeGreaterThan(result.lowerBound.mean);
    const md = readFileSync(join(out, 'result.md'), 'utf8');
    expect(md).toMatch(/moving world/);
    expect(md).toMatch(/Against srpt, jobs a free worker is on first \(per seed/);
  }, 120_000);
});
