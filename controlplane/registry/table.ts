// The policies table: versions of named policies as rows of the `{policies}` family. Registering
// assigns the next version of the name in one Lua step (registerPolicy-5.lua, once per request) with the row, its
// index and its audit entry; every later change (a report, a status move) is an optimistic-
// version write of the row with its audit entry in the same step (the store's writeRows).
import { createHash, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { Clock } from '../knobs/clock.ts';
import { canonicalJson, decodeAudit, type AuditEntry } from '../knobs/row.ts';
import type { RedisClient } from '../redis/connect.ts';
import { errorFromCode, NotFoundError, StaleVersionError, StateError } from '../store/errors.ts';
import type { Keys } from '../store/keys.ts';
import { Log } from '../store/log.ts';
import { checkRequestId } from '../store/request-id.ts';
import { encodeRow } from '../store/schema.ts';
import { ScriptSet } from '../store/scripts.ts';
import { Table, type LogWrite } from '../store/table.ts';
import { ARTIFACT_BYTES_MAX, checkArtifact } from './artifact.ts';
import { RegistryInputError } from './errors.ts';
import { checkLearnedScheduling } from './policy-factory.ts';
import { POLICIES_FAMILY, POLICIES_TABLE, RegistryKeys } from './keys.ts';
import {
  DECISION_POINTS,
  NEXT_POLICY_STATUS,
  POLICY_FIELDS,
  POLICY_KINDS,
  POLICY_NAME_RE,
  policyId,
  type Lineage,
  type PolicyKind,
  type PolicyRow,
  type PolicyStatus,
} from './model.ts';

const scripts = new ScriptSet<'registerPolicy'>(
  join(import.meta.dirname, 'scripts'),
  'knobos_registry',
);

/** Registry script codes beyond the store's; keep in step with scripts/registerPolicy-5.lua. */
const REG_CODES = { PARENT_MISSING: -201, KIND_MISMATCH: -202, REQUEST_REUSED: -203 } as const;

/** Rows examined at most by one list or lineage call (filters may skip most of them). */
export const SCAN_MAX = 2_000;
const CHUNK = 200;
/** Optimistic writes retry this often when another writer moved the row meanwhile. */
const WRITE_TRIES = 5;
const LINEAGE_DEPTH_MAX = 100;
/** 1-200 printable ASCII characters, not all spaces (a blank reason explains nothing). */
const TEXT_RE = /^(?=.*[\x21-\x7e])[\x20-\x7e]{1,200}$/;
/** How long a register request is remembered (a retry within it registers nothing more). */
export const REGISTER_REQUEST_TTL_MS = 24 * 3_600_000;

export interface NewPolicy {
  name: string;
  kind: PolicyKind;
  /** Default: the kind's decision point. */
  decisionPoint?: string;
  artifact: unknown;
  lineage?: Lineage;
  reason?: string;
}

export interface ListQuery {
  name?: string;
  status?: PolicyStatus;
  limit?: number;
  /** From a previous page's `next`: only rows before it. */
  cursor?: number;
}

/** A row written at the version `v` it was read at, with its audit entry (bookkeeping: none). */
export interface RowWrite {
  row: PolicyRow;
  v: number;
  audit?: Audited;
}

export interface Audited {
  actor: string;
  action: string;
  detail: Record<string, unknown>;
}

export function checkText(field: string, v: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !TEXT_RE.test(v))
    throw new RegistryInputError(
      `${field} must be 1-200 printable ASCII characters, not all spaces`,
      field,
      'pattern',
    );
  return v;
}

