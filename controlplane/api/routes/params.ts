// Request parameters the service and telemetry routes share, so they agree on the rules: a
// closed params or query object, a choice among configured shards (the first the default),
// and a time window in ms with its defaults and its check.
import type { Clock } from '../../knobs/clock.ts';
import { ValidationError } from '../../store/errors.ts';

/** A params or query-string object: unknown properties are refused (400), not dropped. */
export function closed<P extends Record<string, unknown>>(properties: P, required?: string[]) {
  return {
    type: 'object',
    ...(required ? { required } : {}),
    additionalProperties: false,
    properties,
  } as const;
}

/** A shard by name among those configured; `what` names the service's kind of shard. */
export function shardChoice(what: string, shards: readonly string[]) {
  return {
    type: 'string',
    enum: [...shards],
    description: `a ${what} (default ${shards[0]})`,
  } as const;
}

/** The shard a request names, or the first configured. */
export const pickShard = (shards: readonly string[], asked?: string): string =>
  asked ?? (shards[0] as string);

/** A time in ms since the epoch (up to the largest Date). */
const ms = { type: 'integer', minimum: 0, maximum: 8.64e15 } as const;
export const windowParams = { fromMs: ms, toMs: ms } as const;

/** The window a query asks for: it ends now and spans `spanMs` unless told; from before to. */
export function timeWindow(
  q: { fromMs?: number; toMs?: number },
  clock: Clock,
  spanMs: number,
): { fromMs: number; toMs: number } {
  const toMs = q.toMs ?? clock.now();
  // Clipped at the epoch: a negative start reached Redis as a stream id (a 500).
  const fromMs = q.fromMs ?? Math.max(0, toMs - spanMs);
  if (fromMs >= toMs)
    throw new ValidationError(
      'query.fromMs must be before query.toMs',
      'query.fromMs',
      'before_to',
    );
  return { fromMs, toMs };
}
