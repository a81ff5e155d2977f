// The policy registry (controlplane/registry): register a version with its artifact, list
// versions and lineage, evaluate in simulation, shadow, promote (a proposal through the knobs
// table), retire, roll back; and the registry's audit log. Policies are shared by all tenants
// (like knobs): every token reads them; writes need the operator role and no tenant scope.
// Every write is audited under the token's identity.
import type { FastifyInstance } from 'fastify';
import type { KnobTable } from '../../knobs/table.ts';
import { NotFoundError } from '../../store/errors.ts';
import {
  DEFAULT_EVAL,
  EVAL_BOUNDS,
  POLICY_KINDS,
  POLICY_NAME_RE,
  POLICY_STATUSES,
  PolicyRegistry,
  PROMOTION_KNOBS,
  summarize,
  type EvalSpec,
  type Lineage,
  type PolicyKind,
  type PolicyRow,
  type PolicyStatus,
} from '../../registry/index.ts';
import { SCHEDULING_POLICY_NAMES } from '../../../policies/scheduling/names.ts';
import { idempotentHeaders, requestIdOf } from '../idempotency.ts';
import { auditPage, errors, headers, streamId } from '../schemas.ts';
import type { RouteModule } from './types.ts';

const TAGS = ['policies'];
const WRITE = { access: 'operator', scope: 'global' } as const;

// ---- which registry the API uses ----

const attached = new WeakMap<KnobTable, PolicyRegistry>();

/**
 * Gives the API a configured registry (its evaluator's trace files, queue, mode) for the knobs
 * table it serves; call before buildServer(). Without one, each server makes a registry with
 * the defaults (shared TPC-H trace, a worker thread started on first use) and closes it with
 * the server.
 */
export function attachRegistry(registry: PolicyRegistry): void {
  attached.set(registry.knobs, registry);
}

function registryFor(app: FastifyInstance, knobs: KnobTable): PolicyRegistry {
  const given = attached.get(knobs);
  if (given) return given;
  const own = new PolicyRegistry({ knobs });
  app.addHook('onClose', async () => own.close());
  return own;
}

// ---- schemas ----

const policyName = {
  type: 'string',
  minLength: 1,
  maxLength: 64,
  pattern: POLICY_NAME_RE.source,
  description: "a policy name, e.g. 'scheduler'",
} as const;
const nameParams = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: { name: policyName },
} as const;
const versionParams = {
  type: 'object',
  required: ['name', 'version'],
  additionalProperties: false,
  properties: { name: policyName, version: { type: 'integer', minimum: 1, maximum: 1_000_000 } },
} as const;

const anyJson = {} as const;
const policySummary = {
  type: 'object',
  required: ['id', 'name', 'kind', 'version', 'status'],
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    kind: { type: 'string', enum: [...POLICY_KINDS] },
    version: { type: 'integer' },
    seq: { type: 'integer' },
    decisionPoint: { type: 'string' },
    artifactSummary: { type: 'string' },
    artifactBytes: { type: 'integer' },
    artifactSha256: { type: 'string' },
    status: { type: 'string', enum: [...POLICY_STATUSES] },
    lineage: {
      type: 'object',
      properties: {
        parent: { type: 'integer' },
        learner: { type: 'string' },
        run: { type: 'string' },
      },
    },
    simReport: anyJson,
    shadowReport: anyJson,
    promotion: anyJson,
    reason: { type: 'string' },
    createdAt: { type: 'number' },
    createdBy: { type: 'string' },
    updatedAt: { type: 'number' },
    updatedBy: { type: 'string' },
  },
} as const;
const policyFull = {
  ...policySummary,
  properties: { ...policySummary.properties, artifact: anyJson },
} as const;

/** The registry keeps reasons in its rows: the rule its table checks (1-200 printable ASCII). */
const reason = {
  type: 'string',
  pattern: '^(?=.*[\\x21-\\x7e])[\\x20-\\x7e]{1,200}$',
  description:
    'why (1-200 printable ASCII characters, not all spaces): kept in the row and its audit',
} as const;

const reasonBody = {
  type: 'object',
  required: ['reason'],
  additionalProperties: false,
  properties: { reason },
} as const;

