// The knobs table: every knob a versioned row. Each operation is one atomic step in Redis
// (a Lua script per operation): seed, promote, roll back, pin, freeze. A rejected change
// throws a typed error naming the knob, the field and the rule, and changes nothing.
import { randomUUID } from 'node:crypto';
import {
  CATALOG,
  findKnob,
  validateStep,
  validateValue,
  type KnobSpec,
  type KnobValue,
} from '../../knobs/index.ts';
import type { RedisClient } from '../redis/connect.ts';
import {
  errorFromCode,
  FrozenError,
  NotFoundError,
  PinnedError,
  SCRIPT_CODES,
  StaleVersionError,
  StateError,
  ValidationError,
} from '../store/errors.ts';
import { Keys } from '../store/keys.ts';
import { Log } from '../store/log.ts';
import { storeScripts } from '../store/scripts.ts';
import { systemClock, type Clock } from './clock.ts';
import { requestHash, requestIdReused, requestRecord } from '../store/request-id.ts';
import {
  canonicalJson,
  decodeAudit,
  decodeHistory,
  decodeKnobRow,
  frozenValue,
  type ActorKind,
  type AuditEntry,
  type HistoryEntry,
  type KnobRow,
} from './row.ts';

export interface KnobChange {
  name: string;
  value: KnobValue;
  /** The version the change is based on; a different current version fails as stale. */
  baseVersion: number;
  actor: string;
  /** Automation is stopped by the freeze switch; operators are not. Default: operator. */
  actorKind?: ActorKind;
  reason: string;
  proposalId?: string;
  /** Why the change is good (a sim report, a shadow report); kept in history. */
  evidence?: unknown;
  /**
   * Makes the promotion once-only (see request-id.ts). Default: a fresh id per call, which
   * covers a client resending the script after a lost reply; pass your own (an API
   * Idempotency-Key) to make your retries safe too.
   */
  requestId?: string;
}

/** Several knob changes made together, by one actor for one reason. */
export interface KnobChangeSet extends Omit<KnobChange, 'name' | 'value' | 'baseVersion'> {
  changes: { name: string; value: KnobValue; baseVersion: number }[];
}

/** The promote script's code for a request id used for another request (promoteKnobs.lua). */
const REQUEST_REUSED = -301;
const badRequestId = (message: string) => new ValidationError(message, 'requestId', 'format');

/** Every write names who made it and why (audit): a blank actor or reason is refused. */
function requireWho(what: string, actor: string, reason?: string): void {
  if (typeof actor !== 'string' || actor.trim() === '')
    throw new ValidationError(`${what}: an actor is required`, 'actor', 'required');
  if (reason !== undefined && (typeof reason !== 'string' || reason.trim() === ''))
    throw new ValidationError(`${what}: a reason is required`, 'reason', 'required');
}

/** The statuses a named proposal may be in for a promotion or a rollback to take it. */
const proposalFrom = (kind: 'promote' | 'rollback') =>
  kind === 'rollback' ? ['live'] : ['simulated', 'shadow'];

/** A promotion or rollback naming a proposal with no row: history would credit a made-up one. */
const missingProposal = (kind: string, id: string | undefined) =>
  new NotFoundError(`${kind}: proposal ${id} does not exist`, {
    target: `proposal ${id}`,
    field: 'proposalId',
    rule: 'exists',
  });

/**
 * Evidence as JSON text, refused before any write when JSON cannot encode it (a function, a
 * cycle, a BigInt, a toJSON giving undefined): the promote script failed part way, after
 * writing the rows, with no history, audit, epoch or message.
 */
function evidenceJson(evidence: unknown): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(evidence ?? {});
  } catch {
    json = undefined;
  }
  if (typeof json !== 'string')
    throw new ValidationError('promote: evidence must be encodable as JSON', 'evidence', 'json');
  return json;
}

export interface PromoteResult {
  name: string;
  value: KnobValue;
  version: number;
  epoch: number;
}

