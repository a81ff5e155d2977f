// Authentication and authorisation, as one onRequest hook of the API's context: it runs
// before the body is parsed, so a stranger's request costs a header check and one Redis read.
// Tokens: `Authorization: Bearer <token>`; the admin token from the environment
// (KNOBOS_ADMIN_TOKEN) or a stored token (hashed, see tokens.ts). With auth 'off' (only on a
// loopback address, see server.ts) every request acts as a local admin.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../errors.ts';
import { isLoopback } from '../loopback.ts';
import type { RequestAuth } from '../context.ts';
import { roleAllows } from './roles.ts';
import { secretsEqual, type TokenStore } from './tokens.ts';

export type AuthOptions =
  | {
      mode: 'tokens';
      /** Accepted as an admin token of every tenant; never stored. */ adminToken?: string;
    }
  | { mode: 'off' };

/** Tokens are short ASCII; a longer header is refused before any hashing or lookup. */
const MAX_HEADER_CHARS = 512;

const LOCAL: RequestAuth = {
  actor: 'local#noauth',
  role: 'admin',
  tenant: null,
  tokenId: null,
  via: 'off',
};

/** The identity of a request to a public route (health, docs): it reads nothing private. */
const PUBLIC: RequestAuth = {
  actor: 'anonymous',
  role: 'viewer',
  tenant: null,
  tokenId: null,
  via: 'public',
};

function unauthenticated(message: string, rule: string): ApiError {
  return new ApiError('KNOBOS_API_UNAUTHENTICATED', message, {
    field: 'headers.authorization',
    rule,
  });
}

/** Who the request's bearer token belongs to; throws 401 when nobody. */
export async function authenticate(
  request: FastifyRequest,
  opts: AuthOptions,
  tokens: TokenStore,
): Promise<RequestAuth> {
  if (opts.mode === 'off') {
    // Auth off trusts this machine, not the pages its browser opens: a page that rebinds its
    // own name to 127.0.0.1 reaches the API as same-origin, with its name as Host (DNS
    // rebinding). Only loopback Host names are answered.
    if (!isLoopback(request.hostname))
      throw new ApiError(
        'KNOBOS_API_FORBIDDEN',
        `auth is off: only requests to a loopback host name are answered, not ${JSON.stringify(request.hostname)}`,
        { field: 'headers.host', rule: 'loopback_host' },
      );
    return LOCAL;
  }
  const header = request.headers.authorization;
  if (header === undefined)
    throw unauthenticated('an API token is required: Authorization: Bearer <token>', 'required');
  const m = header.length <= MAX_HEADER_CHARS ? /^Bearer ([\x21-\x7e]+)$/.exec(header) : null;
  if (!m) throw unauthenticated('the Authorization header must be "Bearer <token>"', 'bearer');
  const token = m[1] as string;
  if (opts.adminToken && secretsEqual(token, opts.adminToken))
    return { actor: 'admin#env', role: 'admin', tenant: null, tokenId: null, via: 'env' };
  const info = await tokens.verify(token);
  if (!info) throw unauthenticated('unknown or revoked API token', 'known_token');
  return {
    actor: `${info.name}#${info.id}`,
    role: info.role,
    tenant: info.tenant,
    tokenId: info.id,
    via: 'token',
  };
}

/** Adds the hook to `app` (an encapsulated context: routes outside it stay public). */
export function installAuth(app: FastifyInstance, opts: AuthOptions, tokens: TokenStore): void {
  app.decorateRequest('auth', null as unknown as RequestAuth);
  app.addHook('onRequest', async (request) => {
    const config = request.routeOptions.config;
    const access = config.access ?? 'viewer';
    if (access === 'public') {
      request.auth = PUBLIC;
      return;
    }
    const auth = await authenticate(request, opts, tokens);
    if (!roleAllows(auth.role, access))
      throw new ApiError(
        'KNOBOS_API_FORBIDDEN',
        `this action needs the ${access} role; the token has ${auth.role}`,
        {
          field: 'role',
          rule: access,
          role: auth.role,
        },
      );
    if (config.scope === 'global' && auth.tenant !== null)
      throw new ApiError(
        'KNOBOS_API_FORBIDDEN',
        `this action changes state shared by all tenants; a token of tenant ${auth.tenant} may not`,
        { field: 'tenant', rule: 'global_scope', tenant: auth.tenant },
      );
    request.auth = auth;
  });
}
