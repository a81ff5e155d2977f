// What every route module gets: the tables it reads and writes (ApiDeps), and on each request
// who is asking (request.auth: actor, role, tenant). Routes filter rows by
// `request.auth.tenant` and pass `request.auth.actor` to every write, so each write is audited
// under the token's identity.
import type { Clock } from '../knobs/clock.ts';
import type { KnobTable } from '../knobs/table.ts';
import type { RedisClient } from '../redis/connect.ts';
import type { Keys } from '../store/keys.ts';
import type { Role } from './auth/roles.ts';
import type { TokenStore } from './auth/tokens.ts';
import type { ApiMetrics } from './metrics.ts';
import type { ChangeHub } from './sse.ts';

export interface RequestAuth {
  /** Who acts, as written to history and audit: `<token name>#<token id>`. */
  actor: string;
  role: Role;
  /** A tenant-scoped token sees only that tenant's rows; null = every tenant. */
  tenant: string | null;
  tokenId: string | null;
  via: 'token' | 'env' | 'off' | 'public';
}

/** A route's access rule (fastify route `config`). */
export interface RouteAccess {
  /** Least role; 'public' = no token needed. Default: viewer. */
  access?: Role | 'public';
  /**
   * 'global': the route changes state shared by all tenants (knobs, the freeze switch), so
   * tenant-scoped tokens are refused. Default 'tenant': the route filters by tenant itself.
   */
  scope?: 'global' | 'tenant';
}

declare module 'fastify' {
  interface FastifyRequest {
    auth: RequestAuth;
  }
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface FastifyContextConfig extends RouteAccess {}
}

export interface ApiDeps {
  redis: RedisClient;
  keys: Keys;
  knobs: KnobTable;
  tokens: TokenStore;
  clock: Clock;
  metrics: ApiMetrics;
  hub: ChangeHub;
  /** Services whose telemetry streams the API reads (default: the knob catalog's services). */
  telemetryServices: readonly string[];
}

/** true when a row of `rowTenant` (undefined/null = shared by all) is visible to `auth`. */
export function canSee(auth: RequestAuth, rowTenant: string | null | undefined): boolean {
  return auth.tenant === null || rowTenant === auth.tenant;
}
