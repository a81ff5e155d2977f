// The proposals table: a learner's proposed knob changes, written in one transaction that
// checks their base versions, and moved through the pipeline by optimistic-version writes that
// append an audit entry in the same step. Rows live in the knobs family (one cluster slot with
// the knobs), so creating and promoting a proposal can check and change knob rows atomically.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { validateValue } from '../../knobs/index.ts';
import type { KnobTable } from '../knobs/table.ts';
import type { ActorKind } from '../knobs/row.ts';
import { canonicalJson } from '../knobs/row.ts';
import { errorFromCode, ValidationError } from '../store/errors.ts';
import { encodeRow } from '../store/schema.ts';
import { ScriptSet } from '../store/scripts.ts';
import { Table } from '../store/table.ts';
import {
  isOpen,
  NEXT_STATUS,
  PROPOSAL_FIELDS,
  type KnobProposalChange,
  type Proposal,
  type ProposalStatus,
} from './proposal.ts';

const scripts = new ScriptSet<'createProposal'>(
  join(import.meta.dirname, 'scripts'),
  'knobos_loop',
);
const FAMILY = 'knobs';

export interface NewProposal {
  learner: string;
  actorKind?: ActorKind;
  changes: KnobProposalChange[];
  evidence?: unknown;
  reason: string;
  /** Chosen by the caller to make a retried create idempotent; random when omitted. */
  id?: string;
}

export class ProposalTable {
  readonly table: Table<typeof PROPOSAL_FIELDS>;

  constructor(readonly knobs: KnobTable) {
    this.table = new Table(knobs.redis, knobs.keys, {
      name: 'proposals',
      fields: PROPOSAL_FIELDS,
      id: (r) => r.id,
      family: () => FAMILY,
      indexes: {
        created: (r) => r.createdAt,
        open: (r) => (isOpen(r.status as ProposalStatus) ? r.createdAt : undefined),
      },
    });
  }

  private now(): number {
    return this.knobs.clock.now();
  }

  /** Writes a proposal if every knob it changes is still at its base version. */
  async create(p: NewProposal): Promise<Proposal> {
    if (p.changes.length === 0)
      throw new ValidationError('proposal: changes must not be empty', 'changes', 'non_empty');
    const seen = new Set<string>();
    for (const [i, c] of p.changes.entries()) {
      const bad = validateValue(this.knobs.spec(c.name), c.value);
      if (bad) throw new ValidationError(bad.message, bad.field, bad.rule, { knob: c.name });
      if (seen.has(c.name))
        throw new ValidationError(
          `proposal: knob ${c.name} is changed twice`,
          `changes[${i}].name`,
          'unique',
          { knob: c.name },
        );
      seen.add(c.name);
      if (!Number.isSafeInteger(c.baseVersion) || c.baseVersion < 1)
        throw new ValidationError(
          `proposal: the base version of knob ${c.name} must be a positive integer, got ${String(c.baseVersion)}`,
          `changes[${i}].baseVersion`,
          'integer',
          { knob: c.name },
        );
    }
    await this.refuseUnchanged(p.changes);
    const now = this.now();
    const row: Proposal = {
      id: p.id ?? `p-${now.toString(36)}-${randomBytes(3).toString('hex')}`,
      learner: p.learner,
      changes: p.changes.map((c) => ({ ...c, value: JSON.parse(canonicalJson(c.value)) })),
      status: 'proposed',
      evidence: p.evidence ?? {},
      reason: p.reason,
      createdAt: now,
      updatedAt: now,
    };
    const { set } = encodeRow(
      'proposals',
      PROPOSAL_FIELDS,
      row as unknown as Record<string, unknown>,
    );
    const k = this.knobs.keys;
    const reply = await scripts.run(
      this.knobs.redis,
      'createProposal',
      [
        k.proposalRow(row.id),
        k.proposalIndex('created'),
        k.proposalIndex('open'),
        k.knobAudit(),
        k.knobFreeze(),
        ...p.changes.map((c) => k.knobRow(c.name)),
      ],
      [
        JSON.stringify({
          id: row.id,
          actorKind: p.actorKind ?? 'automation',
          now,
          auditMaxLen: 100_000,
          learner: p.learner,
          bases: p.changes.map((c) => c.baseVersion),
          fields: Object.entries(set).flat(),
        }),
      ],
    );
    const failed = p.changes[Number(reply[1]) - 1];
    const err = errorFromCode(reply, {
      target: failed ? `knob ${failed.name}` : `proposal ${row.id}`,
      ...(failed ? { baseVersion: failed.baseVersion } : {}),
    });
    if (err) throw err;
    return row;
  }