/** A seeded knob whose stored value its (refreshed) declaration no longer admits. */
export interface OutOfDomain {
  name: string;
  value: KnobValue;
  field: string;
  rule: string;
  message: string;
}

/** Logs, for an operator, each seeded knob whose stored value its declaration no longer admits. */
export function warnOutOfDomain(
  log: { warn: (obj: object, msg: string) => void },
  outOfDomain: readonly OutOfDomain[],
): void {
  for (const o of outOfDomain)
    log.warn(
      { knob: o.name, value: o.value, field: o.field, rule: o.rule },
      `knob ${o.name} holds a value its declaration no longer admits (${o.message}); its next change must bring it back`,
    );
}

export interface SeedResult {
  /** Knobs created at their default by this seed. */
  created: string[];
  /** Existing knobs whose stored value is outside their declared domain (left unchanged). */
  outOfDomain: OutOfDomain[];
}

export interface FreezeState {
  by: string;
  reason: string;
  at: number;
}

export interface KnobTableOptions {
  keys?: Keys;
  catalog?: readonly KnobSpec[];
  clock?: Clock;
  /** Retention bounds of the history (per knob) and audit streams. */
  historyMaxLen?: number;
  auditMaxLen?: number;
}

export class KnobTable {
  readonly keys: Keys;
  readonly catalog: readonly KnobSpec[];
  readonly clock: Clock;
  private readonly historyMaxLen: number;
  private readonly auditMaxLen: number;
  /**
   * The last row this table read or wrote per knob (a copy, its value frozen: what a caller
   * does with a row or value it holds must not change what the next change is checked
   * against). A row's value and update time are fixed by its version and change id, so when a
   * change is based on that version the value-level checks can use it without a read; the
   * promote script re-checks the version and change id (a version written again after a lost
   * write is another change), the pin and the freeze atomically. Only unpinned rows are kept,
   * so a stale entry can never refuse a change the script would allow.
   */
  private readonly known = new Map<string, KnobRow>();

  constructor(
    readonly redis: RedisClient,
    opts: KnobTableOptions = {},
  ) {
    this.keys = opts.keys ?? new Keys();
    this.catalog = opts.catalog ?? CATALOG;
    this.clock = opts.clock ?? systemClock;
    this.historyMaxLen = opts.historyMaxLen ?? 10_000;
    this.auditMaxLen = opts.auditMaxLen ?? 100_000;
  }

  spec(name: string): KnobSpec {
    const spec = findKnob(this.catalog, name);
    if (!spec)
      throw new NotFoundError(`knob ${name} is not in the catalog`, {
        knob: name,
        field: 'name',
        rule: 'declared',
      });
    return spec;
  }

  /**
   * Creates every missing knob at its default; refreshes declarations of existing ones. A
   * stored value the refreshed declaration no longer admits (a catalog change narrowed the
   * domain) is kept as it is, never changed silently, and reported in `outOfDomain` so the
   * caller can warn: the next promotion of that knob must bring it back into its domain.
   */
  async seed(actor = 'system'): Promise<SeedResult> {
    const created: string[] = [];
    const outOfDomain: OutOfDomain[] = [];
    const now = this.clock.now();
    for (const spec of this.catalog) {
      const reply = await storeScripts.run(
        this.redis,
        'seedKnob',
        [
          this.keys.knobRow(spec.name),
          this.keys.knobHistory(spec.name),
          this.keys.knobAudit(),
          this.keys.knobEpoch(),
          this.keys.knobIndex(),
        ],
        [
          spec.name,
          spec.service,
          spec.type,
          JSON.stringify(spec),
          canonicalJson(spec.default),
          now,
          actor,
          this.historyMaxLen,
          this.auditMaxLen,
          randomUUID(),
        ],
      );
      this.known.delete(spec.name);
      if (Number(reply[0]) === 1) {
        created.push(spec.name);
        continue;
      }
      const value = JSON.parse(String(reply[1] ?? 'null')) as KnobValue;
      const bad = validateValue(spec, value);
      if (bad)
        outOfDomain.push({
          name: spec.name,
          value,
          field: bad.field,
          rule: bad.rule,
          message: bad.message,
        });
    }
    return { created, outOfDomain };
  }

