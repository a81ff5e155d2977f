// Knob promotions are once-only per request id, on one node and on a 3-node cluster: the
// promote script run again after a lost reply (as ioredis resends it) answers the first
// success instead of stale, a caller's retry with its own id (the API's Idempotency-Key) does
// too, and an id reused for another request is refused and changes nothing.
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { KnobTable } from '../controlplane/knobs/table.ts';
import { ValidationError } from '../controlplane/store/errors.ts';
import { storeScripts } from '../controlplane/store/scripts.ts';
import { HOUR_MS, startApi, type ApiFixture } from './helpers/api-server.ts';
import { HOUR, knobsSuite } from './helpers/knobs-fixture.ts';
import { startTestRedis, type Backend, type TestRedis } from './helpers/redis.ts';

/** Everything a promotion writes: rows, histories, the audit log, the epoch. */
async function snapshot(table: KnobTable, names: string[]) {
  return {
    rows: await Promise.all(names.map((n) => table.get(n))),
    history: await Promise.all(names.map((n) => table.history(n, { limit: 1000 }))),
    audit: await table.audit({ limit: 1000 }),
    epoch: await table.epoch(),
  };
}

/**
 * Makes the next script call run twice with the same keys and arguments, answering the second
 * reply: what the client does when the first reply is lost (autoResendUnfulfilledCommands on
 * one node, a cluster's retry after a failover).
 */
function resendNextScript(): void {
  const run = storeScripts.run.bind(storeScripts);
  vi.spyOn(storeScripts, 'run').mockImplementationOnce(async (client, name, keys, args) => {
    await run(client, name, keys, args);
    return run(client, name, keys, args);
  });
}

const REUSED = { field: 'requestId', rule: 'same_request' };

describe.each<Backend>(['single', 'cluster'])(
  'once-only knob promotions on %s redis',
  (backend) => {
    const { seeded } = knobsSuite(backend);
    afterEach(() => vi.restoreAllMocks());

    it('answers the first success when the promote script runs again after a lost reply', async () => {
      const { table } = await seeded();
      const before = await snapshot(table, ['scheduler.lease_ms']);
      resendNextScript();
      // No id given: the table makes one per call, and the resent script carries it.
      const res = await table.promote({
        name: 'scheduler.lease_ms',
        value: 45_000,
        baseVersion: 1,
        actor: 'op',
        reason: 'test',
      });
      expect(res).toEqual({
        name: 'scheduler.lease_ms',
        value: 45_000,
        version: 2,
        epoch: before.epoch + 1,
      });
      const after = await snapshot(table, ['scheduler.lease_ms']);
      expect(after.rows[0]?.version).toBe(2);
      expect(after.history[0]?.length).toBe(2); // the seed and one change
      expect(after.audit.length).toBe(before.audit.length + 1);
      expect(after.epoch).toBe(before.epoch + 1);
    });

    it('runs a change set once when two runs carry one id', async () => {
      const { table } = await seeded();
      const set = {
        changes: [
          { name: 'scheduler.lease_ms', value: 45_000, baseVersion: 1 },
          { name: 'scheduler.dispatch_batch', value: 32, baseVersion: 1 },
        ],
        actor: 'op',
        reason: 'test',
        requestId: 'req-set',
      };
      // The same request twice at once: both pass the checks, the script runs twice.
      const [a, b] = await Promise.all([table.promoteAll(set), table.promoteAll(set)]);
      expect(b).toEqual(a);
      expect(a.map((r) => r.version)).toEqual([2, 2]);
      const after = await snapshot(table, ['scheduler.lease_ms', 'scheduler.dispatch_batch']);
      expect(after.history.map((h) => h.length)).toEqual([2, 2]);
    });

    it('answers a retry that lists the same changes in another order, in its own order', async () => {
      const { table } = await seeded();
      const lease = { name: 'scheduler.lease_ms', value: 45_000, baseVersion: 1 };
      const batch = { name: 'scheduler.dispatch_batch', value: 32, baseVersion: 1 };
      const common = { actor: 'op', reason: 'test', requestId: 'req-order' };
      const first = await table.promoteAll({ ...common, changes: [lease, batch] });
      const before = await snapshot(table, [lease.name, batch.name]);
      const retry = await table.promoteAll({ ...common, changes: [batch, lease] });
      expect(retry).toEqual([first[1], first[0]]);
      expect(await snapshot(table, [lease.name, batch.name])).toEqual(before);
    });

    it('takes the next change after two concurrent calls with one id (not refused as a lost write)', async () => {
      const { table, clock } = await seeded();
      const change = {
        name: 'scheduler.retry_limit',
        value: 5,
        baseVersion: 1,
        actor: 'op',
        reason: 'test',
        requestId: 'idem-1',
      };
      // The second call's script answers from the first's record: the table must remember
      // the change id the row holds (the first call's), not its own.
      const both = await Promise.all([table.promote(change), table.promote(change)]);
      expect(both.map((r) => r.version)).toEqual([2, 2]);
      clock.advance(HOUR);
      const next = await table.promote({
        name: 'scheduler.retry_limit',
        value: 4,
        baseVersion: 2,
        actor: 'op',
        reason: 'next',
      });
      expect(next.version).toBe(3);
    });

    it("answers a caller's retry with its id (not stale), even after the knob moved on", async () => {
      const { table, clock } = await seeded();
      const change = {
        name: 'scheduler.lease_ms',
        value: 45_000,
        baseVersion: 1,
        actor: 'op',
        reason: 'test',
        requestId: 'op:key-1',
      };
      const first = await table.promote(change);
      clock.advance(HOUR);
      await table.promote({ ...change, value: 60_000, baseVersion: 2, requestId: 'op:key-2' });
      const before = await snapshot(table, ['scheduler.lease_ms']);
      expect(await table.promote(change)).toEqual(first);
      expect(await snapshot(table, ['scheduler.lease_ms'])).toEqual(before);
    });

    it("answers a caller's retried rollback without a base version with its first outcome", async () => {
      const { table } = await seeded();
      await table.promote({
        name: 'scheduler.lease_ms',
        value: 45_000,
        baseVersion: 1,
        actor: 'op',
        reason: 'test',
      });
      const back = {
        name: 'scheduler.lease_ms',
        toVersion: 1,
        actor: 'op',
        reason: 'undo',
        requestId: 'op:undo-1',
      };
      const first = await table.rollback(back);
      expect(first.version).toBe(3);
      const before = await snapshot(table, ['scheduler.lease_ms']);
      expect(await table.rollback(back)).toEqual(first);
      expect(await snapshot(table, ['scheduler.lease_ms'])).toEqual(before);
    });

    it('refuses an id reused for another request, naming the field and rule, changing nothing', async () => {
      const { table } = await seeded();
      const change = {
        name: 'scheduler.lease_ms',
        value: 45_000,
        baseVersion: 1,
        actor: 'op',
        reason: 'test',
        requestId: 'req-1',
      };
      await table.promote(change);
      const names = ['scheduler.lease_ms', 'scheduler.dispatch_batch'];
      const before = await snapshot(table, names);
      for (const other of [
        { ...change, value: 60_000, baseVersion: 2 },
        { ...change, name: 'scheduler.dispatch_batch', value: 32, baseVersion: 1 },
      ]) {
        const err = await table.promote(other).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(ValidationError);
        expect(err).toMatchObject({ status: 400, details: REUSED });
        expect((err as Error).message).toMatch(/requestId: req-1 was used for another promotion/);
      }
      expect(await snapshot(table, names)).toEqual(before);
      await expect(
        table.promote({ ...change, requestId: 'has space', baseVersion: 2 }),
      ).rejects.toMatchObject({ details: { field: 'requestId', rule: 'format' } });
      expect(await snapshot(table, names)).toEqual(before);
    });

    it('refuses, in the script, another request racing under the same id', async () => {
      const { table } = await seeded();
      const names = ['scheduler.lease_ms', 'scheduler.dispatch_batch'];
      const before = await snapshot(table, names);
      const common = { baseVersion: 1, actor: 'op', reason: 'test', requestId: 'req-race' };
      // Both pass the checks (no record yet); the script of whichever runs second refuses.
      const [a, b] = await Promise.allSettled([
        table.promote({ ...common, name: 'scheduler.lease_ms', value: 45_000 }),
        table.promote({ ...common, name: 'scheduler.dispatch_batch', value: 32 }),
      ]);
      expect(a.status).toBe('fulfilled');
      expect(b).toMatchObject({ status: 'rejected', reason: { details: REUSED } });
      const after = await snapshot(table, names);
      expect(after.rows[1]).toEqual(before.rows[1]);
      expect(after.history[1]).toEqual(before.history[1]);
      expect(after.epoch).toBe(before.epoch + 1);
    });
  },
);

