// The experiment result routes with inject, over a results directory of its own
// (KNOBOS_RESULTS_DIR): the list with each result's headline facts, one result whole, and
// the rejections (unknown name, bad name, an unreadable result, one that is not an object).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type ApiFixture } from './helpers/api-server.ts';
import { startTestRedis, type TestRedis } from './helpers/redis.ts';

const RESULT = {
  name: 'scheduler',
  title: 'Scheduler: policies on TPC-H at 85% load',
  date: '2026-11-22T08:00:00.000Z',
  quick: true,
  metric: 'mean_jct_s',
  direction: 'min',
  seeds: [1, 2, 3],
  results: [
    { name: 'fifo', mean: 124.9 },
    { name: 'srpt', mean: 74.6 },
  ],
};

describe('experiments API', () => {
  let redis: TestRedis;
  let api: ApiFixture;
  let viewer: { authorization: string };
  const dir = mkdtempSync(join(tmpdir(), 'knobos-results-'));

  beforeAll(async () => {
    mkdirSync(join(dir, 'scheduler'));
    writeFileSync(join(dir, 'scheduler', 'result.json'), JSON.stringify(RESULT));
    mkdirSync(join(dir, 'broken'));
    writeFileSync(join(dir, 'broken', 'result.json'), '{ not json');
    mkdirSync(join(dir, 'empty'));
    // Valid JSON, but not a result object.
    for (const [name, text] of [
      ['array', '[1, 2]'],
      ['null', 'null'],
      ['string', '"a result"'],
    ]) {
      mkdirSync(join(dir, name as string));
      writeFileSync(join(dir, name as string, 'result.json'), text as string);
    }
    process.env['KNOBOS_RESULTS_DIR'] = dir;
    redis = await startTestRedis('single');
    api = await startApi(redis);
    viewer = api.bearer(await api.token('viewer', 'acme'));
  });
  afterAll(async () => {
    delete process.env['KNOBOS_RESULTS_DIR'];
    await api?.close();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists experiments that have a readable result, with their headline facts', async () => {
    const res = await api.app.inject({ url: '/api/experiments', headers: viewer });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      experiments: [
        {
          name: 'scheduler',
          title: RESULT.title,
          date: RESULT.date,
          quick: true,
          metric: 'mean_jct_s',
          direction: 'min',
          seeds: 3,
          entries: 2,
          bytes: JSON.stringify(RESULT).length,
        },
      ],
    });
  });

  it('returns one result whole, and refuses unknown, bad and unreadable names', async () => {
    const one = await api.app.inject({ url: '/api/experiments/scheduler', headers: viewer });
    expect(one.json()).toEqual(RESULT);
    const missing = await api.app.inject({ url: '/api/experiments/empty', headers: viewer });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toEqual({
      error: {
        code: 'KNOBOS_NOT_FOUND',
        message: 'experiment empty has no result file (run npm run exp:empty)',
        target: 'empty',
        field: 'name',
        rule: 'exists',
      },
    });
    const broken = await api.app.inject({ url: '/api/experiments/broken', headers: viewer });
    expect(broken.json().error).toMatchObject({ code: 'KNOBOS_NOT_FOUND', rule: 'json' });
    const bad = await api.app.inject({ url: '/api/experiments/..%2Fetc', headers: viewer });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toMatchObject({ field: 'params.name', rule: 'pattern' });
    for (const name of ['array', 'null', 'string']) {
      const notObject = await api.app.inject({ url: `/api/experiments/${name}`, headers: viewer });
      expect(notObject.statusCode, name).toBe(404);
      expect(notObject.json().error, name).toMatchObject({
        code: 'KNOBOS_NOT_FOUND',
        message: `experiment ${name}: result.json is not a JSON object`,
        field: 'name',
        rule: 'json',
      });
    }
    const anon = await api.app.inject({ url: '/api/experiments' });
    expect(anon.statusCode).toBe(401);
  });
});
