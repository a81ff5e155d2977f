// Experiment results: the result files `npm run exp:<name>` writes
// (experiments/results/<name>/result.json), listed with their headline facts, and one whole.
// Results are shared by all tenants (they come from simulations, not tenants' rows).
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { NotFoundError } from '../../store/errors.ts';
import { errors, headers } from '../schemas.ts';
import type { RouteModule } from './types.ts';

const TAGS = ['experiments'];
export const RESULTS_DIR = resolve(import.meta.dirname, '..', '..', '..', 'experiments', 'results');

/** Where results are read from: KNOBOS_RESULTS_DIR when set (results kept elsewhere), else the repo's. */
export function resultsDir(env: NodeJS.ProcessEnv = process.env): string {
  return env['KNOBOS_RESULTS_DIR'] ? resolve(env['KNOBOS_RESULTS_DIR']) : RESULTS_DIR;
}
/** Results listed at most, and the largest result file served. */
export const EXPERIMENTS_MAX = 200;
export const RESULT_BYTES_MAX = 8 * 1024 * 1024;
const NAME_RE = /^[a-z0-9][a-z0-9_-]{0,99}$/;

interface Headline {
  name: string;
  title: string | null;
  date: string | null;
  quick: boolean | null;
  metric: string | null;
  direction: string | null;
  seeds: number | null;
  entries: number | null;
  bytes: number;
}

function headline(name: string, r: Record<string, unknown>, bytes: number): Headline {
  const str = (k: string) => (typeof r[k] === 'string' ? (r[k] as string) : null);
  return {
    name,
    title: str('title'),
    date: str('date'),
    quick: typeof r['quick'] === 'boolean' ? r['quick'] : null,
    metric: str('metric'),
    direction: str('direction'),
    seeds: Array.isArray(r['seeds']) ? r['seeds'].length : null,
    entries: Array.isArray(r['results']) ? r['results'].length : null,
    bytes,
  };
}

function missing(name: string): NotFoundError {
  return new NotFoundError(`experiment ${name} has no result file (run npm run exp:${name})`, {
    target: name,
    field: 'name',
    rule: 'exists',
  });
}

async function readResult(
  dir: string,
  name: string,
): Promise<{ json: Record<string, unknown>; bytes: number }> {
  const file = join(dir, name, 'result.json');
  const st = await stat(file).catch(() => null);
  if (!st?.isFile()) throw missing(name);
  if (st.size > RESULT_BYTES_MAX)
    throw new NotFoundError(`experiment ${name}: result.json is ${st.size} bytes, over the bound`, {
      target: name,
      field: 'name',
      rule: 'max_bytes',
    });
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch {
    throw new NotFoundError(`experiment ${name}: result.json is not valid JSON`, {
      target: name,
      field: 'name',
      rule: 'json',
    });
  }
  // A result is a JSON object; an array, null or a scalar is not one (and would not serialize
  // as the route's object response).
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new NotFoundError(`experiment ${name}: result.json is not a JSON object`, {
      target: name,
      field: 'name',
      rule: 'json',
    });
  return { json: json as Record<string, unknown>, bytes: st.size };
}

/** `dir` defaults to resultsDir() when the server is built (so KNOBOS_RESULTS_DIR applies). */
export function experimentRoutes(fixedDir?: string): RouteModule {
  return (app) => {
    const dir = fixedDir ?? resultsDir();
    app.get(
      '/api/experiments',
      {
        schema: {
          tags: TAGS,
          summary: 'Experiments with a result file, with their headline facts',
          headers,
          response: {
            200: {
              type: 'object',
              properties: {
                experiments: {
                  type: 'array',
                  items: { type: 'object', additionalProperties: true },
                },
              },
            },
            ...errors(),
          },
        },
      },
      async () => {
        const names = (await readdir(dir).catch(() => [] as string[]))
          .filter((n) => NAME_RE.test(n))
          .sort()
          .slice(0, EXPERIMENTS_MAX);
        const found = await Promise.all(
          names.map(async (n) => {
            try {
              const { json, bytes } = await readResult(dir, n);
              return [headline(n, json, bytes)];
            } catch {
              return []; // a directory without a readable result is not an experiment result
            }
          }),
        );
        return { experiments: found.flat() };
      },
    );

    app.get<{ Params: { name: string } }>(
      '/api/experiments/:name',
      {
        schema: {
          tags: TAGS,
          summary: "One experiment's result.json, whole",
          headers,
          params: {
            type: 'object',
            required: ['name'],
            additionalProperties: false,
            properties: { name: { type: 'string', pattern: NAME_RE.source } },
          },
          response: { 200: { type: 'object', additionalProperties: true }, ...errors(404) },
        },
      },
      async (request) => (await readResult(dir, request.params.name)).json,
    );
  };
}