const evalBody = {
  type: 'object',
  required: ['reason'],
  additionalProperties: false,
  properties: {
    reason,
    seeds: {
      type: 'array',
      minItems: EVAL_BOUNDS.seeds.min,
      maxItems: EVAL_BOUNDS.seeds.max,
      items: { type: 'integer', minimum: EVAL_BOUNDS.seed.min, maximum: EVAL_BOUNDS.seed.max },
      description: `simulation seeds (default ${JSON.stringify(DEFAULT_EVAL.seeds)})`,
    },
    jobs: {
      type: 'integer',
      minimum: EVAL_BOUNDS.jobs.min,
      maximum: EVAL_BOUNDS.jobs.max,
      description: 'TPC-H jobs per seed',
    },
    workers: {
      type: 'integer',
      minimum: EVAL_BOUNDS.workers.min,
      maximum: EVAL_BOUNDS.workers.max,
      description: 'one-core workers',
    },
    load: {
      type: 'number',
      minimum: EVAL_BOUNDS.load.min,
      maximum: EVAL_BOUNDS.load.max,
      description: 'offered load (default 0.85)',
    },
    heuristics: {
      type: 'array',
      maxItems: SCHEDULING_POLICY_NAMES.length,
      items: { type: 'string', enum: [...SCHEDULING_POLICY_NAMES] },
    },
  },
} as const;

interface RegisterBody {
  name: string;
  kind: PolicyKind;
  decisionPoint?: string;
  artifact: unknown;
  lineage?: Lineage;
  reason?: string;
}

type EvalBody = Partial<EvalSpec> & { reason: string };
type Named = { Params: { name: string } };
type Versioned = { Params: { name: string; version: number } };

function specOf(b: EvalBody): Partial<EvalSpec> {
  const { reason: _r, ...spec } = b;
  void _r;
  return spec;
}

