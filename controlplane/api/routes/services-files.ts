// The file service's state: stat, readdir and the metadata queries (files by size and mtime
// under a directory; a user's largest directories), through a read-only use of FileService
// (the same Lua steps and permission checks as every caller; the API reads as root). A volume
// is opened on first use, only if it exists (reading never creates one).
// Tenant views: a tenant-scoped token sees the subtree `<tenantRoot>/<tenant>` as its whole
// volume: its paths are taken relative to that directory and results are given back so, so
// nothing outside it can be named or seen.
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { FileKeys } from '../../files/keys.ts';
import { namesDir, normalizePath } from '../../files/paths.ts';
import { FILE_KNOBS, FileService } from '../../files/service.ts';
import { VolumeMissingError } from '../../files/errors.ts';
import { KnobosError } from '../../store/errors.ts';
import { FILE_BYTES_MAX, FILE_TIME_MAX_MS, ROOT, type QueryPlan } from '../../files/types.ts';
import { KnobClient } from '../../knobs/client.ts';
import type { ApiDeps, RequestAuth } from '../context.ts';
import { ApiError } from '../errors.ts';
import { errors, headers, limit } from '../schemas.ts';
import type { ServiceViewOptions } from './services-options.ts';
import { closed, pickShard, shardChoice } from './params.ts';

const TAGS = ['services: files'];
const anyObject = { type: 'object', additionalProperties: true } as const;
const path = { type: 'string', minLength: 1, maxLength: 4_096 } as const;
// The service's own bounds (its default limits), so the schema refuses exactly what it would.
const bytes = {
  type: 'integer',
  minimum: 0,
  maximum: FILE_BYTES_MAX,
  description: `bytes, at most ${FILE_BYTES_MAX} (2^40, the largest file)`,
} as const;
const ms = {
  type: 'integer',
  minimum: 0,
  maximum: FILE_TIME_MAX_MS,
  description: `ms since the epoch, at most ${FILE_TIME_MAX_MS} (2^50)`,
} as const;
/** HSCAN cursors are unsigned 64-bit: Redis fails on a larger one (a 500 if passed on). */
const SCAN_CURSOR_MAX = 2n ** 64n - 1n;

/** A tenant's view of the volume: paths in and out of its subtree. */
export class TenantView {
  constructor(readonly root: string) {}

  static of(auth: RequestAuth, tenantRoot: string): TenantView | null {
    return auth.tenant === null
      ? null
      : new TenantView(normalizePath(`${tenantRoot}/${auth.tenant}`));
  }

  /** The volume path of a path the tenant names (normalised first: no '..' escapes). */
  inside(p: string, field = 'path'): string {
    const n = normalizePath(p, field);
    // A trailing / stays: it asks for a directory (FileService).
    return (n === '/' ? this.root : this.root + n) + (namesDir(p) ? '/' : '');
  }

  /** The tenant's name for a volume path; null when it is outside the subtree. */
  outside(p: string): string | null {
    if (p === this.root) return '/';
    return p.startsWith(this.root + '/') ? p.slice(this.root.length) : null;
  }

  /**
   * An error of the file service in the tenant's terms: its message and `path` name the
   * tenant's path, not the volume's (they showed `/tenants/<tenant>/...`: the volume's layout).
   */
  hide(err: unknown): unknown {
    if (!(err instanceof KnobosError) || typeof err.details['path'] !== 'string') return err;
    const vol = err.details['path'];
    const mine = this.outside(vol.replace(/\/$/, '')) ?? '/';
    err.message = err.message
      .split(vol)
      .join(mine)
      .split(this.root + '/')
      .join('/')
      .split(this.root)
      .join('/');
    const details = err.details as Record<string, unknown>;
    details['path'] = mine;
    if ('path' in err) Object.defineProperty(err, 'path', { value: mine });
    return err;
  }

  /** `work`, its file errors shown in the tenant's terms. */
  async run<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      throw this.hide(err);
    }
  }
}

/** How long a tenant's find cursor token names its position. */
export const FIND_CURSOR_TTL_MS = 10 * 60_000;

/**
 * find's cursors. An operator's is the position itself (plan:score:path). A tenant's is a
 * token for it, kept in Redis for FIND_CURSOR_TTL_MS (any API instance reads it): the position
 * is a volume path, which shows the tenants' root and, when a page stops at the scan bound on
 * a candidate outside the tenant's subtree, another tenant's path and size.
 */