/** Checks name, kind, decision point and lineage; returns them normalised. */
export function checkRegistration(p: NewPolicy): {
  decisionPoint: string;
  lineage: Lineage;
} {
  if (typeof p.name !== 'string' || !POLICY_NAME_RE.test(p.name))
    throw new RegistryInputError(
      `name must match ${POLICY_NAME_RE.source}, got ${JSON.stringify(p.name)}`,
      'name',
      'pattern',
    );
  if (!(POLICY_KINDS as readonly string[]).includes(p.kind))
    throw new RegistryInputError(
      `kind must be one of ${POLICY_KINDS.join(', ')}, got ${JSON.stringify(p.kind)}`,
      'kind',
      'enum',
    );
  const points = DECISION_POINTS[p.kind];
  const decisionPoint = p.decisionPoint ?? (points[0] as string);
  if (!points.includes(decisionPoint))
    throw new RegistryInputError(
      `decisionPoint of a ${p.kind} policy must be one of ${points.join(', ')}, got ${JSON.stringify(decisionPoint)}`,
      'decisionPoint',
      'enum',
    );
  const l = p.lineage ?? {};
  const parent = l.parent;
  if (parent !== undefined && (!Number.isInteger(parent) || parent < 1))
    throw new RegistryInputError(
      'lineage.parent must be a version (an integer >= 1)',
      'lineage.parent',
      'integer',
    );
  const learner = checkText('lineage.learner', l.learner);
  const run = checkText('lineage.run', l.run);
  return {
    decisionPoint,
    lineage: {
      ...(parent !== undefined ? { parent } : {}),
      ...(learner !== undefined ? { learner } : {}),
      ...(run !== undefined ? { run } : {}),
    },
  };
}

export class PolicyTable {
  readonly table: Table<typeof POLICY_FIELDS>;
  readonly rk: RegistryKeys;
  private readonly auditLog: Log;

  constructor(
    readonly redis: RedisClient,
    keys: Keys,
    readonly clock: Clock,
    private readonly opts: { artifactBytesMax?: number; auditMaxLen?: number } = {},
  ) {
    this.rk = new RegistryKeys(keys);
    this.table = new Table(redis, keys, {
      name: POLICIES_TABLE,
      fields: POLICY_FIELDS,
      id: (r) => r.id,
      family: () => POLICIES_FAMILY,
      indexes: { seq: (r) => r.seq },
    });
    this.auditLog = new Log(redis, this.rk.audit(), this.auditMaxLen);
  }

  private get auditMaxLen(): number {
    return this.opts.auditMaxLen ?? 100_000;
  }

  /**
   * Registers the next version of `p.name` as a draft. Everything is checked before the one
   * atomic step; a refused registration writes nothing.
   */
  /**
   * Registers the next version of `p.name`. `requestId` (default: a fresh one per call) makes
   * it once-only: the script run again with the same id (a client resending it after a lost
   * reply, or a caller retrying with an idempotency key within REGISTER_REQUEST_TTL_MS) answers
   * the version the first run registered.
   */
  async register(
    p: NewPolicy,
    actor: string,
    requestId: string = randomUUID(),
  ): Promise<PolicyRow> {
    checkRequestId(requestId, (m) => new RegistryInputError(m, 'requestId', 'format'));
    const { decisionPoint, lineage } = checkRegistration(p);
    const art = checkArtifact(p.kind, p.artifact, this.opts.artifactBytesMax ?? ARTIFACT_BYTES_MAX);
    if (p.kind === 'scheduling') checkLearnedScheduling(art.artifact);
    const reason = checkText('reason', p.reason) ?? 'registered';
    const now = this.clock.now();
    const draft: PolicyRow = {
      id: '',
      name: p.name,
      kind: p.kind,
      version: 0,
      seq: 0,
      decisionPoint,
      artifact: art.artifact,
      artifactSummary: art.summary,
      artifactBytes: art.bytes,
      artifactSha256: art.sha256,
      status: 'draft',
      lineage,
      reason,
      createdAt: now,
      createdBy: actor,
      updatedAt: now,
      updatedBy: actor,
    };
    const { set } = encodeRow(
      POLICIES_TABLE,
      POLICY_FIELDS,
      draft as unknown as Record<string, unknown>,
    );
    delete set['id'];
    delete set['version'];
    delete set['seq'];
    const reply = await scripts.run(
      this.redis,
      'registerPolicy',
      [
        this.rk.versions(),
        this.rk.names(),
        this.table.indexKey(POLICIES_FAMILY, 'seq'),
        this.rk.audit(),
        this.rk.registerRequest(requestId),
      ],
      [
        JSON.stringify({
          requestTtlMs: REGISTER_REQUEST_TTL_MS,
          // What the request asks for (not when or by whom): a repeat must ask the same. The
          // artifact's content, not its bytes: a retry serialising its keys in another order
          // asks the same.
          requestHash: createHash('sha256')
            .update(
              JSON.stringify([
                p.name,
                p.kind,
                decisionPoint,
                canonicalJson(art.artifact),
                lineage,
                reason,
              ]),
            )
            .digest('hex'),
          prefix: this.rk.rowPrefix(),
          name: p.name,
          kind: p.kind,
          parent: lineage.parent ?? 0,
          now,
          actor,
          auditMaxLen: this.auditMaxLen,
          fields: Object.entries(set).flat(),
          detail: JSON.stringify({ kind: p.kind, artifact: art.summary, lineage, reason }),
        }),
      ],
    );
    const code = Number(reply[0]);
    if (code === REG_CODES.PARENT_MISSING)
      throw new RegistryInputError(
        `lineage.parent: ${p.name} has no version ${String(reply[1])}`,
        'lineage.parent',
        'exists',
      );
    if (code === REG_CODES.REQUEST_REUSED)
      throw new RegistryInputError(
        `requestId: ${requestId} registered another policy or version (a retry must send the same request)`,
        'requestId',
        'same_request',
      );
    if (code === REG_CODES.KIND_MISMATCH)
      throw new RegistryInputError(
        `kind: ${p.name} is a ${String(reply[1])} policy; every version of a name has one kind`,
        'kind',
        'same_kind',
        { existing: reply[1] },
      );
    const err = errorFromCode(reply, { target: `policy ${p.name}` });
    if (err) throw err;
    const version = Number(reply[1]);
    // A repeat answers the row an earlier run of the request registered, as stored.
    if (Number(reply[3]) === 1) return (await this.get(p.name, version)).row;
    return { ...draft, id: policyId(p.name, version), version, seq: Number(reply[2]) };
  }

