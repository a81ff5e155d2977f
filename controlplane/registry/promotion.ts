// Promotion and rollback of a policy version go through the knobs table, so they are versioned,
// audited and guarded like every knob: the knob `scheduler.policy_version` selects the live
// version of the 'scheduler' policy (0 = the heuristic named by scheduler.policy).
//   promote  = a proposal with that knob change (ProposalTable.create, moved through simulated
//              and shadow with the version's reports), then KnobTable.promoteAll with the
//              proposal id: the knob row, its history, the audit entry and the proposal's move
//              to live are one atomic step in the {knobs} family.
//   rollback = the knob back to the version the live one replaced (its promotion's `old`),
//              marking the live proposal rolled_back in the same step.
// The registry rows live in another family ({policies}, another cluster slot), so their
// live/retired statuses follow in a second step. The knob is the truth: if a process dies
// between the two steps, or someone moves the knob directly (an operator, the SLO guard),
// reconcile() brings the rows in line, idempotently; every registry write runs it first.
//
// A retire racing a promote of the same version. No MULTI or script spans the two slots, so
// each side marks its intent in one family and then checks the other (as Dekker's lock does):
//   promote: C  create (or reuse) proposal P                                     {knobs}
//            T  append P to the row's `promoting` list, at the row version read,
//               refused unless the row is a candidate or shadow                  {policies}
//            S  the knob step, which takes P live only from simulated/shadow     {knobs}
//   retire:  R  read the row (version w); for each P in `promoting`:
//            X  P open -> reject it; P live -> refuse (the version went live)    {knobs}
//               (unless the knob has moved on from the version since: then it is not live)
//            W  write the row retired at version w                               {policies}
// Both cannot win. A winning promote had T succeed and then S. If T came after retire's read
// R, either W came first (T re-reads, sees retired and refuses) or W's write at version w fails
// because T changed the row (the retire starts over, and reads P). So T came before R, R saw P
// in the list (entries leave it only when their proposal can no longer go live, or when the
// version goes live, and then the retire refuses it as live), and X handled P before W: if S
// came first, X finds P live and the retire is refused; otherwise X rejected P and S, which
// needs P simulated or shadow, refuses. Marks of a crashed promote cost nothing: the next
// retire rejects their proposals, the next promote prunes the rejected ones. A refused retire
// has written nothing; a refused promote rejects its proposal and takes it off the list.
import type { KnobTable } from '../knobs/table.ts';
import { isOpen, reached, type Proposal } from '../loop/proposal.ts';
import type { ProposalTable } from '../loop/proposals.ts';
import {
  AlreadyExistsError,
  KnobosError,
  NotFoundError,
  StaleVersionError,
  StateError,
  ValidationError,
} from '../store/errors.ts';
import { requestIdReused } from '../store/request-id.ts';
import { RegistryUnsupportedError } from './errors.ts';
import { policyId, type PolicyRow } from './model.ts';
import { checkText, type PolicyTable, type RowWrite } from './table.ts';

/** Which knob selects the live version of a policy name. */
export const PROMOTION_KNOBS: Readonly<Record<string, string>> = {
  scheduler: 'scheduler.policy_version',
};

const RECONCILE_TRIES = 5;
/** Knob history entries read for the versions that may be live (the knobs table keeps 10,000). */
const KNOB_HISTORY_READ = 10_000;
/** Proposal ids tried per promotion base (a retried promotion reuses an open one). */
const PROPOSAL_ATTEMPTS = 5;
/** Knob history entries searched for the promotion a rollback undoes. */
const HISTORY_SCAN = 1_000;

export interface Actor {
  actor: string;
  reason: string;
}

/**
 * A direct change of a knob (an operator's, outside the registry): a knob that selects a
 * registry policy's live version takes only 0 that way (learned policies off, the way out in
 * an emergency); a version goes live through the registry, which checks its status and
 * reports. `field` names the value where the caller took it from.
 */
export function checkDirectKnobChange(knob: string, value: unknown, field = 'value'): void {
  const policy = registryPolicyOf(knob);
  if (policy !== undefined && value !== 0) {
    throw new StateError(
      `${knob} selects the live ${policy} policy version: promote one through the registry ` +
        `(POST /api/policies/${policy}/versions/<n>/promote), which checks its status and ` +
        `reports; set directly, it takes only 0, which turns learned policies off`,
      { field, rule: 'registry', knob, value },
    );
  }
}

