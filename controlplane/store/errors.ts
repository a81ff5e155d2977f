// Typed errors of the store and the knobs table. Scripts return coded failures; ONE function
// (errorFromCode) maps a code to its typed error, so a user sees the same message whichever
// path failed. Every error has a stable code and an HTTP status for the API.

export abstract class KnobosError extends Error {
  abstract readonly code: string;
  abstract readonly status: number;
  readonly details: Record<string, unknown>;
  constructor(message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = new.target.name;
    this.details = details;
  }
}

export class NotFoundError extends KnobosError {
  readonly code = 'KNOBOS_NOT_FOUND';
  readonly status = 404;
}

/** The row changed since the version the caller based its change on. */
export class StaleVersionError extends KnobosError {
  readonly code = 'KNOBOS_STALE_VERSION';
  readonly status = 409;
}

/**
 * Bad input: names the field and the rule it broke. Each area's input errors extend it with
 * their own stable code, so every one carries `field` and `rule` the same way.
 */
export abstract class FieldError extends KnobosError {
  constructor(
    message: string,
    readonly field: string,
    readonly rule: string,
    details: Record<string, unknown> = {},
  ) {
    super(message, { field, rule, ...details });
  }
}

/** A value or change breaks a rule of the knob's declaration (type, domain, step, cooldown). */
export class ValidationError extends FieldError {
  readonly code = 'KNOBOS_INVALID';
  readonly status = 400;
}

export class PinnedError extends KnobosError {
  readonly code = 'KNOBOS_PINNED';
  readonly status = 423;
}

export class FrozenError extends KnobosError {
  readonly code = 'KNOBOS_FROZEN';
  readonly status = 423;
}

/** A row is in a state the operation does not accept (a proposal already rejected). */
export class StateError extends KnobosError {
  readonly code = 'KNOBOS_STATE';
  readonly status = 409;
}

export class AlreadyExistsError extends KnobosError {
  readonly code = 'KNOBOS_EXISTS';
  readonly status = 409;
}

/**
 * A stored row that does not decode by its table's schema (a number that is none, a required
 * field missing, JSON that does not parse): written by something other than the table, or
 * damaged. Names the table, the row, the field and the rule; the server's fault, not the caller's.
 */
export class CorruptRowError extends KnobosError {
  readonly code = 'KNOBOS_CORRUPT_ROW';
  readonly status = 500;
}

/**
 * A write ran on the primary, but fewer replicas than store.replica_acks asks for acknowledged
 * it in time (or its node connection changed under it): it may be lost if that primary fails
 * now. Its outcome is unknown either way: retry only what is safe to repeat (idempotency keys,
 * versioned writes). See store/replica-acks.ts.
 */
export class ReplicaAckError extends KnobosError {
  readonly code = 'KNOBOS_NOT_DURABLE';
  readonly status = 503;
}

/** Script failure codes; keep in step with scripts/includes/codes.lua. */
export const SCRIPT_CODES = {
  OK: 0,
  MISSING: -1,
  STALE: -2,
  PINNED: -3,
  FROZEN: -4,
  EXISTS: -5,
  STATE: -6,
} as const;

export interface CodeContext {
  /** What was being changed, e.g. "knob scheduler.policy" or "tasks row t1". */
  target: string;
  baseVersion?: number;
}

/** Maps a script's { code, detail } reply to a typed error; null when the code is OK. */
export function errorFromCode(reply: readonly unknown[], ctx: CodeContext): KnobosError | null {
  const code = Number(reply[0]);
  // Scripts put the detail (who pinned, who froze, the current version) last.
  const detail = reply[reply.length - 1];
  switch (code) {
    case SCRIPT_CODES.OK:
      return null;
    case SCRIPT_CODES.MISSING:
      return new NotFoundError(`${ctx.target} does not exist`, { target: ctx.target });
    case SCRIPT_CODES.STALE:
      return new StaleVersionError(
        // Stale at its own base version: that version was written again with another change
        // (the one read was lost, e.g. in a failover to a lagging replica).
        Number(detail) === ctx.baseVersion
          ? `${ctx.target}: version ${ctx.baseVersion} was written again since it was read (a write was lost); read it again`
          : `${ctx.target}: stale version: based on version ${ctx.baseVersion ?? '?'}, current is ${String(detail)}`,
        {
          target: ctx.target,
          field: 'version',
          rule: 'base_version',
          baseVersion: ctx.baseVersion,
          currentVersion: Number(detail),
        },
      );
    case SCRIPT_CODES.PINNED:
      return new PinnedError(`${ctx.target} is pinned by ${String(detail)}; unpin it first`, {
        target: ctx.target,
        field: 'pinned',
        rule: 'pinned',
        pinnedBy: detail,
      });
    case SCRIPT_CODES.FROZEN:
      return new FrozenError(`automation is frozen (by ${String(detail)}): ${ctx.target} refused`, {
        target: ctx.target,
        field: 'freeze',
        rule: 'frozen',
        frozenBy: detail,
      });
    case SCRIPT_CODES.STATE:
      return new StateError(
        `${ctx.target}: is ${String(detail)}, which this step does not accept`,
        {
          target: ctx.target,
          field: 'status',
          rule: 'state',
          status: detail,
        },
      );
    case SCRIPT_CODES.EXISTS:
      return new AlreadyExistsError(`${ctx.target} already exists`, { target: ctx.target });
    default:
      throw new Error(`script returned unknown code ${code} for ${ctx.target}`);
  }
}
