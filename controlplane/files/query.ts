// Metadata queries and bulk import, answered from the indexes the write scripts keep (see
// README.md): files under a directory filtered by size and mtime, the largest directories of
// a user, and loading many files in few steps.
import type { RedisClient } from '../redis/connect.ts';
import { FileInputError, FileLimitError, FilePermissionError } from './errors.ts';
import type { FileKeys } from './keys.ts';
import { checkCount, checkMode, normalizePath } from './paths.ts';
import type { FileScriptName, ScriptArg } from './scripts.ts';
import type {
  Caller,
  DirSize,
  FileLimits,
  FileQuery,
  FileQueryResult,
  FoundFile,
  QueryPlan,
} from './types.ts';
import { FILE_BYTES_MAX, FILE_TIME_MAX_MS } from './types.ts';

/** How query code runs a script: the service's call, which checks and maps errors. */
export type ScriptCall = (
  op: string,
  name: FileScriptName,
  caller: Caller,
  args: ScriptArg[],
) => Promise<unknown[]>;

export async function findFiles(
  call: ScriptCall,
  limits: FileLimits,
  caller: Caller,
  q: FileQuery,
): Promise<FileQueryResult> {
  const under = normalizePath(q.under, 'under');
  const opt = (v: number | undefined, field: string, max: number): ScriptArg =>
    v === undefined ? '' : checkCount(v, field, max, under);
  // At least one result and one entry examined per call, so paging always moves on.
  const limit = checkCount(
    q.limit ?? limits.queryResultsMax,
    'limit',
    limits.queryResultsMax,
    under,
    1,
  );
  const scanMax = checkCount(limits.queryScanMax, 'limits.queryScanMax', 2 ** 31 - 1, under, 1);
  const c = q.cursor;
  if (
    c !== undefined &&
    (!['path', 'size', 'mtime'].includes(c.plan) ||
      !Number.isFinite(c.after?.score) ||
      typeof c.after?.path !== 'string')
  ) {
    throw new FileInputError(
      `findFiles ${under}: cursor must be one a previous page returned`,
      under,
      'cursor',
      'format',
    );
  }
  const reply = await call('find', 'find', caller, [
    under,
    // FILE_BYTES_MAX, not this instance's limits: the API's schema has the same bound.
    opt(q.minSizeBytes, 'minSizeBytes', FILE_BYTES_MAX),
    opt(q.modifiedFromMs, 'modifiedFromMs', FILE_TIME_MAX_MS),
    opt(q.modifiedToMs, 'modifiedToMs', FILE_TIME_MAX_MS),
    limit,
    scanMax,
    q.cursor?.plan ?? '',
    q.cursor ? `${q.cursor.after.score}\t${q.cursor.after.path}` : '',
  ]);
  const files: FoundFile[] = [];
  for (let i = 4; i + 2 < reply.length; i += 3) {
    files.push({
      path: String(reply[i]),
      sizeBytes: Number(reply[i + 1]),
      mtimeMs: Number(reply[i + 2]),
    });
  }
  const plan = String(reply[1]) as QueryPlan;
  const at = String(reply[3]);
  const tab = at.indexOf('\t');
  return {
    files,
    plan,
    candidates: Number(reply[2]),
    ...(tab > 0
      ? { cursor: { plan, after: { score: Number(at.slice(0, tab)), path: at.slice(tab + 1) } } }
      : {}),
  };
}

/** Every page of a query, up to `max` files (a bound, not a hope). */
export async function findAllFiles(
  call: ScriptCall,
  limits: FileLimits,
  caller: Caller,
  q: Omit<FileQuery, 'cursor'>,
  max = 1_000_000,
): Promise<FoundFile[]> {
  const out: FoundFile[] = [];
  let cursor: FileQueryResult['cursor'];
  do {
    const page = await findFiles(call, limits, caller, { ...q, ...(cursor ? { cursor } : {}) });
    out.push(...page.files);
    cursor = page.cursor;
    if (out.length > max) {
      throw new FileLimitError(`find ${q.under}: more than ${max} files`, q.under, 'max', max);
    }
  } while (cursor);
  return out;
}