  async get(name: string): Promise<KnobRow> {
    this.spec(name);
    const h = await this.redis.hgetall(this.keys.knobRow(name));
    if (!h['version'])
      throw new NotFoundError(`knob ${name} has no row; seed the knobs table first`, {
        knob: name,
      });
    return this.remember(decodeKnobRow(h));
  }

  private remember(row: KnobRow): KnobRow {
    if (row.pinned) this.known.delete(row.name);
    else this.known.set(row.name, { ...row, value: frozenValue(canonicalJson(row.value)) });
    return row;
  }

  /** Every seeded knob of the catalog, in catalog order, read in one round trip. */
  async list(): Promise<KnobRow[]> {
    const pipe = this.redis.pipeline();
    for (const spec of this.catalog) pipe.hgetall(this.keys.knobRow(spec.name));
    const res = (await pipe.exec()) ?? [];
    return res.flatMap(([err, h]) => {
      if (err) throw err;
      const hash = h as Record<string, string>;
      return hash['version'] ? [decodeKnobRow(hash)] : [];
    });
  }

  async frozen(): Promise<FreezeState | null> {
    // The hash existing is the freeze (the promote script tests EXISTS), whatever its fields.
    const h = await this.redis.hgetall(this.keys.knobFreeze());
    return Object.keys(h).length > 0
      ? { by: h['by'] ?? '', reason: h['reason'] ?? '', at: Number(h['at']) }
      : null;
  }

  /** The counter bumped by every value change; a client that saw this epoch is up to date. */
  async epoch(): Promise<number> {
    return Number((await this.redis.get(this.keys.knobEpoch())) ?? 0);
  }

  /**
   * Checks a change without writing it (what a proposal is checked against): the knob is
   * declared and seeded, the value is in its domain, the base version is current, the knob
   * is not pinned, automation is not frozen, and the step and cooldown limits hold; a named
   * proposal exists (and, for a promotion, proposes exactly this change). Returns the current
   * row. The version and the pin are read fresh (a remembered row cannot see
   * another process's pin, which does not bump the version).
   *
   * A rollback must restore a value in the knob's history (rule `in_history`). Only an undo
   * skips the step and cooldown limits: a return to the value the current version replaced
   * (its history entry's `old`, what the SLO guard restores), or, when the current version is
   * itself an undo, to the value the change it went back to replaced (so the registry rolls a
   * policy back version by version). Each undo reverses one change that passed its limits;
   * undoing an undo is a redo, not an undo, so a knob cannot flap between two values at once.
   * A rollback to any other earlier value is checked against the limits as a promotion is.
   */
  async check(change: KnobChange, kind: 'promote' | 'rollback' = 'promote'): Promise<KnobRow> {
    // A copy: the row may be the remembered one.
    const row = { ...(await this.checkOne(change, kind, true)) };
    // What promoteAll checks of a named proposal, and the script's refusal of a missing one.
    if (change.proposalId) await this.checkProposal({ ...change, changes: [change] }, kind, true);
    return row;
  }