/** The registry policy whose live version `knob` selects, if any. */
function registryPolicyOf(knob: string): string | undefined {
  return Object.keys(PROMOTION_KNOBS).find((p) => PROMOTION_KNOBS[p] === knob);
}

/**
 * checkDirectKnobChange for a direct rollback to `toVersion`: the value it would restore is
 * held to the same rule (never a perhaps retired policy version from the knob's history). The
 * history is read only for a knob the registry owns.
 */
export async function checkDirectRollback(
  knobs: KnobTable,
  knob: string,
  toVersion: number,
  field: string,
): Promise<void> {
  if (registryPolicyOf(knob) === undefined) return;
  checkDirectKnobChange(knob, await knobs.valueAt(knob, toVersion), field);
}

export function promotionKnob(name: string): string {
  const knob = PROMOTION_KNOBS[name];
  if (!knob)
    throw new RegistryUnsupportedError(
      `policy ${name}: no knob selects its live version (promotable: ${Object.keys(PROMOTION_KNOBS).join(', ')})`,
      { field: 'name', rule: 'promotable', name },
    );
  return knob;
}

export class Promotion {
  constructor(
    private readonly table: PolicyTable,
    private readonly knobs: KnobTable,
    private readonly proposals: ProposalTable,
  ) {}

  /** The live version of a promotable name, from its knob (0 = the heuristic). */
  async live(name: string): Promise<number> {
    return (await this.knobs.get(promotionKnob(name))).value as number;
  }

  /**
   * Makes the rows agree with the knob: the version it selects is live, no other is. Returns
   * the rows it changed. Safe to run any time, by anyone, any number of times.
   */
  async reconcile(name: string, actor: string): Promise<PolicyRow[]> {
    const selected = await this.live(name);
    const reason = `reconciled: ${promotionKnob(name)} selects ${selected === 0 ? 'the heuristic' : policyId(name, selected)}`;
    return this.follow(name, { actor, reason }, 'policy.reconcile');
  }

  /**
   * One atomic step of the registry that makes the version the knob selects the only live
   * version of `name`, with an audit entry per row it changes; retried when a row moved
   * meanwhile. `extra` goes on the selected row only while the knob still selects
   * `extra.version`: a promotion's record belongs to the version promoted, not to one the knob
   * moved to since.
   */
  private async follow(
    name: string,
    by: Actor,
    action: string,
    extra?: { version: number; fields: Partial<PolicyRow> },
  ): Promise<PolicyRow[]> {
    for (let attempt = 1; ; attempt++) {
      const value = await this.live(name);
      const writes: RowWrite[] = [];
      for (const got of await this.liveRows(name))
        if (got.row.version !== value) writes.push(this.write(got, 'retired', by, action));
      const fields = extra?.version === value ? extra.fields : {};
      const sel = value > 0 ? await this.table.find(name, value) : null;
      if (sel && (sel.row.status !== 'live' || Object.keys(fields).length > 0))
        writes.push(this.write(sel, 'live', by, action, fields));
      if (writes.length === 0) return [];
      try {
        await this.table.writeRows(writes);
        return writes.map((w) => w.row);
      } catch (err) {
        if (!(err instanceof StaleVersionError) || attempt >= RECONCILE_TRIES) throw err;
      }
    }
  }

  /**
   * The rows of `name` marked live. A row goes live only as its knob's value (follow), so every
   * one is a value in the knob's history: read from there, not by a scan of the rows, which is
   * bounded (SCAN_MAX) and missed a live row older than the newest 2,000 versions.
   */
  private async liveRows(name: string): Promise<{ row: PolicyRow; v: number }[]> {
    const history = await this.knobs.history(promotionKnob(name), { limit: KNOB_HISTORY_READ });
    const versions = new Set<number>();
    for (const h of history)
      for (const v of [h.old, h.new]) if (typeof v === 'number' && v > 0) versions.add(v);
    const rows = await Promise.all([...versions].map((v) => this.table.find(name, v)));
    return rows.filter((g): g is { row: PolicyRow; v: number } => g?.row.status === 'live');
  }

  private write(
    got: { row: PolicyRow; v: number },
    to: PolicyRow['status'],
    by: Actor,
    action: string,
    extra: Partial<PolicyRow> = {},
  ): RowWrite {
    // The knob already moved: the rows follow it whatever their status was.
    const row = { ...got.row, ...extra, status: to, reason: by.reason } as PolicyRow;
    delete row.promoting; // live or retired: no promotion of it is in flight any more
    row.updatedAt = this.table.clock.now();
    row.updatedBy = by.actor;
    return {
      row,
      v: got.v,
      audit: { actor: by.actor, action, detail: { from: got.row.status, to, reason: by.reason } },
    };
  }

