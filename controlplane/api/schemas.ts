// JSON schemas shared by the routes: validated by fastify, and published as the OpenAPI
// document. Request objects reject unknown properties; numbers in query strings are coerced
// from text by fastify's validator.
import { errorBodySchema } from './errors.ts';

/** Every route declares its headers: the bearer token (checked by the auth hook). */
export const headers = {
  type: 'object',
  properties: {
    authorization: {
      type: 'string',
      maxLength: 512,
      description: 'Bearer <token>: an API token, or the KNOBOS_ADMIN_TOKEN',
    },
  },
} as const;

export const knobName = {
  type: 'string',
  minLength: 1,
  maxLength: 100,
  pattern: '^[a-z][a-z0-9_]*(\\.[a-z0-9_]+)*$',
  description: 'a knob name of the catalog, e.g. scheduler.policy',
} as const;

export const knobParams = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: { name: knobName },
} as const;

export const reason = {
  type: 'string',
  minLength: 1,
  maxLength: 500,
  // One line of text: something besides spaces, and no control characters (they would land in
  // history and audit as they are, and in every terminal that shows them).
  pattern: '^[^\\u0000-\\u001f\\u007f]*[^\\s\\u0000-\\u001f\\u007f][^\\u0000-\\u001f\\u007f]*$',
  description: 'why: kept in history and audit (one line, no control characters)',
} as const;

export const version = { type: 'integer', minimum: 1, maximum: 2 ** 31 } as const;

/** A stream entry id, `<ms>-<seq>`: a page cursor. */
export const streamId = { type: 'string', pattern: '^[0-9]{1,15}-[0-9]{1,15}$' } as const;

export const limit = (max: number, dflt: number) =>
  ({ type: 'integer', minimum: 1, maximum: max, default: dflt }) as const;

export const knobValue = {
  description:
    'the new value, as JSON of the knob type: a number, a string (enum), a boolean, or an object of name -> shard (placement)',
} as const;

const anyObject = { type: 'object', additionalProperties: true } as const;

export const knobRow = {
  $id: 'KnobRow',
  type: 'object',
  required: ['name', 'value', 'version'],
  properties: {
    name: { type: 'string' },
    service: { type: 'string' },
    type: { type: 'string' },
    spec: { ...anyObject, description: 'the declaration: domain, unit, safety limits, cost' },
    value: {},
    default: {},
    version: { type: 'integer' },
    updatedAt: { type: 'number', description: 'ms since the epoch' },
    updatedBy: { type: 'string' },
    reason: { type: 'string' },
    proposalId: { type: 'string' },
    pinned: { type: 'boolean' },
    pinnedBy: { type: 'string' },
    pinReason: { type: 'string' },
  },
} as const;

export const historyEntry = {
  $id: 'HistoryEntry',
  type: 'object',
  properties: {
    id: { type: 'string' },
    version: { type: 'integer' },
    old: {},
    new: {},
    actor: { type: 'string' },
    actorKind: { type: 'string', enum: ['operator', 'automation', 'system'] },
    reason: { type: 'string' },
    proposalId: { type: 'string' },
    evidence: {},
    at: { type: 'number' },
    kind: { type: 'string', enum: ['seed', 'promote', 'rollback'] },
  },
} as const;

export const auditEntry = {
  $id: 'AuditEntry',
  type: 'object',
  properties: {
    id: { type: 'string' },
    source: { type: 'string', description: 'which audit log: knobs, tokens, policies' },
    at: { type: 'number' },
    actor: { type: 'string' },
    action: { type: 'string' },
    target: { type: 'string' },
    outcome: { type: 'string' },
    detail: anyObject,
  },
} as const;

export const freezeState = {
  $id: 'FreezeState',
  type: ['object', 'null'],
  properties: { by: { type: 'string' }, reason: { type: 'string' }, at: { type: 'number' } },
} as const;

export const SHARED_SCHEMAS = [errorBodySchema, knobRow, historyEntry, auditEntry, freezeState];

export const ref = (id: string) => ({ $ref: `${id}#` }) as const;

/** A page of an audit log, newest first (/api/audit, /api/registry/audit). */
export const auditPage = {
  type: 'object',
  required: ['audit', 'next'],
  properties: {
    audit: { type: 'array', items: ref('AuditEntry') },
    next: {
      type: ['string', 'null'],
      description: 'pass as `before` for the next page; null on the last page',
    },
  },
} as const;

/** Error responses a route may give, for the OpenAPI document. */
export function errors(...statuses: number[]): Record<number, { $ref: string }> {
  return Object.fromEntries(
    [...new Set([400, 401, 403, ...statuses])].map((s) => [s, ref('ApiError')]),
  );
}
