// Review fixes of the knob API against real redis-server processes: a pin on a base version
// (checked in the same step), a pin of a pinned knob refused naming who pinned it (but the
// caller's own pin again, a retry, a no-op), an unpin of an unpinned knob writing nothing, an
// unpin of a pin the caller never saw (pinnedBy) refused, and a promotion or its dry run naming
// a proposal that does not exist refused before anything is written. Through the table (one
// node and a cluster) and the API.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { ProposalTable } from '../controlplane/loop/proposals.ts';
import {
  NotFoundError,
  StaleVersionError,
  StateError,
  ValidationError,
} from '../controlplane/store/errors.ts';
import { HOUR_MS, startApi, type ApiFixture } from './helpers/api-server.ts';
import { knobsSuite } from './helpers/knobs-fixture.ts';
import { startTestRedis, type Backend, type TestRedis } from './helpers/redis.ts';

const KNOB = 'scheduler.retry_limit';

/** Everything a refused or no-op action must leave untouched. */
async function snapshot(table: KnobTable, name: string) {
  return {
    row: await table.get(name),
    history: await table.history(name, { limit: 1000 }),
    audit: await table.audit({ limit: 1000 }),
    epoch: await table.epoch(),
  };
}

/**
 * The messages on the knobs' change channel while `fn` runs: a marker published after it is
 * the last one, so whatever came before it is what `fn` published.
 */
