// The one call `npm start` and `knobos serve` make: read the server's settings from the
// environment (config.ts) and start it. When no admin token is configured one is generated
// for this run and returned, so the command can print it (it is never written anywhere).
import type { Logger } from 'pino';
import type { KnobTable } from '../knobs/table.ts';
import type { RedisClient } from '../redis/connect.ts';
import { serverEnv } from './config.ts';
import type { ServiceViewOptions } from './routes/services-options.ts';
import type { RouteModule } from './routes/types.ts';
import { startServer, type StartedServer } from './server.ts';

export interface ApiServeOptions {
  redis: RedisClient;
  knobs: KnobTable;
  log?: Logger;
  env?: NodeJS.ProcessEnv;
  /** Generate an admin token when KNOBOS_ADMIN_TOKEN is unset (default true). */
  generateAdminToken?: boolean;
  routes?: readonly RouteModule[];
  /** What the services' state routes read (the scheduler shards the node runs, ...). */
  services?: ServiceViewOptions;
}

export interface ServedApi extends StartedServer {
  /** The dashboard's address, e.g. http://127.0.0.1:8080/ */
  dashboardUrl: string;
  authMode: 'tokens' | 'off';
  /** Set when this run generated the admin token: print it once for the operator. */
  generatedAdminToken?: string;
}

export async function serveApi(opts: ApiServeOptions): Promise<ServedApi> {
  const env = serverEnv(opts.env ?? process.env, {
    generateAdminToken: opts.generateAdminToken ?? true,
  });
  const server = await startServer({
    redis: opts.redis,
    knobs: opts.knobs,
    auth: env.auth,
    port: env.port,
    host: env.host,
    publicMetrics: env.publicMetrics,
    ...(opts.log ? { logger: opts.log } : {}),
    ...(opts.routes ? { routes: opts.routes } : {}),
    ...(opts.services ? { services: opts.services } : {}),
  });
  return {
    ...server,
    dashboardUrl: `${server.url}/`,
    authMode: env.auth.mode,
    ...(env.generatedAdminToken ? { generatedAdminToken: env.generatedAdminToken } : {}),
  };
}
