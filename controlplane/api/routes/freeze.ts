// The kill switch for all automation: while frozen, promotions by automation actors fail
// (operators still act). Freezing is global, so tenant-scoped tokens may not.
import { errors, headers, reason, ref } from '../schemas.ts';
import type { RouteModule } from './types.ts';

const TAGS = ['knob actions'];

const stateResponse = {
  type: 'object',
  required: ['frozen', 'changed'],
  properties: {
    frozen: ref('FreezeState'),
    changed: { type: 'boolean', description: 'false when it was already in that state' },
  },
} as const;

export const freezeRoutes: RouteModule = (app, { knobs }) => {
  app.get(
    '/api/freeze',
    {
      schema: {
        tags: TAGS,
        summary: 'The freeze switch: null when automation runs',
        headers,
        response: {
          200: { type: 'object', properties: { frozen: ref('FreezeState') } },
          ...errors(),
        },
      },
    },
    async () => ({ frozen: await knobs.frozen() }),
  );

  for (const action of ['freeze', 'unfreeze'] as const) {
    app.post<{ Body: { reason: string } }>(
      `/api/${action}`,
      {
        config: { access: 'operator', scope: 'global' },
        schema: {
          tags: TAGS,
          summary: action === 'freeze' ? 'Freeze all automation' : 'Let automation run again',
          headers,
          body: {
            type: 'object',
            required: ['reason'],
            additionalProperties: false,
            properties: { reason },
          },
          response: { 200: stateResponse, ...errors() },
        },
      },
      async (request) => {
        const changed = await knobs[action](request.auth.actor, request.body.reason);
        return { frozen: await knobs.frozen(), changed };
      },
    );
  }
};