describe('the knob routes with an Idempotency-Key', () => {
  let redis: TestRedis;
  let api: ApiFixture;
  beforeAll(async () => {
    redis = await startTestRedis('single');
    api = await startApi(redis);
    api.clock.advance(HOUR_MS); // past every cooldown
  });
  afterAll(async () => {
    await api?.close();
    await redis?.stop();
  });

  it('answers a retried promotion or rollback with its first outcome; another body is refused', async () => {
    const operator = api.bearer(await api.token('operator'));
    const post = (url: string, payload: object, key: string) =>
      api.app.inject({
        method: 'POST',
        url,
        headers: { ...operator, 'idempotency-key': key },
        payload,
      });
    const url = '/api/knobs/scheduler.policy/promote';
    const body = { value: 'sjf', baseVersion: 1, reason: 'try sjf' };
    const first = await post(url, body, 'k-1');
    expect(first.statusCode).toBe(200);
    const again = await post(url, body, 'k-1');
    expect(again.statusCode).toBe(200);
    expect(again.json()).toMatchObject({ name: 'scheduler.policy', value: 'sjf', version: 2 });
    const other = await post(url, { ...body, value: 'fair', baseVersion: 2 }, 'k-1');
    expect(other.statusCode).toBe(400);
    expect(other.json().error).toMatchObject({
      code: 'KNOBOS_INVALID',
      field: 'requestId',
      rule: 'same_request',
    });
    const back = { toVersion: 1, reason: 'undo' };
    const undo = await post('/api/knobs/scheduler.policy/rollback', back, 'k-2');
    const undoAgain = await post('/api/knobs/scheduler.policy/rollback', back, 'k-2');
    expect([undo.statusCode, undoAgain.statusCode]).toEqual([200, 200]);
    expect(undoAgain.json()).toMatchObject({ version: 3, value: 'fifo' });
    expect((await api.knobs.history('scheduler.policy')).map((e) => e.version)).toEqual([3, 2, 1]);
  });
});
