// A route module: one file per resource under routes/, each adding its routes to the API's
// authenticated context. New resources plug in by adding their module to routes/index.ts.
import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from '../context.ts';

export type RouteModule = (app: FastifyInstance, deps: ApiDeps) => void;