/** The change messages `fn` publishes. */
async function published(table: KnobTable, redis: TestRedis, fn: () => Promise<unknown>) {
  const sub = redis.client();
  const channel = table.keys.knobChanges();
  const got: string[] = [];
  let collecting = false;
  sub.on('message', (_ch: string, msg: string) => {
    if (collecting) got.push(msg);
  });
  await sub.subscribe(channel);
  // On a cluster a message travels the cluster bus to the subscriber's node: an earlier
  // change's message may still arrive after the subscription, and one of `fn`'s after `fn`
  // returns. Settle before and after (local delivery takes well under a millisecond).
  await sleep(SETTLE_MS);
  collecting = true;
  await fn();
  await sleep(SETTLE_MS);
  collecting = false;
  sub.disconnect();
  return got;
}
const SETTLE_MS = 250;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each<Backend>(['single', 'cluster'])('knob pins and proposals on %s redis', (backend) => {
  const { server, seeded } = knobsSuite(backend);

  it('pins on a base version: a knob that moved since is refused as stale, nothing written', async () => {
    const { table } = await seeded();
    await table.promote({ name: KNOB, value: 4, baseVersion: 1, actor: 'op', reason: 'r' });
    const before = await snapshot(table, KNOB);
    const err = await table
      .pin(KNOB, 'alice', 'hold it at what I saw', { baseVersion: 1 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StaleVersionError);
    expect((err as StaleVersionError).details).toMatchObject({
      baseVersion: 1,
      currentVersion: 2,
      rule: 'base_version',
    });
    expect(await snapshot(table, KNOB)).toEqual(before);
    // On the current version it pins; with no base it pins whatever the knob holds.
    expect(await table.pin(KNOB, 'alice', 'hold', { baseVersion: 2 })).toBe(true);
    expect(await table.get(KNOB)).toMatchObject({ pinned: true, pinnedBy: 'alice', version: 2 });
  });

  it('refuses to pin a pinned knob, naming who pinned it, and keeps their pin', async () => {
    const { table } = await seeded();
    await table.pin(KNOB, 'alice', 'incident 42');
    const before = await snapshot(table, KNOB);
    const err = await table.pin(KNOB, 'bob', 'mine now').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StateError);
    expect((err as StateError).message).toBe(
      `knob ${KNOB} is already pinned by alice (incident 42); unpin it first`,
    );
    expect((err as StateError).details).toMatchObject({
      field: 'pinned',
      rule: 'not_pinned',
      pinnedBy: 'alice',
      pinReason: 'incident 42',
    });
    expect(await snapshot(table, KNOB)).toEqual(before);
  });

  it('unpins an unpinned knob as a no-op: false, no audit entry, no event', async () => {
    const { table } = await seeded();
    const before = await snapshot(table, KNOB);
    let changed: boolean | undefined;
    const msgs = await published(table, server(), async () => {
      changed = await table.unpin(KNOB, 'alice', 'nothing to do');
    });
    expect(changed).toBe(false);
    expect(msgs).toEqual([]);
    expect(await snapshot(table, KNOB)).toEqual(before);
    // A real unpin still answers true, audits and publishes.
    await table.pin(KNOB, 'alice', 'hold');
    const real = await published(table, server(), async () => {
      changed = await table.unpin(KNOB, 'alice', 'done');
    });
    expect(changed).toBe(true);
    expect(real.map((m) => JSON.parse(m) as unknown)).toEqual([
      { name: KNOB, version: 1, pinned: false },
    ]);
    expect((await table.audit({ limit: 1 }))[0]?.action).toBe('knob.unpin');
  });

  it('refuses a promotion or a rollback naming a proposal that does not exist', async () => {
    const { table } = await seeded();
    const before = await snapshot(table, KNOB);
    const change = { name: KNOB, value: 4, baseVersion: 1, actor: 'op', reason: 'r' };
    const err = await table
      .promote({ ...change, proposalId: 'p-made-up' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as NotFoundError).message).toBe('promote: proposal p-made-up does not exist');
    expect((err as NotFoundError).details).toMatchObject({ field: 'proposalId', rule: 'exists' });
    expect(await snapshot(table, KNOB)).toEqual(before);
    // A proposal of the proposals table (its row in the knobs' slot) still goes live with it.
    const proposals = new ProposalTable(table);
    const p = await proposals.create({
      learner: 'bo',
      reason: 'try 4',
      changes: [{ name: KNOB, value: 4, baseVersion: 1 }],
    });
    await proposals.transition(p.id, 'simulated', { actor: 'gate', reason: 'ok' });
    expect((await table.promote({ ...change, proposalId: p.id })).version).toBe(2);
    expect((await proposals.get(p.id)).proposal.status).toBe('live');
    expect((await table.history(KNOB, { limit: 1 }))[0]?.proposalId).toBe(p.id);
    // A rollback (an undo, past every other check) naming a made-up proposal: refused too.
    const live = await snapshot(table, KNOB);
    const rb = await table
      .promote({ ...change, value: 3, baseVersion: 2, proposalId: 'p-made-up' }, 'rollback')
      .catch((e: unknown) => e);
    expect(rb).toBeInstanceOf(NotFoundError);
    expect((rb as NotFoundError).message).toBe('rollback: proposal p-made-up does not exist');
    expect(await snapshot(table, KNOB)).toEqual(live);
  });

  it("takes the caller's own pin again (a resent or retried pin) as a no-op; any other is refused", async () => {
    const { table } = await seeded();
    expect(await table.pin(KNOB, 'alice', 'incident 42', { baseVersion: 1 })).toBe(true);
    const before = await snapshot(table, KNOB);
    let again: boolean[] = [];
    const msgs = await published(table, server(), async () => {
      again = [
        await table.pin(KNOB, 'alice', 'incident 42', { baseVersion: 1 }),
        await table.pin(KNOB, 'alice', 'incident 42'),
      ];
    });
    expect(again).toEqual([false, false]);
    expect(msgs).toEqual([]);
    expect(await snapshot(table, KNOB)).toEqual(before);
    // Another reason is another decision: refused, naming the pin that stays.
    for (const [actor, reason] of [
      ['alice', 'incident 43'],
      ['bob', 'incident 42'],
    ] as const) {
      const err = await table.pin(KNOB, actor, reason).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StateError);
      expect((err as StateError).details).toMatchObject({ rule: 'not_pinned', pinnedBy: 'alice' });
    }
    expect(await snapshot(table, KNOB)).toEqual(before);
  });

  it('unpins only the pin the caller saw (pinnedBy): a pin set since is refused, naming its actor', async () => {
    const { table } = await seeded();
    // bob unpins alice's pin and carol pins; an unpin meant for alice's pin must not remove it.
    await table.pin(KNOB, 'carol', 'my turn');
    const before = await snapshot(table, KNOB);
    const err = await table
      .unpin(KNOB, 'dave', 'done with alice', { pinnedBy: 'alice' })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StateError);
    expect((err as StateError).message).toBe(
      `knob ${KNOB} is pinned by carol (my turn), not the pin seen (alice): a pin set since was not seen`,
    );
    expect((err as StateError).details).toMatchObject({
      field: 'pinnedBy',
      rule: 'matches_pin',
      pinnedBy: 'carol',
      pinReason: 'my turn',
    });
    expect(await snapshot(table, KNOB)).toEqual(before);
    // carol's earlier pin was seen; she unpinned and pinned again for another reason since.
    await expect(
      table.unpin(KNOB, 'dave', 'done', { pinnedBy: 'carol', pinReason: 'her first reason' }),
    ).rejects.toBeInstanceOf(StateError);
    expect(await snapshot(table, KNOB)).toEqual(before);
    expect(
      await table.unpin(KNOB, 'dave', 'seen', { pinnedBy: 'carol', pinReason: 'my turn' }),
    ).toBe(true);
    // Already unpinned: nothing to refuse, nothing written.
    expect(await table.unpin(KNOB, 'dave', 'again', { pinnedBy: 'carol' })).toBe(false);
  });

  it('checks a named proposal in the dry run as a promotion does', async () => {
    const { table } = await seeded();
    const change = { name: KNOB, value: 4, baseVersion: 1, actor: 'op', reason: 'r' };
    const missing = await table
      .check({ ...change, proposalId: 'p-made-up' })
      .catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(NotFoundError);
    expect((missing as NotFoundError).message).toBe('promote: proposal p-made-up does not exist');
    expect((missing as NotFoundError).details).toMatchObject({
      field: 'proposalId',
      rule: 'exists',
    });
    const proposals = new ProposalTable(table);
    const p = await proposals.create({
      learner: 'bo',
      reason: 'try 4',
      changes: [{ name: KNOB, value: 4, baseVersion: 1 }],
    });
    // Still `proposed`: promote takes a simulated or shadow proposal, and so does its dry run.
    await expect(table.check({ ...change, proposalId: p.id })).rejects.toBeInstanceOf(StateError);
    await proposals.transition(p.id, 'simulated', { actor: 'gate', reason: 'ok' });
    const other = await table
      .check({ ...change, value: 5, proposalId: p.id })
      .catch((e: unknown) => e);
    expect(other).toBeInstanceOf(ValidationError);
    expect((other as ValidationError).details).toMatchObject({
      field: 'proposalId',
      rule: 'matches_changes',
    });
    expect(await table.check({ ...change, proposalId: p.id })).toMatchObject({ version: 1 });
  });
});

