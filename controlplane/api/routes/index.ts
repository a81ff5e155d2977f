// Every route module of the authenticated API, one per resource. A new resource adds its
// module here. The services' state routes read the shards and volumes the node runs.
import { auditRoutes } from './audit.ts';
import { eventRoutes } from './events.ts';
import { experimentRoutes } from './experiments.ts';
import { freezeRoutes } from './freeze.ts';
import { knobActionRoutes } from './knob-actions.ts';
import { knobRoutes } from './knobs.ts';
import { policyRoutes } from './policies.ts';
import { proposalRoutes } from './proposals.ts';
import { serviceRoutes, type ServiceViewOptions } from './services.ts';
import { telemetryRoutes } from './telemetry.ts';
import { tokenRoutes } from './tokens.ts';
import type { RouteModule } from './types.ts';

export const apiRoutes = (services: ServiceViewOptions = {}): readonly RouteModule[] => [
  knobRoutes,
  knobActionRoutes,
  freezeRoutes,
  auditRoutes,
  telemetryRoutes,
  eventRoutes,
  tokenRoutes,
  proposalRoutes,
  policyRoutes,
  serviceRoutes(services),
  experimentRoutes(),
];
