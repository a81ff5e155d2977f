// GET /api/events: a server-sent-events stream of changes to the knobs table: `knob` (a value
// change, pin or unpin, with the full row), `freeze` (the switch), `resync` (events may have
// been lost: reload), and a first `hello` with the current epoch. Browsers read it with
// fetch() so the token travels in the Authorization header, never in the URL.
import { errors, headers } from '../schemas.ts';
import type { RouteModule } from './types.ts';

export const eventRoutes: RouteModule = (app, { hub, knobs }) => {
  app.get(
    '/api/events',
    {
      schema: {
        tags: ['events'],
        summary: 'Server-sent events: knob changes, pins, freezes',
        description:
          'text/event-stream. Events: hello {epoch}; knob {kind: value|pin|unpin, row}; freeze {frozen}; resync {reason}. A comment line every 15 s keeps the stream alive.',
        headers,
        produces: ['text/event-stream'],
        response: {
          200: { description: 'an endless event stream', type: 'string' },
          ...errors(429, 503),
        },
      },
    },
    async (request, reply) => {
      hub.assertRoom(); // refuse before taking over the socket, so the error body is JSON
      const epoch = await knobs.epoch();
      reply.hijack();
      const end = hub.attach(reply.raw, epoch);
      request.raw.on('close', end);
    },
  );
};
