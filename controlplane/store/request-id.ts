// Request ids make a write once-only, as the registry's register is: the write's script keeps a
// record (what the request asked, as a hash, and what it made) under the id, so the same
// request run again (ioredis resending a script whose reply was lost, or a caller retrying
// with its own key) answers the first outcome and changes nothing; another request under the
// id is refused. Shared by the knobs table, the file service and the policy registry.
import { createHash, randomUUID } from 'node:crypto';

const REQUEST_ID_RE = /^[A-Za-z0-9_.:-]{1,200}$/;

/** How long a caller's id is remembered: a retry within it changes nothing more. */
export const REQUEST_TTL_MS = 24 * 3_600_000;

/**
 * How long a generated id is remembered. Only a resend can repeat it, and a resend comes
 * within the client's reconnect budget (20 reconnect attempts on one node, 64 retries 250 ms
 * apart on a cluster: well under this), so high-rate writes (file creates) keep no day-long
 * records.
 */
export const RESEND_TTL_MS = 10 * 60_000;

export interface RequestRecord {
  id: string;
  ttlMs: number;
  /** Whether the caller gave the id (so an earlier call may have used it). */
  given: boolean;
}

/**
 * The record of a call: the caller's id, or a fresh one. A malformed id is refused with the
 * error `refuse` makes of the message (each area has its own input error).
 */
export function requestRecord(
  id: string | undefined,
  refuse: (message: string) => Error,
): RequestRecord {
  if (id === undefined) return { id: randomUUID(), ttlMs: RESEND_TTL_MS, given: false };
  return { id: checkRequestId(id, refuse), ttlMs: REQUEST_TTL_MS, given: true };
}

/** A caller's request id, or the error `refuse` makes of the message naming the rule. */
export function checkRequestId(id: string, refuse: (message: string) => Error): string {
  if (!REQUEST_ID_RE.test(id))
    throw refuse(
      `requestId: 1 to 200 letters, digits, '-', '_', '.' or ':', got ${JSON.stringify(id.slice(0, 120))}`,
    );
  return id;
}

/** The message refusing an id reused for another request. */
export function requestIdReused(id: string, what: string): string {
  return `requestId: ${id} was used for another ${what} (a retry must send the same request)`;
}

/**
 * What a request asks for, as a hash: a repeat under a caller's id must ask the same. A
 * generated id is repeated only by a resend of the very same call, so it needs no hash ('-', a
 * word the records can hold: the hot path of every write skips hashing).
 */
export function requestHash(record: RequestRecord, parts: () => readonly unknown[]): string {
  if (!record.given) return '-';
  return createHash('sha256').update(JSON.stringify(parts())).digest('hex').slice(0, 32);
}
