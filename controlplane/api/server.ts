// The API server and dashboard: one fastify process. buildServer() assembles it (for
// `inject` tests and embedding); startServer() also listens. Layout: public routes (health,
// the dashboard's static files, the OpenAPI document and UI) in the root context; everything
// under /api and /metrics in a child context whose onRequest hook authenticates.
import { join } from 'node:path';
import AjvCompiler from '@fastify/ajv-compiler';
import fastifyStatic from '@fastify/static';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { CATALOG } from '../../knobs/index.ts';
import { systemClock, type Clock } from '../knobs/clock.ts';
import type { KnobTable } from '../knobs/table.ts';
import type { RedisClient } from '../redis/connect.ts';
import { installAuth, type AuthOptions } from './auth/hook.ts';
import { holdIdempotencyKeys } from './idempotency.ts';
import { TokenStore } from './auth/tokens.ts';
import type { ApiDeps, RouteAccess } from './context.ts';
import { frameworkErrors, installErrorHandlers } from './error-handler.ts';
import { ApiMetrics } from './metrics.ts';
import { healthRoutes } from './routes/health.ts';
import { apiRoutes } from './routes/index.ts';
import type { ServiceViewOptions } from './routes/services-options.ts';
import { metricsRoutes } from './routes/metrics.ts';
import type { RouteModule } from './routes/types.ts';
import { SHARED_SCHEMAS } from './schemas.ts';
import { ChangeHub } from './sse.ts';
import { isLoopback } from './loopback.ts';

export const DASHBOARD_DIR = join(import.meta.dirname, '..', 'dashboard');

/** The dashboard loads nothing from elsewhere: scripts, styles and data come from this origin. */
const DASHBOARD_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

/** One route of a built server, as registered (method, URL template, access rule, schema). */
export interface RouteEntry {
  methods: readonly string[];
  url: string;
  config: RouteAccess;
  schema: Record<string, unknown> | undefined;
}

const ROUTE_TABLES = new WeakMap<FastifyInstance, RouteEntry[]>();

/**
 * Every route of a server built by buildServer(), in registration order: what tests walk so a
 * new route is checked (tenant isolation, fuzzing) without being listed by hand.
 */
export function routeTable(app: FastifyInstance): readonly RouteEntry[] {
  const t = ROUTE_TABLES.get(app);
  if (!t) throw new Error('routeTable: not a server built by buildServer()');
  return t;
}

export interface ServerOptions {
  redis: RedisClient;
  /** The knobs table; its `keys` are the server's key prefix. */
  knobs: KnobTable;
  auth: AuthOptions;
  clock?: Clock;
  /** A pino logger (e.g. createLogger('api')); none when omitted. */
  logger?: Logger;
  /** Serve /metrics without a token (for a scraper on a trusted network). Default false. */
  publicMetrics?: boolean;
  /** Services whose telemetry the API lists (default: the knob catalog's services). */
  telemetryServices?: readonly string[];
  /** Most open event streams (default 100). */
  maxStreams?: number;
  /** Most open event streams of one token (default 10). */
  maxStreamsPerToken?: number;
  /** Largest request body (default 64 KiB). */
  bodyLimitBytes?: number;
  /** More route modules (the services' state, the loop), added to the authenticated API. */
  routes?: readonly RouteModule[];
  /** What the services' state routes read (the scheduler shards the node runs, ...). */
  services?: ServiceViewOptions;
}

/**
 * Two validators over the same shared schemas ($ref): query strings, params and headers are
 * text, so their numbers and booleans are coerced from it; JSON bodies carry their own types
 * and are never coerced (`"baseVersion": true` is not the integer 1, `"role": ["admin"]` is
 * not "admin"). Header schemas reach the compiler as written, so their names are lowercase.
 * One pool per server, as fastify's default (its ajv instances keep every schema compiled).
 */