  /**
   * check(), optionally trusting a remembered row at the base version without a read: the
   * promote script re-checks the version, the pin and the freeze atomically, so promoteAll
   * need not read them first; the dry run must.
   */
  private async checkOne(
    change: KnobChange,
    kind: 'promote' | 'rollback',
    fresh: boolean,
  ): Promise<KnobRow> {
    const spec = this.spec(change.name);
    requireWho(`knob ${change.name}`, change.actor, change.reason);
    const bad = validateValue(spec, change.value);
    if (bad) throw new ValidationError(bad.message, bad.field, bad.rule, { knob: change.name });
    let row = this.known.get(change.name);
    if (row?.version !== change.baseVersion) row = undefined;
    if (row && fresh) {
      const [version, pinned, changeId] = await this.redis.hmget(
        this.keys.knobRow(change.name),
        'version',
        'pinned',
        'change_id',
      );
      if (Number(version) !== row.version || (changeId ?? '') !== row.changeId || pinned === '1')
        row = undefined;
    }
    row ??= await this.get(change.name);
    if (row.version !== change.baseVersion) {
      throw errorFromCode([-2, row.version], {
        target: `knob ${change.name}`,
        baseVersion: change.baseVersion,
      }) as StaleVersionError;
    }
    if (row.pinned)
      throw errorFromCode([-3, row.pinnedBy], { target: `knob ${change.name}` }) as PinnedError;
    if ((change.actorKind ?? 'operator') === 'automation') {
      const f = await this.frozen();
      if (f) throw errorFromCode([-4, f.by], { target: `knob ${change.name}` }) as FrozenError;
    }
    if (canonicalJson(row.value) === canonicalJson(change.value)) {
      throw new ValidationError(
        `knob ${change.name}: value is already ${canonicalJson(change.value)}`,
        'value',
        'unchanged',
        { knob: change.name },
      );
    }
    if (kind === 'rollback' && (await this.isUndo(row, change.value))) return row;
    // Version 1 is the seeded default: seeding is not a tuning change, so no cooldown yet.
    const sinceMs = row.version === 1 ? Infinity : this.clock.now() - row.updatedAt;
    const step = validateStep(spec, row.value, change.value, sinceMs);
    if (step) throw new ValidationError(step.message, step.field, step.rule, { knob: change.name });
    return row;
  }

  /**
   * Whether a rollback to `value` is an undo (see check()); when it is not, also that `value`
   * is in the knob's history at all (else a ValidationError, rule `in_history`). History
   * entries never change once written, and the promote script re-checks the base version, so
   * reading them before the atomic step is sound.
   */
  private async isUndo(row: KnobRow, value: KnobValue): Promise<boolean> {
    const want = canonicalJson(value);
    const log = new Log(this.redis, this.keys.knobHistory(row.name), this.historyMaxLen);
    const [last] = (await log.latest({ count: 1 })).map(decodeHistory);
    // The common case, read in one step: undoing a promotion (what the SLO guard does). After
    // a rollback, the replay below decides: undoing an undo is a redo, held to the limits.
    if (
      last?.version === row.version &&
      last.kind !== 'rollback' &&
      last.old !== null &&
      canonicalJson(last.old) === want
    )
      return true;
    // Replay the retained history as an undo stack: a change pushes the value it sets; a
    // rollback to the value below the top pops (it undid the top's change). Only from a seed
    // (which resets the stack) is the replay sound: a window starting inside a run of
    // rollbacks seeded the stack with values already undone, and a redo passed as an undo,
    // skipping the cooldown. Without a seed in the retained history the rollback is held to the
    // limits (the common undo above needs no replay).
    const history = await this.historyAll(row.name);
    const fromSeed = history.some((e) => e.kind === 'seed');
    const stack: string[] = [];
    let had = false;
    for (const e of history) {
      const next = canonicalJson(e.new);
      if (e.old !== null && canonicalJson(e.old) === want) had = true;
      if (next === want) had = true;
      if (stack.length === 0 && e.old !== null) stack.push(canonicalJson(e.old));
      if (e.kind === 'seed') stack.splice(0, stack.length, next);
      else if (e.kind === 'rollback' && stack.at(-2) === next) stack.pop();
      else stack.push(next);
    }
    if (!had)
      throw new ValidationError(
        `knob ${row.name}: a rollback restores a value from the knob's history; ${want} is not in it`,
        'value',
        'in_history',
        { knob: row.name },
      );
    return fromSeed && history.at(-1)?.version === row.version && stack.at(-2) === want;
  }

  /** Checks and applies a change in one atomic step; see check() for the rules. */
  async promote(
    change: KnobChange,
    kind: 'promote' | 'rollback' = 'promote',
  ): Promise<PromoteResult> {
    const { name, value, baseVersion, ...common } = change;
    const [result] = await this.promoteAll(
      { ...common, changes: [{ name, value, baseVersion }] },
      kind,
    );
    return result as PromoteResult;
  }

