// The live services' state, read straight from their tables (the API needs no service
// instance): the scheduler (services-scheduler.ts), messaging (services-messaging.ts) and
// files (services-files.ts), plus an index of what is configured. What each route shows a
// tenant-scoped token (DBOS-style views):
//   scheduler tasks, one task, counts, stragglers, usage: only rows of the token's tenant
//   scheduler workers: shared infrastructure without a tenant, shown to all
//   messaging topics: `<tenant>.<name>` only to that tenant; names without '.' are shared
//   files: the subtree <tenantRoot>/<tenant>, seen as the whole volume
import { DEFAULT_SETTLE_ARGS } from '../../scheduler/worker.ts';
import { errors, headers } from '../schemas.ts';
import { filesRoutes } from './services-files.ts';
import { messagingRoutes } from './services-messaging.ts';
import { schedulerRoutes } from './services-scheduler.ts';
import type { ServiceViewOptions } from './services-options.ts';
import type { RouteModule } from './types.ts';

export type { ServiceViewOptions };

export function serviceRoutes(options: ServiceViewOptions = {}): RouteModule {
  const opts = {
    schedulerShards: options.schedulerShards ?? ['0'],
    usageBucketMs: options.usageBucketMs ?? DEFAULT_SETTLE_ARGS.usageBucketMs,
    messagingShards: options.messagingShards ?? ['0'],
    fileVolumes: options.fileVolumes ?? ['default'],
    tenantRoot: options.tenantRoot ?? '/tenants',
  };
  for (const [k, list] of Object.entries({
    schedulerShards: opts.schedulerShards,
    messagingShards: opts.messagingShards,
    fileVolumes: opts.fileVolumes,
  }))
    if (list.length === 0) throw new Error(`serviceRoutes: ${k} must name at least one`);
  return (app, deps) => {
    app.get(
      '/api/services',
      {
        schema: {
          tags: ['services'],
          summary: 'The services the API reads, and what a tenant-scoped token sees of each',
          headers,
          response: {
            200: {
              type: 'object',
              properties: {
                scheduler: { type: 'object', additionalProperties: true },
                messaging: { type: 'object', additionalProperties: true },
                files: { type: 'object', additionalProperties: true },
              },
            },
            ...errors(),
          },
        },
      },
      async (request) => ({
        scheduler: {
          shards: opts.schedulerShards,
          tenantView: 'tasks, counts, stragglers and usage of the tenant only; workers shared',
        },
        messaging: {
          shards: opts.messagingShards,
          tenantView: "topics named <tenant>.<name> of the tenant only; topics without '.' shared",
        },
        files: {
          volumes: opts.fileVolumes,
          tenantView: `the subtree ${opts.tenantRoot}/<tenant> as the whole volume`,
          ...(request.auth.tenant ? { root: `${opts.tenantRoot}/${request.auth.tenant}` } : {}),
        },
      }),
    );
    schedulerRoutes(app, deps, opts);
    messagingRoutes(app, deps, opts);
    filesRoutes(app, deps, opts);
  };
}
