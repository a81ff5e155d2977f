// A promotion racing an evaluation that finds the version worse than live. The promotion
// checks the reports when it starts; an evaluation finishing later must still stop it: right
// after the proposal is created (the row's mark checks the reports again) or just before the
// knob step (the evaluation rejects the marked proposal, so the knob step refuses it). Once the
// version is live, its promotion is not undone by a report (rolling back is the SLO guard's job).
import { describe, expect, it } from 'vitest';
import type { PolicyRegistry } from '../controlplane/registry/index.ts';
import { StateError } from '../controlplane/store/errors.ts';
import type { KnobTable } from '../controlplane/knobs/table.ts';
import { registrySuite } from './helpers/registry-fixtures.ts';
import type { Backend } from './helpers/redis.ts';

const KNOB = 'scheduler.policy_version';
const SPEC = { seeds: [1], jobs: 20, workers: 4 };
const ALICE = { actor: 'alice#t1', reason: 'looks good' };
const BOB = { actor: 'bob#t2', reason: 'again, against the new live heuristic' };

describe.each<Backend>(['single', 'cluster'])(
  'registry promote racing a worse evaluation on %s redis',
  (backend) => {
    const suite = registrySuite(backend);

    /** v1 (fifo) evaluated while fifo is live: a candidate; then srpt, a better one, goes live. */
    async function setup() {
      const { knobs, registry } = await suite.setup();
      await registry.register(
        { name: 'scheduler', kind: 'scheduling', artifact: { heuristic: 'fifo' } },
        'ppo#learner',
      );
      const ev = await registry.evaluate('scheduler', 1, { ...ALICE, spec: SPEC });
      expect(ev.status).toBe('candidate');
      expect(verdict(ev.simReport)).not.toBe('worse');
      const heuristic = await knobs.get('scheduler.policy');
      await knobs.promote({
        name: 'scheduler.policy',
        value: 'srpt',
        baseVersion: heuristic.version,
        actor: 'op',
        reason: 'srpt',
      });
      return { knobs, registry };
    }

    const verdict = (report: unknown) => (report as { verdict?: string } | undefined)?.verdict;

    async function reevaluate(registry: PolicyRegistry) {
      const row = await registry.evaluate('scheduler', 1, { ...BOB, spec: SPEC });
      expect(verdict(row.simReport)).toBe('worse');
      return row;
    }

    async function expectRefused(registry: PolicyRegistry, knobs: KnobTable, err: unknown) {
      expect(err).toBeInstanceOf(StateError);
      expect((err as StateError).details).toMatchObject({
        target: 'scheduler@1',
        field: 'simReport',
        rule: 'not_worse',
      });
      expect((await knobs.get(KNOB)).value).toBe(0);
      const row = (await registry.table.get('scheduler', 1)).row;
      expect(row.status).toBe('candidate');
      expect(verdict(row.simReport)).toBe('worse');
      const proposals = (await registry.proposals.list({ limit: 10 })).filter((p) =>
        p.id.startsWith('reg-scheduler-1-'),
      );
      expect(proposals.map((p) => p.status)).toEqual(['rejected']);
      // Nothing left in flight: a repair pass leaves the knob where it is.
      await registry.promotion.reconcile('scheduler', 'repair#1');
      expect((await knobs.get(KNOB)).value).toBe(0);
    }

    it('a worse evaluation landing right after the proposal is created stops the promotion', async () => {
      const { knobs, registry } = await setup();
      const create = registry.proposals.create.bind(registry.proposals);
      registry.proposals.create = async (...args) => {
        const p = await create(...args);
        await reevaluate(registry);
        return p;
      };
      const err = await registry.promote('scheduler', 1, ALICE).catch((e: unknown) => e);
      await expectRefused(registry, knobs, err);
    });

    it('a worse evaluation landing just before the knob step stops the promotion', async () => {
      const { knobs, registry } = await setup();
      const knobStep = knobs.promoteAll.bind(knobs);
      knobs.promoteAll = async (...args) => {
        await reevaluate(registry);
        return knobStep(...args);
      };
      const err = await registry.promote('scheduler', 1, ALICE).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      // The knob step refused the proposal the evaluation rejected (the promotion's own check
      // ran before the report existed).
      expect((await knobs.get(KNOB)).value).toBe(0);
      const row = (await registry.table.get('scheduler', 1)).row;
      expect(row.status).toBe('candidate');
      expect(row.promoting ?? []).toEqual([]);
      const proposals = (await registry.proposals.list({ limit: 10 })).filter((p) =>
        p.id.startsWith('reg-scheduler-1-'),
      );
      expect(proposals.map((p) => p.status)).toEqual(['rejected']);
      // Promoted again now, the report refuses it up front.
      const again = await registry.promote('scheduler', 1, ALICE).catch((e: unknown) => e);
      await expectRefused(registry, knobs, again);
    });

    it('after the knob step a report stops nothing and is kept, where a retire is refused', async () => {
      const { knobs, registry } = await setup();
      const knobStep = knobs.promoteAll.bind(knobs);
      let kept: unknown, refused: unknown;
      knobs.promoteAll = async (...args) => {
        const res = await knobStep(...args);
        // The row is still marked (the rows follow the knob after this step).
        const marked = (await registry.table.get('scheduler', 1)).row;
        expect(marked.promoting?.length).toBe(1);
        kept = await registry.promotion
          .stopPromotions(marked, BOB, { reason: 'worse', live: 'keep' })
          .then(
            () => 'kept',
            (e: unknown) => e,
          );
        refused = await registry.promotion.stopPromotions(marked, BOB).catch((e: unknown) => e);
        return res;
      };
      const live = await registry.promote('scheduler', 1, ALICE);
      expect(live.status).toBe('live');
      expect(kept).toBe('kept');
      expect((refused as StateError).details).toMatchObject({ rule: 'not_live' });
      expect((await knobs.get(KNOB)).value).toBe(1);
      const row = await registry.evaluate('scheduler', 1, { ...BOB, spec: SPEC });
      expect(row.status).toBe('live');
    });
  },
);