  /** The latest version of a name (0 = none). */
  async latest(name: string): Promise<number> {
    return Number((await this.redis.hget(this.rk.versions(), name)) ?? 0);
  }

  async find(name: string, version: number): Promise<{ row: PolicyRow; v: number } | null> {
    if (!POLICY_NAME_RE.test(name)) return null;
    const got = await this.table.get(POLICIES_FAMILY, policyId(name, version));
    return got ? { row: got.row as unknown as PolicyRow, v: got.version } : null;
  }

  async get(name: string, version: number): Promise<{ row: PolicyRow; v: number }> {
    const got = await this.find(name, version);
    if (!got)
      throw new NotFoundError(`policy ${policyId(name, version)} does not exist`, {
        target: policyId(name, version),
        field: 'version',
        rule: 'exists',
      });
    return got;
  }

  private async rows(ids: readonly string[]): Promise<PolicyRow[]> {
    const got = await this.table.getMany(POLICIES_FAMILY, ids);
    return got.flatMap((r) => (r ? [r.row as unknown as PolicyRow] : []));
  }

  /**
   * Newest first: one name's versions, or every registration. `next` continues the listing
   * (null at its end); at most SCAN_MAX rows are examined per call when a status filter skips.
   */
  async list(q: ListQuery = {}): Promise<{ policies: PolicyRow[]; next: number | null }> {
    const limit = q.limit ?? 50;
    const out: PolicyRow[] = [];
    let below = q.cursor ?? Infinity;
    let scanned = 0;
    const top = q.name !== undefined ? await this.latest(q.name) : Infinity;
    for (;;) {
      let ids: string[];
      if (q.name !== undefined) {
        const hi = Math.min(top, below - 1);
        ids = [];
        for (let v = hi; v >= 1 && ids.length < CHUNK; v--) ids.push(policyId(q.name, v));
      } else {
        ids = await this.table.range(POLICIES_FAMILY, 'seq', {
          rev: true,
          ...(Number.isFinite(below) ? { max: below - 1 } : {}),
          limit: CHUNK,
        });
      }
      if (ids.length === 0) return { policies: out, next: null };
      const rows = await this.rows(ids);
      for (const r of rows) {
        below = Math.min(below, q.name !== undefined ? r.version : r.seq);
        if (q.status === undefined || r.status === q.status) out.push(r);
        if (out.length >= limit) return { policies: out, next: below };
      }
      // Rows are never deleted (retired instead), so a chunk without rows means the end.
      scanned += ids.length;
      if (rows.length === 0 || ids.length < CHUNK) return { policies: out, next: null };
      if (scanned >= SCAN_MAX) return { policies: out, next: below };
    }
  }

