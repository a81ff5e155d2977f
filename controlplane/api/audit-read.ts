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
  /** A stream id: only entries older than it. */
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

async function readSource(
  redis: RedisClient,
  src: AuditSource,
  q: AuditQuery,
): Promise<AuditEntry[]> {
  const log = new Log(redis, src.key, 1);
  const out: AuditEntry[] = [];
  let before = q.before;
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
  const merged = lists.flat().sort((a, b) => compareIds(b.id, a.id));
  const entries = merged.slice(0, q.limit);
  const full = entries.length === q.limit;
  return { entries, next: full ? (entries[entries.length - 1]?.id ?? null) : null };
}
