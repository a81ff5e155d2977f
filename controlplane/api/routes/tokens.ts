// API token management (admin role): create (the plain token is answered once), list, revoke,
// and `whoami` for any token. A tenant-scoped admin manages only its own tenant's tokens.
import { ApiError } from '../errors.ts';
import { ROLES, type Role } from '../auth/roles.ts';
import { errors, headers } from '../schemas.ts';
import type { RouteModule } from './types.ts';

const TAGS = ['tokens'];
const tenant = { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]{0,63}$' } as const;

const tokenInfo = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    role: { type: 'string', enum: [...ROLES] },
    tenant: { type: ['string', 'null'] },
    createdAt: { type: 'number' },
    createdBy: { type: 'string' },
  },
} as const;

export const tokenRoutes: RouteModule = (app, { tokens, hub }) => {
  app.get(
    '/api/whoami',
    {
      schema: {
        tags: TAGS,
        summary: "The request's identity: actor, role, tenant",
        headers,
        response: {
          200: {
            type: 'object',
            properties: {
              actor: { type: 'string' },
              role: { type: 'string', enum: [...ROLES] },
              tenant: { type: ['string', 'null'] },
              tokenId: { type: ['string', 'null'] },
              via: { type: 'string' },
            },
          },
          ...errors(),
        },
      },
    },
    async (request) => request.auth,
  );

  app.post<{ Body: { name: string; role: Role; tenant?: string } }>(
    '/api/tokens',
    {
      config: { access: 'admin' },
      schema: {
        tags: TAGS,
        summary: 'Create an API token; the token itself is in this answer only',
        headers,
        body: {
          type: 'object',
          required: ['name', 'role'],
          additionalProperties: false,
          properties: {
            name: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$' },
            role: { type: 'string', enum: [...ROLES] },
            tenant: { ...tenant, description: "scope: the token sees only this tenant's rows" },
          },
        },
        response: {
          201: {
            type: 'object',
            properties: {
              token: { type: 'string', description: 'shown once; only its hash is stored' },
              info: tokenInfo,
            },
          },
          ...errors(),
        },
      },
    },
    async (request, reply) => {
      const { auth } = request;
      const b = request.body;
      if (auth.tenant !== null && b.tenant !== undefined && b.tenant !== auth.tenant)
        throw new ApiError(
          'KNOBOS_API_FORBIDDEN',
          `a token of tenant ${auth.tenant} may only create tokens of that tenant`,
          {
            field: 'body.tenant',
            rule: 'own_tenant',
          },
        );
      const created = await tokens.create({
        name: b.name,
        role: b.role,
        tenant: auth.tenant ?? b.tenant ?? null,
        actor: auth.actor,
      });
      return reply.code(201).send(created);
    },
  );

  app.get(
    '/api/tokens',
    {
      config: { access: 'admin' },
      schema: {
        tags: TAGS,
        summary: "API tokens (never their secrets), newest first; a tenant's admin sees its own",
        headers,
        response: {
          200: { type: 'object', properties: { tokens: { type: 'array', items: tokenInfo } } },
          ...errors(),
        },
      },
    },
    async (request) => ({ tokens: await tokens.list(request.auth.tenant) }),
  );

  app.delete<{ Params: { id: string } }>(
    '/api/tokens/:id',
    {
      config: { access: 'admin' },
      schema: {
        tags: TAGS,
        summary: 'Revoke a token: it stops working at once, and its open event streams end',
        headers,
        params: {
          type: 'object',
          required: ['id'],
          additionalProperties: false,
          properties: { id: { type: 'string', pattern: '^[0-9a-f]{16}$' } },
        },
        response: {
          200: { type: 'object', properties: { revoked: tokenInfo } },
          ...errors(404),
        },
      },
    },
    async (request) => {
      const revoked = await tokens.revoke(request.params.id, {
        actor: request.auth.actor,
        tenant: request.auth.tenant,
      });
      // Its open event streams end now; other API processes end theirs on their heartbeat.
      hub.endToken(revoked.id);
      return { revoked };
    },
  );
};
