// The audit trail as the API shows it: several audit logs (the knobs table's, the tokens
// table's, and more as the loop lands), merged newest first by stream id, filtered by target
// and by what the caller's tenant may see. Every scan is bounded in pages.
import { decodeAudit, type AuditEntry } from '../knobs/row.ts';
import type { RedisClient } from '../redis/connect.ts';
import { Log } from '../store/log.ts';

const PAGE = 500;
/** At most this many pages are scanned per source and request (filters may skip most). */
const MAX_PAGES = 40;

export interface AuditSource {
  name: string;
  key: string;
}

export interface AuditQuery {
  limit: number;
  /**
   * A page cursor: `<id>:<source>` (the last entry of the previous page; only entries after it
   * in the trail's order), or a plain stream id (only entries older than it, in every log).
   */
  before?: string;
  target?: string;
  /** Extra visibility rule (tenant views). */
  visible: (e: AuditEntry) => boolean;
}

/** Compares two stream ids `<ms>-<seq>` (they are ordered across streams of one server). */
export function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(Number) as [number, number];
  const [bm, bs] = b.split('-').map(Number) as [number, number];
  return am - bm || as - bs;
}

// Paging across logs. Stream ids are unique per stream only: two logs can hold the same id
// (same ms, seq 0). The trail is ordered by id, newest first, and entries sharing an id by
// source name; a page's cursor is its last entry, `<id>:<source>`, so the next page starts
// exactly after it: older ids in every log, plus the same id in logs named after `source`.
// (Rather than stretching a page over ties: a page keeps to `limit`, and the cursor alone
// says where it ended.) A plain id, the older form, still means "older than id" everywhere.

/** A parsed cursor: the id, and the source of the entry it names (none for a plain id). */
export function parseAuditCursor(cursor: string): { id: string; source: string | null } {
  const at = cursor.indexOf(':');
  return at < 0
    ? { id: cursor, source: null }
    : { id: cursor.slice(0, at), source: cursor.slice(at + 1) };
}

/** The stream id right after `id`: `(next` excludes exactly what `id` inclusive would keep. */
function nextId(id: string): string {
  const [ms, seq] = id.split('-') as [string, string];
  return `${ms}-${BigInt(seq) + 1n}`;
}

/** The exclusive `before` bound for one source's part of the page after `cursor`. */
function sourceBefore(cursor: string | undefined, source: string): string | undefined {
  if (cursor === undefined) return undefined;
  const c = parseAuditCursor(cursor);
  return c.source !== null && source > c.source ? nextId(c.id) : c.id;
}

/** The trail's order: newest id first; entries of one id by source name. */
function trailOrder(a: { id: string; source: string }, b: { id: string; source: string }): number {
  return compareIds(b.id, a.id) || (a.source < b.source ? -1 : a.source > b.source ? 1 : 0);
}

/** How much of a log one request scans (tests make it small). */
export interface AuditScan {
  page: number;
  maxPages: number;
}

/**
 * The entries of one log after the cursor that pass the filters, at most `limit`; `stoppedAt`
 * is the last id scanned when the scan bound ended it with the log not exhausted (entries
 * older than it were not looked at).
 */
async function readSource(
  redis: RedisClient,
  src: AuditSource,
  q: AuditQuery,
  scan: AuditScan,
): Promise<{ entries: AuditEntry[]; stoppedAt?: string }> {
  const log = new Log(redis, src.key, 1);
  const out: AuditEntry[] = [];
  let before = sourceBefore(q.before, src.name);
  for (let page = 0; out.length < q.limit; page++) {
    if (page === scan.maxPages) return { entries: out, ...(before ? { stoppedAt: before } : {}) };
    const entries = await log.latest({ count: scan.page, ...(before ? { before } : {}) });
    for (const e of entries.map(decodeAudit)) {
      if (out.length >= q.limit) break;
      if ((q.target === undefined || e.target === q.target) && q.visible(e)) out.push(e);
    }
    if (entries.length < scan.page) break;
    before = entries[entries.length - 1]?.id;
  }
  return { entries: out };
}

/**
 * The newest `limit` entries of all sources; `next` is the cursor of the following page. A log
 * whose scan stopped at its bound is complete only down to where it stopped: the page keeps
 * to the newest such point and, if short, ends there with a cursor, so paging goes on past
 * entries that the filters skipped (a null `next` means the trail is done).
 */
export async function readAudit(
  redis: RedisClient,
  sources: readonly AuditSource[],
  q: AuditQuery,
  scan: AuditScan = { page: PAGE, maxPages: MAX_PAGES },
): Promise<{ entries: (AuditEntry & { source: string })[]; next: string | null }> {
  // One entry more than the page: a full page is the last one only when nothing follows it
  // (a `next` leading to an empty page made a client ask once more for nothing).
  const ahead = { ...q, limit: q.limit + 1 };
  const read = await Promise.all(sources.map((s) => readSource(redis, s, ahead, scan)));
  let cut: { id: string; source: string } | undefined;
  read.forEach((r, i) => {
    const stop = r.stoppedAt && { id: r.stoppedAt, source: (sources[i] as AuditSource).name };
    if (stop && (!cut || trailOrder(stop, cut) < 0)) cut = stop;
  });
  const merged = read
    .flatMap((r, i) => r.entries.map((e) => ({ ...e, source: (sources[i] as AuditSource).name })))
    .filter((e) => !cut || trailOrder(e, cut) <= 0)
    .sort(trailOrder);
  const entries = merged.slice(0, q.limit);
  const last = merged.length > q.limit ? entries[entries.length - 1] : cut;
  return { entries, next: last ? `${last.id}:${last.source}` : null };
}
