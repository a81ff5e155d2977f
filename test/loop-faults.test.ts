// Faults of the loop on real Redis: a learner killed mid-proposal leaves whole rows or none,
// and no knob changed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { PROPOSAL_FIELDS } from '../controlplane/loop/proposal.ts';
import { ProposalTable } from '../controlplane/loop/proposals.ts';
import { forkChild } from '../bench/lib/children.ts';
import { startTestRedis, uniqueKeys, type TestRedis } from './helpers/redis.ts';

describe('loop faults', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startTestRedis('single');
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('a learner killed with SIGKILL mid-proposal leaves no partial change', async () => {
    const keys = uniqueKeys();
    const knobs = new KnobTable(redis.client(), { keys });
    await knobs.seed();
    const before = await knobs.list();
    const child = forkChild(join(import.meta.dirname, 'helpers', 'loop-learner-child.ts'), [
      redis.single!.url,
      keys.prefix,
    ]);
    await child.ready;
    // Let it write for a while, then kill it wherever it is.
    const proposals = new ProposalTable(knobs);
    while ((await redis.client().zcard(keys.proposalIndex('created'))) < 50)
      await new Promise((r) => setTimeout(r, 20));
    child.proc.kill('SIGKILL');
    await new Promise((r) => child.proc.once('exit', r));

    const ids = await redis.client().zrange(keys.proposalIndex('created'), 0, -1);
    const open = await redis.client().zrange(keys.proposalIndex('open'), 0, -1);
    expect(ids.length).toBeGreaterThanOrEqual(50);
    expect(new Set(open)).toEqual(new Set(ids));
    // Every row is whole: every required field is there and decodes.
    const required = Object.entries(PROPOSAL_FIELDS)
      .filter(([, f]) => !('optional' in f))
      .map(([n]) => n);
    for (const id of ids) {
      const h = await redis.client().hgetall(keys.proposalRow(id));
      for (const f of required) expect(h[f], `${id}.${f}`).toBeDefined();
      expect((await proposals.get(id)).proposal.changes).toHaveLength(3);
    }
    // No row outside the index: a row and its index entries are one step.
    const rows = await redis.client().keys(`${keys.prefix}:{knobs}:proposals:row:*`);
    expect(rows.length).toBe(ids.length);
    // One audit entry per proposal, and no knob moved.
    const creates = (await knobs.audit({ limit: 100_000 })).filter(
      (a) => a.action === 'proposal.create',
    );
    expect(creates.length).toBe(ids.length);
    expect(await knobs.list()).toEqual(before);
  }, 60_000);
});
