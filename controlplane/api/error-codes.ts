// The ONE errors registry of the API: every error a client can see has a stable code, an
// HTTP status and a one-line summary. Typed errors of the store and the services
// (KnobosError subclasses in controlplane/<area>/errors.ts) carry their own code and status;
// they are listed here too, so the registry is complete: test/api-errors.test.ts checks that
// every error class has its code here with the same status, and that every code here is
// documented in docs/api-errors.md. A code is never reused for another meaning.

export interface ErrorCodeSpec {
  status: number;
  /** When a client sees this code. */
  summary: string;
}

/** controlplane/store/errors.ts: the store and the knobs table. */
const STORE_CODES = {
  KNOBOS_NOT_FOUND: { status: 404, summary: 'the knob, row or token does not exist' },
  KNOBOS_STALE_VERSION: {
    status: 409,
    summary: 'the row changed since the base version the change was based on',
  },
  KNOBOS_INVALID: {
    status: 400,
    summary: "a value or change breaks a rule of the knob's declaration or the table's schema",
  },
  KNOBOS_PINNED: { status: 423, summary: 'the knob is pinned; unpin it first' },
  KNOBOS_FROZEN: { status: 423, summary: 'automation is frozen; automation actors are refused' },
  KNOBOS_STATE: { status: 409, summary: 'the row is in a state the operation does not accept' },
  KNOBOS_EXISTS: { status: 409, summary: 'the row already exists' },
  KNOBOS_CORRUPT_ROW: {
    status: 500,
    summary: "a stored row does not decode by its table's schema (written by another writer)",
  },
  KNOBOS_NOT_DURABLE: {
    status: 503,
    summary: 'the write ran, but fewer replicas than store.replica_acks acknowledged it in time',
  },
} as const satisfies Record<string, ErrorCodeSpec>;

/** controlplane/scheduler/errors.ts, and migration-row.ts (a tenant's move between shards) */
const SCHEDULER_CODES = {
  KNOBOS_SCHEDULER_INVALID: { status: 400, summary: 'a task or worker description breaks a rule' },
  KNOBOS_SCHEDULER_UNKNOWN_PARENT: {
    status: 422,
    summary: 'a submitted task depends on a task the shard does not know',
  },
  KNOBOS_SCHEDULER_PARENT_MOVING: {
    status: 409,
    summary: 'a task depends on an open task of another tenant that is moving to another shard',
  },
  KNOBOS_SCHEDULER_UNKNOWN_TASK: { status: 404, summary: 'the task does not exist' },
  KNOBOS_SCHEDULER_IDEMPOTENCY_CONFLICT: {
    status: 409,
    summary: 'an idempotency key (or id) names a task submitted with other content',
  },
  KNOBOS_SCHEDULER_TENANT_MOVING: {
    status: 503,
    summary:
      "the tenant is moving between shards: a submit's hold ran out, or a cancel met the move; retry later",
  },
  KNOBOS_PLACEMENT_MOVE_REFUSED: {
    status: 409,
    summary: "a tenant's move was refused: another tenant's unfinished task depends on one of its",
  },
  KNOBOS_PLACEMENT_LOCK_LOST: {
    status: 409,
    summary: "a migrator's lease on a move ran out and another took the move over",
  },
} as const satisfies Record<string, ErrorCodeSpec>;

/** controlplane/messaging/errors.ts */
const MESSAGING_CODES = {
  KNOBOS_MESSAGING_INVALID: { status: 400, summary: 'a bad messaging option or argument' },
  KNOBOS_MESSAGING_TOPIC_NOT_FOUND: { status: 404, summary: 'the topic does not exist' },
  KNOBOS_MESSAGING_BACKPRESSURE: {
    status: 503,
    summary: "the producer's buffer is full; retry later",
  },
  KNOBOS_MESSAGING_PUBLISH_FAILED: {
    status: 503,
    summary: 'a batch could not be written within the retry bound; not acknowledged',
  },
  KNOBOS_MESSAGING_CLOSED: { status: 409, summary: 'publishing after the producer was closed' },
  KNOBOS_MESSAGING_SHRINK_REFUSED: {
    status: 409,
    summary: 'a topic may not shrink: partitions only grow',
  },
  KNOBOS_MESSAGING_OUTPUT_TYPE: {
    status: 422,
    summary: 'a handler wrote to an output key that holds another Redis type',
  },
} as const satisfies Record<string, ErrorCodeSpec>;

