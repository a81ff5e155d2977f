// The policy registry's routes with inject: register, list, versions and lineage, evaluate,
// shadow, promote, retire, roll back, the registry's audit; each with its rejections (bad
// body, malformed artifact, unknown policy or version, wrong role, tenant scope) and exact
// error bodies. Writes are audited under the token's identity.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOUR_MS } from './helpers/api-server.ts';
import {
  linearScorerArtifact,
  startRegistryApi,
  tinyTpchTrace,
  type RegistryApi,
} from './helpers/registry-fixtures.ts';
import { startTestRedis, type TestRedis } from './helpers/redis.ts';

const SPEC = { seeds: [1, 2], jobs: 20, workers: 4 };

describe('policy registry API', () => {
  let redis: TestRedis;
  let api: RegistryApi;
  const trace = tinyTpchTrace();
  let operator: { authorization: string };
  let operatorId: string;
  let viewer: { authorization: string };
  let tenantOperator: { authorization: string };
  let tenantViewer: { authorization: string };

  beforeAll(async () => {
    redis = await startTestRedis('single');
    api = await startRegistryApi(redis, { trace });
    api.clock.advance(HOUR_MS);
    const op = await api.token('operator');
    operator = api.bearer(op);
    operatorId = `test-operator#${op.split('_')[1]}`;
    viewer = api.bearer(await api.token('viewer'));
    tenantOperator = api.bearer(await api.token('operator', 'acme'));
    tenantViewer = api.bearer(await api.token('viewer', 'acme'));
  });
  afterAll(async () => {
    await api?.close();
    await redis?.stop();
    trace.remove();
  });

  const post = (url: string, payload: unknown, headers = operator) =>
    api.app.inject({ method: 'POST', url, headers, payload: payload as object });
  const get = (url: string, headers = viewer) => api.app.inject({ url, headers });
  const register = (artifact: unknown, extra: object = {}) =>
    post('/api/policies', { name: 'scheduler', kind: 'scheduling', artifact, ...extra });

  it('registers once per Idempotency-Key and caller: a retry answers the first version', async () => {
    const withKey = (h: { authorization: string }, key: string) => ({
      ...h,
      'idempotency-key': key,
    });
    const body = { name: 'idem', kind: 'scheduling', artifact: { heuristic: 'srpt' } };
    const first = await post('/api/policies', body, withKey(operator, 'k-1'));
    const retry = await post('/api/policies', body, withKey(operator, 'k-1'));
    expect([first.statusCode, retry.statusCode]).toEqual([201, 201]);
    expect(retry.json().id).toBe(first.json().id);
    // Another caller's key of the same text is its own request.
    const other = await post(
      '/api/policies',
      body,
      withKey(api.bearer(await api.token('operator')), 'k-1'),
    );
    expect(other.statusCode).toBe(201);
    expect(other.json().version).toBe(first.json().version + 1);
    const next = await post('/api/policies', body, withKey(operator, 'k-2'));
    expect(next.json().version).toBe(first.json().version + 2);
    const bad = await post('/api/policies', body, withKey(operator, 'not ok'));
    expect(bad.statusCode).toBe(400);
    expect(bad.body).toMatch(/idempotency-key/);
  });

  it('registers versions with their artifacts, as drafts, audited under the token', async () => {
    const res = await register(
      { heuristic: 'srpt', meta: { note: 'baseline' } },
      {
        lineage: { learner: 'ppo', run: 'run-7' },
        reason: 'first try',
      },
    );
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({
      id: 'scheduler@1',
      version: 1,
      kind: 'scheduling',
      decisionPoint: 'scheduler.dispatch',
      status: 'draft',
      artifact: { heuristic: 'srpt', meta: { note: 'baseline' } },
      artifactSummary: 'heuristic:srpt',
      lineage: { learner: 'ppo', run: 'run-7' },
      createdBy: operatorId,
    });
    const second = await register({ heuristic: 'srpt' }, { lineage: { parent: 1 } });
    expect(second.json()).toMatchObject({ version: 2, lineage: { parent: 1 } });
    const audit = await get('/api/registry/audit?limit=5');
    expect(audit.json().audit[0]).toMatchObject({
      actor: operatorId,
      action: 'policy.register',
      target: 'scheduler@2',
    });
    // Paged one entry at a time, `next` walks the whole log once, newest first, then says null.
    const all = (await get('/api/registry/audit?limit=500')).json();
    expect(all.next).toBeNull();
    const walked: string[] = [];
    let before: string | null = null;
    do {
      const page = (
        await get(`/api/registry/audit?limit=1${before ? `&before=${before}` : ''}`)
      ).json() as { audit: { id: string }[]; next: string | null };
      walked.push(...page.audit.map((e) => e.id));
      before = page.next;
    } while (before !== null);
    expect(walked).toEqual(all.audit.map((e: { id: string }) => e.id));
    expect(walked.length).toBeGreaterThanOrEqual(2);
  });

  it('refuses bad bodies, malformed artifacts, wrong roles and tenant tokens, writing nothing', async () => {
    const before = (await get('/api/policies')).json().policies.length;
    const missing = await post('/api/policies', { name: 'scheduler', kind: 'scheduling' });
    expect(missing.statusCode).toBe(400);
    expect(missing.json()).toEqual({
      error: {
        code: 'KNOBOS_API_VALIDATION',
        message: "body.artifact must have required property 'artifact'",
        field: 'body.artifact',
        rule: 'required',
      },
    });
    const extra = await register({ heuristic: 'srpt' }, { owner: 'me' });
    expect(extra.json().error).toMatchObject({ field: 'body.owner', rule: 'additionalProperties' });
    // The registry's reason rule (1-200 printable ASCII), checked by the schema: body.reason.
    for (const bad of ['r'.repeat(201), 'naïve']) {
      const r = await register({ heuristic: 'srpt' }, { reason: bad });
      expect(r.statusCode, bad).toBe(400);
      expect(r.json().error, bad).toMatchObject({ field: 'body.reason', rule: 'pattern' });
    }
    const artifact = await register({ heuristic: 'round_robin' });
    expect(artifact.statusCode).toBe(400);
    expect(artifact.json()).toEqual({
      error: {
        code: 'KNOBOS_REGISTRY_INVALID_ARTIFACT',
        message:
          'artifact.heuristic: must be a scheduling heuristic (fifo, sjf, srpt, critical_path, fair, priority), got "round_robin"',
        field: 'artifact.heuristic',
        rule: 'enum',
      },
    });
    const parent = await register({ heuristic: 'srpt' }, { lineage: { parent: 99 } });
    expect(parent.statusCode).toBe(400);
    expect(parent.json().error).toMatchObject({
      code: 'KNOBOS_REGISTRY_INVALID',
      field: 'lineage.parent',
      rule: 'exists',
    });
    const denied = await post(
      '/api/policies',
      { name: 'scheduler', kind: 'scheduling', artifact: { heuristic: 'srpt' } },
      viewer,
    );
    expect(denied.statusCode).toBe(403);
    expect(denied.json()).toEqual({
      error: {
        code: 'KNOBOS_API_FORBIDDEN',
        message: 'this action needs the operator role; the token has viewer',
        field: 'role',
        rule: 'operator',
        role: 'viewer',
      },
    });
    const tenant = await post(
      '/api/policies',
      { name: 'scheduler', kind: 'scheduling', artifact: { heuristic: 'srpt' } },
      tenantOperator,
    );
    expect(tenant.statusCode).toBe(403);
    expect(tenant.json().error).toMatchObject({ field: 'tenant', rule: 'global_scope' });
    const noToken = await api.app.inject({ method: 'POST', url: '/api/policies', payload: {} });
    expect(noToken.statusCode).toBe(401);
    expect((await get('/api/policies')).json().policies.length).toBe(before);
  });

  it('lists versions without artifacts, shows one with it, its lineage, and 404s', async () => {
    expect((await register({ heuristic: 'fair' })).json().version).toBe(3);
    const list = await get('/api/policies?name=scheduler&limit=2', tenantViewer);
    expect(list.statusCode).toBe(200);
    const body = list.json();
    expect(body.available).toBe(true);
    expect(body.live).toEqual({ scheduler: 0 });
    expect(body.policies.map((p: { version: number }) => p.version)).toEqual([3, 2]);
    expect(body.policies[0].artifact).toBeUndefined();
    const page2 = await get(`/api/policies?name=scheduler&limit=2&cursor=${body.next}`);
    expect(page2.json().policies.map((p: { version: number }) => p.version)).toEqual([1]);
    const byStatus = await get('/api/policies?status=live');
    expect(byStatus.json().policies).toEqual([]);

    const one = await get('/api/policies/scheduler/versions/1');
    expect(one.json().artifact).toEqual({ heuristic: 'srpt', meta: { note: 'baseline' } });
    const named = await get('/api/policies/scheduler');
    expect(named.json()).toMatchObject({
      name: 'scheduler',
      kind: 'scheduling',
      latest: 3,
      live: 0,
    });
    const lineage = await get('/api/policies/scheduler/versions/2/lineage');
    expect(lineage.json().ancestors.map((p: { version: number }) => p.version)).toEqual([1]);
    expect(
      (await get('/api/policies/scheduler/versions/1/lineage'))
        .json()
        .children.map((p: { version: number }) => p.version),
    ).toEqual([2]);

    const unknown = await get('/api/policies/scheduler/versions/42');
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json()).toEqual({
      error: {
        code: 'KNOBOS_NOT_FOUND',
        message: 'policy scheduler@42 does not exist',
        target: 'scheduler@42',
        field: 'version',
        rule: 'exists',
      },
    });
    const noName = await get('/api/policies/nosuch');
    expect(noName.statusCode).toBe(404);
    expect(noName.json().error).toMatchObject({ code: 'KNOBOS_NOT_FOUND', field: 'name' });
    const badName = await get('/api/policies/Bad!');
    expect(badName.statusCode).toBe(400);
    expect(badName.json().error).toMatchObject({ field: 'params.name', rule: 'pattern' });
  });

  it('evaluates, shadows and promotes a version through the knobs table, then rolls it back', async () => {
    const bad = await post('/api/policies/scheduler/versions/1/evaluate', { reason: 'x', jobs: 1 });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toMatchObject({ field: 'body.jobs', rule: 'minimum' });
    const early = await post('/api/policies/scheduler/versions/1/shadow', { reason: 'x', ...SPEC });
    expect(early.statusCode).toBe(409);
    expect(early.json().error).toMatchObject({ code: 'KNOBOS_STATE', rule: 'candidate' });
    const denied = await post(
      '/api/policies/scheduler/versions/1/evaluate',
      { reason: 'x', ...SPEC },
      viewer,
    );
    expect(denied.statusCode).toBe(403);

    const ev = await post('/api/policies/scheduler/versions/1/evaluate', {
      reason: 'sim',
      ...SPEC,
    });
    expect(ev.statusCode).toBe(200);
    expect(ev.json()).toMatchObject({
      status: 'candidate',
      simReport: { kind: 'scheduling-sim', incumbent: { name: 'live:fifo' }, by: operatorId },
    });
    const sh = await post('/api/policies/scheduler/versions/1/shadow', {
      reason: 'shadow',
      ...SPEC,
    });
    expect(sh.json()).toMatchObject({
      status: 'shadow',
      shadowReport: { kind: 'scheduling-shadow' },
    });

    const promoted = await post('/api/policies/scheduler/versions/1/promote', { reason: 'better' });
    expect(promoted.statusCode).toBe(200);
    expect(promoted.json()).toMatchObject({ status: 'live', promotion: { replaced: 0 } });
    const knob = await api.knobs.get('scheduler.policy_version');
    expect(knob).toMatchObject({ value: 1, updatedBy: operatorId });
    const proposalId = promoted.json().promotion.proposalId as string;
    const proposal = await get(`/api/proposals/${proposalId}`);
    expect(proposal.json()).toMatchObject({
      status: 'live',
      simReport: { kind: 'scheduling-sim' },
      shadowReport: { kind: 'scheduling-shadow' },
    });
    expect((await get('/api/policies')).json().live).toEqual({ scheduler: 1 });

    const retireLive = await post('/api/policies/scheduler/versions/1/retire', { reason: 'x' });
    expect(retireLive.statusCode).toBe(409);
    expect(retireLive.json().error).toMatchObject({ code: 'KNOBOS_STATE', rule: 'not_live' });
    const again = await post('/api/policies/scheduler/versions/1/promote', { reason: 'again' });
    expect(again.statusCode).toBe(409);

    const keyed = { ...operator, 'idempotency-key': 'rollback-1' };
    const back = await post('/api/policies/scheduler/rollback', { reason: 'p99 regressed' }, keyed);
    expect(back.statusCode).toBe(200);
    expect(back.json()).toMatchObject({ value: 0, live: null, rolledBack: { status: 'retired' } });
    expect((await get(`/api/proposals/${proposalId}`)).json().status).toBe('rolled_back');
    // A retry after a lost reply answers the first outcome (before, it was another rollback:
    // here 409 "nothing to roll back", with two versions back it rolled back one more).
    const retry = await post(
      '/api/policies/scheduler/rollback',
      { reason: 'p99 regressed' },
      keyed,
    );
    expect(retry.statusCode).toBe(200);
    expect(retry.json()).toEqual(back.json());
    const otherRequest = await post('/api/policies/scheduler/rollback', { reason: 'x' }, keyed);
    expect(otherRequest.statusCode).toBe(400);
    expect(otherRequest.json().error).toMatchObject({ field: 'requestId', rule: 'same_request' });
    const none = await post('/api/policies/scheduler/rollback', { reason: 'again' });
    expect(none.statusCode).toBe(409);
    expect(none.json().error).toMatchObject({ rule: 'live_version' });
    const unsupported = await post('/api/policies/other/rollback', { reason: 'x' });
    expect(unsupported.statusCode).toBe(422);
    expect(unsupported.json().error).toMatchObject({
      code: 'KNOBOS_REGISTRY_UNSUPPORTED',
      field: 'name',
      rule: 'promotable',
    });
    const retired = await post('/api/policies/scheduler/versions/2/retire', { reason: 'unused' });
    expect(retired.json()).toMatchObject({ status: 'retired', updatedBy: operatorId });
    const unknown = await post('/api/policies/scheduler/versions/9/evaluate', { reason: 'x' });
    expect(unknown.statusCode).toBe(404);
  });

  it('registers and evaluates a learned task scorer; refuses a malformed one and an unrunnable kind', async () => {
    const malformed = await register(linearScorerArtifact(['estimate_log_s']));
    expect(malformed.statusCode).toBe(400);
    expect(malformed.json().error).toMatchObject({
      code: 'KNOBOS_REGISTRY_INVALID_ARTIFACT',
      field: 'artifact.state.featureNames',
      rule: 'learned_check',
    });
    const learned = await register(linearScorerArtifact(), { lineage: { learner: 'ppo' } });
    expect(learned.statusCode).toBe(201);
    const v = learned.json().version as number;
    const ev = await post(`/api/policies/scheduler/versions/${v}/evaluate`, {
      reason: 'sim',
      ...SPEC,
    });
    expect(ev.statusCode).toBe(200);
    expect(ev.json().simReport.candidate.name).toBe(`scheduler@${v}`);

    const other = await register({ kind: 'policy.other', version: 1, config: {}, state: {} });
    expect(other.statusCode).toBe(201);
    const res = await post(`/api/policies/scheduler/versions/${other.json().version}/evaluate`, {
      reason: 'try',
      ...SPEC,
    });
    expect(res.statusCode).toBe(422);
    expect(res.json().error).toMatchObject({
      code: 'KNOBOS_REGISTRY_UNSUPPORTED',
      field: 'artifact.kind',
      rule: 'runnable',
    });
  });
});
