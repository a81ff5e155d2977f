// Typed errors of the messaging service. Each has a stable code (KNOBOS_MESSAGING_*) and an
// HTTP status for the API; the scripts' failure codes are mapped by the store's errorFromCode.
import { KnobosError } from '../store/errors.ts';

/** A bad option or argument: names the field and the rule it breaks. */
export class MessagingOptionError extends KnobosError {
  readonly code = 'KNOBOS_MESSAGING_INVALID';
  readonly status = 400;
  constructor(
    readonly field: string,
    readonly rule: string,
  ) {
    super(`messaging: ${field} ${rule}`, { field, rule });
  }
}

export class TopicNotFoundError extends KnobosError {
  readonly code = 'KNOBOS_MESSAGING_TOPIC_NOT_FOUND';
  readonly status = 404;
  constructor(readonly topic: string) {
    super(`messaging: topic ${topic} does not exist; create it with ensureTopic`, { topic });
  }
}

/** The producer's buffer is full (Redis is slower than the publishers); retry later. */
export class BackpressureError extends KnobosError {
  readonly code = 'KNOBOS_MESSAGING_BACKPRESSURE';
  readonly status = 503;
  constructor(readonly buffered: number) {
    super(`messaging: producer buffer full (${buffered} messages waiting); publish refused`, {
      field: 'maxBuffered',
      rule: 'bound',
      buffered,
    });
  }
}

/** A batch could not be written within the retry bound; its publishes were NOT acknowledged. */
export class PublishFailedError extends KnobosError {
  readonly code = 'KNOBOS_MESSAGING_PUBLISH_FAILED';
  readonly status = 503;
  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly attempts: number,
    cause: Error,
  ) {
    super(
      `messaging: publish to ${topic}/${partition} failed after ${attempts} attempts: ${cause.message}`,
      { topic, partition, attempts },
    );
    this.cause = cause;
  }
}

/** Publishing after close(). */
export class ProducerClosedError extends KnobosError {
  readonly code = 'KNOBOS_MESSAGING_CLOSED';
  readonly status = 409;
  constructor() {
    super('messaging: the producer is closed');
  }
}

/** Shrinking a topic would strand the messages of its removed partitions. */
export class ShrinkRefusedError extends KnobosError {
  readonly code = 'KNOBOS_MESSAGING_SHRINK_REFUSED';
  readonly status = 409;
  constructor(
    readonly topic: string,
    readonly partitions: number,
    readonly requested: number,
  ) {
    super(
      `messaging: topic ${topic} has ${partitions} partitions; shrinking to ${requested} is refused (partitions only grow)`,
      { topic, field: 'partitions', rule: 'grow_only', partitions, requested },
    );
  }
}

/** A handler wrote to an output key that holds another type (e.g. HSET on a counter). */
export class OutputTypeError extends KnobosError {
  readonly code = 'KNOBOS_MESSAGING_OUTPUT_TYPE';
  readonly status = 422;
  constructor(
    readonly key: string,
    readonly needed: string,
    readonly found: string,
  ) {
    super(`messaging: output key ${key} holds a ${found}; the write needs a ${needed}`, {
      field: 'output',
      rule: 'key_type',
      key,
      needed,
      found,
    });
  }
}

/**
 * Checks an integer option (counts, and milliseconds, which Redis takes as integers only:
 * BLOCK or XAUTOCLAIM's min-idle with a fraction fail with "ERR timeout is not an integer").
 */
export function checkInt(field: string, v: number, min: number, max: number): number {
  if (!Number.isInteger(v) || v < min || v > max)
    throw new MessagingOptionError(field, `must be an integer in [${min}, ${max}], got ${v}`);
  return v;
}

/**
 * An error's text for logs and dead-letter reasons. A handler may throw or reject with
 * anything (undefined, null, an object without toString): describing it must not throw, or
 * the error would escape the per-message handling and sink the whole batch.
 */
export function errorText(err: unknown): string {
  try {
    return err instanceof Error ? String(err.message) : String(err);
  } catch {
    return Object.prototype.toString.call(err);
  }
}
