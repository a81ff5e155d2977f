// The find route and the file service take the same bounds for a query's size and times (one
// constant each, FILE_BYTES_MAX and FILE_TIME_MAX_MS): the schema published and enforced by
// the API refuses exactly what the service would, naming the field and the rule. Before, the
// schema allowed sizes up to 2^50 and the service refused anything above 2^40.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_LIMITS,
  FILE_BYTES_MAX,
  FILE_TIME_MAX_MS,
  FileService,
  FILE_KNOBS,
  ROOT,
} from '../controlplane/files/index.ts';
import { KnobClient } from '../controlplane/knobs/client.ts';
import { ADMIN_TOKEN } from './helpers/api-server.ts';
import { startRegistryApi, type RegistryApi } from './helpers/registry-fixtures.ts';
import { startTestRedis, type TestRedis } from './helpers/redis.ts';

const ADMIN = { authorization: `Bearer ${ADMIN_TOKEN}` };
const FIND = '/api/services/files/find';

describe('files find: one bound for the API and the service', () => {
  let redis: TestRedis;
  let api: RegistryApi;
  let knobs: KnobClient;
  let fs: FileService;

  beforeAll(async () => {
    redis = await startTestRedis('single');
    api = await startRegistryApi(redis);
    knobs = await KnobClient.start({ table: api.knobs, names: FILE_KNOBS });
    fs = await FileService.start({ redis: api.redis, keys: api.knobs.keys, knobs });
    await fs.mkdir(ROOT, '/d');
    await fs.create(ROOT, '/d/f');
    await fs.write(ROOT, '/d/f', 0, Buffer.from('abc'));
  });
  afterAll(async () => {
    await fs?.close();
    await knobs?.close();
    await api?.close();
    await redis?.stop();
  });

  const find = (query: string) =>
    api.app.inject({ url: `${FIND}?under=/d&${query}`, headers: ADMIN });

  it('publishes the bounds the service enforces', async () => {
    expect(FILE_BYTES_MAX).toBe(DEFAULT_LIMITS.fileBytesMax);
    await api.app.ready();
    const doc = api.app.swagger() as {
      paths: Record<
        string,
        { get: { parameters: { name: string; schema: { maximum?: number } }[] } }
      >;
    };
    const params = Object.fromEntries(
      doc.paths[FIND]!.get.parameters.map((p) => [p.name, p.schema.maximum]),
    );
    expect(params).toMatchObject({
      minSizeBytes: FILE_BYTES_MAX,
      modifiedFromMs: FILE_TIME_MAX_MS,
      modifiedToMs: FILE_TIME_MAX_MS,
    });
  });

  it('answers at the bound and refuses one above it, naming the field and the rule', async () => {
    for (const [field, max] of [
      ['minSizeBytes', FILE_BYTES_MAX],
      ['modifiedFromMs', FILE_TIME_MAX_MS],
      ['modifiedToMs', FILE_TIME_MAX_MS],
    ] as const) {
      const ok = await find(`${field}=${max}`);
      expect(ok.statusCode, field).toBe(200);
      // Both sides agree: the service takes the bound too.
      await expect(fs.findFiles(ROOT, { under: '/d', [field]: max })).resolves.toBeDefined();

      const over = await find(`${field}=${max + 1}`);
      expect(over.statusCode, field).toBe(400);
      expect(over.json().error, field).toMatchObject({
        code: 'KNOBOS_API_VALIDATION',
        field: `query.${field}`,
        rule: 'maximum',
        message: `query.${field} must be <= ${max}`,
      });
      await expect(fs.findFiles(ROOT, { under: '/d', [field]: max + 1 })).rejects.toMatchObject({
        code: 'KNOBOS_FILES_INVALID',
        field,
        rule: 'range',
      });
    }
    // The files the bound lets through are found as before.
    const some = (await find('minSizeBytes=2')).json();
    expect(some.files.map((f: { path: string }) => f.path)).toEqual(['/d/f']);
  });
});
