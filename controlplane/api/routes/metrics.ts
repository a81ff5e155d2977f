// GET /metrics: Prometheus text format, every name prefixed `knobos_`: the knobs table (a
// version, a value gauge per numeric knob, pins, the freeze switch) read at scrape time in
// one round trip, and the API's own request counts and latencies per route.
import type { RouteModule } from './types.ts';

export function metricsRoutes(publicMetrics: boolean): RouteModule {
  return (app, { knobs, metrics, hub }) => {
    app.get(
      '/metrics',
      {
        config: { access: publicMetrics ? 'public' : 'viewer' },
        schema: {
          tags: ['operations'],
          summary: 'Prometheus metrics (text format 0.0.4)',
          ...(publicMetrics ? { security: [] } : {}),
          produces: ['text/plain'],
        },
      },
      async (_request, reply) => {
        const [rows, frozen, epoch] = await Promise.all([
          knobs.list(),
          knobs.frozen(),
          knobs.epoch(),
        ]);
        const text = metrics.render({ rows, frozen, epoch }, { sseClients: hub.size });
        return reply.type('text/plain; version=0.0.4; charset=utf-8').send(text);
      },
    );
  };
}