  /**
   * Applies several knob changes in one atomic step: all of them or none. Each is checked as
   * check() does; the script then re-checks every base version, pin and the freeze before it
   * writes anything. A proposal id marks that proposal live in the same step; a proposal that
   * does not exist is refused (NotFoundError, field proposalId, rule exists).
   */
  async promoteAll(
    set: KnobChangeSet,
    kind: 'promote' | 'rollback' = 'promote',
  ): Promise<PromoteResult[]> {
    if (set.changes.length === 0)
      throw new ValidationError('promote: no changes given', 'changes', 'non_empty');
    requireWho(kind, set.actor, set.reason);
    const names = set.changes.map((c) => c.name);
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    if (dup)
      throw new ValidationError(
        `promote: knob ${dup} appears twice in one change set`,
        'changes',
        'unique',
        { knob: dup },
      );
    const k = this.keys;
    const request = requestRecord(set.requestId, badRequestId);
    // One order for a set, whatever order its caller listed it in: a retry listing the same
    // changes otherwise hashes as another request. Results come back in the caller's order.
    const ordered = [...set.changes].sort((a, b) => (a.name < b.name ? -1 : 1));
    const changes = ordered.map((c) => ({
      name: c.name,
      base: c.baseVersion,
      value: canonicalJson(c.value),
    }));
    const common = {
      // Names this change on its rows and in its messages (a resend sends the same one).
      changeId: randomUUID(),
      actor: set.actor,
      actorKind: set.actorKind ?? 'operator',
      reason: set.reason,
      proposalId: set.proposalId ?? '',
      evidence: evidenceJson(set.evidence),
      now: this.clock.now(),
      channel: k.knobChanges(),
      historyMaxLen: this.historyMaxLen,
      auditMaxLen: this.auditMaxLen,
      kind,
      // A promotion takes a proposal that passed its gates live; a rollback undoes a live one.
      proposalFrom: proposalFrom(kind),
      proposalTo: kind === 'rollback' ? 'rolled_back' : 'live',
      // What the request asks for (not when, by whom or with what evidence).
      requestHash: requestHash(request, () => [
        kind,
        set.actorKind ?? 'operator',
        set.proposalId ?? '',
        set.reason,
        changes,
      ]),
      requestTtlMs: request.ttlMs,
    };
    const requestKey = this.requestKey(request.id);
    const bases = new Map<string, KnobRow>();
    const checkAndRun = async (): Promise<unknown[]> => {
      for (const c of ordered)
        bases.set(c.name, await this.checkOne({ ...set, ...c }, kind, false));
      if (set.proposalId && kind === 'promote') await this.checkProposal(set, kind, false);
      // The script refuses a base whose change id is not the one checked here (lost write).
      const checked = changes.map((c) => ({ ...c, baseChange: bases.get(c.name)?.changeId ?? '' }));
      return storeScripts.run(
        this.redis,
        'promoteKnobs',
        [
          k.knobAudit(),
          k.knobFreeze(),
          k.knobEpoch(),
          k.knobIndex(),
          set.proposalId ? k.proposalRow(set.proposalId) : k.knobAudit(),
          set.proposalId ? k.proposalIndex('open') : k.knobAudit(),
          requestKey,
          ...ordered.flatMap((c) => [k.knobRow(c.name), k.knobHistory(c.name)]),
        ],
        [JSON.stringify(common), JSON.stringify(checked)],
      );
    };
    // A caller's id may be an earlier call's: its outcome answers before any check, which
    // would see the state that call made (stale) and refuse.
    const reply =
      (request.given ? await this.earlierReply(requestKey, common.requestHash) : null) ??
      (await checkAndRun());
    if (Number(reply[0]) === REQUEST_REUSED)
      throw new ValidationError(
        requestIdReused(request.id, 'promotion'),
        'requestId',
        'same_request',
      );
    if (Number(reply[0]) === SCRIPT_CODES.MISSING && Number(reply[1]) === 0)
      throw missingProposal(kind, set.proposalId);
    const failed = ordered[Number(reply[1]) - 1] ?? ordered[0];
    // Stale: what this table remembered is not what Redis holds: read it next time.
    if (Number(reply[0]) === SCRIPT_CODES.STALE && failed) this.known.delete(failed.name);
    const err = errorFromCode(reply, {
      target:
        Number(reply[0]) === SCRIPT_CODES.STATE
          ? `proposal ${set.proposalId}`
          : `knob ${failed?.name}`,
      ...(failed ? { baseVersion: failed.baseVersion } : {}),
    });
    if (err) throw err;
    const epoch = Number(reply[1]);
    // A reply from an earlier call's record carries that call's change id after the versions
    // (its rows hold that id, not this call's); a record without one (written before ids were
    // kept) leaves nothing to remember.
    const fromRecord = reply.length > 2 + ordered.length;
    const changeId = fromRecord ? String(reply[2 + ordered.length]) : common.changeId;
    const results = new Map<string, PromoteResult>();
    ordered.forEach((c, i) => {
      const version = Number(reply[2 + i]);
      const base = bases.get(c.name);
      // An answer from the record alone has no row read: nothing to remember.
      if (base)
        this.remember({
          ...base,
          value: c.value,
          version,
          changeId,
          updatedAt: common.now,
          updatedBy: common.actor,
          reason: common.reason,
          proposalId: common.proposalId,
        });
      results.set(c.name, { name: c.name, value: c.value, version, epoch });
    });
    return set.changes.map((c) => results.get(c.name) as PromoteResult);
  }