  /** Every name with its latest version, most recently registered first. */
  async names(limit = 1_000): Promise<{ name: string; latest: number }[]> {
    const names = await this.redis.zrevrange(this.rk.names(), 0, limit - 1);
    if (names.length === 0) return [];
    const latest = await this.redis.hmget(this.rk.versions(), ...names);
    return names.map((name, i) => ({ name, latest: Number(latest[i] ?? 0) }));
  }

  /** The parent chain up from a version (nearest first) and the versions derived from it. */
  async lineage(
    name: string,
    version: number,
  ): Promise<{ policy: PolicyRow; ancestors: PolicyRow[]; children: PolicyRow[] }> {
    const { row } = await this.get(name, version);
    const ancestors: PolicyRow[] = [];
    let parent = row.lineage.parent;
    for (let i = 0; parent !== undefined && i < LINEAGE_DEPTH_MAX; i++) {
      const p = await this.find(name, parent);
      if (!p) break;
      ancestors.push(p.row);
      parent = p.row.lineage.parent;
    }
    // Children have higher versions (a parent exists before its child): scan those, bounded.
    const latest = await this.latest(name);
    const ids: string[] = [];
    for (let v = version + 1; v <= latest && ids.length < SCAN_MAX; v++)
      ids.push(policyId(name, v));
    const children = (await this.rows(ids)).filter((r) => r.lineage.parent === version);
    return { policy: row, ancestors, children };
  }

  /** An audit entry of the registry's log, for a write in the same step. */
  auditEntry(target: string, a: Audited): LogWrite {
    return {
      key: this.rk.audit(),
      maxLen: this.auditMaxLen,
      fields: {
        at: String(this.clock.now()),
        actor: a.actor,
        action: a.action,
        target,
        outcome: 'ok',
        detail: JSON.stringify(a.detail),
      },
    };
  }

  /** Writes rows (each at the version read) and their audit entries in one atomic step. */
  async writeRows(writes: readonly RowWrite[]): Promise<void> {
    await this.table.write(
      writes.map((w) => ({
        row: w.row as never,
        expect: w.v,
      })),
      writes.flatMap((w) => (w.audit ? [this.auditEntry(w.row.id, w.audit)] : [])),
    );
  }

  /**
   * Read, change, write with the audit entry, retrying when another writer moved the row in
   * between. `change` sees the current row and returns the new one (or throws); the write is
   * at the version `change` saw, so whatever `change` checked elsewhere before it returned
   * happened before the row was written and after it was read. No audit: bookkeeping only.
   */
  async update(
    name: string,
    version: number,
    change: (
      row: PolicyRow,
    ) => { row: PolicyRow; audit?: Audited } | Promise<{ row: PolicyRow; audit?: Audited }>,
  ): Promise<PolicyRow> {
    for (let attempt = 1; ; attempt++) {
      const { row, v } = await this.get(name, version);
      const next = await change(row);
      try {
        await this.writeRows([{ row: next.row, v, audit: next.audit }]);
        return next.row;
      } catch (err) {
        if (!(err instanceof StaleVersionError) || attempt >= WRITE_TRIES) throw err;
      }
    }
  }

  /** The row moved to `to` (checked against the allowed moves), with who, when and why. */
  moved(
    row: PolicyRow,
    to: PolicyStatus,
    by: { actor: string; reason: string },
    extra: Partial<PolicyRow> = {},
  ): PolicyRow {
    if (row.status !== to && !NEXT_POLICY_STATUS[row.status].includes(to))
      throw new StateError(`policy ${row.id}: is ${row.status}, which cannot move to ${to}`, {
        target: row.id,
        field: 'status',
        rule: 'transition',
        status: row.status,
        to,
      });
    return {
      ...row,
      ...extra,
      status: to,
      reason: by.reason,
      updatedAt: this.clock.now(),
      updatedBy: by.actor,
    };
  }

  /** The registry's audit entries, newest first. */
  async audit(opts: { limit?: number; before?: string } = {}): Promise<AuditEntry[]> {
    return (
      await this.auditLog.latest({
        count: opts.limit ?? 100,
        ...(opts.before ? { before: opts.before } : {}),
      })
    ).map(decodeAudit);
  }
}