  /** A proposal for this promotion: an open one of an earlier try on the same base, or new. */
  private async proposal(row: PolicyRow, knob: string, base: number, by: Actor): Promise<Proposal> {
    const stem = `reg-${row.name}-${row.version}-k${base}`;
    for (let i = 1; i <= PROPOSAL_ATTEMPTS; i++) {
      const id = i === 1 ? stem : `${stem}-${i}`;
      try {
        return await this.proposals.create({
          id,
          learner: by.actor,
          actorKind: 'operator',
          changes: [{ name: knob, value: row.version, baseVersion: base }],
          evidence: {
            policy: row.id,
            artifact: row.artifactSummary,
            lineage: row.lineage,
            simVerdict: verdictOf(row.simReport),
            shadowVerdict: verdictOf(row.shadowReport),
          },
          reason: by.reason,
        });
      } catch (err) {
        if (!(err instanceof AlreadyExistsError)) throw err;
        const { proposal } = await this.proposals.get(id);
        if (['proposed', 'simulated', 'shadow'].includes(proposal.status)) return proposal;
      }
    }
    throw new StateError(
      `policy ${row.id}: ${PROPOSAL_ATTEMPTS} promotion attempts on knob version ${base} failed`,
      {
        field: 'proposal',
        rule: 'attempts',
      },
    );
  }

  /**
   * Carries the version's reports onto the proposal, moving it as far as they go. A concurrent
   * promotion of the same version shares the proposal and may have moved it first: a step it
   * already took is not an error (the knob step then decides which of the two goes live).
   */
  private async advance(p: Proposal, row: PolicyRow, actor: string): Promise<void> {
    const step = async (
      to: 'simulated' | 'shadow',
      opts: Parameters<ProposalTable['transition']>[2],
    ): Promise<Proposal> => {
      try {
        return await this.proposals.transition(p.id, to, opts);
      } catch (err) {
        if (!(err instanceof KnobosError)) throw err;
        const now = (await this.proposals.get(p.id)).proposal;
        if (reached(now.status, to)) return now;
        throw err;
      }
    };
    if (p.status === 'proposed')
      p = await step('simulated', {
        actor,
        reason: `registry simulation: ${verdictOf(row.simReport) ?? 'no report'}`,
        ...(row.simReport !== undefined ? { simReport: row.simReport } : {}),
      });
    if (p.status === 'simulated' && row.status === 'shadow')
      await step('shadow', {
        actor,
        reason: `registry shadow: ${verdictOf(row.shadowReport) ?? 'no report'}`,
        ...(row.shadowReport !== undefined ? { shadowReport: row.shadowReport } : {}),
      });
  }

  /**
   * Step T: the promotion's proposal on the row's `promoting` list, written at the version the
   * status was checked at (retried when the row moved). Entries whose proposal was rejected or
   * rolled back cannot go live any more and are pruned.
   */
  private async mark(name: string, version: number, proposalId: string): Promise<void> {
    await this.table.update(name, version, async (cur) => {
      if (cur.status !== 'candidate' && cur.status !== 'shadow') throw retiredDuring(cur);
      // A report written since promote's own check (it stops promotions marked before it).
      assertNotWorse(cur);
      const keep: string[] = [];
      for (const id of cur.promoting ?? []) {
        if (id === proposalId) continue;
        const status = await this.proposalStatus(id);
        if (status !== null && (isOpen(status) || status === 'live')) keep.push(id);
      }
      return { row: { ...cur, promoting: [...keep, proposalId] } };
    });
  }

  /** A refused promotion's proposal off the list, once it can no longer go live. */
  private async unmark(name: string, version: number, proposalId: string): Promise<void> {
    const got = await this.table.find(name, version);
    if (!got?.row.promoting?.includes(proposalId)) return;
    if ((await this.proposalStatus(proposalId)) !== 'rejected') return;
    await this.table.update(name, version, (cur) => {
      const promoting = (cur.promoting ?? []).filter((id) => id !== proposalId);
      const row: PolicyRow = { ...cur, promoting };
      if (promoting.length === 0) delete row.promoting;
      return { row };
    });
  }