  /**
   * A change to the value its knob has at its base version changes nothing. (A knob past its
   * base is left to the create script, which answers stale; the version fixes the value, so
   * this read needs no transaction.)
   */
  private async refuseUnchanged(changes: readonly KnobProposalChange[]): Promise<void> {
    const rows = await Promise.all(changes.map((c) => this.knobs.get(c.name)));
    changes.forEach((c, i) => {
      const row = rows[i];
      if (row?.version === c.baseVersion && canonicalJson(row.value) === canonicalJson(c.value))
        throw new ValidationError(
          `proposal: knob ${c.name} is ${canonicalJson(c.value)} at version ${c.baseVersion} already`,
          `changes[${i}].value`,
          'unchanged',
          { knob: c.name },
        );
    });
  }

  async get(id: string): Promise<{ proposal: Proposal; version: number }> {
    const got = await this.table.mustGet(FAMILY, id);
    return { proposal: got.row as unknown as Proposal, version: got.version };
  }

  /** Newest first; only undecided ones with `open`. */
  async list(opts: { open?: boolean; limit?: number } = {}): Promise<Proposal[]> {
    const ids = await this.table.range(FAMILY, opts.open ? 'open' : 'created', {
      rev: true,
      limit: opts.limit ?? 50,
    });
    const rows = await this.table.getMany(FAMILY, ids);
    return rows.flatMap((r) => (r ? [r.row as unknown as Proposal] : []));
  }

  /** Adds reports to a proposal without moving it (a shadow report before promotion). */
  async annotate(
    id: string,
    reports: {
      simReport?: unknown;
      shadowReport?: unknown;
      guardReport?: unknown;
      reason?: string;
    },
  ): Promise<Proposal> {
    const { proposal, version } = await this.get(id);
    const next: Proposal = { ...proposal, ...reports, updatedAt: proposal.updatedAt };
    await this.table.write([{ row: next, expect: version }]);
    return next;
  }

  /**
   * Moves a proposal to its next status with a report, checking the allowed moves and the
   * row's version; appends an audit entry in the same step. Not to live nor rolled_back: a
   * proposal gets there only with its knobs, through the knobs table's promoteAll.
   */
  async transition(
    id: string,
    to: ProposalStatus,
    update: {
      reason: string;
      actor: string;
      simReport?: unknown;
      shadowReport?: unknown;
      guardReport?: unknown;
    },
  ): Promise<Proposal> {
    const { proposal, version } = await this.get(id);
    if (!NEXT_STATUS[proposal.status].includes(to)) {
      const knobStep = to === 'live' || to === 'rolled_back';
      throw new ValidationError(
        `proposal ${id}: cannot move from ${proposal.status} to ${to}${knobStep ? ' here: only a knob promotion or rollback sets it' : ''}`,
        'status',
        'transition',
        {
          from: proposal.status,
          to,
        },
      );
    }
    const now = this.now();
    const { actor, ...reports } = update;
    const next: Proposal = { ...proposal, ...reports, status: to, updatedAt: now };
    await this.table.write(
      [
        {
          row: next,
          expect: version,
        },
      ],
      [
        {
          key: this.knobs.keys.knobAudit(),
          maxLen: 100_000,
          fields: {
            at: String(now),
            actor,
            action: `proposal.${to}`,
            target: id,
            outcome: 'ok',
            detail: JSON.stringify({ from: proposal.status, reason: update.reason }),
          },
        },
      ],
    );
    return next;
  }
}
