// Every route module of the authenticated API, one per resource. A new resource (the
// proposals table, the policy registry, the services' state) adds its module here; when the
// proposals or policies table lands, its module replaces the pending one.
import { auditRoutes } from './audit.ts';
import { eventRoutes } from './events.ts';
import { freezeRoutes } from './freeze.ts';
import { knobActionRoutes } from './knob-actions.ts';
import { knobRoutes } from './knobs.ts';
import { pendingRoutes, POLICIES, PROPOSALS } from './pending.ts';
import { telemetryRoutes } from './telemetry.ts';
import { tokenRoutes } from './tokens.ts';
import type { RouteModule } from './types.ts';

export const API_ROUTES: readonly RouteModule[] = [
  knobRoutes,
  knobActionRoutes,
  freezeRoutes,
  auditRoutes,
  telemetryRoutes,
  eventRoutes,
  tokenRoutes,
  pendingRoutes(PROPOSALS),
  pendingRoutes(POLICIES),
];