  private async proposalStatus(id: string): Promise<Proposal['status'] | null> {
    try {
      return (await this.proposals.get(id)).proposal.status;
    } catch (err) {
      if (err instanceof NotFoundError) return null;
      throw err;
    }
  }

  /**
   * Step X of a retire, and of a report that finds the version worse: every promotion of `row`
   * in flight is stopped (its open proposal rejected in the {knobs} family, so the knob step
   * refuses it). If one already took the knob and the knob still selects this version, a
   * retire is refused (`live: 'refuse'`), while a report is still recorded (`live: 'keep'`:
   * the version is live, which the SLO guard watches). Writes nothing in the registry; the
   * caller writes the row at the version it read `row` at, so a promotion marked meanwhile
   * makes it start over.
   */
  async stopPromotions(
    row: PolicyRow,
    by: Actor,
    why: { reason: string; live: 'refuse' | 'keep' } = {
      reason: `policy ${row.id} retired: ${by.reason}`,
      live: 'refuse',
    },
  ): Promise<void> {
    for (const id of row.promoting ?? []) {
      for (let attempt = 1; ; attempt++) {
        const status = await this.proposalStatus(id);
        // Taken live but the knob has moved on since (directly, before the rows followed): the
        // version is not live and that proposal cannot take the knob again.
        if (status === 'live' && (await this.live(row.name)) !== row.version) break;
        if (status === 'live' && why.live === 'keep') break;
        if (status === 'live')
          throw new StateError(
            `policy ${row.id}: its promotion (proposal ${id}) took the knob meanwhile, so it is live; roll back or promote another version first`,
            { target: row.id, field: 'status', rule: 'not_live', status: 'live', proposal: id },
          );
        if (status === null || !isOpen(status)) break;
        try {
          await this.proposals.transition(id, 'rejected', {
            actor: by.actor,
            reason: why.reason,
          });
          break;
        } catch (err) {
          // The proposal moved meanwhile (advanced, or taken live): read it again.
          if (!(err instanceof KnobosError) || attempt >= RECONCILE_TRIES) throw err;
        }
      }
    }
  }

  async promote(name: string, version: number, by: Actor): Promise<PolicyRow> {
    // Before any step: a reason the knob table refuses later would leave a rejected proposal
    // on one of the knob version's few proposal ids.
    checkText('reason', by.reason);
    const knob = promotionKnob(name);
    await this.reconcile(name, by.actor);
    const got = await this.table.get(name, version);
    const row = got.row;
    if (row.status !== 'candidate' && row.status !== 'shadow')
      throw new StateError(
        `policy ${row.id}: is ${row.status}; only a candidate (evaluated) or shadow version is promoted`,
        { target: row.id, field: 'status', rule: 'promotable', status: row.status },
      );
    assertNotWorse(row);
    const current = await this.knobs.get(knob);
    const p = await this.proposal(row, knob, current.version, by);
    let knobVersion: number;
    try {
      await this.advance(p, row, by.actor);
      await this.mark(name, version, p.id);
      const [res] = await this.knobs.promoteAll({
        actor: by.actor,
        actorKind: 'operator',
        reason: by.reason,
        proposalId: p.id,
        evidence: { policy: row.id, artifact: row.artifactSummary },
        changes: [{ name: knob, value: version, baseVersion: current.version }],
      });
      knobVersion = res?.version ?? current.version + 1;
    } catch (err) {
      if (!(err instanceof KnobosError)) throw err;
      await this.proposals
        .transition(p.id, 'rejected', {
          actor: by.actor,
          reason: `promotion refused: ${err.message}`,
        })
        .catch(() => undefined);
      await this.unmark(name, version, p.id).catch(() => undefined);
      // A retire that won the race rejected P (the knob step then refuses it): say so.
      const now = await this.table.find(name, version).catch(() => null);
      if (now?.row.status === 'retired') throw retiredDuring(now.row);
      throw err;
    }
    const promotion = {
      proposalId: p.id,
      knob,
      knobVersion,
      replaced: current.value as number,
      at: this.table.clock.now(),
      by: by.actor,
    };
    // The knob says `version` now, unless it moved again since: then the rows follow that.
    await this.follow(name, by, 'policy.promote', { version, fields: { promotion } });
    return (await this.table.get(name, version)).row;
  }