function buildValidator(): AjvCompiler.BuildCompilerFromPool {
  const pool = AjvCompiler();
  return (externalSchemas, options) => {
    const text = pool(externalSchemas, options);
    const json = pool(externalSchemas, {
      ...options,
      customOptions: { ...options?.customOptions, coerceTypes: false },
    } as typeof options);
    // fastify calls the compiler with the route's schema and its part (ajv-compiler's own
    // signature; its typings describe a plain ajv compile).
    type Compile = (route: { httpPart?: string }) => ReturnType<typeof text>;
    const compile: Compile = (route) =>
      route.httpPart === 'body'
        ? (json as unknown as Compile)(route)
        : finiteOnly((text as unknown as Compile)(route));
    return compile as unknown as typeof text;
  };
}

type Validate = ((data: unknown) => boolean) & { errors?: unknown[] | null };

/**
 * Text parts are flat (a name to a value or a list of values): a number coerced from
 * "Infinity" or "1e400" is refused, naming it. ajv coerces those to non-finite numbers and
 * then checks minimum and maximum only on finite ones, so a bound would be skipped.
 */
function finiteOnly<V>(validate: V): V {
  const v = validate as unknown as Validate;
  const wrapped: Validate = (data) => {
    if (!v(data)) {
      wrapped.errors = v.errors ?? null;
      return false;
    }
    for (const [name, value] of Object.entries((data ?? {}) as Record<string, unknown>)) {
      for (const x of Array.isArray(value) ? value : [value]) {
        if (typeof x === 'number' && !Number.isFinite(x)) {
          wrapped.errors = [
            { instancePath: `/${name}`, keyword: 'finite', message: 'must be a finite number' },
          ];
          return false;
        }
      }
    }
    wrapped.errors = null;
    return true;
  };
  return wrapped as unknown as V;
}

export async function buildServer(opts: ServerOptions): Promise<FastifyInstance> {
  const startedAt = Date.now();
  const app = Fastify({
    ...(opts.logger ? { loggerInstance: opts.logger as FastifyBaseLogger } : { logger: false }),
    // The dashboard polls every few seconds: log failures (error-handler.ts), not every request.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: opts.bodyLimitBytes ?? 64 * 1024,
    routerOptions: { maxParamLength: 200 },
    frameworkErrors,
    ajv: {
      // Unknown properties are rejected, not silently dropped; query strings are coerced
      // (bodies are not: buildValidator).
      customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true },
    },
    schemaController: { compilersFactory: { buildValidator: buildValidator() } },
  });
  const routes: RouteEntry[] = [];
  ROUTE_TABLES.set(app, routes);
  // Added first, so it sees every route, those of child contexts included.
  app.addHook('onRoute', (r) => {
    routes.push({
      methods: ([] as string[]).concat(r.method),
      url: r.url,
      config: (r.config ?? {}) as RouteAccess,
      schema: r.schema as Record<string, unknown> | undefined,
    });
  });
  const { redis, knobs } = opts;
  const hub = new ChangeHub({
    redis,
    knobs,
    ...(opts.logger ? { log: opts.logger } : {}),
    ...(opts.maxStreams ? { maxClients: opts.maxStreams } : {}),
    ...(opts.maxStreamsPerToken ? { maxPerToken: opts.maxStreamsPerToken } : {}),
  });
  await hub.start();
  // An answer sent once close began ends its connection: the server's close waits for every
  // open connection, and one kept alive would hold it up for the keep-alive timeout (72 s).
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
    await hub.close();
  });
  app.addHook('onSend', async (_request, reply, payload) => {
    if (closing) reply.header('connection', 'close');
    return payload;
  });
  try {
    return await buildRoutes(app, opts, hub, startedAt);
  } catch (err) {
    // The hub's subscriber connection is up: a build that fails must not leave it running.
    await app.close();
    throw err;
  }
}