  /**
   * The record of a promotion request, in the knobs family so the promote script writes it in
   * its own step (the loop's and the API's ACL grants cover the whole family).
   */
  private requestKey(id: string): string {
    return this.keys.key('knobs', 'promote_request', id);
  }

  /** What an earlier run of a request answered (as the script would now), or null. */
  private async earlierReply(key: string, hash: string): Promise<unknown[] | null> {
    const done = await this.redis.get(key);
    if (done === null) return null;
    const rec = JSON.parse(done) as { hash: string; out: unknown[] };
    return rec.hash === hash ? rec.out : [REQUEST_REUSED];
  }

  /**
   * A promotion naming a proposal of the proposals table carries exactly its changes (names,
   * base versions, values): the id marks that proposal live, so it must not take another
   * change live in its name. A proposal's changes never change after it is made, so reading
   * them before the atomic step is sound. An id with no row is refused by the promote script,
   * or here when `mustExist` (the dry run, which runs no script).
   */
  private async checkProposal(
    set: KnobChangeSet,
    kind: 'promote' | 'rollback',
    mustExist: boolean,
  ): Promise<void> {
    const [raw, status] = await this.redis.hmget(
      this.keys.proposalRow(set.proposalId as string),
      'changes',
      'status',
    );
    if (raw == null && mustExist) throw missingProposal(kind, set.proposalId);
    // The dry run refuses what the script would: a proposal in a status this step does not take.
    if (mustExist && status && !proposalFrom(kind).includes(status)) {
      const err = errorFromCode([SCRIPT_CODES.STATE, 0, status], {
        target: `proposal ${set.proposalId}`,
      });
      if (err) throw err;
    }
    // A rollback's proposal is the live one it undoes: its changes are not the rollback's.
    if (raw == null || kind !== 'promote') return;
    const key = (c: { name: string; baseVersion: number; value: unknown }) =>
      `${c.name}\t${c.baseVersion}\t${canonicalJson(c.value as KnobValue)}`;
    const proposed = (JSON.parse(raw) as { name: string; baseVersion: number; value: unknown }[])
      .map(key)
      .sort();
    const given = set.changes.map(key).sort();
    if (proposed.join('\n') !== given.join('\n'))
      throw new ValidationError(
        `promote: proposal ${set.proposalId} proposes other changes than these`,
        'proposalId',
        'matches_changes',
      );
  }