function findCursors(redis: ApiDeps['redis'], keys: ApiDeps['keys']) {
  // In the knobs family, which the API's Redis user writes (an {api} family it may not: NOPERM).
  const key = (token: string) => keys.key('knobs', 'api_find_cursor', token);
  const refuse = (why: string) =>
    new ApiError('KNOBOS_API_VALIDATION', `query.cursor ${why}`, {
      field: 'query.cursor',
      rule: 'cursor',
    });
  return {
    async write(position: string, tenant: string | null): Promise<string> {
      if (tenant === null) return position;
      const token = randomBytes(16).toString('hex');
      await redis.set(key(token), `${tenant}\n${position}`, 'PX', FIND_CURSOR_TTL_MS);
      return `t:${token}`;
    },
    async read(cursor: string, tenant: string | null): Promise<string> {
      if (tenant === null) {
        if (cursor.startsWith('t:'))
          throw refuse("is a tenant's token (pass an operator's cursor)");
        return cursor;
      }
      if (!cursor.startsWith('t:'))
        throw refuse('must be a token a find in this view returned (t:...)');
      const stored = await redis.get(key(cursor.slice(2)));
      const cut = stored?.indexOf('\n') ?? -1;
      if (!stored || cut < 0 || stored.slice(0, cut) !== tenant)
        throw refuse("has expired or is not this tenant's (start again without it)");
      return stored.slice(cut + 1);
    },
  };
}

