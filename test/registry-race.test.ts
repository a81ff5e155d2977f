// A retire racing a promote of the same version, on one node and on a 3-node cluster (where the
// registry rows and the knob are in different slots). The retire is injected at each point of
// the promotion by wrapping the promotion's dependencies (the proposals table, the knobs
// table): before the knob step a retire wins and the promotion is refused (its proposal
// rejected, the knob untouched); after the knob step the retire is refused (the version is
// live). Never both: a retired version does not go live.
import { describe, expect, it } from 'vitest';
import { PolicyRegistry, type PolicyRow } from '../controlplane/registry/index.ts';
import { StateError } from '../controlplane/store/errors.ts';
import { registrySuite } from './helpers/registry-fixtures.ts';
import type { Backend } from './helpers/redis.ts';

const KNOB = 'scheduler.policy_version';
const SPEC = { seeds: [1], jobs: 20, workers: 4 };
const ALICE = { actor: 'alice#t1', reason: 'faster in sim' };
const BOB = { actor: 'bob#t2', reason: 'pulled: bad artifact' };

describe.each<Backend>(['single', 'cluster'])(
  'registry retire racing promote on %s redis',
  (backend) => {
    const suite = registrySuite(backend);

    async function setup() {
      const { knobs, registry } = await suite.setup();
      const row = await registry.register(
        { name: 'scheduler', kind: 'scheduling', artifact: { heuristic: 'srpt' } },
        'ppo#learner',
      );
      const evaluated = await registry.evaluate('scheduler', row.version, { ...ALICE, spec: SPEC });
      expect(evaluated.status).toBe('candidate');
      return { knobs, registry };
    }

    const status = async (registry: PolicyRegistry, v = 1) =>
      (await registry.table.get('scheduler', v)).row.status;

    async function promotionProposals(registry: PolicyRegistry) {
      return (await registry.proposals.list({ limit: 10 })).filter((p) =>
        p.id.startsWith('reg-scheduler-1-'),
      );
    }

    it('two promotions of one version at once: one goes live, the other gets a conflict', async () => {
      const { knobs, registry } = await setup();
      const [a, b] = await Promise.allSettled([
        registry.promote('scheduler', 1, ALICE),
        registry.promote('scheduler', 1, BOB),
      ]);
      const won = [a, b].filter((r) => r.status === 'fulfilled');
      const lost = [a, b].filter((r) => r.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      // The loser shared the winner's proposal: a conflict (409), not a validation error, and
      // it rejected nothing the winner needed. Which conflict depends on the interleaving:
      // the proposal already live, or the knob's base version moved.
      const reason = (lost[0] as PromiseRejectedResult).reason as { status: number; code: string };
      expect(reason.status).toBe(409);
      expect(['KNOBOS_STATE', 'KNOBOS_STALE_VERSION']).toContain(reason.code);
      expect((await knobs.get(KNOB)).value).toBe(1);
      expect(await status(registry)).toBe('live');
    });

    it('a retire landing just before the knob step wins: the promotion is refused', async () => {
      const { knobs, registry } = await setup();
      const knobStep = knobs.promoteAll.bind(knobs);
      let retired: PolicyRow | undefined;
      knobs.promoteAll = async (...args) => {
        // Between promote's status checks and its knob step, an operator retires the version.
        retired = await registry.retire('scheduler', 1, BOB);
        return knobStep(...args);
      };
      const err = await registry.promote('scheduler', 1, ALICE).catch((e: unknown) => e);
      expect(retired?.status).toBe('retired');
      expect(err).toBeInstanceOf(StateError);
      expect((err as StateError).details).toMatchObject({
        target: 'scheduler@1',
        field: 'status',
        rule: 'promotable',
        status: 'retired',
      });
      expect((err as StateError).message).toMatch(/retired/);
      // The retired version is not live and the knob does not select it, now or after a repair.
      expect((await knobs.get(KNOB)).value).toBe(0);
      expect(await status(registry)).toBe('retired');
      await registry.promotion.reconcile('scheduler', 'repair#1');
      expect(await status(registry)).toBe('retired');
      expect((await knobs.get(KNOB)).value).toBe(0);
      expect((await promotionProposals(registry)).map((p) => p.status)).toEqual(['rejected']);
      expect((await knobs.history(KNOB, { limit: 5 })).some((e) => e.kind === 'promote')).toBe(
        false,
      );
    });

    it('a retire landing right after the proposal is created wins too', async () => {
      const { knobs, registry } = await setup();
      const create = registry.proposals.create.bind(registry.proposals);
      registry.proposals.create = async (...args) => {
        const p = await create(...args);
        await registry.retire('scheduler', 1, BOB);
        return p;
      };
      const err = await registry.promote('scheduler', 1, ALICE).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StateError);
      expect((err as StateError).details).toMatchObject({ field: 'status', status: 'retired' });
      expect((await knobs.get(KNOB)).value).toBe(0);
      expect(await status(registry)).toBe('retired');
      expect((await promotionProposals(registry)).map((p) => p.status)).toEqual(['rejected']);
    });

    it('a retire landing after the knob step is refused: the version is live', async () => {
      const { knobs, registry } = await setup();
      const knobStep = knobs.promoteAll.bind(knobs);
      let refused: unknown;
      knobs.promoteAll = async (...args) => {
        const res = await knobStep(...args);
        refused = await registry.retire('scheduler', 1, BOB).catch((e: unknown) => e);
        return res;
      };
      const live = await registry.promote('scheduler', 1, ALICE);
      expect(live.status).toBe('live');
      expect(refused).toBeInstanceOf(StateError);
      expect((refused as StateError).details).toMatchObject({ field: 'status', rule: 'not_live' });
      expect((await knobs.get(KNOB)).value).toBe(1);
      expect(await status(registry)).toBe('live');
      expect((await promotionProposals(registry)).map((p) => p.status)).toEqual(['live']);
    });

    it("a crashed promotion's mark does not outlive it: the retire rejects its proposal", async () => {
      const { knobs, registry } = await setup();
      const knobStep = knobs.promoteAll.bind(knobs);
      knobs.promoteAll = () => Promise.reject(new Error('process killed before the knob step'));
      await expect(registry.promote('scheduler', 1, ALICE)).rejects.toThrow(/killed/);
      const [open] = await promotionProposals(registry);
      expect(open?.status).toBe('simulated');
      expect((await registry.table.get('scheduler', 1)).row.promoting).toEqual([open?.id]);
      knobs.promoteAll = knobStep;
      const retired = await registry.retire('scheduler', 1, BOB);
      expect(retired.status).toBe('retired');
      expect(retired.promoting).toBeUndefined();
      expect((await registry.proposals.get(open?.id as string)).proposal.status).toBe('rejected');
      // The open proposal can no longer take the knob.
      await expect(
        knobs.promoteAll({
          actor: 'op',
          reason: 'replay',
          proposalId: open?.id as string,
          changes: [{ name: KNOB, value: 1, baseVersion: 1 }],
        }),
      ).rejects.toThrow();
      expect((await knobs.get(KNOB)).value).toBe(0);
    });
  },
);