async function buildRoutes(
  app: FastifyInstance,
  opts: ServerOptions,
  hub: ChangeHub,
  startedAt: number,
): Promise<FastifyInstance> {
  const { redis, knobs } = opts;
  const clock = opts.clock ?? systemClock;
  const metrics = new ApiMetrics();

  const deps: ApiDeps = {
    redis,
    keys: knobs.keys,
    knobs,
    tokens: new TokenStore(redis, knobs.keys, clock),
    clock,
    metrics,
    hub,
    telemetryServices: opts.telemetryServices ?? [...new Set(CATALOG.map((k) => k.service))],
  };

  // Bodies are JSON only: fastify's text/plain parser would turn form posts into strings.
  app.removeContentTypeParser('text/plain');
  installErrorHandlers(app);
  app.addHook('onResponse', async (request, reply) => {
    metrics.observe(
      request.method,
      request.routeOptions.url ?? 'unmatched',
      reply.statusCode,
      reply.elapsedTime / 1000,
    );
  });
  // Every answer (the API's JSON, errors, /docs, health), not only the dashboard's files: no
  // type sniffing, no referrer, no framing (the Swagger UI has buttons worth clickjacking),
  // and nothing of /api kept by a browser or proxy cache. Event streams set theirs (sse.ts).
  app.addHook('onSend', async (request, reply, payload) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('x-frame-options', 'DENY');
    if (!reply.hasHeader('content-security-policy'))
      reply.header('content-security-policy', "frame-ancestors 'none'");
    const path = request.url.split('?', 1)[0] ?? '';
    if (path === '/api' || path.startsWith('/api/') || path === '/metrics')
      reply.header('cache-control', 'no-store');
    return payload;
  });
  for (const s of SHARED_SCHEMAS) app.addSchema(s);
  await app.register(fastifySwagger, {
    openapi: {
      info: {
        title: 'knobos API',
        version: '0.1.0',
        description:
          'The policy registry API of knobos: the knobs table, audit, telemetry and a change stream. Authenticate with `Authorization: Bearer <token>`. Errors: `{ error: { code, message, field?, rule? } }`, codes in docs/api-errors.md.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs', validatorUrl: false });
  await app.register(fastifyStatic, {
    root: DASHBOARD_DIR,
    prefix: '/',
    index: ['index.html'],
    // One route per file found at start (the dashboard has no build step and a handful of
    // files), so unknown paths reach the API's 404 handler instead of a catch-all.
    wildcard: false,
    setHeaders: (reply) => {
      reply.header('content-security-policy', DASHBOARD_CSP);
      reply.header('x-content-type-options', 'nosniff');
    },
  });
  healthRoutes(app, redis, startedAt);

  await app.register(async (api) => {
    installAuth(api, opts.auth, deps.tokens);
    holdIdempotencyKeys(api, deps);
    for (const mod of [
      ...apiRoutes(opts.services),
      metricsRoutes(opts.publicMetrics ?? false),
      ...(opts.routes ?? []),
    ])
      mod(api, deps);
  });
  return app;
}

export interface StartedServer {
  app: FastifyInstance;
  /** e.g. http://127.0.0.1:8080 */
  url: string;
  close(): Promise<void>;
}

/** Builds the server and listens on host:port (port 0 = any free port). */
export async function startServer(
  opts: ServerOptions & { port: number; host: string },
): Promise<StartedServer> {
  if (opts.auth.mode === 'off' && !isLoopback(opts.host))
    throw new Error(
      `auth is off: the API may only listen on a loopback address, not ${opts.host} (set KNOBOS_ADMIN_TOKEN and leave KNOBOS_AUTH unset)`,
    );
  const app = await buildServer(opts);
  try {
    await app.listen({ port: opts.port, host: opts.host });
  } catch (err) {
    // A port in use: close what the build started (the change hub's subscriber).
    await app.close();
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE')
      throw new Error(
        `the API's address ${opts.host}:${opts.port} is in use (another knobos node, or another server): set PORT (or HOST) to another`,
        { cause: err },
      );
    throw err;
  }
  const addr = app.server.address();
  const port = addr && typeof addr === 'object' ? addr.port : opts.port;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return { app, url: `http://${host}:${port}`, close: () => app.close() };
}
