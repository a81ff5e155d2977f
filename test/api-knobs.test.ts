// The knob routes through `inject`: each route's success, and its rejections (bad body,
// unknown knob, stale version, wrong role, out-of-domain value, pinned, tenant scope) with
// exact status codes and error bodies; every write audited with the token's identity.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readAudit } from '../controlplane/api/audit-read.ts';
import { tokenAuditKey } from '../controlplane/api/keys.ts';
import { KnobTable } from '../controlplane/knobs/table.ts';
import { ProposalTable } from '../controlplane/loop/proposals.ts';
import { RegistryKeys } from '../controlplane/registry/keys.ts';
import { Keys } from '../controlplane/store/keys.ts';
import { ADMIN_TOKEN, HOUR_MS, startApi, type ApiFixture } from './helpers/api-server.ts';
import { startTestRedis, type TestRedis } from './helpers/redis.ts';

const ADMIN = { authorization: `Bearer ${ADMIN_TOKEN}` };

describe('knob routes', () => {
  let redis: TestRedis;
  let api: ApiFixture;
  let operator: { authorization: string };
  let viewer: { authorization: string };

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
    viewer = api.bearer(await api.token('viewer'));
  });

  const post = (url: string, payload: unknown, headers = operator) =>
    api.app.inject({ method: 'POST', url, headers, payload: payload as object });

  it('lists every knob with the freeze switch and the epoch', async () => {
    const res = await api.app.inject({ url: '/api/knobs', headers: viewer });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.knobs.map((k: { name: string }) => k.name)).toEqual(
      api.knobs.catalog.map((k) => k.name),
    );
    expect(body.frozen).toBeNull();
    expect(body.epoch).toBe(await api.knobs.epoch());
    const policy = body.knobs.find((k: { name: string }) => k.name === 'scheduler.policy');
    expect(policy).toMatchObject({ value: 'fifo', default: 'fifo', version: 1, pinned: false });
    expect(policy.spec.values).toContain('sjf');
  });

  it('gets one knob and 404s an unknown one with field and rule', async () => {
    const ok = await api.app.inject({ url: '/api/knobs/scheduler.lease_ms', headers: viewer });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toMatchObject({ name: 'scheduler.lease_ms', value: 30_000, version: 1 });
    const missing = await api.app.inject({ url: '/api/knobs/scheduler.nope', headers: viewer });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toEqual({
      error: {
        code: 'KNOBOS_NOT_FOUND',
        message: 'knob scheduler.nope is not in the catalog',
        field: 'name',
        rule: 'declared',
        knob: 'scheduler.nope',
      },
    });
    const bad = await api.app.inject({ url: '/api/knobs/Not%20A%20Knob', headers: viewer });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toMatchObject({
      code: 'KNOBOS_API_VALIDATION',
      field: 'params.name',
      rule: 'pattern',
    });
  });

  it('promotes on the base version, records actor and reason, and refuses a stale base', async () => {
    // A promotion may name only a proposal that exists (and proposes this change).
    const proposals = new ProposalTable(api.knobs);
    await proposals.create({
      id: 'p-1',
      learner: 'op',
      reason: 'try sjf',
      changes: [{ name: 'scheduler.policy', value: 'sjf', baseVersion: 1 }],
    });
    await proposals.transition('p-1', 'simulated', { actor: 'gate', reason: 'ok' });
    const res = await post('/api/knobs/scheduler.policy/promote', {
      value: 'sjf',
      baseVersion: 1,
      reason: 'try sjf',
      proposalId: 'p-1',
    });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({ name: 'scheduler.policy', value: 'sjf', version: 2 });
    expect(body.row.updatedBy).toMatch(/^test-operator#[0-9a-f]{16}$/);
    expect(body.row.reason).toBe('try sjf');

    const history = await api.app.inject({
      url: '/api/knobs/scheduler.policy/history?limit=1',
      headers: viewer,
    });
    expect(history.statusCode).toBe(200);
    const h = history.json();
    expect(h.history).toHaveLength(1);
    expect(h.history[0]).toMatchObject({
      version: 2,
      old: 'fifo',
      new: 'sjf',
      kind: 'promote',
      proposalId: 'p-1',
      actor: body.row.updatedBy,
    });
    expect(h.next).toBe(h.history[0].id);
    const older = await api.app.inject({
      url: `/api/knobs/scheduler.policy/history?limit=5&before=${h.next}`,
      headers: viewer,
    });
    expect(older.json().history.map((e: { version: number }) => e.version)).toEqual([1]);
    expect(older.json().next).toBeNull();
    // A coerced query number must be finite: ajv checks its bounds only on finite numbers.
    for (const bad of ['Infinity', '-Infinity', '1e400']) {
      const r = await api.app.inject({
        url: `/api/knobs/scheduler.policy/history?limit=${bad}`,
        headers: viewer,
      });
      expect(r.statusCode, bad).toBe(400);
      expect(r.json().error, bad).toMatchObject({
        code: 'KNOBOS_API_VALIDATION',
        field: 'query.limit',
        rule: 'finite',
      });
    }

    const stale = await post('/api/knobs/scheduler.policy/promote', {
      value: 'fair',
      baseVersion: 1,
      reason: 'late',
    });
    expect(stale.statusCode).toBe(409);
    expect(stale.json()).toEqual({
      error: {
        code: 'KNOBOS_STALE_VERSION',
        message: 'knob scheduler.policy: stale version: based on version 1, current is 2',
        field: 'version',
        rule: 'base_version',
        target: 'knob scheduler.policy',
        baseVersion: 1,
        currentVersion: 2,
      },
    });
    expect((await api.knobs.get('scheduler.policy')).value).toBe('sjf');
  });

  it('leaves a learned policy version to the registry: only 0 goes through the knob route', async () => {
    for (const route of ['promote', 'check']) {
      const r = await post(`/api/knobs/scheduler.policy_version/${route}`, {
        value: 1,
        baseVersion: 1,
        reason: 'skip the gates',
      });
      expect(r.statusCode, route).toBe(409);
      expect(r.json().error, route).toMatchObject({
        code: 'KNOBOS_STATE',
        field: 'body.value',
        rule: 'registry',
        knob: 'scheduler.policy_version',
      });
    }
    const row = await api.app.inject({
      url: '/api/knobs/scheduler.policy_version',
      headers: operator,
    });
    expect(row.json()).toMatchObject({ value: 0, version: 1 });
  });

  it('rolls a registry knob back only to 0 here, never to a policy version', async () => {
    const K = 'scheduler.policy_version';
    // The registry took versions 7 and then 3 live (through the table, as it does).
    await api.knobs.promote({ name: K, value: 7, baseVersion: 1, actor: 'registry', reason: 'a' });
    api.clock.advance(HOUR_MS);
    await api.knobs.promote({ name: K, value: 3, baseVersion: 2, actor: 'registry', reason: 'b' });
    api.clock.advance(HOUR_MS);
    for (const toVersion of [2, 3]) {
      const r = await post(`/api/knobs/${K}/rollback`, { toVersion, reason: 'sneak it back' });
      expect(r.statusCode, `to v${toVersion}`).toBe(409);
      expect(r.json().error, `to v${toVersion}`).toMatchObject({
        code: 'KNOBOS_STATE',
        field: 'body.toVersion',
        rule: 'registry',
        knob: K,
      });
    }
    expect(await api.knobs.get(K)).toMatchObject({ value: 3, version: 3 });
    // Version 1 (0: learned policies off) is what a direct change may set.
    const off = await post(`/api/knobs/${K}/rollback`, { toVersion: 1, reason: 'heuristic' });
    expect(off.statusCode).toBe(200);
    expect(off.json()).toMatchObject({ value: 0, version: 4 });
  });

  it('refuses a non-finite number as a body error naming body.value', async () => {
    const raw = (url: string, payload: string) =>
      api.app.inject({
        method: 'POST',
        url,
        headers: { ...operator, 'content-type': 'application/json' },
        payload,
      });
    for (const [url, payload, field] of [
      [
        '/api/knobs/scheduler.dispatch_batch/promote',
        '{"value":1e400,"baseVersion":1,"reason":"x"}',
        'body.value',
      ],
      [
        '/api/knobs/scheduler.dispatch_batch/check',
        '{"value":-1e400,"baseVersion":1,"reason":"x"}',
        'body.value',
      ],
      [
        '/api/knobs/placement.map/promote',
        '{"value":{"t1":1e400},"baseVersion":1,"reason":"x"}',
        'body.value.t1',
      ],
    ]) {
      const r = await raw(url as string, payload as string);
      expect(r.statusCode, payload).toBe(400);
      expect(r.json().error, payload).toMatchObject({
        code: 'KNOBOS_API_VALIDATION',
        field,
        rule: 'type',
      });
    }
    expect((await api.knobs.get('scheduler.dispatch_batch')).version).toBe(1);
    // A value nested 5,000 deep (10 KB) overflowed the check's recursion: a 500 before.
    for (const action of ['promote', 'check']) {
      const deep = `{"value":${'['.repeat(5_000)}1${']'.repeat(5_000)},"baseVersion":1,"reason":"x"}`;
      const r = await raw(`/api/knobs/files.cache_bytes/${action}`, deep);
      expect(r.statusCode, action).toBe(400);
      expect(r.json().error, action).toMatchObject({ field: 'body.value', rule: 'depth' });
    }
  });

  it('refuses a placement map with an empty tenant name', async () => {
    const r = await post('/api/knobs/placement.map/promote', {
      value: { '': 0 },
      baseVersion: 1,
      reason: 'x',
    });
    expect(r.statusCode).toBe(400);
    expect(r.json().error).toMatchObject({
      code: 'KNOBOS_INVALID',
      field: 'value',
      rule: 'non_empty_key',
      knob: 'placement.map',
    });
    expect(await api.knobs.get('placement.map')).toMatchObject({ value: {}, version: 1 });
  });

  it('the dry run answers the pin another process set, not a remembered row', async () => {
    const body = { value: 'sjf', baseVersion: 1, reason: 'x' };
    expect((await post('/api/knobs/scheduler.policy/check', body)).statusCode).toBe(200);
    // Another process pins; its notification never reaches this server (pub/sub delivers at
    // most once: a subscriber reconnecting misses it), so nothing here re-reads the row.
    class LostNotice extends Keys {
      override knobChanges(): string {
        return `${super.knobChanges()}:lost`;
      }
    }
    const keys = new LostNotice(api.knobs.keys.prefix);
    const other = new KnobTable(api.knobs.redis, { keys, clock: api.clock });
    await other.pin('scheduler.policy', 'alice', 'incident 9');
    const r = await post('/api/knobs/scheduler.policy/check', body);
    expect(r.statusCode).toBe(423);
    expect(r.json().error).toMatchObject({ code: 'KNOBOS_PINNED' });
  });

  it('rejects out-of-domain values and safety-limit breaks with the knob rule', async () => {
    const enumBad = await post('/api/knobs/scheduler.policy/promote', {
      value: 'random',
      baseVersion: 1,
      reason: 'x',
    });
    expect(enumBad.statusCode).toBe(400);
    expect(enumBad.json().error).toMatchObject({
      code: 'KNOBOS_INVALID',
      field: 'value',
      rule: 'enum',
      knob: 'scheduler.policy',
    });
    const max = await post('/api/knobs/scheduler.dispatch_batch/promote', {
      value: 5000,
      baseVersion: 1,
      reason: 'x',
    });
    expect(max.statusCode).toBe(400);
    expect(max.json().error).toMatchObject({ code: 'KNOBOS_INVALID', rule: 'max' });
    const type = await post('/api/knobs/scheduler.dispatch_batch/promote', {
      value: null,
      baseVersion: 1,
      reason: 'x',
    });
    expect(type.json().error).toMatchObject({ code: 'KNOBOS_INVALID', rule: 'type' });
    const step = await post('/api/knobs/scheduler.dispatch_batch/promote', {
      value: 1024,
      baseVersion: 1,
      reason: 'x',
    });
    expect(step.statusCode).toBe(400);
    expect(step.json().error).toMatchObject({ code: 'KNOBOS_INVALID', rule: 'max_step_ratio' });
    expect((await api.knobs.get('scheduler.dispatch_batch')).version).toBe(1);
  });

  it('rejects bad bodies by schema: missing, unknown and mistyped fields, bad JSON', async () => {
    const cases: [unknown, string, string][] = [
      [{ value: 'sjf', reason: 'x' }, 'body.baseVersion', 'required'],
      [
        { value: 'sjf', baseVersion: 1, reason: 'x', sneaky: 1 },
        'body.sneaky',
        'additionalProperties',
      ],
      [{ value: 'sjf', baseVersion: 0, reason: 'x' }, 'body.baseVersion', 'minimum'],
      [{ value: 'sjf', baseVersion: 1.5, reason: 'x' }, 'body.baseVersion', 'type'],
      [{ value: 'sjf', baseVersion: 1, reason: '   ' }, 'body.reason', 'pattern'],
      // Control characters would land in history and audit as they are.
      [{ value: 'sjf', baseVersion: 1, reason: '\u0000x' }, 'body.reason', 'pattern'],
      [{ value: 'sjf', baseVersion: 1, reason: 'two\nlines' }, 'body.reason', 'pattern'],
      [{ value: 'sjf', baseVersion: 1, reason: 'r'.repeat(501) }, 'body.reason', 'maxLength'],
      [[1, 2], 'body', 'type'],
    ];
    for (const [payload, field, rule] of cases) {
      const res = await post('/api/knobs/scheduler.policy/promote', payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(res.json().error, JSON.stringify(payload)).toMatchObject({
        code: 'KNOBOS_API_VALIDATION',
        field,
        rule,
      });
    }
    const json = await api.app.inject({
      method: 'POST',
      url: '/api/knobs/scheduler.policy/promote',
      headers: { ...operator, 'content-type': 'application/json' },
      payload: '{"value": ',
    });
    expect(json.statusCode).toBe(400);
    expect(json.json().error.code).toBe('KNOBOS_API_BAD_JSON');
    const text = await api.app.inject({
      method: 'POST',
      url: '/api/knobs/scheduler.policy/promote',
      headers: { ...operator, 'content-type': 'text/plain' },
      payload: 'value=sjf',
    });
    expect(text.statusCode).toBe(415);
    expect(text.json().error.code).toBe('KNOBOS_API_UNSUPPORTED_MEDIA_TYPE');
    const big = await api.app.inject({
      method: 'POST',
      url: '/api/knobs/scheduler.policy/promote',
      headers: { ...operator, 'content-type': 'application/json' },
      payload: JSON.stringify({ value: 'x'.repeat(70_000), baseVersion: 1, reason: 'x' }),
    });
    expect(big.statusCode).toBe(413);
    expect(big.json().error.code).toBe('KNOBOS_API_BODY_TOO_LARGE');
  });

  it('checks a change without writing it (the dry run), with the same errors', async () => {
    const before = await api.knobs.epoch();
    const ok = await post('/api/knobs/scheduler.policy/check', {
      value: 'sjf',
      baseVersion: 1,
      reason: 'would it pass?',
    });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toMatchObject({
      ok: true,
      current: { name: 'scheduler.policy', version: 1 },
    });
    const stale = await post('/api/knobs/scheduler.policy/check', {
      value: 'sjf',
      baseVersion: 7,
      reason: 'x',
    });
    expect(stale.statusCode).toBe(409);
    expect(stale.json().error.code).toBe('KNOBOS_STALE_VERSION');
    expect(await api.knobs.epoch()).toBe(before);
    expect((await api.knobs.get('scheduler.policy')).version).toBe(1);
  });

  it('refuses writes to a viewer (403 with the role needed) and to no token (401)', async () => {
    const res = await post(
      '/api/knobs/scheduler.policy/promote',
      { value: 'sjf', baseVersion: 1, reason: 'x' },
      viewer,
    );
    expect(res.statusCode).toBe(403);
    expect(res.json()).toEqual({
      error: {
        code: 'KNOBOS_API_FORBIDDEN',
        message: 'this action needs the operator role; the token has viewer',
        field: 'role',
        rule: 'operator',
        role: 'viewer',
      },
    });
    const anon = await api.app.inject({
      method: 'POST',
      url: '/api/knobs/scheduler.policy/pin',
      payload: { reason: 'x' },
    });
    expect(anon.statusCode).toBe(401);
    expect(anon.json().error).toMatchObject({
      code: 'KNOBOS_API_UNAUTHENTICATED',
      field: 'headers.authorization',
      rule: 'required',
    });
    expect((await api.knobs.get('scheduler.policy')).pinned).toBe(false);
  });

  it('refuses knob writes to a tenant-scoped operator: knobs are shared by all tenants', async () => {
    const tenantOp = api.bearer(await api.token('operator', 'acme'));
    const res = await post('/api/knobs/scheduler.policy/pin', { reason: 'mine' }, tenantOp);
    expect(res.statusCode).toBe(403);
    expect(res.json().error).toMatchObject({
      code: 'KNOBOS_API_FORBIDDEN',
      field: 'tenant',
      rule: 'global_scope',
      tenant: 'acme',
    });
    // Reading the shared knobs is allowed.
    expect((await api.app.inject({ url: '/api/knobs', headers: tenantOp })).statusCode).toBe(200);
  });

  it('pins (refusing promotions with 423), unpins, and audits both under the token', async () => {
    const pin = await post('/api/knobs/scheduler.policy/pin', { reason: 'incident 42' });
    expect(pin.statusCode).toBe(200);
    expect(pin.json()).toMatchObject({ pinned: true, pinReason: 'incident 42' });
    const actor = pin.json().pinnedBy;
    expect(actor).toMatch(/^test-operator#/);

    const refused = await post('/api/knobs/scheduler.policy/promote', {
      value: 'sjf',
      baseVersion: 1,
      reason: 'x',
    });
    expect(refused.statusCode).toBe(423);
    expect(refused.json().error).toMatchObject({
      code: 'KNOBOS_PINNED',
      field: 'pinned',
      rule: 'pinned',
      pinnedBy: actor,
    });

    const unpin = await post('/api/knobs/scheduler.policy/unpin', { reason: 'resolved' });
    expect(unpin.statusCode).toBe(200);
    expect(unpin.json().pinned).toBe(false);

    const audit = await api.app.inject({
      url: '/api/audit?target=scheduler.policy&limit=2',
      headers: viewer,
    });
    expect(
      audit.json().audit.map((a: { action: string; actor: string }) => [a.action, a.actor]),
    ).toEqual([
      ['knob.unpin', actor],
      ['knob.pin', actor],
    ]);
    const noReason = await post('/api/knobs/scheduler.policy/pin', {});
    expect(noReason.statusCode).toBe(400);
    expect(noReason.json().error).toMatchObject({ field: 'body.reason', rule: 'required' });
  });

  it('rolls back to an earlier version as a new version, guarded by the base version', async () => {
    await post('/api/knobs/scheduler.policy/promote', {
      value: 'sjf',
      baseVersion: 1,
      reason: 'a',
    });
    api.clock.advance(HOUR_MS);
    await post('/api/knobs/scheduler.policy/promote', {
      value: 'fair',
      baseVersion: 2,
      reason: 'b',
    });
    const stale = await post('/api/knobs/scheduler.policy/rollback', {
      toVersion: 1,
      baseVersion: 2,
      reason: 'undo',
    });
    expect(stale.statusCode).toBe(409);
    // Back past the last change is no undo: held to the cooldown as a promotion is.
    const early = await post('/api/knobs/scheduler.policy/rollback', {
      toVersion: 1,
      baseVersion: 3,
      reason: 'fair hurts p99',
    });
    expect(early.statusCode).toBe(400);
    expect(early.json().error).toMatchObject({ code: 'KNOBOS_INVALID', rule: 'cooldown' });
    api.clock.advance(HOUR_MS);
    const res = await post('/api/knobs/scheduler.policy/rollback', {
      toVersion: 1,
      baseVersion: 3,
      reason: 'fair hurts p99',
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ value: 'fifo', version: 4, row: { value: 'fifo' } });
    const [last] = await api.knobs.history('scheduler.policy', { limit: 1 });
    expect(last).toMatchObject({ kind: 'rollback', evidence: { rolled_back_to: 1 } });
    const nowhere = await post('/api/knobs/scheduler.policy/rollback', {
      toVersion: 99,
      reason: 'x',
    });
    expect(nowhere.statusCode).toBe(400);
    expect(nowhere.json().error).toMatchObject({
      code: 'KNOBOS_INVALID',
      field: 'toVersion',
      rule: 'exists',
    });
  });

  it('freezes and unfreezes automation, idempotently, and reports it in the list', async () => {
    const freeze = await post('/api/freeze', { reason: 'incident' });
    expect(freeze.statusCode).toBe(200);
    expect(freeze.json()).toMatchObject({ changed: true, frozen: { reason: 'incident' } });
    expect(freeze.json().frozen.by).toMatch(/^test-operator#/);
    const again = await post('/api/freeze', { reason: 'incident' });
    expect(again.json().changed).toBe(false);
    const list = await api.app.inject({ url: '/api/knobs', headers: viewer });
    expect(list.json().frozen).toMatchObject({ reason: 'incident' });
    const state = await api.app.inject({ url: '/api/freeze', headers: viewer });
    expect(state.json().frozen.reason).toBe('incident');
    // Operators still act while automation is frozen.
    const op = await post('/api/knobs/scheduler.policy/promote', {
      value: 'sjf',
      baseVersion: 1,
      reason: 'manual',
    });
    expect(op.statusCode).toBe(200);
    const viewerTry = await post('/api/unfreeze', { reason: 'x' }, viewer);
    expect(viewerTry.statusCode).toBe(403);
    const unfreeze = await post('/api/unfreeze', { reason: 'over' });
    expect(unfreeze.json()).toEqual({ frozen: null, changed: true });
  });

  it('accepts the admin token from the environment as an operator and audits it as admin#env', async () => {
    const res = await post(
      '/api/knobs/messaging.linger_ms/promote',
      { value: 8, baseVersion: 1, reason: 'env admin' },
      ADMIN,
    );
    expect(res.statusCode).toBe(200);
    expect(res.json().row.updatedBy).toBe('admin#env');
  });

  it('refuses body fields of the wrong JSON type (no coercion) and writes nothing', async () => {
    const cases: [string, object, string][] = [
      [
        '/api/knobs/scheduler.dispatch_batch/promote',
        { value: 32, baseVersion: true, reason: 'x' },
        'body.baseVersion',
      ],
      [
        '/api/knobs/scheduler.dispatch_batch/promote',
        { value: 32, baseVersion: '1', reason: 'x' },
        'body.baseVersion',
      ],
      [
        '/api/knobs/scheduler.dispatch_batch/promote',
        { value: 32, baseVersion: 1, reason: ['because'] },
        'body.reason',
      ],
      [
        '/api/knobs/scheduler.dispatch_batch/rollback',
        { toVersion: [1], reason: 'x' },
        'body.toVersion',
      ],
      ['/api/knobs/scheduler.dispatch_batch/pin', { reason: false }, 'body.reason'],
    ];
    for (const [url, body, field] of cases) {
      const res = await post(url, body);
      expect(res.statusCode, `${url} ${JSON.stringify(body)}`).toBe(400);
      expect(res.json().error, field).toMatchObject({
        code: 'KNOBOS_API_VALIDATION',
        field,
        rule: 'type',
      });
    }
    const row = await api.knobs.get('scheduler.dispatch_batch');
    expect(row).toMatchObject({ value: 16, version: 1, pinned: false });
    expect(await api.knobs.history('scheduler.dispatch_batch')).toHaveLength(1);
  });

  it('answers an empty page for before=0-0 (nothing is older) on every log cursor', async () => {
    for (const url of [
      '/api/knobs/scheduler.policy/history?before=0-0',
      '/api/audit?before=0-0',
      '/api/audit?before=0-0:knobs',
      '/api/registry/audit?before=0-0',
    ]) {
      const res = await api.app.inject({ url, headers: viewer });
      expect(res.statusCode, url).toBe(200);
      const body = res.json();
      expect(body.history ?? body.audit, url).toEqual([]);
      if ('next' in body) expect(body.next, url).toBeNull();
    }
  });

  it('pages on past a scan bound: a short page names where it stopped, not the end', async () => {
    // Two logs of 30 entries; only the oldest entry of each matches. Scans of 2 pages of 5.
    const logs = ['audit-scan-a', 'audit-scan-b'].map((k) => ({ name: k, key: `{t}:${k}` }));
    const t = Date.now() + 2 * HOUR_MS;
    for (const [n, log] of logs.entries())
      for (let i = 0; i < 30; i++) {
        const target = i === 0 ? 'needle' : 'hay';
        await api.redis.xadd(
          log.key,
          `${t + i}-${n}`,
          'at',
          t,
          'actor',
          'x',
          'action',
          'probe',
          'target',
          target,
          'outcome',
          'ok',
        );
      }
    const found: string[] = [];
    let before: string | undefined;
    for (let pages = 0; pages < 20; pages++) {
      const r = await readAudit(
        api.redis,
        logs,
        { limit: 10, target: 'needle', visible: () => true, ...(before ? { before } : {}) },
        { page: 5, maxPages: 2 },
      );
      found.push(...r.entries.map((e) => `${e.id}:${e.source}`));
      if (r.next === null) break;
      before = r.next;
    }
    expect(found).toEqual([`${t}-1:audit-scan-b`, `${t}-0:audit-scan-a`]);
  });

  it('pages the audit trail across logs without losing entries that share an id', async () => {
    // Stream ids are unique per log only: write entries that share ids across the three logs
    // (past every real entry), as concurrent writers to different logs can.
    const keys = api.knobs.keys;
    const logs = {
      knobs: keys.knobAudit(),
      tokens: tokenAuditKey(keys),
      policies: new RegistryKeys(keys).audit(),
    };
    const t = Date.now() + HOUR_MS;
    const entry = (target: string) =>
      ['at', t, 'actor', 'test', 'action', 'probe', 'target', target, 'outcome', 'ok'] as const;
    for (const seq of [0, 1])
      for (const [source, key] of Object.entries(logs))
        await api.redis.xadd(key, `${t}-${seq}`, ...entry(`${source}-${seq}`));
    await api.redis.xadd(logs.knobs, `${t}-2`, ...entry('knobs-2'));

    type Page = { audit: { id: string; source: string }[]; next: string | null };
    const get = async (query: string): Promise<Page> => {
      const res = await api.app.inject({ url: `/api/audit?${query}`, headers: ADMIN });
      expect(res.statusCode, query).toBe(200);
      return res.json();
    };
    const whole = (await get('limit=500')).audit.map((e) => `${e.id}:${e.source}`);
    // Newest first; entries of one id by source name.
    expect(whole.slice(0, 7)).toEqual([
      `${t}-2:knobs`,
      `${t}-1:knobs`,
      `${t}-1:policies`,
      `${t}-1:tokens`,
      `${t}-0:knobs`,
      `${t}-0:policies`,
      `${t}-0:tokens`,
    ]);
    for (const limit of [1, 2, 3]) {
      const paged: string[] = [];
      let next: string | null = null;
      do {
        const page: Page = await get(`limit=${limit}${next ? `&before=${next}` : ''}`);
        paged.push(...page.audit.map((e) => `${e.id}:${e.source}`));
        next = page.next;
        if (next) expect(next).toBe(paged[paged.length - 1]);
      } while (next && paged.length <= whole.length);
      expect(paged, `limit=${limit}`).toEqual(whole);
    }
    // A plain id, the older form, still means "older than this id in every log".
    const older = await get(`limit=3&before=${t}-1`);
    expect(older.audit.map((e) => `${e.id}:${e.source}`)).toEqual(whole.slice(4, 7));
    const bad = await api.app.inject({
      url: `/api/audit?before=${t}-1:nowhere`,
      headers: ADMIN,
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toMatchObject({
      code: 'KNOBOS_API_VALIDATION',
      field: 'query.before',
      rule: 'pattern',
    });
  });
});
