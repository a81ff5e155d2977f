// The policy registry: register versions of named policies with their artifacts, list versions
// and lineage, evaluate a version in simulation, shadow it, promote it through the knobs
// table, retire it, roll back. Every change is one atomic step with its audit entry (see
// table.ts and promotion.ts); simulations run off the event loop (evaluator.ts).
import type { KnobTable } from '../knobs/table.ts';
import { ProposalTable } from '../loop/proposals.ts';
import { StateError } from '../store/errors.ts';
import { RegistryUnsupportedError } from './errors.ts';
import { Evaluator, type EvaluatorOptions } from './evaluator.ts';
import { policyId, type PolicyRow } from './model.ts';
import { schedulingPolicyOf } from './policy-factory.ts';
import { Promotion, PROMOTION_KNOBS, type Actor } from './promotion.ts';
import {
  checkEvalSpec,
  type EvalSpec,
  type NamedArtifact,
  type ShadowReport,
  type SimReport,
} from './sim.ts';
import { PolicyTable, type NewPolicy } from './table.ts';

export interface RegistryOptions {
  knobs: KnobTable;
  proposals?: ProposalTable;
  /** An evaluator to share, or options for the registry's own (a worker thread). */
  evaluator?: Evaluator | EvaluatorOptions;
  artifactBytesMax?: number;
}

export interface EvaluateOptions extends Actor {
  spec?: Partial<EvalSpec>;
}

/** The knob that names the live heuristic when no registry version is live. */
const HEURISTIC_KNOB = 'scheduler.policy';

export class PolicyRegistry {
  readonly table: PolicyTable;
  readonly proposals: ProposalTable;
  readonly evaluator: Evaluator;
  readonly promotion: Promotion;
  private readonly ownsEvaluator: boolean;

  constructor(private readonly opts: RegistryOptions) {
    const { knobs } = opts;
    this.table = new PolicyTable(knobs.redis, knobs.keys, knobs.clock, {
      ...(opts.artifactBytesMax ? { artifactBytesMax: opts.artifactBytesMax } : {}),
    });
    this.proposals = opts.proposals ?? new ProposalTable(knobs);
    this.ownsEvaluator = !(opts.evaluator instanceof Evaluator);
    this.evaluator =
      opts.evaluator instanceof Evaluator ? opts.evaluator : new Evaluator(opts.evaluator);
    this.promotion = new Promotion(this.table, knobs, this.proposals);
  }

  get knobs(): KnobTable {
    return this.opts.knobs;
  }

  register(p: NewPolicy, actor: string, requestId?: string): Promise<PolicyRow> {
    return this.table.register(p, actor, requestId);
  }

  /** The live version of a name whose live version a knob selects; null for other names. */
  async live(name: string): Promise<number | null> {
    return PROMOTION_KNOBS[name] ? this.promotion.live(name) : null;
  }

  /** The scheduling policy the live scheduler runs: the selected version, or the heuristic. */
  async incumbent(): Promise<NamedArtifact> {
    const version = await this.promotion.live('scheduler');
    if (version > 0) {
      const got = await this.table.find('scheduler', version);
      if (got) return { name: `live:${got.row.id}`, artifact: got.row.artifact };
    }
    const heuristic = (await this.opts.knobs.get(HEURISTIC_KNOB)).value as string;
    return { name: `live:${heuristic}`, artifact: { heuristic } };
  }

  /** A scheduling version the simulator can run, with the spec checked; throws otherwise. */
  private async runnable(
    name: string,
    version: number,
    spec: Partial<EvalSpec> | undefined,
  ): Promise<{ row: PolicyRow; spec: EvalSpec }> {
    const { row } = await this.table.get(name, version);
    if (row.kind !== 'scheduling')
      throw new RegistryUnsupportedError(
        `policy ${row.id}: only scheduling policies have a simulator here (${row.kind} has none)`,
        { field: 'kind', rule: 'simulated', kind: row.kind },
      );
    if (row.status === 'retired')
      throw new StateError(`policy ${row.id}: is retired`, {
        target: row.id,
        field: 'status',
        rule: 'not_retired',
        status: row.status,
      });
    const checked = checkEvalSpec(spec);
    schedulingPolicyOf(row.artifact); // refuses an artifact that cannot run, before queueing
    return { row, spec: checked };
  }

