// A worker's inbox entries, written by dispatch-12.lua and speculate-12.lua (a task copy to
// run; runEntry in scripts/includes/shard.lua), and its stop list's (keys.ts stops), written by
// settle-12.lua, reap-12.lua and cancel-12.lua (a copy to stop; cancel-12.lua takes a run entry
// not yet taken out of the inbox instead, and deregister-12.lua gives back those of a worker
// that leaves), tab-separated. A stop entry in the inbox (written before the stop list) is
// still read. Payloads are JSON,
// which never holds a raw tab, so the payload is simply the rest of the entry.
import type { LeasedTask } from './types.ts';

/** token, id, type, attempt, lease_ms, retry_limit, retry_backoff_ms, payload */
const RUN_FIELDS = 8;

export type InboxEntry =
  { kind: 'run'; task: LeasedTask } | { kind: 'cancel'; token: string; id: string };

export function parseInboxEntry(entry: string): InboxEntry | null {
  if (entry.startsWith('!')) {
    const tab = entry.indexOf('\t');
    if (tab < 0) return null;
    return { kind: 'cancel', token: entry.slice(1, tab), id: entry.slice(tab + 1) };
  }
  const parts: string[] = [];
  let from = 0;
  for (let i = 0; i < RUN_FIELDS - 1; i++) {
    const tab = entry.indexOf('\t', from);
    if (tab < 0) return null;
    parts.push(entry.slice(from, tab));
    from = tab + 1;
  }
  const [token, id, type, attempt, leaseMs, retryLimit, backoffMs] = parts as string[] as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  let payload: unknown;
  try {
    payload = JSON.parse(entry.slice(from));
  } catch {
    return null;
  }
  return {
    kind: 'run',
    task: {
      token,
      id,
      type,
      attempt: Number(attempt),
      leaseMs: Number(leaseMs),
      retryLimit: Number(retryLimit),
      backoffMs: Number(backoffMs),
      payload,
    },
  };
}
