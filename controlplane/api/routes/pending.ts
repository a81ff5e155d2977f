// Resources whose tables are being built (the proposals table, the policy registry). Their
// list routes exist now with the shape they will keep, and answer an honest empty list with
// `available: false` until the table lands: no made-up rows. When it lands, its own route
// module replaces the entry here (see routes/index.ts).
import { errors, headers, limit, streamId } from '../schemas.ts';
import type { RouteModule } from './types.ts';

interface Pending {
  path: string;
  key: string;
  tag: string;
  summary: string;
  statuses: readonly string[];
}

export const PROPOSALS: Pending = {
  path: '/api/proposals',
  key: 'proposals',
  tag: 'proposals',
  summary: 'Knob-change proposals and their reports (sim, shadow), newest first',
  statuses: ['proposed', 'simulated', 'shadow', 'live', 'rolled_back', 'rejected'],
};

export const POLICIES: Pending = {
  path: '/api/policies',
  key: 'policies',
  tag: 'policies',
  summary: 'Policy versions of the registry, with lineage and status',
  statuses: ['draft', 'candidate', 'shadow', 'live', 'retired'],
};

export function pendingRoutes(p: Pending): RouteModule {
  return (app) => {
    app.get(
      p.path,
      {
        schema: {
          tags: [p.tag],
          summary: p.summary,
          description: `NOT YET BACKED BY A TABLE: the ${p.key} table is being built. Until it lands this route answers { ${p.key}: [], next: null, available: false }; the shape stays the same afterwards, with available: true.`,
          headers,
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: {
              status: { type: 'string', enum: [...p.statuses] },
              limit: limit(500, 100),
              before: streamId,
            },
          },
          response: {
            200: {
              type: 'object',
              required: [p.key, 'next', 'available'],
              properties: {
                [p.key]: { type: 'array', items: { type: 'object', additionalProperties: true } },
                next: { type: ['string', 'null'] },
                available: {
                  type: 'boolean',
                  description: 'false while the table does not exist yet',
                },
              },
            },
            ...errors(),
          },
        },
      },
      async () => ({ [p.key]: [], next: null, available: false }),
    );
  };
}
