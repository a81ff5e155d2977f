// GET /api/events: a server-sent-events stream of changes to the knobs table: `knob` (a value
// change, pin or unpin, with the full row), `freeze` (the switch), `resync` (events may have
// been lost: reload), and a first `hello` with the current epoch. Browsers read it with
// fetch() so the token travels in the Authorization header, never in the URL.
import { errors, headers } from '../schemas.ts';
import type { RouteModule } from './types.ts';

export const eventRoutes: RouteModule = (app, { hub, knobs, tokens }) => {
  app.get(
    '/api/events',
    {
      // fastify would answer HEAD with this handler: an endless stream holding a slot.
      exposeHeadRoute: false,
      schema: {
        tags: ['events'],
        summary: 'Server-sent events: knob changes, pins, freezes',
        description:
          'text/event-stream. Events: hello {epoch}; knob {kind: value|pin|unpin, row}; freeze {frozen}; resync {reason}. A comment line every 15 s keeps the stream alive. The stream ends when its token is revoked (at once through this server; within a heartbeat through another).',
        headers,
        produces: ['text/event-stream'],
        response: {
          200: { description: 'an endless event stream', type: 'string' },
          ...errors(429, 503),
        },
      },
    },
    async (request, reply) => {
      // The stream keeps who opened it: revoking the token ends it (routes/tokens.ts), and each
      // heartbeat re-checks the token, in case another API process revoked it. It also counts
      // against the token's share of the streams.
      const tokenId = request.auth.tokenId;
      const owner = {
        tokenId,
        actor: request.auth.actor,
        ...(tokenId !== null ? { verify: () => tokens.isLive(tokenId) } : {}),
      };
      hub.assertRoom(owner); // refuse before taking over the socket, so the error body is JSON
      const epoch = await knobs.epoch();
      // The client may have left during the await: its 'close' has fired already, so a stream
      // attached now would hold a slot for ever. Nobody is there to answer.
      if (reply.raw.destroyed || request.raw.socket.destroyed) {
        reply.hijack();
        reply.raw.destroy();
        return;
      }
      // Again: other streams may have taken the last slots during the await. Checking, taking
      // over the socket and attaching run with no await between them, so none can slip in.
      hub.assertRoom(owner);
      reply.hijack();
      hub.attach(reply.raw, epoch, owner);
    },
  );
};