describe('knob pin routes and a promotion naming a proposal, through the API', () => {
  let redis: TestRedis;
  let api: ApiFixture;
  let operator: { authorization: string };
  let other: { authorization: string };

  beforeAll(async () => {
    redis = await startTestRedis('single');
    api = await startApi(redis);
  });
  afterAll(async () => {
    await api?.close();
    await redis?.stop();
  });
  beforeEach(async () => {
    await api.reset();
    api.clock.advance(HOUR_MS); // past every cooldown
    operator = api.bearer(await api.token('operator'));
    other = api.bearer(await api.token('operator'));
  });

  const post = (url: string, payload: unknown, headers = operator) =>
    api.app.inject({ method: 'POST', url, headers, payload: payload as object });
  const auditActions = async () => (await api.knobs.audit({ limit: 1000 })).map((a) => a.action);

  it('pins on the baseVersion shown: 409 stale when the knob moved since, nothing pinned', async () => {
    await post(`/api/knobs/${KNOB}/promote`, { value: 4, baseVersion: 1, reason: 'moved' });
    const stale = await post(`/api/knobs/${KNOB}/pin`, { reason: 'hold v1', baseVersion: 1 });
    expect(stale.statusCode).toBe(409);
    expect(stale.json().error).toMatchObject({
      code: 'KNOBOS_STALE_VERSION',
      message: `knob ${KNOB}: stale version: based on version 1, current is 2`,
      baseVersion: 1,
      currentVersion: 2,
    });
    expect((await api.knobs.get(KNOB)).pinned).toBe(false);
    const ok = await post(`/api/knobs/${KNOB}/pin`, { reason: 'hold v2', baseVersion: 2 });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toMatchObject({ name: KNOB, version: 2, pinned: true, changed: true });
  });

  it('refuses a second pin with 409 naming who pinned it; their pin and reason stay', async () => {
    const first = await post(`/api/knobs/${KNOB}/pin`, { reason: 'incident 42' });
    expect(first.statusCode).toBe(200);
    const alice = first.json().pinnedBy as string;
    const before = await auditActions();
    const second = await post(`/api/knobs/${KNOB}/pin`, { reason: 'mine now' }, other);
    expect(second.statusCode).toBe(409);
    expect(second.json().error).toEqual({
      code: 'KNOBOS_STATE',
      message: `knob ${KNOB} is already pinned by ${alice} (incident 42); unpin it first`,
      field: 'pinned',
      rule: 'not_pinned',
      target: `knob ${KNOB}`,
      pinnedBy: alice,
      pinReason: 'incident 42',
    });
    expect(await api.knobs.get(KNOB)).toMatchObject({ pinnedBy: alice, pinReason: 'incident 42' });
    expect(await auditActions()).toEqual(before);
  });

  it('answers changed: false to an unpin of an unpinned knob, auditing nothing', async () => {
    const before = await auditActions();
    const res = await post(`/api/knobs/${KNOB}/unpin`, { reason: 'nothing to do' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ name: KNOB, pinned: false, changed: false });
    expect(await auditActions()).toEqual(before);
    await post(`/api/knobs/${KNOB}/pin`, { reason: 'hold' });
    const real = await post(`/api/knobs/${KNOB}/unpin`, { reason: 'done' });
    expect(real.json()).toMatchObject({ pinned: false, changed: true });
    expect((await auditActions())[0]).toBe('knob.unpin');
  });

  it('refuses a promotion naming a proposal that does not exist (404, field proposalId)', async () => {
    const res = await post(`/api/knobs/${KNOB}/promote`, {
      value: 4,
      baseVersion: 1,
      reason: 'made up',
      proposalId: 'p-made-up',
    });
    expect(res.statusCode).toBe(404);
    expect(res.json().error).toMatchObject({
      code: 'KNOBOS_NOT_FOUND',
      field: 'proposalId',
      rule: 'exists',
    });
    const row = await api.knobs.get(KNOB);
    expect(row).toMatchObject({ version: 1, proposalId: '' });
    expect(await api.knobs.history(KNOB)).toHaveLength(1);
  });

  it('answers a retried pin by the same caller with changed: false, not 409', async () => {
    const pin = { reason: 'incident 42', baseVersion: 1 };
    expect((await post(`/api/knobs/${KNOB}/pin`, pin)).json()).toMatchObject({ changed: true });
    const before = await auditActions();
    const retry = await post(`/api/knobs/${KNOB}/pin`, pin);
    expect(retry.statusCode).toBe(200);
    expect(retry.json()).toMatchObject({ name: KNOB, pinned: true, changed: false });
    expect(await auditActions()).toEqual(before);
    // Another caller with the same reason is still refused.
    expect((await post(`/api/knobs/${KNOB}/pin`, pin, other)).statusCode).toBe(409);
  });

  it('refuses an unpin naming another pinnedBy than the pin there (409), and takes the right one', async () => {
    await api.knobs.pin(KNOB, 'carol#t2', 'my turn');
    const before = await auditActions();
    const res = await post(`/api/knobs/${KNOB}/unpin`, { reason: 'done', pinnedBy: 'bob#t1' });
    expect(res.statusCode).toBe(409);
    expect(res.json().error).toMatchObject({
      code: 'KNOBOS_STATE',
      field: 'pinnedBy',
      rule: 'matches_pin',
      pinnedBy: 'carol#t2',
      pinReason: 'my turn',
    });
    expect(await api.knobs.get(KNOB)).toMatchObject({ pinned: true, pinnedBy: 'carol#t2' });
    expect(await auditActions()).toEqual(before);
    const ok = await post(`/api/knobs/${KNOB}/unpin`, { reason: 'done', pinnedBy: 'carol#t2' });
    expect(ok.json()).toMatchObject({ pinned: false, changed: true });
  });

  it('refuses a dry run naming a proposal that does not exist, as promote does (404)', async () => {
    const res = await post(`/api/knobs/${KNOB}/check`, {
      value: 4,
      baseVersion: 1,
      reason: 'made up',
      proposalId: 'p-made-up',
    });
    expect(res.statusCode).toBe(404);
    expect(res.json().error).toMatchObject({
      code: 'KNOBOS_NOT_FOUND',
      field: 'proposalId',
      rule: 'exists',
    });
  });

  it("describes changed for both pin and unpin in the API's schema", async () => {
    const doc = (await api.app.inject({ url: '/docs/json' })).json();
    for (const action of ['pin', 'unpin']) {
      const schema = doc.paths[`/api/knobs/{name}/${action}`].post.responses['200'].content[
        'application/json'
      ].schema as { properties: { changed: { description: string } } };
      expect(schema.properties.changed.description).toMatch(/unpin of an unpinned knob/);
      expect(schema.properties.changed.description).toMatch(/a pin the caller already holds/);
    }
  });
});
