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

async function readSource(
  redis: RedisClient,
  src: AuditSource,
  q: AuditQuery,
): Promise<AuditEntry[]> {
  const log = new Log(redis, src.key, 1);
  const out: AuditEntry[] = [];
  let before = sourceBefore(q.before, src.name);
  for (let page = 0; page < MAX_PAGES && out.length < q.limit; page++) {
    const entries = await log.latest({ count: PAGE, ...(before ? { before } : {}) });
    for (const e of entries.map(decodeAudit)) {
      if (out.length >= q.limit) break;
      if ((q.target === undefined || e.target === q.target) && q.visible(e)) out.push(e);
    }
    if (entries.length < PAGE) break;
    before = entries[entries.length - 1]?.id;
  }
  return out;
}

/** The newest `limit` entries of all sources; `next` is the cursor of the following page. */
export async function readAudit(
  redis: RedisClient,
  sources: readonly AuditSource[],
  q: AuditQuery,
): Promise<{ entries: (AuditEntry & { source: string })[]; next: string | null }> {
  const lists = await Promise.all(
    sources.map(async (s) =>
      (await readSource(redis, s, q)).map((e) => ({ ...e, source: s.name })),
    ),
  );
  const merged = lists.flat().sort(trailOrder);
  const entries = merged.slice(0, q.limit);
  const last = entries.length === q.limit ? entries[entries.length - 1] : undefined;
  return { entries, next: last ? `${last.id}:${last.source}` : null };
}
