// Changing knobs (operator role; refused to tenant-scoped tokens, since knobs are shared by
// all tenants): check a change without writing it (the dry run a proposal goes through),
// promote it on a base version, roll back to an earlier version, pin (on a base version) and
// unpin. Every write is one atomic step of the knobs table, audited with the token's identity
// as the actor.
import type { KnobValue } from '../../../knobs/index.ts';
import type { FastifyRequest } from 'fastify';
import { idempotentHeaders, requestIdOf } from '../idempotency.ts';
import {
  errors,
  headers,
  knobParams,
  knobRow,
  knobValue,
  reason,
  ref,
  version,
} from '../schemas.ts';
import { checkDirectKnobChange, checkDirectRollback } from '../../registry/promotion.ts';
import { ApiError } from '../errors.ts';
import type { RouteModule } from './types.ts';

const TAGS = ['knob actions'];
const WRITE = { access: 'operator', scope: 'global' } as const;

interface ChangeBody {
  value: KnobValue;
  baseVersion: number;
  reason: string;
  proposalId?: string;
}

const changeBody = {
  type: 'object',
  required: ['value', 'baseVersion', 'reason'],
  additionalProperties: false,
  properties: {
    value: knobValue,
    baseVersion: { ...version, description: 'the version the change is based on' },
    reason,
    proposalId: { type: 'string', maxLength: 100, pattern: '^[A-Za-z0-9_.:-]+$' },
  },
} as const;

const promoteResult = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    value: {},
    version: { type: 'integer' },
    epoch: { type: 'integer' },
    row: ref('KnobRow'),
  },
} as const;

// The row as the action left it, and whether it changed anything (as freeze answers).
const pinResult = {
  type: 'object',
  required: [...knobRow.required, 'changed'],
  properties: {
    ...knobRow.properties,
    changed: {
      type: 'boolean',
      description:
        'false when nothing was written: an unpin of an unpinned knob, or a pin the caller already holds (same actor and reason)',
    },
  },
} as const;

type Named = { Params: { name: string } };

/** The knob write's request id (from its Idempotency-Key), as an option. */
function requestId(request: FastifyRequest): { requestId?: string } {
  const id = requestIdOf(request);
  return id === undefined ? {} : { requestId: id };
}

/** Nesting refused in a body value: far deeper than any knob's (a placement map is two). */
const VALUE_DEPTH_MAX = 32;

/**
 * The path of a non-finite number inside a body value, or null when there is none. A value
 * nested deeper than VALUE_DEPTH_MAX is refused (a 10 KB body of nested arrays overflowed the
 * stack here: a 500).
 */
function nonFinite(v: unknown, path: string, depth = 0): string | null {
  if (typeof v === 'number') return Number.isFinite(v) ? null : path;
  if (typeof v !== 'object' || v === null) return null;
  if (depth >= VALUE_DEPTH_MAX)
    throw new ApiError(
      'KNOBOS_API_VALIDATION',
      `body.value is nested deeper than ${VALUE_DEPTH_MAX} levels`,
      { field: 'body.value', rule: 'depth' },
    );
  for (const [k, x] of Object.entries(v)) {
    const at = nonFinite(x, `${path}.${k}`, depth + 1);
    if (at) return at;
  }
  return null;
}

function change(request: FastifyRequest<Named & { Body: ChangeBody }>) {
  const b = request.body;
  // JSON has no Infinity, but a number beyond the double range (1e400) parses to it: the body
  // is at fault, refused like the schema's own refusals, not as a knob domain rule.
  const inf = nonFinite(b.value, 'body.value');
  if (inf)
    throw new ApiError(
      'KNOBOS_API_VALIDATION',
      `${inf} must be a finite number (a JSON number beyond the double range is not one)`,
      { field: inf, rule: 'type' },
    );
  checkDirectKnobChange(request.params.name, b.value, 'body.value');
  return {
    name: request.params.name,
    value: b.value,
    baseVersion: b.baseVersion,
    reason: b.reason,
    actor: request.auth.actor,
    actorKind: 'operator' as const,
    ...(b.proposalId ? { proposalId: b.proposalId } : {}),
    ...requestId(request),
  };
}

