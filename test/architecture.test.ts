// The top-level folders are the architecture: this test resolves every relative import of
// every source file and checks the direction rules of DESIGN.md, and that there are no
// import cycles.
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { join, relative, resolve, dirname, sep } from 'node:path';

const ROOT = resolve(import.meta.dirname, '..');
const LAYERED = ['knobs', 'policies', 'envs', 'learners', 'controlplane', 'experiments'];
const ALLOWED: Record<string, string[]> = {
  knobs: ['knobs'],
  policies: ['policies'],
  envs: ['envs', 'policies', 'knobs'],
  learners: ['learners', 'policies', 'envs', 'knobs'],
  controlplane: ['controlplane', 'knobs', 'policies', 'envs', 'learners'],
  experiments: ['experiments', 'knobs', 'policies', 'envs', 'learners', 'controlplane'],
};

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory())
      return name === 'node_modules' || name === 'results' ? [] : sources(p);
    return /\.(ts|mts|mjs)$/.test(name) && !name.endsWith('.d.ts') ? [p] : [];
  });
}

const IMPORT =
  /(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2];
    if (spec && spec.startsWith('.')) {
      const target = resolve(dirname(file), spec);
      out.push(existsSync(target) ? target : target.replace(/\.js$/, '.ts'));
    }
  }
  return out;
}

const top = (file: string): string => relative(ROOT, file).split(sep)[0] ?? '';
const files = ['cli', 'bench', 'test', ...LAYERED]
  .filter((d) => existsSync(join(ROOT, d)))
  .flatMap((d) => sources(join(ROOT, d)));
const graph = new Map(files.map((f) => [f, importsOf(f)]));

describe('architecture', () => {
  it('finds the source tree', () => {
    expect(files.length).toBeGreaterThan(5);
  });

  it('imports point down the layers only', () => {
    const bad: string[] = [];
    for (const [file, targets] of graph) {
      const from = top(file);
      const allowed = ALLOWED[from];
      if (!allowed) continue;
      for (const t of targets) {
        if (!allowed.includes(top(t)))
          bad.push(`${relative(ROOT, file)} imports ${relative(ROOT, t)}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('every relative import resolves to a file', () => {
    const missing = [...graph].flatMap(([f, ts]) =>
      ts.filter((t) => !existsSync(t)).map((t) => `${relative(ROOT, f)} -> ${relative(ROOT, t)}`),
    );
    expect(missing).toEqual([]);
  });

  it('has no import cycles', () => {
    const state = new Map<string, 'open' | 'done'>();
    const cycles: string[] = [];
    const visit = (f: string, path: string[]): void => {
      if (state.get(f) === 'done') return;
      if (state.get(f) === 'open') {
        cycles.push([...path.slice(path.indexOf(f)), f].map((p) => relative(ROOT, p)).join(' -> '));
        return;
      }
      state.set(f, 'open');
      for (const t of graph.get(f) ?? []) visit(t, [...path, f]);
      state.set(f, 'done');
    };
    for (const f of graph.keys()) visit(f, []);
    expect(cycles).toEqual([]);
  });

  it('each top-level folder has a README saying what it holds', () => {
    for (const d of LAYERED) expect(existsSync(join(ROOT, d, 'README.md')), d).toBe(true);
  });
});