  /**
   * Candidate against the live policy and the heuristics in simulation; the report goes on
   * the row, and a draft that is not worse than live becomes a candidate.
   */
  async evaluate(name: string, version: number, o: EvaluateOptions): Promise<PolicyRow> {
    const { row, spec } = await this.runnable(name, version, o.spec);
    const report = (await this.evaluator.run({
      type: 'evaluate',
      candidate: { name: row.id, artifact: row.artifact },
      incumbent: await this.incumbent(),
      spec,
    })) as SimReport;
    const simReport = { ...report, evaluatedAt: this.table.clock.now(), by: o.actor };
    return this.table.update(name, version, async (cur) => {
      // Retired while the simulation ran: a retired row takes no report (as shadow refuses).
      if (cur.status === 'retired')
        throw new StateError(`policy ${cur.id}: was retired during the evaluation`, {
          target: cur.id,
          field: 'status',
          rule: 'not_retired',
          status: cur.status,
        });
      const to = cur.status === 'draft' && report.verdict !== 'worse' ? 'candidate' : cur.status;
      if (report.verdict === 'worse') await this.stopWorse(cur, o, 'evaluation');
      return {
        row: { ...this.table.moved(cur, to, o), simReport },
        audit: {
          actor: o.actor,
          action: 'policy.evaluate',
          detail: {
            from: cur.status,
            to,
            verdict: report.verdict,
            improvement: report.improvementVsIncumbent,
            reason: o.reason,
          },
        },
      };
    });
  }

  /**
   * Runs a candidate in shadow beside the live policy (it never acts); the report goes on the
   * row, which moves to shadow unless the candidate came out worse.
   */
  async shadow(name: string, version: number, o: EvaluateOptions): Promise<PolicyRow> {
    const { row, spec } = await this.runnable(name, version, o.spec);
    if (row.status !== 'candidate' && row.status !== 'shadow')
      throw new StateError(
        `policy ${row.id}: is ${row.status}; evaluate it first (only candidates go to shadow)`,
        { target: row.id, field: 'status', rule: 'candidate', status: row.status },
      );
    const report = (await this.evaluator.run({
      type: 'shadow',
      candidate: { name: row.id, artifact: row.artifact },
      incumbent: await this.incumbent(),
      spec,
    })) as ShadowReport;
    const shadowReport = { ...report, at: this.table.clock.now(), by: o.actor };
    return this.table.update(name, version, async (cur) => {
      if (cur.status !== 'candidate' && cur.status !== 'shadow')
        throw new StateError(`policy ${cur.id}: moved to ${cur.status} during the shadow run`, {
          target: cur.id,
          field: 'status',
          rule: 'candidate',
          status: cur.status,
        });
      const to = report.verdict === 'worse' ? cur.status : 'shadow';
      if (report.verdict === 'worse') await this.stopWorse(cur, o, 'shadow report');
      return {
        row: { ...this.table.moved(cur, to, o), shadowReport },
        audit: {
          actor: o.actor,
          action: 'policy.shadow',
          detail: {
            from: cur.status,
            to,
            verdict: report.verdict,
            divergenceRate: report.divergenceRate,
            reason: o.reason,
          },
        },
      };
    });
  }

  /**
   * A report that finds the version worse stops its promotions in flight: one that checked the
   * reports before this one was written would otherwise take the knob with it.
   */
  private stopWorse(row: PolicyRow, by: Actor, what: string): Promise<void> {
    return this.promotion.stopPromotions(row, by, {
      reason: `policy ${row.id}: its ${what} found it worse than live`,
      live: 'keep',
    });
  }

  promote(name: string, version: number, by: Actor): Promise<PolicyRow> {
    return this.promotion.promote(name, version, by);
  }

  rollback(name: string, by: Actor, requestId?: string) {
    return this.promotion.rollback(name, by, requestId);
  }

  /**
   * Retires a version that is not live (roll back or promote another one first). A promotion
   * of it in flight is stopped first (its proposal rejected, so the knob step refuses it), or
   * the retire is refused if that promotion already took the knob; the row is then written at
   * the version it was read at, so a promotion marked meanwhile makes the retire start over
   * (promotion.ts has the argument).
   */
  async retire(name: string, version: number, by: Actor): Promise<PolicyRow> {
    if (PROMOTION_KNOBS[name]) await this.promotion.reconcile(name, by.actor);
    return this.table.update(name, version, async (cur) => {
      if (cur.status === 'live')
        throw new StateError(
          `policy ${policyId(name, version)}: is live; roll back or promote another version first`,
          { target: cur.id, field: 'status', rule: 'not_live', status: cur.status },
        );
      if (cur.status === 'retired')
        throw new StateError(`policy ${cur.id}: is already retired`, {
          target: cur.id,
          field: 'status',
          rule: 'transition',
          status: cur.status,
        });
      await this.promotion.stopPromotions(cur, by);
      const row = this.table.moved(cur, 'retired', by);
      delete row.promoting;
      return {
        row,
        audit: {
          actor: by.actor,
          action: 'policy.retire',
          detail: { from: cur.status, to: 'retired', reason: by.reason },
        },
      };
    });
  }

  async close(): Promise<void> {
    if (this.ownsEvaluator) await this.evaluator.close();
  }
}