export const knobActionRoutes: RouteModule = (app, { knobs }) => {
  app.post<Named & { Body: ChangeBody }>(
    '/api/knobs/:name/check',
    {
      config: WRITE,
      schema: {
        tags: TAGS,
        summary: 'Dry run: would this change be accepted now? Writes nothing',
        description:
          'Checks the domain, the base version, the pin, the freeze switch, the step and cooldown limits, and a proposalId as promote does (it exists, and proposes exactly this change); answers 200 with the current row, or the error the promotion would get.',
        headers,
        params: knobParams,
        body: changeBody,
        response: {
          200: {
            type: 'object',
            properties: { ok: { type: 'boolean' }, current: ref('KnobRow') },
          },
          ...errors(404, 409, 423),
        },
      },
    },
    async (request) => ({ ok: true, current: await knobs.check(change(request)) }),
  );

  app.post<Named & { Body: ChangeBody }>(
    '/api/knobs/:name/promote',
    {
      config: WRITE,
      schema: {
        tags: TAGS,
        summary: 'Change a knob on a base version (one atomic step with history and audit)',
        description:
          'A knob that selects a registry policy version (scheduler.policy_version) takes only 0 here (learned policies off); a version goes live through POST /api/policies/{name}/versions/{version}/promote. With an `Idempotency-Key` header, a retry of the same request within 24 h answers the version the first one made (it is not refused as stale); the key with another request is refused (field requestId, rule same_request). A proposalId must name an existing proposal (else 404, field proposalId, rule exists) whose changes are exactly this one (else 400, rule matches_changes); it goes live in the same step.',
        headers: idempotentHeaders,
        params: knobParams,
        body: changeBody,
        response: { 200: promoteResult, ...errors(404, 409, 423) },
      },
    },
    async (request) => {
      const res = await knobs.promote(change(request));
      return { ...res, row: await knobs.get(res.name) };
    },
  );

  app.post<Named & { Body: { toVersion: number; baseVersion?: number; reason: string } }>(
    '/api/knobs/:name/rollback',
    {
      config: WRITE,
      schema: {
        tags: TAGS,
        summary: 'Restore the value of an earlier version, as a new version',
        description:
          'Undoing the last change (restoring the value the current version replaced) skips the step and cooldown limits; a rollback to any older version is held to them as a promotion is. Give baseVersion so a concurrent change fails as stale instead of being overwritten. A knob that selects a registry policy version (scheduler.policy_version) rolls back here only to 0; roll a policy back through POST /api/policies/{name}/rollback. An `Idempotency-Key` header works as for promote.',
        headers: idempotentHeaders,
        params: knobParams,
        body: {
          type: 'object',
          required: ['toVersion', 'reason'],
          additionalProperties: false,
          properties: { toVersion: version, baseVersion: version, reason },
        },
        response: { 200: promoteResult, ...errors(404, 409, 423) },
      },
    },
    async (request) => {
      const b = request.body;
      await checkDirectRollback(knobs, request.params.name, b.toVersion, 'body.toVersion');
      const res = await knobs.rollback({
        name: request.params.name,
        toVersion: b.toVersion,
        reason: b.reason,
        actor: request.auth.actor,
        actorKind: 'operator',
        ...(b.baseVersion !== undefined ? { baseVersion: b.baseVersion } : {}),
        ...requestId(request),
      });
      return { ...res, row: await knobs.get(res.name) };
    },
  );

  app.post<Named & { Body: { reason: string; baseVersion?: number } }>(
    '/api/knobs/:name/pin',
    {
      config: WRITE,
      schema: {
        tags: TAGS,
        summary: 'Pin a knob: every promotion is refused until it is unpinned',
        description:
          'Pins the knob at the value it has now. Give baseVersion (the version shown to the operator) so a pin on a knob that moved since is refused as stale (409 KNOBOS_STALE_VERSION with currentVersion) instead of holding a value nobody saw. A knob already pinned is refused (409 KNOBOS_STATE, field pinned, rule not_pinned, with pinnedBy and pinReason): unpin it first. Answers the row and changed: true. A pin the caller already holds, asked again (same actor and reason, the knob still at baseVersion if given), answers changed: false and writes nothing, so a retry after a lost answer (or a 503 KNOBOS_NOT_DURABLE) is safe; no Idempotency-Key is needed or read.',
        headers,
        params: knobParams,
        body: {
          type: 'object',
          required: ['reason'],
          additionalProperties: false,
          properties: {
            reason,
            baseVersion: { ...version, description: 'the version the pin is based on' },
          },
        },
        response: { 200: pinResult, ...errors(404, 409) },
      },
    },
    async (request) => {
      const { name } = request.params;
      const b = request.body;
      const changed = await knobs.pin(name, request.auth.actor, b.reason, {
        ...(b.baseVersion !== undefined ? { baseVersion: b.baseVersion } : {}),
      });
      return { ...(await knobs.get(name)), changed };
    },
  );

  app.post<Named & { Body: { reason: string; pinnedBy?: string; pinReason?: string } }>(
    '/api/knobs/:name/unpin',
    {
      config: WRITE,
      schema: {
        tags: TAGS,
        summary: 'Unpin a knob',
        description:
          'Answers the row and changed. A knob that is not pinned is left as it is: changed false, no audit entry, no event (so a retry is safe; no Idempotency-Key is needed or read). Give pinnedBy (who pinned the pin shown to the operator) and pinReason (its reason) so a pin set since (by anyone else, or by the same actor for another reason) is refused (409 KNOBOS_STATE, field pinnedBy, rule matches_pin, with the current pinnedBy and pinReason) instead of removing a pin nobody saw.',
        headers,
        params: knobParams,
        body: {
          type: 'object',
          required: ['reason'],
          additionalProperties: false,
          properties: {
            reason,
            pinnedBy: {
              type: 'string',
              minLength: 1,
              maxLength: 500,
              description: 'who pinned the pin the unpin is meant for',
            },
            pinReason: {
              type: 'string',
              minLength: 1,
              maxLength: 500,
              description: "that pin's reason (the same actor may have pinned again since)",
            },
          },
        },
        response: { 200: pinResult, ...errors(404, 409) },
      },
    },
    async (request) => {
      const { name } = request.params;
      const b = request.body;
      const changed = await knobs.unpin(name, request.auth.actor, b.reason, {
        ...(b.pinnedBy !== undefined ? { pinnedBy: b.pinnedBy } : {}),
        ...(b.pinReason !== undefined ? { pinReason: b.pinReason } : {}),
      });
      return { ...(await knobs.get(name)), changed };
    },
  );
};