/** The n directories owned by uid with the most bytes below them (the caller or root only). */
/** Index entries read per step of largestDirs, and at most in all, for a caller not root. */
const LARGEST_CHUNK = 64;
const LARGEST_SCANNED_MAX = 100_000;

/**
 * A user's `n` largest directories by subtree bytes, from its index. For a caller other than
 * root, a directory it cannot reach (no search permission on an ancestor: `reachable` says) is
 * left out, as find(1) would not see it, although it is the caller's own.
 */
export async function largestDirs(
  redis: RedisClient,
  keys: FileKeys,
  caller: Caller,
  uid: number,
  n: number,
  reachable: (path: string) => Promise<boolean>,
): Promise<DirSize[]> {
  checkCount(uid, 'uid', 2 ** 31 - 1);
  checkCount(n, 'n', 10_000);
  if (caller.uid !== 0 && caller.uid !== uid) {
    throw new FilePermissionError(
      `largestDirs: permission denied: uid ${caller.uid} lacks owner (ownership) on uid:${uid}: only the user and root list a user's directories`,
      `uid:${uid}`,
      'owner',
      caller.uid,
    );
  }
  const out: DirSize[] = [];
  const step = caller.uid === 0 ? n : LARGEST_CHUNK;
  for (let from = 0; out.length < n && from < LARGEST_SCANNED_MAX; from += step) {
    const flat = await redis.zrevrange(keys.dirBytes(uid), from, from + step - 1, 'WITHSCORES');
    const page: DirSize[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2)
      page.push({ path: flat[i] as string, subtreeBytes: Number(flat[i + 1]) });
    const seen =
      caller.uid === 0
        ? page.map(() => true)
        : await Promise.all(page.map((d) => reachable(d.path)));
    page.forEach((d, i) => {
      if (seen[i] && out.length < n) out.push(d);
    });
    if (page.length < step) break;
  }
  return out;
}

export interface ImportFile {
  path: string;
  sizeBytes: number;
  mtimeMs: number;
}

/**
 * Creates many sparse files (size and mtime, no data) and their missing directories, in
 * batches of limits.bulkBatchMax: each batch is one atomic step (all or nothing); earlier
 * batches stay when a later one fails in Redis (a path that exists, a permission). Every
 * entry is checked first, so a malformed one anywhere changes nothing.
 */
export async function importFiles(
  call: ScriptCall,
  limits: FileLimits,
  caller: Caller,
  files: readonly ImportFile[],
  opts: {
    mode: number;
    dirMode: number;
    chunkBytes: number;
    /** The once-only record's arguments for a batch (includes/once.lua), named by a path. */
    once: (path: string) => ScriptArg[];
  },
): Promise<{ files: number; dirs: number }> {
  checkMode(opts.mode);
  checkMode(opts.dirMode, 'dirMode');
  const entries = files.map((f): ScriptArg[] => {
    const p = normalizePath(f.path);
    return [
      p,
      checkCount(f.sizeBytes, 'sizeBytes', limits.fileBytesMax, p),
      checkCount(f.mtimeMs, 'mtimeMs', FILE_TIME_MAX_MS, p),
    ];
  });
  let made = { files: 0, dirs: 0 };
  for (let at = 0; at < entries.length; at += limits.bulkBatchMax) {
    const batch = entries.slice(at, at + limits.bulkBatchMax);
    const args: ScriptArg[] = [
      opts.mode,
      opts.chunkBytes,
      opts.dirMode,
      ...opts.once(String(batch[0]?.[0] ?? '/')),
    ];
    for (const e of batch) args.push(...e);
    const reply = await call('import', 'bulk', caller, args);
    made = { files: made.files + Number(reply[1]), dirs: made.dirs + Number(reply[2]) };
  }
  return made;
}
