// The proposals routes with inject, over proposals written through the proposals table:
// newest first with status and learner filters, pages, counts by status, one proposal with its
// reports, and the rejections (bad query, unknown id, no token). Proposals are shared
// configuration: a tenant-scoped token reads them too.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProposalTable } from '../controlplane/loop/proposals.ts';
import { ADMIN_TOKEN, HOUR_MS, startApi, type ApiFixture } from './helpers/api-server.ts';
import { startTestRedis, type TestRedis } from './helpers/redis.ts';

const ADMIN = { authorization: `Bearer ${ADMIN_TOKEN}` };

describe('proposals API', () => {
  let redis: TestRedis;
  let api: ApiFixture;
  let proposals: ProposalTable;
  const ids: string[] = [];

  beforeAll(async () => {
    redis = await startTestRedis('single');
    api = await startApi(redis);
    api.clock.advance(HOUR_MS);
    proposals = new ProposalTable(api.knobs);
    // Five proposals, a millisecond apart: two open, one simulated, one rejected, one live.
    for (let i = 0; i < 5; i++) {
      api.clock.advance(1);
      const p = await proposals.create({
        learner: i % 2 === 0 ? 'bo-files' : 'ucb-scheduler',
        reason: `candidate ${i}`,
        changes: [{ name: 'files.cache_bytes', value: 2 ** 27 + i, baseVersion: 1 }],
        evidence: { predicted: i },
      });
      ids.push(p.id);
    }
    const gate = { outcome: 'successful', improvement: 0.12, reasons: ['better on 9/10 slices'] };
    await proposals.transition(ids[1] as string, 'simulated', {
      actor: 'loop',
      reason: 'gate passed',
      simReport: gate,
    });
    await proposals.transition(ids[2] as string, 'rejected', {
      actor: 'loop',
      reason: 'gate failed',
      simReport: { outcome: 'failed' },
    });
    await proposals.transition(ids[3] as string, 'simulated', { actor: 'loop', reason: 'ok' });
    await proposals.annotate(ids[3] as string, { shadowReport: { verdict: 'better', hits: 10 } });
    await api.knobs.promoteAll({
      actor: 'loop:files',
      actorKind: 'automation',
      reason: 'gate and shadow passed',
      proposalId: ids[3] as string,
      changes: [{ name: 'files.cache_bytes', value: 2 ** 27 + 3, baseVersion: 1 }],
    });
  });
  afterAll(async () => {
    await api?.close();
    await redis?.stop();
  });

  const get = (url: string, headers: Record<string, string> = ADMIN) =>
    api.app.inject({ url, headers });

  it('lists proposals newest first with counts by status', async () => {
    const res = await get('/api/proposals');
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.proposals.map((p: { id: string }) => p.id)).toEqual([...ids].reverse());
    expect(body.counts).toEqual({
      proposed: 2,
      simulated: 1,
      shadow: 0,
      live: 1,
      rejected: 1,
      rolled_back: 0,
    });
    expect(body).toMatchObject({ countedOver: 5, next: null, available: true });
    expect(body.proposals[1]).toMatchObject({
      id: ids[3],
      status: 'live',
      shadowReport: { verdict: 'better' },
      evidence: { predicted: 3 },
    });
  });

  it('filters by status and learner, and pages with a cursor', async () => {
    const live = (await get('/api/proposals?status=live')).json();
    expect(live.proposals.map((p: { id: string }) => p.id)).toEqual([ids[3]]);
    const bo = (await get('/api/proposals?learner=bo-files')).json();
    expect(bo.proposals.map((p: { id: string }) => p.id)).toEqual([ids[4], ids[2], ids[0]]);
    const first = (await get('/api/proposals?limit=2')).json();
    expect(first.proposals.map((p: { id: string }) => p.id)).toEqual([ids[4], ids[3]]);
    const second = (await get(`/api/proposals?limit=2&cursor=${first.next}`)).json();
    expect(second.proposals.map((p: { id: string }) => p.id)).toEqual([ids[2], ids[1]]);
    const last = (await get(`/api/proposals?limit=2&cursor=${second.next}`)).json();
    expect(last.proposals.map((p: { id: string }) => p.id)).toEqual([ids[0]]);
    expect(last.next).toBeNull();
  });

  it("returns one proposal with its reports, to any token (tenants' too)", async () => {
    const tenant = api.bearer(await api.token('viewer', 'acme'));
    const res = await get(`/api/proposals/${ids[1]}`, tenant);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      id: ids[1],
      learner: 'ucb-scheduler',
      status: 'simulated',
      reason: 'gate passed',
      simReport: { outcome: 'successful', improvement: 0.12 },
      changes: [{ name: 'files.cache_bytes', value: 2 ** 27 + 1, baseVersion: 1 }],
    });
  });

  it('rejects unknown ids, bad queries and missing tokens with exact bodies', async () => {
    const unknown = await get('/api/proposals/p-nope');
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toEqual({
      error: {
        code: 'KNOBOS_NOT_FOUND',
        message: 'proposals row p-nope does not exist',
        table: 'proposals',
        id: 'p-nope',
      },
    });
    const badId = await get('/api/proposals/has%20space');
    expect(badId.statusCode).toBe(400);
    expect(badId.json().error).toMatchObject({ field: 'params.id', rule: 'pattern' });
    const badStatus = await get('/api/proposals?status=maybe');
    expect(badStatus.json().error).toMatchObject({
      code: 'KNOBOS_API_VALIDATION',
      field: 'query.status',
      rule: 'enum',
    });
    const badLimit = await get('/api/proposals?limit=0');
    expect(badLimit.json().error).toMatchObject({ field: 'query.limit', rule: 'minimum' });
    const badCursor = await get('/api/proposals?cursor=12');
    expect(badCursor.json().error).toMatchObject({ field: 'query.cursor', rule: 'pattern' });
    const noToken = await api.app.inject({ url: '/api/proposals' });
    expect(noToken.statusCode).toBe(401);
    expect(noToken.json().error).toMatchObject({
      code: 'KNOBOS_API_UNAUTHENTICATED',
      rule: 'required',
    });
  });

  // Last: it adds proposals.
  it('pages by place: proposals created between pages, or in the same millisecond, come once', async () => {
    const first = (await get('/api/proposals?limit=2')).json();
    expect(first.proposals.map((p: { id: string }) => p.id)).toEqual([ids[4], ids[3]]);
    // Newer proposals meanwhile, three of them in one millisecond: an offset would shift.
    api.clock.advance(1);
    const same: string[] = [];
    for (let i = 0; i < 3; i++)
      same.push(
        (
          await proposals.create({
            learner: 'bo-files',
            reason: `same ms ${i}`,
            changes: [{ name: 'files.cache_bytes', value: 2 ** 28 + i, baseVersion: 2 }],
          })
        ).id,
      );
    const second = (await get(`/api/proposals?limit=2&cursor=${first.next}`)).json();
    expect(second.proposals.map((p: { id: string }) => p.id)).toEqual([ids[2], ids[1]]);
    // One at a time from the top: every proposal once, the three of one millisecond too.
    const walked: string[] = [];
    let cursor: string | null = null;
    do {
      const page = (
        await get(`/api/proposals?limit=1${cursor ? `&cursor=${cursor}` : ''}`)
      ).json() as { proposals: { id: string }[]; next: string | null };
      walked.push(...page.proposals.map((p) => p.id));
      cursor = page.next;
    } while (cursor !== null);
    expect(walked).toEqual([...same.sort().reverse(), ...[...ids].reverse()]);
  });
});