export function filesRoutes(
  app: FastifyInstance,
  deps: ApiDeps,
  opts: Required<Pick<ServiceViewOptions, 'fileVolumes' | 'tenantRoot'>>,
): void {
  const { redis, keys, knobs } = deps;
  const cursors = findCursors(redis, keys);
  let client: Promise<KnobClient> | undefined;
  const services = new Map<string, Promise<FileService>>();
  app.addHook('onClose', async () => {
    await Promise.all([...services.values()].map(async (s) => (await s).close().catch(() => {})));
    await (await client)?.close();
  });

  const open = (volume?: string): Promise<FileService> => {
    const v = pickShard(opts.fileVolumes, volume);
    let s = services.get(v);
    if (!s) {
      s = (async () => {
        const fk = new FileKeys(keys, v);
        if ((await redis.exists(fk.volumeRow())) === 0)
          throw new VolumeMissingError(
            `volume ${v} does not exist (no file service created it yet)`,
            '/',
            {
              volume: v,
            },
          );
        client ??= KnobClient.start({ table: knobs, names: FILE_KNOBS });
        return FileService.start({
          redis,
          keys,
          knobs: await client,
          volume: v,
          instance: `api-${process.pid}`,
        });
      })();
      services.set(v, s);
      // A failed open (no volume yet) is retried by the next request.
      s.catch(() => services.delete(v));
    }
    return s;
  };
  const volume = shardChoice('volume', opts.fileVolumes);
  const view = (auth: RequestAuth) => TenantView.of(auth, opts.tenantRoot);

  app.get<{ Querystring: { volume?: string; path: string } }>(
    '/api/services/files/stat',
    {
      schema: {
        tags: TAGS,
        summary: 'An inode: type, owner, mode, size, subtree bytes, times, version',
        headers,
        querystring: closed({ volume, path }, ['path']),
        response: { 200: anyObject, ...errors(404, 503) },
      },
    },
    async (request) => {
      const v = view(request.auth);
      const p = v ? v.inside(request.query.path) : request.query.path;
      const fs = await open(request.query.volume);
      const st = v ? await v.run(() => fs.stat(ROOT, p)) : await fs.stat(ROOT, p);
      return { ...st, path: v ? (v.outside(st.path) ?? '/') : st.path };
    },
  );

  app.get<{ Querystring: { volume?: string; path: string; cursor?: string; count: number } }>(
    '/api/services/files/readdir',
    {
      schema: {
        tags: TAGS,
        summary: "One page of a directory's entries; pass `cursor` back for the next",
        description:
          "`count` is a hint, as Redis SCAN's COUNT: a page may hold more entries (a small directory comes whole) or fewer (none, with a cursor to follow); follow `cursor` until it is null. An entry may come twice if the directory changes between pages.",
        headers,
        querystring: closed(
          {
            volume,
            path,
            cursor: { type: 'string', pattern: '^[0-9]{1,20}$' },
            count: {
              ...limit(1_000, 100),
              description: 'Entries to aim for per page (a hint, not a maximum)',
            },
          },
          ['path'],
        ),
        response: {
          200: {
            type: 'object',
            properties: {
              path: { type: 'string' },
              entries: { type: 'array', items: anyObject },
              cursor: { type: ['string', 'null'] },
            },
          },
          ...errors(404, 409, 503),
        },
      },
    },
    async (request) => {
      const q = request.query;
      // The same code as the schema's own refusals: the cursor is malformed, like a 21-digit one.
      if (q.cursor !== undefined && BigInt(q.cursor) > SCAN_CURSOR_MAX)
        throw new ApiError(
          'KNOBOS_API_VALIDATION',
          'query.cursor must be below 2^64 (pass back a cursor readdir returned)',
          { field: 'query.cursor', rule: 'cursor' },
        );
      const v = view(request.auth);
      const fs = await open(q.volume);
      const list = () =>
        fs.readdir(ROOT, v ? v.inside(q.path) : q.path, {
          count: q.count,
          ...(q.cursor ? { cursor: q.cursor } : {}),
        });
      const page = v ? await v.run(list) : await list();
      return { path: normalizePath(q.path), entries: page.entries, cursor: page.cursor ?? null };
    },
  );

  app.get<{
    Querystring: {
      volume?: string;
      under: string;
      minSizeBytes?: number;
      modifiedFromMs?: number;
      modifiedToMs?: number;
      limit: number;
      cursor?: string;
    };
  }>(
    '/api/services/files/find',
    {
      schema: {
        tags: TAGS,
        summary: 'Files under a directory by size and modification time, from the indexes',
        description:
          "The planner scans the most selective index (path prefix, size, or the directory's mtime window) and checks the rest per candidate; `plan` and `candidates` (not in a tenant's view: they follow the whole volume) say which and how many. A `cursor` means more may follow. In a tenant's view the cursor is an opaque token, valid for 10 minutes and for that tenant only (the position it stands for is a volume path, maybe another tenant's).",
        headers,
        querystring: closed(
          {
            volume,
            under: path,
            minSizeBytes: bytes,
            modifiedFromMs: ms,
            modifiedToMs: ms,
            limit: limit(1_000, 100),
            // plan:score:path (base64url): the position the last page stopped at; in a
            // tenant's view t:<token> naming it (findCursors).
            cursor: {
              type: 'string',
              pattern: '^((path|size|mtime):[0-9]{1,16}:[A-Za-z0-9_-]{1,16384}|t:[0-9a-f]{32})$',
            },
          },
          ['under'],
        ),
        response: {
          200: {
            type: 'object',
            properties: {
              files: { type: 'array', items: anyObject },
              plan: { type: 'string' },
              candidates: { type: 'integer' },
              cursor: { type: ['string', 'null'] },
            },
          },
          ...errors(404, 409, 503),
        },
      },
    },
    async (request) => {
      const q = request.query;
      const v = view(request.auth);
      const at = q.cursor && (await cursors.read(q.cursor, request.auth.tenant));
      const [plan, score, path] = at ? at.split(':') : [];
      const fs = await open(q.volume);
      const find = () =>
        fs.findFiles(ROOT, {
          under: v ? v.inside(q.under, 'under') : q.under,
          limit: q.limit,
          ...(q.minSizeBytes !== undefined ? { minSizeBytes: q.minSizeBytes } : {}),
          ...(q.modifiedFromMs !== undefined ? { modifiedFromMs: q.modifiedFromMs } : {}),
          ...(q.modifiedToMs !== undefined ? { modifiedToMs: q.modifiedToMs } : {}),
          ...(plan
            ? {
                cursor: {
                  plan: plan as QueryPlan,
                  after: {
                    score: Number(score),
                    path: Buffer.from(path ?? '', 'base64url').toString('utf8'),
                  },
                },
              }
            : {}),
        });
      const res = v ? await v.run(find) : await find();
      const files = v
        ? res.files.flatMap((f) => {
            const p = v.outside(f.path);
            return p ? [{ ...f, path: p }] : [];
          })
        : res.files;
      return {
        files,
        // A tenant view leaves out the plan and the count of rows the planner checked: both
        // follow files of the whole volume (the size plan is picked when fewer files in the
        // volume are that large than the tenant has under its path), so bisecting a filter on
        // them would tell how many other tenants' files match.
        ...(v ? {} : { plan: res.plan, candidates: res.candidates }),
        cursor: res.cursor
          ? await cursors.write(
              `${res.cursor.plan}:${res.cursor.after.score}:${Buffer.from(res.cursor.after.path).toString('base64url')}`,
              request.auth.tenant,
            )
          : null,
      };
    },
  );

  app.get<{ Querystring: { volume?: string; uid: number; n: number } }>(
    '/api/services/files/largest-dirs',
    {
      schema: {
        tags: TAGS,
        summary: "A user's directories with the most bytes in their subtree",
        description:
          "A tenant token sees only directories inside its subtree (the user's largest 1,000 are examined).",
        headers,
        querystring: closed(
          {
            volume,
            uid: { type: 'integer', minimum: 0, maximum: 2 ** 31 - 1 },
            n: limit(1_000, 10),
          },
          ['uid'],
        ),
        response: {
          200: { type: 'object', properties: { dirs: { type: 'array', items: anyObject } } },
          ...errors(503),
        },
      },
    },
    async (request) => {
      const q = request.query;
      const v = view(request.auth);
      const fs = await open(q.volume);
      if (!v) return { dirs: await fs.largestDirs(ROOT, q.uid, q.n) };
      const dirs = (await fs.largestDirs(ROOT, q.uid, 1_000)).flatMap((d) => {
        const p = v.outside(d.path);
        return p ? [{ ...d, path: p }] : [];
      });
      return { dirs: dirs.slice(0, q.n) };
    },
  );
}