  /**
   * The knob back to the version the live one replaced; the live proposal is rolled back. With
   * `requestId` (the API's Idempotency-Key) a retry answers the first run's outcome: it works
   * from the knob as that run found it (its recorded base), so it asks the same change and the
   * knob table replays it, instead of rolling back one version more.
   */
  async rollback(name: string, by: Actor, requestId?: string): Promise<RollbackOutcome> {
    checkText('reason', by.reason);
    const knob = promotionKnob(name);
    await this.reconcile(name, by.actor);
    const base = await this.knobs.requestBase(requestId);
    if (base !== undefined) return this.rolledBackBefore(name, knob, base, by, requestId as string);
    const current = await this.knobs.get(knob);
    const from = current.value as number;
    if (from === 0)
      throw new StateError(
        `policy ${name}: no registry version is live (${knob} is 0); nothing to roll back`,
        {
          target: name,
          field: knob,
          rule: 'live_version',
        },
      );
    const history = await this.knobs.history(knob, { limit: HISTORY_SCAN });
    const promoted = history.find((e) => e.kind === 'promote' && e.new === from);
    const to = typeof promoted?.old === 'number' ? promoted.old : 0;
    // The proposal that made `from` live is rolled back in the same step, if it still is live.
    let proposalId: string | undefined;
    if (promoted?.proposalId) {
      const p = await this.proposals.get(promoted.proposalId).catch(() => null);
      if (p?.proposal.status === 'live') proposalId = promoted.proposalId;
    }
    const res = await this.knobs.promote(
      {
        name: knob,
        value: to,
        baseVersion: current.version,
        actor: by.actor,
        actorKind: 'operator',
        reason: by.reason,
        evidence: { policy: policyId(name, from), rolled_back_to: to },
        ...(proposalId ? { proposalId } : {}),
        ...(requestId !== undefined ? { requestId } : {}),
      },
      'rollback',
    );
    return this.rolledBack(name, by, from, to, res.version);
  }

  /**
   * A retry of a rollback request that ran: the knob change its first run made (version
   * `base` + 1), answered as that run answered, nothing done again. The id with another request
   * (not that change: another knob's, another reason or caller) is refused.
   */
  private async rolledBackBefore(
    name: string,
    knob: string,
    base: number,
    by: Actor,
    requestId: string,
  ): Promise<RollbackOutcome> {
    const history = await this.knobs.history(knob, { limit: HISTORY_SCAN });
    const made = history.find((e) => e.version === base + 1);
    if (!made || made.kind !== 'rollback' || made.actor !== by.actor || made.reason !== by.reason)
      throw new ValidationError(
        requestIdReused(requestId, 'rollback'),
        'requestId',
        'same_request',
      );
    return this.rolledBack(name, by, made.old as number, made.new as number, made.version);
  }

  /** The rows after a rollback from version `from` to `to` (knob version `knobVersion`). */
  private async rolledBack(
    name: string,
    by: Actor,
    from: number,
    to: number,
    knobVersion: number,
  ): Promise<RollbackOutcome> {
    await this.follow(name, by, 'policy.rollback');
    const [a, b] = await Promise.all([
      this.table.find(name, from),
      to > 0 ? this.table.find(name, to) : null,
    ]);
    return { rolledBack: a?.row ?? null, live: b?.row ?? null, value: to, knobVersion };
  }
}

/** The outcome of a rollback, whether this call made it or an earlier run of its request. */
type RollbackOutcome = {
  rolledBack: PolicyRow | null;
  live: PolicyRow | null;
  value: number;
  knobVersion: number;
};

/** A promotion refused because a retire of its version won the race. */
function retiredDuring(row: PolicyRow): StateError {
  return new StateError(
    `policy ${row.id}: is ${row.status}; it was ${row.status === 'retired' ? 'retired' : `moved to ${row.status}`} while its promotion was under way, which is refused (only a candidate or shadow version is promoted)`,
    { target: row.id, field: 'status', rule: 'promotable', status: row.status },
  );
}

/**
 * The latest report of each kind must not find the version worse: a candidate evaluated again
 * (say against a better live policy) and found worse stays a candidate, but does not go live.
 */
function assertNotWorse(row: PolicyRow): void {
  for (const [field, what] of [
    ['simReport', 'evaluation'],
    ['shadowReport', 'shadow report'],
  ] as const)
    if (verdictOf(row[field]) === 'worse')
      throw new StateError(`policy ${row.id}: its ${what} found it worse than live`, {
        target: row.id,
        field,
        rule: 'not_worse',
      });
}

function verdictOf(report: unknown): string | undefined {
  const v = (report as { verdict?: unknown } | undefined)?.verdict;
  return typeof v === 'string' ? v : undefined;
}
