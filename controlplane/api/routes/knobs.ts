// Reading the knobs table: every knob (with the freeze switch and the change epoch), one
// knob, and a knob's history, newest first. Knobs are shared by all tenants: every token
// may read them.
import type { RouteModule } from './types.ts';
import { errors, headers, knobParams, limit, ref, streamId } from '../schemas.ts';

const TAGS = ['knobs'];

export const knobRoutes: RouteModule = (app, { knobs }) => {
  app.get(
    '/api/knobs',
    {
      schema: {
        tags: TAGS,
        summary: 'Every knob of the catalog: value, default, domain, version, last change',
        headers,
        response: {
          200: {
            type: 'object',
            required: ['knobs', 'frozen', 'epoch'],
            properties: {
              knobs: { type: 'array', items: ref('KnobRow') },
              frozen: ref('FreezeState'),
              epoch: { type: 'integer', description: 'bumped by every value change' },
            },
          },
          ...errors(),
        },
      },
    },
    async () => {
      const [rows, frozen, epoch] = await Promise.all([
        knobs.list(),
        knobs.frozen(),
        knobs.epoch(),
      ]);
      return { knobs: rows, frozen, epoch };
    },
  );

  app.get<{ Params: { name: string } }>(
    '/api/knobs/:name',
    {
      schema: {
        tags: TAGS,
        summary: 'One knob',
        headers,
        params: knobParams,
        response: { 200: ref('KnobRow'), ...errors(404) },
      },
    },
    async (request) => knobs.get(request.params.name),
  );

  app.get<{ Params: { name: string }; Querystring: { limit: number; before?: string } }>(
    '/api/knobs/:name/history',
    {
      schema: {
        tags: TAGS,
        summary: "A knob's changes, newest first (seed, promotions, rollbacks)",
        headers,
        params: knobParams,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            limit: limit(1000, 100),
            before: { ...streamId, description: 'a history entry id: only older entries' },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['knob', 'history', 'next'],
            properties: {
              knob: { type: 'string' },
              history: { type: 'array', items: ref('HistoryEntry') },
              next: {
                type: ['string', 'null'],
                description: 'pass as `before` for the next page; null on the last page',
              },
            },
          },
          ...errors(404),
        },
      },
    },
    async (request) => {
      const { name } = request.params;
      const { limit: n, before } = request.query;
      await knobs.get(name); // 404 for a declared knob that was never seeded
      // One entry more than the page: a full page is the last only when nothing follows it.
      const read = await knobs.history(name, { limit: n + 1, ...(before ? { before } : {}) });
      const history = read.slice(0, n);
      const next = read.length > n ? (history[history.length - 1]?.id ?? null) : null;
      return { knob: name, history, next };
    },
  );
};
