// The knobs table's row, history and audit entry types, and how they decode from Redis.
import type { KnobSpec, KnobValue } from '../../knobs/index.ts';
import type { LogEntry } from '../store/log.ts';

export type ActorKind = 'operator' | 'automation' | 'system';

export interface KnobRow {
  name: string;
  service: string;
  type: string;
  spec: KnobSpec;
  value: KnobValue;
  default: KnobValue;
  version: number;
  /**
   * Names the change that set this version (random per promotion or seed; '' on rows written
   * before change ids). A version alone does not name a value: after a write is lost (a
   * failover to a lagging replica, an AOF everysec restart) the same version can be written
   * again with another value.
   */
  changeId: string;
  updatedAt: number;
  updatedBy: string;
  reason: string;
  proposalId: string;
  pinned: boolean;
  pinnedBy: string;
  pinReason: string;
}

export interface HistoryEntry {
  id: string;
  version: number;
  old: KnobValue | null;
  new: KnobValue;
  actor: string;
  actorKind: ActorKind;
  reason: string;
  proposalId: string;
  evidence: unknown;
  at: number;
  kind: 'seed' | 'promote' | 'rollback';
}

export interface AuditEntry {
  id: string;
  at: number;
  actor: string;
  action: string;
  target: string;
  outcome: string;
  detail: Record<string, unknown>;
}

/** JSON with object keys sorted, so equal values encode equally (placement maps). */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const obj = v as Record<string, unknown>;
  return `{${Object.keys(obj)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`)
    .join(',')}}`;
}

/**
 * A value parsed from its JSON and deep-frozen: a value a cache hands out (many readers share
 * it) cannot be changed by one of them; freezing once costs less than copying per read.
 */
export function frozenValue(json: string): KnobValue {
  return deepFreeze(JSON.parse(json) as KnobValue);
}

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === 'object') {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

export function decodeKnobRow(h: Record<string, string>): KnobRow {
  return {
    name: h['name'] ?? '',
    service: h['service'] ?? '',
    type: h['type'] ?? '',
    spec: JSON.parse(h['spec'] ?? 'null') as KnobSpec,
    value: JSON.parse(h['value'] ?? 'null') as KnobValue,
    default: JSON.parse(h['default'] ?? 'null') as KnobValue,
    version: Number(h['version']),
    changeId: h['change_id'] ?? '',
    updatedAt: Number(h['updated_at']),
    updatedBy: h['updated_by'] ?? '',
    reason: h['reason'] ?? '',
    proposalId: h['proposal_id'] ?? '',
    pinned: h['pinned'] === '1',
    pinnedBy: h['pinned_by'] ?? '',
    pinReason: h['pin_reason'] ?? '',
  };
}

export function decodeHistory(e: LogEntry): HistoryEntry {
  const f = e.fields;
  return {
    id: e.id,
    version: Number(f['version']),
    old: JSON.parse(f['old'] ?? 'null') as KnobValue | null,
    new: JSON.parse(f['new'] ?? 'null') as KnobValue,
    actor: f['actor'] ?? '',
    actorKind: (f['actor_kind'] ?? 'system') as ActorKind,
    reason: f['reason'] ?? '',
    proposalId: f['proposal_id'] ?? '',
    evidence: JSON.parse(f['evidence'] ?? 'null') as unknown,
    at: Number(f['at']),
    kind: (f['kind'] ?? 'promote') as HistoryEntry['kind'],
  };
}

export function decodeAudit(e: LogEntry): AuditEntry {
  const f = e.fields;
  return {
    id: e.id,
    at: Number(f['at']),
    actor: f['actor'] ?? '',
    action: f['action'] ?? '',
    target: f['target'] ?? '',
    outcome: f['outcome'] ?? '',
    detail: JSON.parse(f['detail'] ?? '{}') as Record<string, unknown>,
  };
}
