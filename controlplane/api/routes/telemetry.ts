// Telemetry of the live services: which services report, which metrics a service reports,
// and one metric as a range query downsampled to fixed steps (telemetrySeries).
import { telemetrySeries } from '../../telemetry/read.ts';
import { Log, type LogEntry } from '../../store/log.ts';
import { ValidationError } from '../../store/errors.ts';
import { errors, headers } from '../schemas.ts';
import { closed, timeWindow, windowParams } from './params.ts';
import type { RouteModule } from './types.ts';

const TAGS = ['telemetry'];
/** A series has at most this many points; ask for a larger step for longer ranges. */
export const MAX_POINTS = 2_000;
const DEFAULT_RANGE_MS = 15 * 60_000;
/** Fields of an entry that are not metrics. */
const NOT_METRICS = new Set(['instance', 'at', 'interval_s', 'fs']);

const service = { type: 'string', pattern: '^[a-z][a-z0-9_-]{0,39}$' } as const;
const metric = { type: 'string', pattern: '^[a-z][a-z0-9_]{0,99}$' } as const;

/** When a service last reported: its entry's own time, else the stream's; null if never. */
const lastAt = (e: LogEntry | undefined): number | null =>
  e ? Number(e.fields['at'] ?? e.ms) : null;

interface RangeQuery {
  fromMs?: number;
  toMs?: number;
  stepMs?: number;
}

export const telemetryRoutes: RouteModule = (app, deps) => {
  const { redis, keys, clock } = deps;

  app.get(
    '/api/telemetry',
    {
      schema: {
        tags: TAGS,
        summary: 'Services with telemetry streams, with their entry counts and last report time',
        headers,
        response: {
          200: {
            type: 'object',
            properties: {
              services: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    service: { type: 'string' },
                    entries: { type: 'integer' },
                    lastAt: { type: ['number', 'null'] },
                  },
                },
              },
            },
          },
          ...errors(),
        },
      },
    },
    async () => ({
      services: await Promise.all(
        deps.telemetryServices.map(async (s) => {
          const log = new Log(redis, keys.telemetry(s), 1);
          const [entries, [last]] = await Promise.all([log.length(), log.latest({ count: 1 })]);
          return {
            service: s,
            entries,
            lastAt: lastAt(last),
          };
        }),
      ),
    }),
  );

  app.get<{ Params: { service: string } }>(
    '/api/telemetry/:service',
    {
      schema: {
        tags: TAGS,
        summary: 'Metric names a service reported in its latest entries',
        headers,
        params: closed({ service }, ['service']),
        response: {
          200: {
            type: 'object',
            properties: {
              service: { type: 'string' },
              metrics: { type: 'array', items: { type: 'string' } },
              lastAt: { type: ['number', 'null'] },
            },
          },
          ...errors(),
        },
      },
    },
    async (request) => {
      const { service: s } = request.params;
      const latest = await new Log(redis, keys.telemetry(s), 1).latest({ count: 20 });
      const names = new Set<string>();
      for (const e of latest)
        for (const k of Object.keys(e.fields)) if (!NOT_METRICS.has(k)) names.add(k);
      const last = latest[0];
      return {
        service: s,
        metrics: [...names].sort(),
        lastAt: lastAt(last),
      };
    },
  );

  app.get<{ Params: { service: string; metric: string }; Querystring: RangeQuery }>(
    '/api/telemetry/:service/:metric',
    {
      schema: {
        tags: TAGS,
        summary: 'One metric over a time range, one point per step',
        description: `Rates and counts of several instances in one step add up; other metrics average. Defaults: the last 15 minutes, about 300 points; at most ${MAX_POINTS} points.`,
        headers,
        params: closed({ service, metric }, ['service', 'metric']),
        querystring: closed({
          ...windowParams,
          stepMs: { type: 'integer', minimum: 1, maximum: 8.64e7 },
        }),
        response: {
          200: {
            type: 'object',
            properties: {
              service: { type: 'string' },
              metric: { type: 'string' },
              fromMs: { type: 'number' },
              toMs: { type: 'number' },
              stepMs: { type: 'number' },
              truncated: {
                type: 'boolean',
                description:
                  'True when the range held more entries than one query reads: the points then cover only its newest part',
              },
              points: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    at: { type: 'number' },
                    value: { type: 'number' },
                    n: { type: 'integer' },
                  },
                },
              },
            },
          },
          ...errors(),
        },
      },
    },
    async (request) => {
      const { service: s, metric: m } = request.params;
      const q = request.query;
      const { fromMs, toMs } = timeWindow(q, clock, DEFAULT_RANGE_MS);
      const stepMs = q.stepMs ?? Math.max(1_000, Math.ceil((toMs - fromMs) / 300));
      // Points sit on step-aligned buckets and the window includes both ends: a window of
      // MAX_POINTS steps not starting on a boundary touches one bucket more.
      if (Math.floor(toMs / stepMs) - Math.floor(fromMs / stepMs) + 1 > MAX_POINTS)
        throw new ValidationError(
          `query.stepMs: ${stepMs} ms gives more than ${MAX_POINTS} points over this range`,
          'query.stepMs',
          'max_points',
          { maxPoints: MAX_POINTS },
        );
      const points = await telemetrySeries(redis, keys, s, m, { fromMs, toMs, stepMs });
      return { service: s, metric: m, fromMs, toMs, stepMs, truncated: points.truncated, points };
    },
  );
};
