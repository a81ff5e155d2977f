// The audit trail of control-plane actions, newest first, across the audit logs (knobs and
// proposals, tokens, the policy registry). A tenant-scoped token sees only entries of its tenant (detail.tenant).
import { readAudit, type AuditSource } from '../audit-read.ts';
import { canSee } from '../context.ts';
import { tokenAuditKey } from '../keys.ts';
import { RegistryKeys } from '../../registry/keys.ts';
import { auditPage, errors, headers, limit, streamId } from '../schemas.ts';
import type { RouteModule } from './types.ts';

interface AuditQuery {
  limit: number;
  before?: string;
  target?: string;
  source?: string;
}

export const auditRoutes: RouteModule = (app, { redis, keys }) => {
  const sources: AuditSource[] = [
    { name: 'knobs', key: keys.knobAudit() },
    { name: 'tokens', key: tokenAuditKey(keys) },
    { name: 'policies', key: new RegistryKeys(keys).audit() },
  ];
  app.get<{ Querystring: AuditQuery }>(
    '/api/audit',
    {
      schema: {
        tags: ['audit'],
        summary: 'Control-plane actions (who, what, when, outcome), newest first',
        headers,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            limit: limit(500, 100),
            before: {
              type: 'string',
              // `<id>:<source>` as `next` gives it, or a plain entry id (only older entries).
              pattern: `^${streamId.pattern.slice(1, -1)}(:(${sources.map((s) => s.name).join('|')}))?$`,
              description:
                'pass `next` here for the following page (`<entry id>:<source>`); a plain entry id means only older entries',
            },
            target: {
              type: 'string',
              minLength: 1,
              maxLength: 200,
              description: 'only actions on this target (a knob name, token:<id>, *)',
            },
            source: { type: 'string', enum: sources.map((s) => s.name) },
          },
        },
        response: {
          200: auditPage,
          ...errors(),
        },
      },
    },
    async (request) => {
      const q = request.query;
      const auth = request.auth;
      const { entries, next } = await readAudit(
        redis,
        q.source ? sources.filter((s) => s.name === q.source) : sources,
        {
          limit: q.limit,
          ...(q.before ? { before: q.before } : {}),
          ...(q.target ? { target: q.target } : {}),
          visible: (e) =>
            canSee(auth, typeof e.detail['tenant'] === 'string' ? e.detail['tenant'] : null),
        },
      );
      return { audit: entries, next };
    },
  );
};