export const policyRoutes: RouteModule = (app, { knobs }) => {
  const registry = registryFor(app, knobs);
  const summaries = (rows: PolicyRow[]) => rows.map(summarize);

  app.get<{
    Querystring: { name?: string; status?: PolicyStatus; limit: number; cursor?: number };
  }>(
    '/api/policies',
    {
      schema: {
        tags: TAGS,
        summary: 'Policy versions of the registry (without artifacts), newest first',
        description:
          '`live` maps each policy a knob selects to its live version (0 = the heuristic of its heuristic knob). Pass `next` as `cursor` to continue.',
        headers,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            name: policyName,
            status: { type: 'string', enum: [...POLICY_STATUSES] },
            limit: { type: 'integer', minimum: 1, maximum: 500, default: 100 },
            cursor: { type: 'integer', minimum: 1, maximum: 2 ** 31 },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['policies', 'next', 'available', 'live'],
            properties: {
              policies: { type: 'array', items: policySummary },
              next: { type: ['integer', 'null'] },
              available: { type: 'boolean', description: 'always true: the table exists' },
              live: { type: 'object', additionalProperties: { type: 'integer' } },
            },
          },
          ...errors(),
        },
      },
    },
    async (request) => {
      const q = request.query;
      const r = registry;
      const [page, live] = await Promise.all([
        r.table.list({
          limit: q.limit,
          ...(q.name ? { name: q.name } : {}),
          ...(q.status ? { status: q.status } : {}),
          ...(q.cursor ? { cursor: q.cursor } : {}),
        }),
        Promise.all(Object.keys(PROMOTION_KNOBS).map(async (n) => [n, await r.live(n)] as const)),
      ]);
      return {
        policies: summaries(page.policies),
        next: page.next,
        available: true,
        live: Object.fromEntries(live),
      };
    },
  );

  app.post<{ Body: RegisterBody }>(
    '/api/policies',
    {
      config: WRITE,
      schema: {
        tags: TAGS,
        summary: 'Register the next version of a policy with its artifact (as a draft)',
        description:
          'The artifact is `{ heuristic: name }` or a learned artifact `{ kind, version, config, state }`, with optional `meta`. It is checked before anything is written; a malformed one is refused with KNOBOS_REGISTRY_INVALID_ARTIFACT naming the field inside it (`artifact.heuristic`) and the rule. Versions are assigned atomically: concurrent registers get distinct consecutive versions. With an `Idempotency-Key` header, a retry of the same request within 24 h answers the version the first one registered and registers nothing more.',
        headers: idempotentHeaders,
        body: {
          type: 'object',
          required: ['name', 'kind', 'artifact'],
          additionalProperties: false,
          properties: {
            name: policyName,
            kind: { type: 'string', enum: [...POLICY_KINDS] },
            decisionPoint: { type: 'string', minLength: 1, maxLength: 100 },
            artifact: { type: 'object', description: 'checked by the registry' },
            lineage: {
              type: 'object',
              additionalProperties: false,
              properties: {
                parent: { type: 'integer', minimum: 1, maximum: 1_000_000 },
                learner: { type: 'string', minLength: 1, maxLength: 200 },
                run: { type: 'string', minLength: 1, maxLength: 200 },
              },
            },
            reason,
          },
        },
        response: { 201: policyFull, ...errors(409) },
      },
    },
    async (request, reply) => {
      const row = await registry.register(request.body, request.auth.actor, requestIdOf(request));
      return reply.code(201).send(row);
    },
  );

  app.get<Named>(
    '/api/policies/:name',
    {
      schema: {
        tags: TAGS,
        summary: "A policy's versions (newest first, at most 100) and its live version",
        headers,
        params: nameParams,
        response: {
          200: {
            type: 'object',
            required: ['name', 'kind', 'latest', 'live', 'versions'],
            properties: {
              name: { type: 'string' },
              kind: { type: 'string' },
              latest: { type: 'integer' },
              live: { type: ['integer', 'null'], description: 'null: no knob selects it' },
              versions: { type: 'array', items: policySummary },
            },
          },
          ...errors(404),
        },
      },
    },
    async (request) => {
      const { name } = request.params;
      const r = registry;
      const [{ policies }, live] = await Promise.all([
        r.table.list({ name, limit: 100 }),
        r.live(name),
      ]);
      const latest = policies[0];
      if (!latest)
        throw new NotFoundError(`policy ${name} does not exist`, {
          target: name,
          field: 'name',
          rule: 'exists',
        });
      return {
        name,
        kind: latest.kind,
        latest: latest.version,
        live,
        versions: summaries(policies),
      };
    },
  );

  app.get<Versioned>(
    '/api/policies/:name/versions/:version',
    {
      schema: {
        tags: TAGS,
        summary: 'One version with its artifact, lineage and reports',
        headers,
        params: versionParams,
        response: { 200: policyFull, ...errors(404) },
      },
    },
    async (request) => (await registry.table.get(request.params.name, request.params.version)).row,
  );

  app.get<Versioned>(
    '/api/policies/:name/versions/:version/lineage',
    {
      schema: {
        tags: TAGS,
        summary: 'A version, its parent chain (nearest first) and the versions derived from it',
        headers,
        params: versionParams,
        response: {
          200: {
            type: 'object',
            properties: {
              policy: policySummary,
              ancestors: { type: 'array', items: policySummary },
              children: { type: 'array', items: policySummary },
            },
          },
          ...errors(404),
        },
      },
    },
    async (request) => {
      const l = await registry.table.lineage(request.params.name, request.params.version);
      return {
        policy: summarize(l.policy),
        ancestors: summaries(l.ancestors),
        children: summaries(l.children),
      };
    },
  );

  const simulation = (action: 'evaluate' | 'shadow', summary: string, description: string) =>
    app.post<Versioned & { Body: EvalBody }>(
      `/api/policies/:name/versions/:version/${action}`,
      {
        config: WRITE,
        schema: {
          tags: TAGS,
          summary,
          description,
          headers,
          params: versionParams,
          body: evalBody,
          response: { 200: policySummary, ...errors(404, 409, 422, 429) },
        },
      },
      async (request) => {
        const { name, version } = request.params;
        const o = {
          actor: request.auth.actor,
          reason: request.body.reason,
          spec: specOf(request.body),
        };
        const row = await registry[action](name, version, o);
        return summarize(row);
      },
    );
  simulation(
    'evaluate',
    'Evaluate a scheduling version in simulation against the live policy and the heuristics',
    'TPC-H query DAGs at the given offered load (default 85%) over a few seeds, in a worker thread (one at a time; a full queue answers 429). The report goes on the row (simReport); a draft not worse than live becomes a candidate.',
  );
  simulation(
    'shadow',
    'Run a candidate in shadow beside the live policy (asked at every decision, never acting)',
    "The live policy acts in the simulator; the candidate is asked at each of its decisions. The report (shadowReport) has the decision divergence and the predicted outcome; the row moves to shadow unless the candidate came out worse. Source: the live policy's decisions on simulated TPC-H traffic (the live scheduler's shadow mode, the scheduler.shadow_policy knob, runs the heuristics only, not registry versions).",
  );

  app.post<Versioned & { Body: { reason: string } }>(
    '/api/policies/:name/versions/:version/promote',
    {
      config: WRITE,
      schema: {
        tags: TAGS,
        summary: 'Promote a candidate or shadow version: a proposal through the knobs table',
        description:
          "Creates a proposal changing the policy's knob (scheduler.policy_version for 'scheduler') with the version's reports, then promotes it in one atomic step of the knobs table (version, history, audit, proposal live). The knob's cooldown, pin and the freeze apply; a refused promotion rejects its proposal.",
        headers,
        params: versionParams,
        body: reasonBody,
        response: { 200: policySummary, ...errors(404, 409, 422, 423) },
      },
    },
    async (request) =>
      summarize(
        await registry.promote(request.params.name, request.params.version, {
          actor: request.auth.actor,
          reason: request.body.reason,
        }),
      ),
  );

  app.post<Versioned & { Body: { reason: string } }>(
    '/api/policies/:name/versions/:version/retire',
    {
      config: WRITE,
      schema: {
        tags: TAGS,
        summary: 'Retire a version that is not live',
        headers,
        params: versionParams,
        body: reasonBody,
        response: { 200: policySummary, ...errors(404, 409) },
      },
    },
    async (request) =>
      summarize(
        await registry.retire(request.params.name, request.params.version, {
          actor: request.auth.actor,
          reason: request.body.reason,
        }),
      ),
  );

  app.post<Named & { Body: { reason: string } }>(
    '/api/policies/:name/rollback',
    {
      config: WRITE,
      schema: {
        tags: TAGS,
        summary: "Roll the policy's knob back to the version the live one replaced",
        description:
          'The live proposal is marked rolled_back in the same step as the knob change; the rolled-back version is retired and the restored one (if any) is live again. With an `Idempotency-Key` header, a retry of the same request within 24 h answers the first outcome instead of rolling back one version more; the key with another request is refused (field requestId, rule same_request).',
        headers: idempotentHeaders,
        params: nameParams,
        body: reasonBody,
        response: {
          200: {
            type: 'object',
            properties: {
              value: { type: 'integer', description: 'the knob value now: the live version' },
              knobVersion: { type: 'integer' },
              rolledBack: { anyOf: [policySummary, { type: 'null' }] },
              live: { anyOf: [policySummary, { type: 'null' }] },
            },
          },
          ...errors(404, 409, 422, 423),
        },
      },
    },
    async (request) => {
      const r = await registry.rollback(
        request.params.name,
        { actor: request.auth.actor, reason: request.body.reason },
        requestIdOf(request),
      );
      return {
        value: r.value,
        knobVersion: r.knobVersion,
        rolledBack: r.rolledBack ? summarize(r.rolledBack) : null,
        live: r.live ? summarize(r.live) : null,
      };
    },
  );

  app.get<{ Querystring: { limit: number; before?: string } }>(
    '/api/registry/audit',
    {
      schema: {
        tags: TAGS,
        summary: "The registry's audit log: registrations, evaluations, moves, newest first",
        headers,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            limit: { type: 'integer', minimum: 1, maximum: 500, default: 100 },
            before: streamId,
          },
        },
        response: {
          200: auditPage,
          ...errors(),
        },
      },
    },
    async (request) => {
      const { limit, before } = request.query;
      // One entry more than asked says whether a next page exists.
      const got = await registry.table.audit({ limit: limit + 1, ...(before ? { before } : {}) });
      const audit = got.slice(0, limit);
      return { audit, next: got.length > limit ? (audit[audit.length - 1]?.id ?? null) : null };
    },
  );
};