/** controlplane/files/errors.ts */
const FILES_CODES = {
  KNOBOS_FILES_NOT_FOUND: { status: 404, summary: 'no file or directory at the path' },
  KNOBOS_FILES_EXISTS: { status: 409, summary: 'the path already exists' },
  KNOBOS_FILES_NOT_A_DIRECTORY: { status: 409, summary: 'a path component is not a directory' },
  KNOBOS_FILES_IS_A_DIRECTORY: { status: 409, summary: 'the path is a directory' },
  KNOBOS_FILES_NOT_EMPTY: { status: 409, summary: 'the directory is not empty' },
  KNOBOS_FILES_PERMISSION: { status: 403, summary: 'the caller lacks a permission on the path' },
  KNOBOS_FILES_INVALID: { status: 400, summary: 'bad input to the file service' },
  KNOBOS_FILES_LIMIT: { status: 413, summary: 'a bound of the file service was reached' },
  KNOBOS_FILES_NO_VOLUME: { status: 503, summary: 'the volume does not exist (yet)' },
} as const satisfies Record<string, ErrorCodeSpec>;

/** controlplane/registry/errors.ts: the policy registry. */
const REGISTRY_CODES = {
  KNOBOS_REGISTRY_INVALID: {
    status: 400,
    summary:
      'a policy registration (name, kind, decision point, lineage) or evaluation spec breaks a rule',
  },
  KNOBOS_REGISTRY_INVALID_ARTIFACT: {
    status: 400,
    summary: 'a malformed policy artifact; names the field inside it and the rule',
  },
  KNOBOS_REGISTRY_UNSUPPORTED: {
    status: 422,
    summary: 'the registry cannot simulate, run or promote this policy in this build',
  },
  KNOBOS_REGISTRY_EVALUATION_FAILED: {
    status: 503,
    summary: 'an evaluation did not finish (time limit, its thread gone, the server stopping)',
  },
  KNOBOS_REGISTRY_BUSY: {
    status: 429,
    summary: 'the simulation queue is full; retry later',
  },
} as const satisfies Record<string, ErrorCodeSpec>;

/** Codes the API itself adds (request shape, auth, limits, availability). */
export const API_CODES = {
  KNOBOS_API_VALIDATION: {
    status: 400,
    summary: "the request's body, query, params or headers do not match the route's schema",
  },
  KNOBOS_API_BAD_JSON: { status: 400, summary: 'the body is not valid JSON, or is empty' },
  KNOBOS_API_BAD_REQUEST: {
    status: 400,
    summary: 'the request is malformed at the HTTP level (URL encoding, content length)',
  },
  KNOBOS_API_UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    summary: 'the body has a content type other than application/json',
  },
  KNOBOS_API_BODY_TOO_LARGE: { status: 413, summary: "the body exceeds the server's limit" },
  KNOBOS_API_URI_TOO_LONG: { status: 414, summary: 'a path parameter is longer than the limit' },
  KNOBOS_API_ROUTE_NOT_FOUND: { status: 404, summary: 'no route has this method and path' },
  KNOBOS_API_UNAUTHENTICATED: {
    status: 401,
    summary: 'no token, a malformed Authorization header, or an unknown or revoked token',
  },
  KNOBOS_API_FORBIDDEN: {
    status: 403,
    summary: "the token's role or tenant scope does not allow this action",
  },
  KNOBOS_API_TOO_MANY_STREAMS: {
    status: 429,
    summary: 'the server already serves its maximum number of event streams',
  },
  KNOBOS_API_UNAVAILABLE: {
    status: 503,
    summary: 'Redis is not reachable right now, or the server is shutting down',
  },
  KNOBOS_API_INTERNAL: {
    status: 500,
    summary: 'a bug: the server failed in a way it did not expect (logged with the request id)',
  },
} as const satisfies Record<string, ErrorCodeSpec>;

export const ERROR_CODES: Readonly<Record<string, ErrorCodeSpec>> = {
  ...STORE_CODES,
  ...SCHEDULER_CODES,
  ...MESSAGING_CODES,
  ...FILES_CODES,
  ...REGISTRY_CODES,
  ...API_CODES,
};