  /** The value a knob took at one version of its (retained) history. */
  async valueAt(name: string, version: number): Promise<KnobValue> {
    this.spec(name);
    const entry = (await this.historyAll(name)).find((e) => e.version === version);
    if (!entry) {
      throw new ValidationError(
        `knob ${name}: no version ${version} in its history`,
        'toVersion',
        'exists',
        { knob: name },
      );
    }
    return entry.new;
  }

  /**
   * Restores the value a knob had at an earlier version, as a new version. Based on the
   * current version unless `baseVersion` is given (then a concurrent change fails as stale).
   * Undoing the last change skips the step and cooldown limits; going back further is held
   * to them as a promotion is (see check()). `requestId` as for promote().
   */
  async rollback(opts: {
    name: string;
    toVersion: number;
    actor: string;
    actorKind?: ActorKind;
    reason: string;
    baseVersion?: number;
    proposalId?: string;
    requestId?: string;
  }): Promise<PromoteResult> {
    const value = await this.valueAt(opts.name, opts.toVersion);
    const base =
      opts.baseVersion ??
      (await this.requestBase(opts.requestId)) ??
      (await this.get(opts.name)).version;
    return this.promote(
      {
        name: opts.name,
        value,
        baseVersion: base,
        actor: opts.actor,
        reason: opts.reason,
        evidence: { rolled_back_to: opts.toVersion },
        ...(opts.actorKind ? { actorKind: opts.actorKind } : {}),
        ...(opts.proposalId ? { proposalId: opts.proposalId } : {}),
        ...(opts.requestId !== undefined ? { requestId: opts.requestId } : {}),
      },
      'rollback',
    );
  }

  /**
   * The base version an earlier run of a caller's rollback request was on (its new version
   * less one), so a retry without a base version asks what that run asked, not a rollback of
   * the version it made. Undefined when there was no such run. (The policy registry's rollback
   * asks it too: it computes what to restore from the knob as that run found it.)
   */
  async requestBase(requestId: string | undefined): Promise<number | undefined> {
    if (requestId === undefined) return undefined;
    const { id } = requestRecord(requestId, badRequestId);
    const done = await this.redis.get(this.requestKey(id));
    if (done === null) return undefined;
    const [code, , version] = (JSON.parse(done) as { out: unknown[] }).out;
    return Number(code) === 0 ? Number(version) - 1 : undefined;
  }

  /**
   * Pins a knob at the value it has now. With `baseVersion` (the version the caller saw) a knob
   * that moved since fails as stale. A knob pinned by another actor or for another reason is
   * refused (StateError naming who pinned it): a second pin would overwrite another operator's
   * decision. The caller's own pin again (same actor and reason; a retry after a lost reply)
   * returns false and writes nothing; a new pin returns true.
   */
  async pin(
    name: string,
    actor: string,
    reason: string,
    opts: { baseVersion?: number } = {},
  ): Promise<boolean> {
    return this.setPin(name, true, actor, reason, opts);
  }

  /**
   * Returns false when the knob was not pinned (then nothing is written, as for freeze). With
   * `pinnedBy` and `pinReason` (the pin the caller saw) any other pin is refused (StateError
   * naming its actor): it was set since, and the caller never saw it.
   */
  async unpin(
    name: string,
    actor: string,
    reason: string,
    opts: { pinnedBy?: string; pinReason?: string } = {},
  ): Promise<boolean> {
    return this.setPin(name, false, actor, reason, opts);
  }

  private async setPin(
    name: string,
    pinned: boolean,
    actor: string,
    reason: string,
    opts: { baseVersion?: number; pinnedBy?: string; pinReason?: string },
  ): Promise<boolean> {
    this.spec(name);
    requireWho(`knob ${name}: ${pinned ? 'pin' : 'unpin'}`, actor);
    if (reason.trim() === '')
      throw new ValidationError(`knob ${name}: a pin needs a reason`, 'reason', 'required', {
        knob: name,
      });
    const { baseVersion, pinnedBy: saw, pinReason: sawReason } = opts;
    const reply = await storeScripts.run(
      this.redis,
      'pinKnob',
      [this.keys.knobRow(name), this.keys.knobAudit()],
      [
        pinned ? '1' : '0',
        actor,
        reason,
        this.clock.now(),
        this.auditMaxLen,
        name,
        this.keys.knobChanges(),
        baseVersion ?? '',
        saw ?? '',
        sawReason ?? '',
      ],
    );
    // A pin does not bump the version, so a remembered row cannot tell: forget it.
    this.known.delete(name);
    if (Number(reply[0]) === SCRIPT_CODES.STATE) {
      const [, pinReason, pinnedBy] = reply.map(String);
      const target = `knob ${name}`;
      throw pinned
        ? new StateError(
            `knob ${name} is already pinned by ${pinnedBy} (${pinReason}); unpin it first`,
            { target, field: 'pinned', rule: 'not_pinned', pinnedBy, pinReason },
          )
        : new StateError(
            `knob ${name} is pinned by ${pinnedBy} (${pinReason}), not the pin seen (${[saw, sawReason].filter(Boolean).join(': ')}): a pin set since was not seen`,
            { target, field: 'pinnedBy', rule: 'matches_pin', pinnedBy, pinReason },
          );
    }
    const err = errorFromCode(reply, {
      target: `knob ${name}`,
      ...(baseVersion !== undefined ? { baseVersion } : {}),
    });
    if (err) throw err;
    return Number(reply[2]) === 1;
  }

  /** The kill switch. Returns false when automation was already in that state. */
  async freeze(actor: string, reason: string): Promise<boolean> {
    return this.setFreeze(true, actor, reason);
  }

  async unfreeze(actor: string, reason: string): Promise<boolean> {
    return this.setFreeze(false, actor, reason);
  }

  private async setFreeze(on: boolean, actor: string, reason: string): Promise<boolean> {
    requireWho(on ? 'freeze' : 'unfreeze', actor);
    if (reason.trim() === '')
      throw new ValidationError('freeze: a reason is required', 'reason', 'required');
    const reply = await storeScripts.run(
      this.redis,
      'freeze',
      [this.keys.knobFreeze(), this.keys.knobAudit()],
      [on ? '1' : '0', actor, reason, this.clock.now(), this.auditMaxLen, this.keys.knobChanges()],
    );
    return Number(reply[1]) === 1;
  }

  /** A knob's changes, newest first. */
  async history(
    name: string,
    opts: { limit?: number; before?: string } = {},
  ): Promise<HistoryEntry[]> {
    this.spec(name);
    const log = new Log(this.redis, this.keys.knobHistory(name), this.historyMaxLen);
    return (
      await log.latest({
        count: opts.limit ?? 100,
        ...(opts.before ? { before: opts.before } : {}),
      })
    ).map(decodeHistory);
  }

  /**
   * The retained history, oldest first. Read newest first: `MAXLEN ~` trims whole stream nodes,
   * so the stream can hold far more than the bound, and a bounded read from the oldest end
   * would miss the newest versions.
   */
  private async historyAll(name: string): Promise<HistoryEntry[]> {
    const log = new Log(this.redis, this.keys.knobHistory(name), this.historyMaxLen);
    return (await log.latest({ count: this.historyMaxLen * 2 })).map(decodeHistory).reverse();
  }

  /**
   * Control-plane actions on knobs, newest first. Filtered reads (by target) go through the
   * API's audit reader (`readAudit`), which bounds its scan and says where it stopped.
   */
  async audit(opts: { limit?: number; before?: string } = {}): Promise<AuditEntry[]> {
    const log = new Log(this.redis, this.keys.knobAudit(), this.auditMaxLen);
    return (
      await log.latest({
        count: opts.limit ?? 100,
        ...(opts.before ? { before: opts.before } : {}),
      })
    ).map(decodeAudit);
  }
}
